'use strict';
// FrameOS node runner: runs inside frameos/runtime-node as `node /opt/frameos/runner.js`.
//
// Contract (the execution node parses exactly this; see runtime-images/README.md):
//   env   FRAMEOS_ENTRYPOINT   relative path of the agent module inside the package (required)
//         FRAMEOS_EXECUTION_ID exposed as ctx.execution_id (optional)
//         FRAMEOS_AGENT_DIR    package root, default /agent (only the tests change it)
//   stdin one JSON document (the inputs) ending at the first newline (or at EOF), at most
//         10 MiB. The node keeps stdin open after it: call replies arrive there (below).
//   header with FRAMEOS_HEADER=1 stdin starts with one header line {"secrets"?: {NAME: value}}
//         before the inputs; the secrets become ctx.secrets (a frozen object) and never enter
//         the environment. The runner removes FRAMEOS_HEADER.
//   warm  with FRAMEOS_WARM=1 (a pool container started before its execution is known) the
//         runner writes {"frameos":1,"type":"ready"} once it is up, waits on stdin for one header line {"entrypoint","execution_id","secrets"?} followed by
//         the inputs; it sets FRAMEOS_ENTRYPOINT / FRAMEOS_EXECUTION_ID from the header,
//         removes FRAMEOS_WARM, and only then loads the agent: from there on as above.
//   stdout one JSON frame per line, each {"frameos":1,"type":...}:
//           log      {"stream":"stdout"|"stderr","line":"..."}
//           progress {"fraction":0..1,"message":"..."}
//           result   {"output":<JSON>}                       -> exit 0   (terminal)
//           error    {"message","error_type","stack"}        -> exit 1   (terminal)
//           call     {"call_id","agent","inputs","max_amount_minor"?}  ctx.call (API.md §5.1)
//   stdin  after the inputs, one reply per call, one per line:
//           {"frameos":1,"type":"reply","call_id":n,"output":<JSON>}
//           {"frameos":1,"type":"reply","call_id":n,"error":{"code","message","status"?}}
//   The runner itself never writes anything unframed to fd 1. Frames are written with
//   fs.writeSync so none is lost when the agent calls process.exit().
// snapshot  the image also runs this file as a V8 startup snapshot (`node --snapshot-blob
//   runner-heap-<MiB>.blob`, built by build.sh): everything up to start() is then done once at
//   image build, so nothing that depends on the process (env, stdio, randomness, handles) may
//   happen before start(); modules are loaded at run time through `runtimeRequire`.

const fs = require('fs');
const path = require('path');
const { Writable } = require('stream');
const { pathToFileURL } = require('url');
const Module = require('module');
const v8 = require('v8');

const MAX_INPUT_BYTES = 10 * 1024 * 1024;
// The header holds up to 100 secrets of 4 KiB each, JSON-escaped.
const MAX_HEADER_BYTES = 4 * 1024 * 1024;
const MAX_LINE_BYTES = 16 * 1024;
const MAX_STACK_CHARS = 8 * 1024;
const MAX_PROGRESS_MESSAGE_CHARS = 1024;
const TRUNCATED = ' …[truncated]';

let AGENT_DIR; // set by start(): the environment is the run's, not the image build's
// A plain require at run time: inside a snapshot, `require` is the snapshot builder's.
let runtimeRequire;
const IMPORT_HELPER = path.join(__dirname, 'import.cjs');

// ---------------------------------------------------------------------------------------
// Frame output
// ---------------------------------------------------------------------------------------

let terminated = false; // a terminal frame has been written: nothing may follow it
let stdoutBroken = false;
let sleepCell; // created on first use: no SharedArrayBuffer while a snapshot is built
function pause2ms() {
  sleepCell = sleepCell || new Int32Array(new SharedArrayBuffer(4));
  Atomics.wait(sleepCell, 0, 0, 2);
}

function writeAllSync(fd, buf) {
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      if (e.code === 'EAGAIN') { pause2ms(); continue; }
      if (e.code === 'EINTR') continue;
      throw e;
    }
  }
}

// Strings in frames are always well-formed UTF-16 (lone surrogates -> U+FFFD), so every
// frame is valid UTF-8 JSON that strict parsers (serde_json) accept.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
function wellFormed(s) {
  if (typeof s.toWellFormed === 'function') return s.toWellFormed();
  return s.replace(LONE_SURROGATE, '\ufffd');
}
function wellFormedReplacer(_key, value) {
  return typeof value === 'string' ? wellFormed(value) : value;
}

function writeFrameText(text) {
  if (stdoutBroken) return;
  try {
    writeAllSync(1, Buffer.from(text + '\n', 'utf8'));
  } catch (e) {
    // EPIPE etc.: nobody is listening any more; drop every further frame.
    stdoutBroken = true;
  }
}

function emit(frame) {
  if (terminated) return;
  writeFrameText(JSON.stringify(frame));
}

// ---------------------------------------------------------------------------------------
// stdout / stderr -> log frames
// ---------------------------------------------------------------------------------------

function cutUtf8(buf, max) {
  // Cut a buffer to at most `max` bytes without splitting a UTF-8 sequence.
  let end = Math.min(max, buf.length);
  if (end < buf.length) {
    while (end > 0 && (buf[end] & 0xc0) === 0x80) end--;
  }
  return buf.subarray(0, end);
}

class LineFramer {
  constructor(stream) {
    this.stream = stream;
    this.parts = [];
    this.size = 0;
    this.discarding = false; // the current line was already emitted truncated
  }

  emitLine(buf) {
    let line = buf.toString('utf8');
    if (line.endsWith('\r')) line = line.slice(0, -1);
    emit({ frameos: 1, type: 'log', stream: this.stream, line: wellFormed(line) });
  }

  append(seg) {
    if (this.discarding || seg.length === 0) return;
    this.parts.push(seg);
    this.size += seg.length;
    if (this.size > MAX_LINE_BYTES) {
      const all = Buffer.concat(this.parts, this.size);
      const head = cutUtf8(all, MAX_LINE_BYTES).toString('utf8');
      emit({ frameos: 1, type: 'log', stream: this.stream, line: wellFormed(head) + TRUNCATED });
      this.parts = [];
      this.size = 0;
      this.discarding = true;
    }
  }

  endLine() {
    if (this.discarding) {
      this.discarding = false;
      return;
    }
    const all = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.size);
    this.parts = [];
    this.size = 0;
    this.emitLine(all);
  }

  feed(buf) {
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(10, start);
      if (nl === -1) {
        this.append(buf.subarray(start));
        return;
      }
      this.append(buf.subarray(start, nl));
      this.endLine();
      start = nl + 1;
    }
  }

  // The partial last line (no trailing newline), emitted once at exit.
  flushPartial() {
    if (this.size > 0 && !this.discarding) this.endLine();
    this.parts = [];
    this.size = 0;
    this.discarding = false;
  }
}

const framers = { stdout: new LineFramer('stdout'), stderr: new LineFramer('stderr') };

function makeStdio(name, fd) {
  const framer = framers[name];
  const stream = new Writable({
    decodeStrings: true,
    write(chunk, _encoding, cb) {
      framer.feed(chunk);
      cb();
    },
    writev(chunks, cb) {
      for (const { chunk } of chunks) framer.feed(chunk);
      cb();
    },
    final(cb) { cb(); },
    destroy(_err, cb) { cb(); },
  });
  stream.fd = fd;
  stream.isTTY = false;
  stream._isStdio = true;
  stream.destroySoon = stream.destroy;
  stream.getColorDepth = () => 1;
  stream.hasColors = () => false;
  return stream;
}

function installStdio() {
  // Replace the lazily created process.stdout / process.stderr *before* anything touches
  // them, so Node never wraps fd 1/2 in a non-blocking libuv handle. console.* binds to
  // these on first use, so it is framed too.
  for (const [name, fd] of [['stdout', 1], ['stderr', 2]]) {
    const stream = makeStdio(name, fd);
    Object.defineProperty(process, name, {
      configurable: true,
      enumerable: true,
      get() { return stream; },
    });
  }
}

function flushPartials() {
  framers.stdout.flushPartial();
  framers.stderr.flushPartial();
}

// ---------------------------------------------------------------------------------------
// Terminal frames
// ---------------------------------------------------------------------------------------

function errorTypeOf(err) {
  if (err !== null && typeof err === 'object') {
    if (typeof err.name === 'string' && err.name && err.name !== 'Error') return err.name;
    const ctor = err.constructor;
    if (ctor && typeof ctor.name === 'string' && ctor.name && ctor.name !== 'Object') return ctor.name;
    return 'Error';
  }
  return 'Error';
}

function messageOf(err) {
  if (err instanceof Error || (err && typeof err === 'object' && typeof err.message === 'string')) {
    return String(err.message);
  }
  if (typeof err === 'string') return err;
  try {
    const j = JSON.stringify(err);
    if (j !== undefined) return j;
  } catch (_) { /* fall through */ }
  return String(err);
}

function trimStack(stack) {
  if (typeof stack !== 'string') return '';
  const lines = stack.split('\n').filter((l) => {
    const t = l.trim();
    if (!t.startsWith('at ')) return true;
    return !t.includes(__filename) && !t.includes(IMPORT_HELPER) && !t.includes('node:internal') &&
      !t.includes('(internal/');
  });
  let out = lines.join('\n');
  if (out.length > MAX_STACK_CHARS) out = out.slice(0, MAX_STACK_CHARS) + TRUNCATED;
  return out;
}

function finish(frame, code) {
  if (terminated) return;
  flushPartials();
  emit(frame);
  terminated = true;
  process.exit(code);
}

function finishError(err, forcedType) {
  let message, errorType, stack;
  try {
    message = messageOf(err);
    errorType = forcedType || errorTypeOf(err);
    stack = err && typeof err === 'object' ? trimStack(err.stack) : '';
  } catch (e) {
    message = 'unprintable error';
    errorType = forcedType || 'Error';
    stack = '';
  }
  finish({
    frameos: 1,
    type: 'error',
    message: wellFormed(message),
    error_type: wellFormed(errorType),
    stack: wellFormed(stack),
  }, 1);
}

class RunnerError extends Error {}
RunnerError.prototype.name = 'RunnerError';

function runnerFail(message) {
  finish({ frameos: 1, type: 'error', message: wellFormed(message), error_type: 'RunnerError', stack: '' }, 1);
}

function finishResult(output) {
  let text;
  try {
    // A top-level function / symbol would make JSON.stringify silently drop "output".
    if (typeof output === 'function' || typeof output === 'symbol') {
      throw new TypeError(`a value of type ${typeof output} cannot be serialized`);
    }
    text = JSON.stringify(
      { frameos: 1, type: 'result', output: output === undefined ? null : output },
      wellFormedReplacer,
    );
  } catch (e) {
    finishError({ name: errorTypeOf(e), message: `output is not JSON-serializable: ${messageOf(e)}` });
    return;
  }
  if (terminated) return;
  flushPartials();
  writeFrameText(text);
  terminated = true;
  process.exit(0);
}

// ---------------------------------------------------------------------------------------
// Inputs, entrypoint, ctx
// ---------------------------------------------------------------------------------------

// Reads stdin until `lines` newlines have arrived, or to EOF (a writer that closes stdin after
// the inputs). Whatever follows the last of those newlines is the start of the reply stream.
function readStdinSync(limit, lines = 1) {
  const chunks = [];
  let total = 0;
  let seen = 0;
  const buf = Buffer.allocUnsafe(1 << 16);
  for (;;) {
    let n;
    try {
      n = fs.readSync(0, buf, 0, buf.length, null);
    } catch (e) {
      if (e.code === 'EAGAIN') { pause2ms(); continue; }
      if (e.code === 'EINTR') continue;
      if (e.code === 'EOF') break;
      throw new RunnerError(`cannot read inputs from stdin: ${e.message}`);
    }
    if (n === 0) break;
    total += n;
    if (total > limit) throw new RunnerError('inputs on stdin exceed 10 MiB');
    const chunk = Buffer.from(buf.subarray(0, n));
    chunks.push(chunk);
    for (let i = chunk.indexOf(10); i !== -1 && seen < lines; i = chunk.indexOf(10, i + 1)) seen += 1;
    if (seen >= lines) break;
  }
  const all = Buffer.concat(chunks, total);
  let end = -1;
  for (let k = 0; k < lines; k += 1) {
    end = all.indexOf(10, end + 1);
    if (end === -1) break;
  }
  if (end === -1) return all;
  replyBuffer = all.subarray(end + 1);
  return all.subarray(0, end);
}

// The agent's secrets from the stdin header (ctx.secrets): kept here, never in process.env.
const NO_SECRETS = Object.freeze({});
let secrets = NO_SECRETS;

function readSecrets(value) {
  if (value === undefined || value === null) return NO_SECRETS;
  if (typeof value !== 'object' || Array.isArray(value)) throw new RunnerError('header secrets must be an object');
  const entries = Object.entries(value);
  for (const [name, secret] of entries) {
    if (typeof secret !== 'string') throw new RunnerError(`header secret ${JSON.stringify(name)} must be a string`);
  }
  // fromEntries defines own properties: a name such as __proto__ cannot reach the prototype.
  return Object.freeze(Object.fromEntries(entries));
}

// The header line (FRAMEOS_HEADER=1, or a warm hand-off, which also names the execution);
// what follows it is the inputs.
function acceptHeader(raw, warm) {
  const nl = raw.indexOf(10);
  if (nl === -1) throw new RunnerError(warm ? 'warm hand-off without a header line' : 'stdin without a header line');
  let header;
  try {
    header = JSON.parse(raw.subarray(0, nl).toString('utf8'));
  } catch (e) {
    throw new RunnerError(`${warm ? 'warm hand-off' : 'stdin'} header is not valid JSON: ${e.message}`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) {
    throw new RunnerError('the stdin header must be a JSON object');
  }
  if (warm) {
    if (typeof header.entrypoint !== 'string' || typeof header.execution_id !== 'string') {
      throw new RunnerError('warm hand-off header must name entrypoint and execution_id');
    }
    delete process.env.FRAMEOS_WARM;
    process.env.FRAMEOS_ENTRYPOINT = header.entrypoint;
    process.env.FRAMEOS_EXECUTION_ID = header.execution_id;
  }
  delete process.env.FRAMEOS_HEADER;
  secrets = readSecrets(header.secrets);
  const inputs = raw.subarray(nl + 1);
  if (inputs.length > MAX_INPUT_BYTES) throw new RunnerError('inputs on stdin exceed 10 MiB');
  return inputs;
}

function parseInputs(raw) {
  let text;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(raw);
  } catch (_) {
    throw new RunnerError('inputs on stdin are not valid UTF-8');
  }
  if (text.trim() === '') throw new RunnerError('no inputs on stdin (expected one JSON document)');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new RunnerError(`inputs on stdin are not valid JSON: ${e.message}`);
  }
}

function resolveEntrypoint() {
  const ep = process.env.FRAMEOS_ENTRYPOINT;
  if (!ep) throw new RunnerError('FRAMEOS_ENTRYPOINT is not set');
  if (path.isAbsolute(ep) || ep.includes('\0') || ep.split(/[\\/]/).includes('..')) {
    throw new RunnerError(`invalid entrypoint ${JSON.stringify(ep)}: must be a relative path inside the package`);
  }
  const file = path.resolve(AGENT_DIR, ep);
  if (!file.startsWith(AGENT_DIR + path.sep)) {
    throw new RunnerError(`invalid entrypoint ${JSON.stringify(ep)}: must be a relative path inside the package`);
  }
  let st;
  try {
    st = fs.statSync(file);
  } catch (_) {
    throw new RunnerError(`entrypoint ${JSON.stringify(ep)} not found in the package`);
  }
  if (!st.isFile()) throw new RunnerError(`entrypoint ${JSON.stringify(ep)} is not a regular file`);
  return { ep, file };
}

function pickFunction(mod) {
  if (typeof mod === 'function') return mod;
  if (mod && typeof mod === 'object') {
    if (typeof mod.default === 'function') return mod.default;
    if (typeof mod.run === 'function') return mod.run;
    // ESM namespace whose default is a CommonJS exports object
    if (mod.default && typeof mod.default === 'object') {
      if (typeof mod.default.default === 'function') return mod.default.default;
      if (typeof mod.default.run === 'function') return mod.default.run;
    }
  }
  return null;
}

async function loadAgent({ ep, file }) {
  let mod;
  try {
    mod = runtimeRequire(file);
  } catch (e) {
    if (e && e.code === 'ERR_REQUIRE_ESM') {
      // An ES module entrypoint also works. `import()` goes through a file compiled at run
      // time: code restored from a snapshot cannot start a dynamic import.
      mod = await runtimeRequire(IMPORT_HELPER)(pathToFileURL(file).href);
    } else {
      throw e; // the agent's own load-time error (SyntaxError, a throw at top level, ...)
    }
  }
  const fn = pickFunction(mod);
  if (!fn) {
    throw new RunnerError(
      `entrypoint ${JSON.stringify(ep)} must export a function: module.exports = async (inputs, ctx) => output`,
    );
  }
  return fn;
}

// ---------------------------------------------------------------------------------------
// ctx.call: a call frame out on stdout, its reply back on stdin (the container has no network)
// ---------------------------------------------------------------------------------------

const MAX_CALL_INPUT_BYTES = 1024 * 1024;
const MAX_REPLY_LINE_BYTES = 2 * 1024 * 1024;
let replyBuffer = Buffer.alloc(0); // bytes read past the inputs: the start of the replies
let callSeq = 0;
const pendingCalls = new Map();
let replyReader = null;

class CallError extends Error {
  constructor(code, message, status) {
    // The code leads the message, so an agent that lets the error propagate fails with it.
    super(`${code}: ${message}`);
    this.code = code;
    this.status = status || null;
  }
}
CallError.prototype.name = 'CallError';

function settleReply(line) {
  let reply;
  try {
    reply = JSON.parse(line.toString('utf8'));
  } catch (_) {
    return;
  }
  if (!reply || reply.frameos !== 1 || reply.type !== 'reply') return;
  const waiting = pendingCalls.get(reply.call_id);
  if (!waiting) return;
  pendingCalls.delete(reply.call_id);
  if (reply.error && typeof reply.error === 'object') {
    const e = reply.error;
    waiting.reject(new CallError(String(e.code || 'call_failed'), String(e.message || ''), e.status));
  } else {
    waiting.resolve(reply.output === undefined ? null : reply.output);
  }
  idleReplies();
}

function takeReplyLines() {
  for (let nl = replyBuffer.indexOf(10); nl !== -1; nl = replyBuffer.indexOf(10)) {
    const line = replyBuffer.subarray(0, nl);
    replyBuffer = replyBuffer.subarray(nl + 1);
    settleReply(line);
  }
  if (replyBuffer.length > MAX_REPLY_LINE_BYTES) replyBuffer = Buffer.alloc(0);
}

// stdin keeps the process alive only while a call waits for its reply.
function idleReplies() {
  if (replyReader && pendingCalls.size === 0) {
    replyReader.pause();
    if (typeof replyReader.unref === 'function') replyReader.unref();
  }
}

function awaitReplies() {
  if (!replyReader) {
    replyReader = process.stdin;
    replyReader.on('data', (chunk) => {
      replyBuffer = replyBuffer.length ? Buffer.concat([replyBuffer, chunk]) : chunk;
      takeReplyLines();
    });
    replyReader.on('end', () => {
      for (const [id, waiting] of pendingCalls) {
        pendingCalls.delete(id);
        waiting.reject(new CallError('call_failed', 'the platform closed the call channel'));
      }
    });
    replyReader.on('error', () => {});
  }
  if (typeof replyReader.ref === 'function') replyReader.ref();
  replyReader.resume();
}

function call(agent, inputs, options) {
  if (typeof agent !== 'string' || agent === '') throw new TypeError('ctx.call: agent must be a slug');
  const max = options && options.max_amount_minor;
  if (max !== undefined && max !== null && !(Number.isSafeInteger(max) && max >= 0)) {
    throw new TypeError('ctx.call: max_amount_minor must be a whole number of minor units');
  }
  const text = JSON.stringify(inputs === undefined ? {} : inputs, wellFormedReplacer);
  if (text === undefined) throw new TypeError('ctx.call: inputs must be JSON');
  if (Buffer.byteLength(text) > MAX_CALL_INPUT_BYTES) throw new TypeError('ctx.call: inputs exceed 1 MiB');
  callSeq += 1;
  const callId = callSeq;
  const frame = { frameos: 1, type: 'call', call_id: callId, agent, inputs: JSON.parse(text) };
  if (max !== undefined && max !== null) frame.max_amount_minor = max;
  return new Promise((resolve, reject) => {
    pendingCalls.set(callId, { resolve, reject });
    awaitReplies();
    takeReplyLines();
    emit(frame);
  });
}

function makeCtx() {
  const executionId = process.env.FRAMEOS_EXECUTION_ID;
  return Object.freeze({
    execution_id: executionId ? executionId : null,
    secrets,
    call,
    progress(fraction, message) {
      if (typeof fraction !== 'number' || !Number.isFinite(fraction) || fraction < 0 || fraction > 1) {
        throw new TypeError('ctx.progress: fraction must be a finite number between 0 and 1');
      }
      if (message === undefined || message === null) message = '';
      if (typeof message !== 'string') throw new TypeError('ctx.progress: message must be a string');
      if (message.length > MAX_PROGRESS_MESSAGE_CHARS) {
        message = message.slice(0, MAX_PROGRESS_MESSAGE_CHARS) + TRUNCATED;
      }
      emit({ frameos: 1, type: 'progress', fraction, message: wellFormed(message) });
    },
  });
}

// ---------------------------------------------------------------------------------------
// EGRESS HOOK (ARCHITECTURE.md "Egress"; runtime-images/README.md "Egress").
// With the http_request capability the node bind-mounts its egress proxy's Unix socket and
// sets FRAMEOS_EGRESS_SOCKET and HTTP(S)_PROXY=http://127.0.0.1:3128. The container has no
// network, so this listener pipes 127.0.0.1:3128 to the socket. Node's own clients ignore
// HTTP_PROXY, so the global http/https agents and fetch's global dispatcher are replaced by
// ones that go through the proxy (absolute-form for http, CONNECT for https). A client given
// its own agent/dispatcher must honour HTTP(S)_PROXY itself.
// ---------------------------------------------------------------------------------------
const EGRESS_HOST = '127.0.0.1';
const EGRESS_PORT = 3128;
const MAX_PROXY_HEAD_BYTES = 16 * 1024;

function setupEgress() {
  const socketPath = process.env.FRAMEOS_EGRESS_SOCKET;
  if (!socketPath) return Promise.resolve();
  const net = runtimeRequire('net');
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const upstream = net.connect({ path: socketPath, allowHalfOpen: true });
    // The agent's own end of the connection keeps the process alive, not ours.
    client.unref();
    upstream.unref();
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  return new Promise((resolve) => {
    server.once('error', (err) => {
      process.stderr.write(`[frameos] egress listener failed: ${err.message}\n`);
      resolve();
    });
    server.listen(EGRESS_PORT, EGRESS_HOST, () => {
      server.unref();
      installProxyClients();
      resolve();
    });
  });
}

function installProxyClients() {
  const http = runtimeRequire('http');
  const https = runtimeRequire('https');
  const net = runtimeRequire('net');
  const tls = runtimeRequire('tls');

  class ProxyHttpAgent extends http.Agent {
    addRequest(req, options) {
      if (!/^https?:\/\//i.test(req.path)) {
        const host = req.getHeader('host') || `${options.host}:${options.port || 80}`;
        req.path = `http://${host}${req.path}`;
        // Headers already serialised (e.g. for `Expect`) carry the old path.
        if (req._header) {
          req._header = null;
          req._implicitHeader();
        }
      }
      super.addRequest(req, options);
    }

    createConnection() {
      return net.connect(EGRESS_PORT, EGRESS_HOST);
    }
  }

  class ProxyHttpsAgent extends https.Agent {
    createConnection(options, done) {
      const host = options.servername || options.host;
      const target = `${options.host}:${options.port || 443}`;
      const socket = net.connect(EGRESS_PORT, EGRESS_HOST);
      let head = Buffer.alloc(0);
      const fail = (err) => {
        socket.destroy();
        done(err);
      };
      const onData = (chunk) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) {
          if (head.length > MAX_PROXY_HEAD_BYTES) fail(new Error('egress proxy sent an oversized response'));
          return;
        }
        socket.removeListener('data', onData);
        socket.removeListener('error', fail);
        const status = head.subarray(0, end).toString('latin1').split('\r\n')[0];
        if (!/^HTTP\/1\.[01] 200/.test(status)) {
          const why = head.subarray(end + 4).toString('utf8').trim();
          return fail(new Error(`egress proxy refused CONNECT ${target}: ${status}${why ? ` (${why})` : ''}`));
        }
        done(null, tls.connect({ ...options, socket, servername: host }));
      };
      socket.on('data', onData);
      socket.once('error', fail);
      socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
      return undefined; // the socket arrives through `done`
    }
  }

  const httpAgent = new ProxyHttpAgent();
  const httpsAgent = new ProxyHttpsAgent();
  http.globalAgent = httpAgent;
  https.globalAgent = httpsAgent;
  // fetch (undici) reads its global dispatcher from this symbol; serve it with the agents.
  Object.defineProperty(globalThis, Symbol.for('undici.globalDispatcher.1'), {
    value: makeDispatcher(http, https, httpAgent, httpsAgent),
    writable: true,
    enumerable: false,
    configurable: false,
  });
}

// The subset of undici's Dispatcher interface that fetch uses.
function makeDispatcher(http, https, httpAgent, httpsAgent) {
  return {
    dispatch(opts, handler) {
      const url = new URL(opts.path, opts.origin);
      const secure = url.protocol === 'https:';
      const headers = {};
      for (const [name, value] of headerPairs(opts.headers)) {
        const key = name.toLowerCase();
        headers[key] = key in headers ? [].concat(headers[key], value) : value;
      }
      const req = (secure ? https : http).request(url, {
        method: opts.method,
        headers,
        agent: secure ? httpsAgent : httpAgent,
      });
      let settled = false;
      const fail = (err) => {
        if (settled) return;
        settled = true;
        handler.onError(err);
      };
      handler.onConnect((err) => {
        req.destroy(err);
        fail(err || new Error('aborted'));
      });
      req.on('error', fail);
      req.on('response', (res) => {
        const raw = res.rawHeaders.map((h) => Buffer.from(h, 'latin1'));
        if (handler.onHeaders(res.statusCode, raw, () => res.resume(), res.statusMessage) === false) res.pause();
        res.on('data', (chunk) => {
          if (!settled && handler.onData(chunk) === false) res.pause();
        });
        res.on('end', () => {
          if (settled) return;
          settled = true;
          handler.onComplete([]);
        });
        res.on('error', fail);
      });
      const body = opts.body;
      if (body == null) req.end();
      else if (typeof body === 'string' || body instanceof Uint8Array) req.end(body);
      else {
        (async () => {
          for await (const chunk of body) req.write(chunk);
          req.end();
        })().catch((err) => req.destroy(err));
      }
      return true;
    },
    close() {
      return Promise.resolve();
    },
    destroy() {
      return Promise.resolve();
    },
  };
}

function headerPairs(headers) {
  if (!headers) return [];
  if (Array.isArray(headers)) {
    if (headers.length && Array.isArray(headers[0])) return headers;
    const pairs = [];
    for (let i = 0; i + 1 < headers.length; i += 2) pairs.push([String(headers[i]), String(headers[i + 1])]);
    return pairs;
  }
  if (typeof headers[Symbol.iterator] === 'function') return Array.from(headers);
  return Object.entries(headers);
}

// ---------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------

async function main() {
  installStdio();

  process.on('exit', () => {
    // process.exit(n) by the agent (no terminal frame): still deliver the partial lines.
    if (!terminated) flushPartials();
    terminated = true;
  });
  // A throw in a callback / an unhandled rejection would crash a plain node process:
  // here it fails the run with that error.
  process.on('uncaughtException', (err) => finishError(err));
  // The event loop emptied while the agent's promise was still pending.
  process.on('beforeExit', () => {
    if (!terminated) runnerFail('the agent function returned a promise that never settled');
  });

  let inputs;
  let target;
  try {
    if (process.env.FRAMEOS_WARM === '1') {
      // Up and waiting: the pool hands this container out only after this line.
      writeFrameText(JSON.stringify({ frameos: 1, type: 'ready' }));
      inputs = parseInputs(acceptHeader(readStdinSync(MAX_HEADER_BYTES + MAX_INPUT_BYTES, 2), true));
    } else if (process.env.FRAMEOS_HEADER === '1') {
      inputs = parseInputs(acceptHeader(readStdinSync(MAX_HEADER_BYTES + MAX_INPUT_BYTES, 2), false));
    } else {
      inputs = parseInputs(readStdinSync(MAX_INPUT_BYTES));
    }
    target = resolveEntrypoint();
  } catch (e) {
    if (e instanceof RunnerError) return runnerFail(e.message);
    throw e;
  }

  await setupEgress();

  let fn;
  try {
    fn = await loadAgent(target);
  } catch (e) {
    if (e instanceof RunnerError) return runnerFail(e.message);
    return finishError(e);
  }

  let output;
  try {
    output = await fn(inputs, makeCtx());
  } catch (e) {
    return finishError(e);
  }
  finishResult(output);
}

function start() {
  AGENT_DIR = path.resolve(process.env.FRAMEOS_AGENT_DIR || '/agent');
  runtimeRequire = Module.createRequire(__filename);
  main().catch((e) => {
    try {
      finishError(e, 'RunnerError');
    } catch (_) {
      process.exit(1);
    }
  });
}

if (v8.startupSnapshot && v8.startupSnapshot.isBuildingSnapshot()) {
  v8.startupSnapshot.setDeserializeMainFunction(start);
} else {
  start();
}
