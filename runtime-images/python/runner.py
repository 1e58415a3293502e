"""FrameOS python runner: runs inside frameos/runtime-python as `python3 /opt/frameos/runner.py`.

Contract (the execution node parses exactly this; see runtime-images/README.md):
  env   FRAMEOS_ENTRYPOINT   relative path of the agent file inside the package (required)
        FRAMEOS_EXECUTION_ID exposed as ctx.execution_id (optional)
        FRAMEOS_AGENT_DIR    package root, default /agent (only the tests change it)
  stdin one JSON document (the inputs) ending at the first newline (or at EOF), at most
        10 MiB. The node keeps stdin open after it: call replies arrive there (below).
  header with FRAMEOS_HEADER=1 stdin starts with one header line {"secrets"?: {NAME: value}}
        before the inputs; the secrets become ctx.secrets (a read-only mapping, also read as
        attributes) and never enter os.environ. The runner removes FRAMEOS_HEADER.
  warm  with FRAMEOS_WARM=1 (a pool container started before its execution is known) the
        runner writes {"frameos":1,"type":"ready"} once it is up, waits on stdin for one header line {"entrypoint","execution_id","secrets"?} followed by
        the inputs; it sets FRAMEOS_ENTRYPOINT / FRAMEOS_EXECUTION_ID from the header,
        removes FRAMEOS_WARM, and only then loads the agent: from there on as above.
  stdout one JSON frame per line, each {"frameos":1,"type":...}:
          log      {"stream":"stdout"|"stderr","line":"..."}
          progress {"fraction":0..1,"message":"..."}
          result   {"output":<JSON>}                       -> exit 0   (terminal)
          error    {"message","error_type","stack"}        -> exit 1   (terminal)
          call     {"call_id","agent","inputs","max_amount_minor"?}  ctx.call (API.md §5.1)
  stdin  after the inputs, one reply per call, one per line:
          {"frameos":1,"type":"reply","call_id":n,"output":<JSON>}
          {"frameos":1,"type":"reply","call_id":n,"error":{"code","message","status"?}}
  The runner itself never writes anything unframed to fd 1. Every frame is written with
  os.write straight to fd 1 (nothing buffered), so none is lost on sys.exit / os._exit.
"""

import asyncio
import atexit
import codecs
import collections.abc
import importlib.util
import inspect
import io
import json
import math
import os
import select
import sys
import threading
import time
import traceback

MAX_INPUT_BYTES = 10 * 1024 * 1024
MAX_HEADER_BYTES = 4 * 1024 * 1024  # up to 100 secrets of 4 KiB each, JSON-escaped
MAX_LINE_BYTES = 16 * 1024
MAX_STACK_CHARS = 8 * 1024
MAX_PROGRESS_MESSAGE_CHARS = 1024
TRUNCATED = " \u2026[truncated]"

AGENT_DIR = os.path.realpath(os.environ.get("FRAMEOS_AGENT_DIR") or "/agent")
RUNNER_FILE = os.path.abspath(__file__)

# Lone surrogates (e.g. from surrogateescape'd bytes) become U+FFFD, so every frame is
# valid UTF-8 JSON that strict parsers (serde_json) accept.
# (The UTF-8 encoder only accepts an ASCII str or bytes as replacement.)
codecs.register_error("frameos_fffd", lambda e: ("\ufffd".encode("utf-8") * (e.end - e.start), e.end))


class RunnerError(Exception):
    pass


# ---------------------------------------------------------------------------------------
# Frame output
# ---------------------------------------------------------------------------------------

_lock = threading.RLock()
_terminated = False  # a terminal frame has been written: nothing may follow it
_stdout_broken = False


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            time.sleep(0.002)
            continue
        view = view[n:]


def _encode(frame):
    text = json.dumps(frame, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (text + "\n").encode("utf-8", "frameos_fffd")


def _write_frame_bytes(data):
    global _stdout_broken
    if _stdout_broken:
        return
    try:
        _write_all(1, data)
    except OSError:  # EPIPE etc.: nobody is listening any more
        _stdout_broken = True


def emit(frame):
    with _lock:
        if _terminated:
            return
        _write_frame_bytes(_encode(frame))


# ---------------------------------------------------------------------------------------
# sys.stdout / sys.stderr -> log frames
# ---------------------------------------------------------------------------------------


def _cut_utf8(buf, limit):
    end = min(limit, len(buf))
    if end < len(buf):
        while end > 0 and (buf[end] & 0xC0) == 0x80:
            end -= 1
    return bytes(buf[:end])


class _LineFramer(io.RawIOBase):
    """Raw byte sink: splits on b"\\n" and emits one log frame per line."""

    def __init__(self, stream, fd):
        super().__init__()
        self._stream = stream
        self._fd = fd
        self._buf = bytearray()
        self._discarding = False  # the current line was already emitted truncated

    # io API -----------------------------------------------------------------------------
    def writable(self):
        return True

    def readable(self):
        return False

    def seekable(self):
        return False

    def isatty(self):
        return False

    def fileno(self):
        # Code that writes to the real fd (subprocess, faulthandler) bypasses the framing;
        # the node treats unframed stdout lines as plain stdout log lines.
        return self._fd

    def close(self):
        # Never really closed: the interpreter may still print at shutdown.
        pass

    @property
    def closed(self):
        return False

    def flush(self):
        # A flush does not end the line; the partial last line is emitted at exit.
        pass

    def write(self, b):
        data = bytes(b)
        with _lock:
            start = 0
            while True:
                nl = data.find(b"\n", start)
                if nl == -1:
                    self._append(data[start:])
                    break
                self._append(data[start:nl])
                self._end_line()
                start = nl + 1
        return len(data)

    # framing --------------------------------------------------------------------------
    def _emit_line(self, raw, suffix=""):
        line = raw.decode("utf-8", "replace")
        if not suffix and line.endswith("\r"):
            line = line[:-1]
        emit({"frameos": 1, "type": "log", "stream": self._stream, "line": line + suffix})

    def _append(self, seg):
        if self._discarding or not seg:
            return
        self._buf += seg
        if len(self._buf) > MAX_LINE_BYTES:
            head = _cut_utf8(self._buf, MAX_LINE_BYTES)
            self._buf = bytearray()
            self._discarding = True
            self._emit_line(head, TRUNCATED)

    def _end_line(self):
        if self._discarding:
            self._discarding = False
            return
        raw = bytes(self._buf)
        self._buf = bytearray()
        self._emit_line(raw)

    def flush_partial(self):
        with _lock:
            if self._buf and not self._discarding:
                self._end_line()
            self._buf = bytearray()
            self._discarding = False


_framers = {}


def _install_stdio():
    for name, fd in (("stdout", 1), ("stderr", 2)):
        raw = _LineFramer(name, fd)
        _framers[name] = raw
        text = io.TextIOWrapper(
            raw, encoding="utf-8", errors="backslashreplace", line_buffering=True, write_through=True
        )
        setattr(sys, name, text)


def _flush_partials():
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name, None)
        try:
            if stream is not None:
                stream.flush()  # TextIOWrapper -> raw (no-op for the raw framer itself)
        except Exception:
            pass
        framer = _framers.get(name)
        if framer is not None:
            framer.flush_partial()


# ---------------------------------------------------------------------------------------
# Terminal frames
# ---------------------------------------------------------------------------------------

_SKIP_PREFIXES = (
    os.path.dirname(asyncio.__file__) + os.sep,
    "<frozen importlib._bootstrap",
)


def _trim_stack(exc):
    try:
        frames = traceback.extract_tb(exc.__traceback__)
        # drop the runner's own frames and the asyncio / importlib machinery around the agent
        kept = [
            f
            for f in frames
            if f.filename != RUNNER_FILE and not f.filename.startswith(_SKIP_PREFIXES)
        ]
        text = "Traceback (most recent call last):\n" if kept else ""
        text += "".join(traceback.format_list(kept))
        text += "".join(traceback.format_exception_only(type(exc), exc))
        text = text.rstrip("\n")
    except Exception:
        text = ""
    if len(text) > MAX_STACK_CHARS:
        text = text[:MAX_STACK_CHARS] + TRUNCATED
    return text


def _finish(frame_bytes, code):
    global _terminated
    # Output written straight to the original streams (unframed) goes out first.
    for s in (sys.__stdout__, sys.__stderr__):
        try:
            if s is not None:
                s.flush()
        except Exception:
            pass
    _flush_partials()
    with _lock:
        if not _terminated:
            _write_frame_bytes(frame_bytes)
            _terminated = True
    # Exit now even if the agent left non-daemon threads or handles running.
    os._exit(code)


def _error_frame(message, error_type, stack=""):
    return _encode(
        {"frameos": 1, "type": "error", "message": message, "error_type": error_type, "stack": stack}
    )


def finish_error(exc):
    try:
        frame = _error_frame(str(exc), type(exc).__name__, _trim_stack(exc))
    except Exception:
        frame = _error_frame("unprintable error", type(exc).__name__)
    _finish(frame, 1)


def runner_fail(message):
    _finish(_error_frame(message, "RunnerError"), 1)


def _run_agent_atexit():
    # Give the agent's atexit handlers a chance (their output is framed) before the
    # terminal frame; the runner then leaves with os._exit.
    run = getattr(atexit, "_run_exitfuncs", None)
    if run is not None:
        try:
            run()
        except BaseException:
            pass


def finish_result(output):
    try:
        frame = _encode({"frameos": 1, "type": "result", "output": output})
    except (TypeError, ValueError, RecursionError) as e:
        _run_agent_atexit()
        _finish(
            _error_frame("output is not JSON-serializable: %s" % (e,), type(e).__name__), 1
        )
        return
    _run_agent_atexit()
    _finish(frame, 0)


# ---------------------------------------------------------------------------------------
# Inputs, entrypoint, ctx
# ---------------------------------------------------------------------------------------


def _read_stdin(limit, lines=1):
    """Reads stdin until `lines` newlines arrived, or to EOF (a writer that closes stdin after
    the inputs). What follows the last of those newlines starts the reply stream."""
    chunks = []
    total = 0
    seen = 0
    while True:
        try:
            chunk = os.read(0, 1 << 16)
        except BlockingIOError:
            time.sleep(0.002)
            continue
        except OSError as e:
            raise RunnerError("cannot read inputs from stdin: %s" % (e,))
        if not chunk:
            break
        total += len(chunk)
        if total > limit:
            raise RunnerError("inputs on stdin exceed 10 MiB")
        chunks.append(chunk)
        seen += chunk.count(b"\n")
        if seen >= lines:
            break
    data = b"".join(chunks)
    end = -1
    for _ in range(lines):
        end = data.find(b"\n", end + 1)
        if end == -1:
            return data
    _calls.buffer = data[end + 1 :]
    return data[:end]


class Secrets(collections.abc.Mapping):
    """ctx.secrets: the agent's secrets by name, read-only. `ctx.secrets.API_TOKEN` and
    `ctx.secrets["API_TOKEN"]` both work; repr shows the names, never the values."""

    __slots__ = ("_values",)

    def __init__(self, values):
        object.__setattr__(self, "_values", dict(values))

    def __getitem__(self, name):
        return self._values[name]

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    def __getattr__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError("no secret named %r" % (name,)) from None

    def __setattr__(self, name, value):
        raise AttributeError("ctx.secrets is read-only")

    def __delattr__(self, name):
        raise AttributeError("ctx.secrets is read-only")

    def __repr__(self):
        return "Secrets(%s)" % (sorted(self._values),)


_secrets = Secrets({})


def _read_secrets(value):
    if value is None:
        return Secrets({})
    if not isinstance(value, dict):
        raise RunnerError("header secrets must be an object")
    for name, secret in value.items():
        if not isinstance(secret, str):
            raise RunnerError("header secret %s must be a string" % json.dumps(name))
    return Secrets(value)


def _accept_header(raw, warm):
    """The header line (FRAMEOS_HEADER=1, or a warm hand-off, which also names the execution);
    what follows it is the inputs."""
    global _secrets
    what = "warm hand-off" if warm else "stdin"
    nl = raw.find(b"\n")
    if nl == -1:
        raise RunnerError("%s without a header line" % what)
    try:
        header = json.loads(raw[:nl].decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise RunnerError("%s header is not valid JSON: %s" % (what, e))
    if not isinstance(header, dict):
        raise RunnerError("the stdin header must be a JSON object")
    if warm:
        if not isinstance(header.get("entrypoint"), str) or not isinstance(
            header.get("execution_id"), str
        ):
            raise RunnerError("warm hand-off header must name entrypoint and execution_id")
        os.environ.pop("FRAMEOS_WARM", None)
        os.environ["FRAMEOS_ENTRYPOINT"] = header["entrypoint"]
        os.environ["FRAMEOS_EXECUTION_ID"] = header["execution_id"]
    os.environ.pop("FRAMEOS_HEADER", None)
    _secrets = _read_secrets(header.get("secrets"))
    inputs = raw[nl + 1 :]
    if len(inputs) > MAX_INPUT_BYTES:
        raise RunnerError("inputs on stdin exceed 10 MiB")
    return inputs


def _reject_constant(name):
    raise ValueError("%s is not valid JSON" % name)


def _parse_inputs(raw):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RunnerError("inputs on stdin are not valid UTF-8")
    if not text.strip():
        raise RunnerError("no inputs on stdin (expected one JSON document)")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:
        raise RunnerError("inputs on stdin are not valid JSON: %s" % (e,))


def _resolve_entrypoint():
    ep = os.environ.get("FRAMEOS_ENTRYPOINT") or ""
    if not ep:
        raise RunnerError("FRAMEOS_ENTRYPOINT is not set")
    parts = ep.replace("\\", "/").split("/")
    if os.path.isabs(ep) or "\0" in ep or ".." in parts:
        raise RunnerError(
            "invalid entrypoint %s: must be a relative path inside the package" % json.dumps(ep)
        )
    path = os.path.normpath(os.path.join(AGENT_DIR, ep))
    if not path.startswith(AGENT_DIR + os.sep):
        raise RunnerError(
            "invalid entrypoint %s: must be a relative path inside the package" % json.dumps(ep)
        )
    if not os.path.exists(path):
        raise RunnerError("entrypoint %s not found in the package" % json.dumps(ep))
    if not os.path.isfile(path):
        raise RunnerError("entrypoint %s is not a regular file" % json.dumps(ep))
    return ep, path


def _load_agent(ep, path):
    # Like `python3 <entrypoint>`: the entrypoint's directory comes first on sys.path so
    # the agent can import its sibling modules. The module is not __main__.
    sys.path[0:1] = [os.path.dirname(path)]
    sys.argv = [path]
    name = "frameos_agent"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RunnerError("entrypoint %s cannot be loaded as a python module" % json.dumps(ep))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)  # the agent's own load-time errors propagate as they are
    run = getattr(module, "run", None)
    if not callable(run):
        raise RunnerError(
            "entrypoint %s must define run(inputs, ctx) (def or async def)" % json.dumps(ep)
        )
    return run


MAX_CALL_INPUT_BYTES = 1024 * 1024
MAX_REPLY_LINE_BYTES = 2 * 1024 * 1024


class CallError(Exception):
    """A ctx.call that did not return an output: `code` says why (API.md §5.1), `status` is
    the child execution's when there was one. The code leads the message, so an agent that
    lets it propagate fails with it."""

    def __init__(self, code, message, status=None):
        super().__init__("%s: %s" % (code, message))
        self.code = code
        self.status = status


class _Calls:
    """ctx.call's channel: a call frame out on stdout, its reply back on stdin, read by a
    daemon thread (so a pending read never keeps the process from exiting)."""

    def __init__(self):
        self.buffer = b""
        self.lock = threading.Lock()
        self.pending = {}
        self.seq = 0
        self.reader = None
        self.closed = False

    def call(self, agent, inputs, max_amount_minor):
        if not isinstance(agent, str) or not agent:
            raise TypeError("ctx.call: agent must be a slug")
        if max_amount_minor is not None and (
            isinstance(max_amount_minor, bool)
            or not isinstance(max_amount_minor, int)
            or max_amount_minor < 0
        ):
            raise TypeError("ctx.call: max_amount_minor must be a whole number of minor units")
        text = json.dumps({} if inputs is None else inputs, allow_nan=False)
        if len(text.encode("utf-8")) > MAX_CALL_INPUT_BYTES:
            raise ValueError("ctx.call: inputs exceed 1 MiB")
        waiter = threading.Event()
        slot = {}
        with self.lock:
            if self.closed:
                raise CallError("call_failed", "the platform closed the call channel")
            self.seq += 1
            call_id = self.seq
            self.pending[call_id] = (waiter, slot)
            if self.reader is None:
                self.reader = threading.Thread(target=self._read, name="frameos-calls", daemon=True)
                self.reader.start()
        frame = {"frameos": 1, "type": "call", "call_id": call_id, "agent": agent, "inputs": json.loads(text)}
        if max_amount_minor is not None:
            frame["max_amount_minor"] = max_amount_minor
        emit(frame)
        waiter.wait()
        if "error" in slot:
            e = slot["error"]
            raise CallError(str(e.get("code") or "call_failed"), str(e.get("message") or ""), e.get("status"))
        return slot.get("output")

    def _read(self):
        self._take_lines()
        while True:
            try:
                select.select([0], [], [])
                chunk = os.read(0, 1 << 16)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                break
            self.buffer += chunk
            self._take_lines()
        with self.lock:
            self.closed = True
            waiting = list(self.pending.values())
            self.pending.clear()
        for waiter, slot in waiting:
            slot["error"] = {"code": "call_failed", "message": "the platform closed the call channel"}
            waiter.set()

    def _take_lines(self):
        while True:
            nl = self.buffer.find(b"\n")
            if nl == -1:
                break
            line, self.buffer = self.buffer[:nl], self.buffer[nl + 1 :]
            self._settle(line)
        if len(self.buffer) > MAX_REPLY_LINE_BYTES:
            self.buffer = b""

    def _settle(self, line):
        try:
            reply = json.loads(line.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return
        if not isinstance(reply, dict) or reply.get("frameos") != 1 or reply.get("type") != "reply":
            return
        with self.lock:
            found = self.pending.pop(reply.get("call_id"), None)
        if found is None:
            return
        waiter, slot = found
        if isinstance(reply.get("error"), dict):
            slot["error"] = reply["error"]
        else:
            slot["output"] = reply.get("output")
        waiter.set()


_calls = _Calls()


class Context:
    """The `ctx` passed to run(inputs, ctx)."""

    __slots__ = ("execution_id", "secrets")

    def call(self, agent, inputs=None, max_amount_minor=None):
        """Runs the declared dependency `agent` with `inputs` and returns its output; raises
        CallError when it cannot (API.md §5.1). Blocks this thread until the child ends."""
        return _calls.call(agent, inputs, max_amount_minor)

    def __init__(self, execution_id, secrets):
        self.execution_id = execution_id
        self.secrets = secrets

    def progress(self, fraction, message=None):
        if (
            isinstance(fraction, bool)
            or not isinstance(fraction, (int, float))
            or not math.isfinite(fraction)
            or fraction < 0
            or fraction > 1
        ):
            raise ValueError("ctx.progress: fraction must be a finite number between 0 and 1")
        if message is None:
            message = ""
        if not isinstance(message, str):
            raise TypeError("ctx.progress: message must be a string")
        if len(message) > MAX_PROGRESS_MESSAGE_CHARS:
            message = message[:MAX_PROGRESS_MESSAGE_CHARS] + TRUNCATED
        emit({"frameos": 1, "type": "progress", "fraction": fraction, "message": message})

    def __repr__(self):
        return "Context(execution_id=%r, secrets=%r)" % (self.execution_id, self.secrets)


async def _await(awaitable):
    return await awaitable


# ---------------------------------------------------------------------------------------
# EGRESS HOOK (ARCHITECTURE.md "Egress"; runtime-images/README.md "Egress").
# With the http_request capability the node bind-mounts its egress proxy's Unix socket and
# sets FRAMEOS_EGRESS_SOCKET and HTTP(S)_PROXY=http://127.0.0.1:3128 (urllib, requests and
# httpx honour them: absolute-form for http, CONNECT for https). The container has no network,
# so one daemon thread pipes 127.0.0.1:3128 to the socket (one thread: the pids limit counts
# threads).
# ---------------------------------------------------------------------------------------
EGRESS_ADDRESS = ("127.0.0.1", 3128)


def _setup_egress():
    socket_path = os.environ.get("FRAMEOS_EGRESS_SOCKET")
    if not socket_path:
        return
    ready = threading.Event()
    failed = []

    async def pipe(reader, writer):
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except Exception:
            writer.close()

    async def handle(client_reader, client_writer):
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(socket_path)
        except Exception:
            client_writer.close()
            return
        await asyncio.gather(
            pipe(client_reader, up_writer), pipe(up_reader, client_writer), return_exceptions=True
        )
        client_writer.close()
        up_writer.close()

    async def serve():
        server = await asyncio.start_server(handle, *EGRESS_ADDRESS)
        ready.set()
        async with server:
            await server.serve_forever()

    def thread_main():
        try:
            asyncio.run(serve())
        except BaseException as e:  # the daemon thread must not print a traceback
            failed.append(e)
            ready.set()

    threading.Thread(target=thread_main, name="frameos-egress", daemon=True).start()
    ready.wait(5)
    if failed:
        sys.stderr.write("[frameos] egress listener failed: %s\n" % (failed[0],))


# ---------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------


def main():
    _install_stdio()
    # sys.exit() by the agent: the interpreter exits with that code (no terminal frame);
    # the partial last lines are still delivered.
    atexit.register(_flush_partials)

    try:
        if os.environ.get("FRAMEOS_WARM") == "1":
            # Up and waiting: the pool hands this container out only after this line.
            _write_frame_bytes(b'{"frameos":1,"type":"ready"}\n')
            raw = _accept_header(_read_stdin(MAX_HEADER_BYTES + MAX_INPUT_BYTES, 2), True)
        elif os.environ.get("FRAMEOS_HEADER") == "1":
            raw = _accept_header(_read_stdin(MAX_HEADER_BYTES + MAX_INPUT_BYTES, 2), False)
        else:
            raw = _read_stdin(MAX_INPUT_BYTES)
        inputs = _parse_inputs(raw)
        ep, path = _resolve_entrypoint()
    except RunnerError as e:
        runner_fail(str(e))
        return

    _setup_egress()

    try:
        run = _load_agent(ep, path)
    except RunnerError as e:
        runner_fail(str(e))
        return
    except SystemExit:
        _flush_partials()
        raise
    except BaseException as e:
        finish_error(e)
        return

    ctx = Context(os.environ.get("FRAMEOS_EXECUTION_ID") or None, _secrets)
    try:
        output = run(inputs, ctx)
        if inspect.iscoroutine(output):
            output = asyncio.run(output)
        elif inspect.isawaitable(output):
            output = asyncio.run(_await(output))
    except SystemExit:
        _flush_partials()
        raise
    except BaseException as e:
        finish_error(e)
        return
    finish_result(output)


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except BaseException as e:  # a bug in the runner itself
        try:
            _finish(_error_frame("runner failure: %s" % (e,), "RunnerError"), 1)
        finally:
            os._exit(1)
