#!/usr/bin/env bash
# Tests for the runtime runners and images.
#
#   runtime-images/test.sh [--host-only] [--no-build] [--bench] [--jobs N]
#
# 1. Runs node/runner.js and python/runner.py directly on the host (node + python3 needed)
#    against small agents and asserts the frames exactly.
# 2. Builds the images if needed (build.sh, skipped when up to date; --no-build to skip that)
#    and runs the same cases inside frameos/runtime-node:1 and frameos/runtime-python:1 with
#    the execution node's lockdown flags, plus a lockdown case per runtime. Docker must
#    answer: without it these cases fail. Only --host-only leaves them out, and says so.
#    Every host case with an entrypoint also runs in warm mode (FRAMEOS_WARM=1: the entrypoint
#    and execution id arrive as a header line on stdin before the inputs), as the execution
#    node's pool containers run the runner (ADR 0026). Every node container case also runs
#    restored from the image's runner snapshot for its 96 MiB heap ("snapshot", ADR 0034), as
#    the execution node starts the runner for a 128 MiB limit.
# 3. --bench: median wall time of 20 `docker run --rm` of a trivial agent per runtime.
#
# Cases run N at a time (--jobs, default 4; FRAMEOS_RUNNER_TEST_JOBS). The output ends with
# what ran per place and runtime, then the last line "N passed, M failed"; exit status 1 when
# anything failed.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HOST_ONLY=0
BUILD=1
BENCH=0
JOBS=${FRAMEOS_RUNNER_TEST_JOBS:-4}
while [ $# -gt 0 ]; do
  case "$1" in
    --host-only) HOST_ONLY=1 ;;
    --no-build) BUILD=0 ;;
    --bench) BENCH=1 ;;
    --jobs) shift; JOBS=${1:-} ;;
    -h|--help) sed -n '2,/^set -/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
case "$JOBS" in ''|*[!0-9]*|0) echo "--jobs needs a positive number" >&2; exit 2 ;; esac

command -v python3 >/dev/null || { echo "python3 is required to run the tests" >&2; echo "0 passed, 1 failed"; exit 1; }

# docker: 1 = run the container cases, 0 = --host-only, missing = they fail
DOCKER=0
if [ "$HOST_ONLY" -eq 0 ]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    DOCKER=1
    if [ "$BUILD" -eq 1 ]; then
      if [ "$(id -u)" -eq 0 ]; then
        "$HERE/build.sh" >/dev/null || { echo "build.sh failed" >&2; echo "0 passed, 1 failed"; exit 1; }
      else
        sudo "$HERE/build.sh" >/dev/null || { echo "build.sh failed" >&2; echo "0 passed, 1 failed"; exit 1; }
      fi
    fi
  else
    DOCKER=missing
    echo "docker does not answer: every container case fails (use --host-only to leave them out)" >&2
  fi
fi

WORK=$(mktemp -d /tmp/frameos-runtime-test.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
chmod 0755 "$WORK"

cat >"$WORK/driver.py" <<'PYEOF'
import concurrent.futures, json, os, statistics, subprocess, sys, threading, time, uuid

HERE, WORK, DOCKER, BENCH, JOBS = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1", int(sys.argv[5])
IMAGES = {"node": "frameos/runtime-node:1", "python": "frameos/runtime-python:1"}
RUNNERS = {
    "node": ["node", os.path.join(HERE, "node", "runner.js")],
    "python": ["python3", os.path.join(HERE, "python", "runner.py")],
}
LOCKDOWN = [
    "--network=none", "--read-only", "--tmpfs", "/tmp:rw,size=16m,mode=1777",
    "--cpus=1", "--memory=128m", "--memory-swap=128m", "--pids-limit=64",
    "--cap-drop=ALL", "--security-opt=no-new-privileges", "--user", "10001:10001", "--init",
]
TRUNC = " \u2026[truncated]"
# How the execution node starts the node runner for LOCKDOWN's 128 MiB (ADR 0034).
SNAPSHOT = ["node", "--max-old-space-size=96", "--snapshot-blob", "/opt/frameos/runner-heap-96.blob"]


class Any:
    def __repr__(self):
        return "<any>"


class Contains:
    def __init__(self, s):
        self.s = s

    def __repr__(self):
        return "<contains %r>" % self.s


def L(line, stream="stdout"):
    return {"frameos": 1, "type": "log", "stream": stream, "line": line}


def P(fraction, message=""):
    return {"frameos": 1, "type": "progress", "fraction": fraction, "message": message}


def R(output):
    return {"frameos": 1, "type": "result", "output": output}


def E(message, error_type, stack=Any()):
    if isinstance(message, str) and message.startswith("~"):
        message = Contains(message[1:])
    return {"frameos": 1, "type": "error", "message": message, "error_type": error_type, "stack": stack}


def match(exp, act):
    if isinstance(exp, Any):
        return True
    if isinstance(exp, Contains):
        return isinstance(act, str) and exp.s in act
    if isinstance(exp, dict):
        return isinstance(act, dict) and exp.keys() == act.keys() and all(match(exp[k], act[k]) for k in exp)
    if isinstance(exp, list):
        return isinstance(act, list) and len(exp) == len(act) and all(match(e, a) for e, a in zip(exp, act))
    return type(exp) is type(act) and exp == act


def well_formed(v):
    if isinstance(v, str):
        v.encode("utf-8")  # raises on lone surrogates
    elif isinstance(v, dict):
        for k, x in v.items():
            well_formed(k)
            well_formed(x)
    elif isinstance(v, list):
        for x in v:
            well_formed(x)


CASES = []


# max_exit_seconds: how long the process may take to exit after its terminal frame.
# secrets: sent in a stdin header line (FRAMEOS_HEADER=1; a warm run's header carries them too).
# header: that header line as raw bytes instead (to test bad ones).
def case(name, runtime, files, entry, rc, frames, stdin=b"{}", env=None, where="both", max_exit_seconds=None,
         secrets=None, header=None):
    CASES.append(dict(name=name, runtime=runtime, files=files, entry=entry, rc=rc, frames=frames,
                      stdin=stdin, env=env or {}, where=where, max_exit_seconds=max_exit_seconds,
                      secrets=secrets, header=header))


# --- success with output ------------------------------------------------------------------
INPUT = {"a": 2, "b": 3, "s": "h\u00e9llo \u2713", "list": [1, None, True]}
case("success", "node", {"index.js": """
module.exports = async (inputs, ctx) => ({ sum: inputs.a + inputs.b, echo: inputs, id: ctx.execution_id });
"""}, "index.js", 0, [R({"sum": 5, "echo": INPUT, "id": "exec-123"})],
     stdin=json.dumps(INPUT).encode(), env={"FRAMEOS_EXECUTION_ID": "exec-123"})
case("success", "python", {"main.py": """
def run(inputs, ctx):
    return {"sum": inputs["a"] + inputs["b"], "echo": inputs, "id": ctx.execution_id}
"""}, "main.py", 0, [R({"sum": 5, "echo": INPUT, "id": "exec-123"})],
     stdin=json.dumps(INPUT).encode(), env={"FRAMEOS_EXECUTION_ID": "exec-123"})

# --- progress + logs, in order -----------------------------------------------------------
ORDERED = [L("starting"), P(0, "begin"), L("a warning", "stderr"), P(0.5, "half way"),
           L("two"), L("lines"), P(1), L("done"), R({"ok": True, "id": None})]
case("progress_logs_order", "node", {"index.js": """
module.exports = async (inputs, ctx) => {
  console.log('starting');
  ctx.progress(0, 'begin');
  console.error('a warning');
  await new Promise((r) => setTimeout(r, 5));
  ctx.progress(0.5, 'half way');
  process.stdout.write('two\\nlines\\n');
  ctx.progress(1);
  console.log('done');
  return { ok: true, id: ctx.execution_id };
};
"""}, "index.js", 0, ORDERED)
case("progress_logs_order_async", "python", {"main.py": """
import asyncio, sys
async def run(inputs, ctx):
    print("starting")
    ctx.progress(0, "begin")
    print("a warning", file=sys.stderr)
    await asyncio.sleep(0.005)
    ctx.progress(0.5, "half way")
    sys.stdout.write("two\\nlines\\n")
    ctx.progress(1)
    print("done")
    return {"ok": True, "id": ctx.execution_id}
"""}, "main.py", 0, ORDERED)

# --- thrown errors -----------------------------------------------------------------------
case("thrown_error", "node", {"index.js": """
function check(x) { throw new TypeError('bad input: ' + x); }
module.exports = async (inputs) => { console.log('before'); check(inputs.x); };
"""}, "index.js", 1, [L("before"), E("bad input: 7", "TypeError", Contains("index.js:2"))], stdin=b'{"x": 7}')
case("thrown_error", "python", {"main.py": """
def check(x):
    raise ValueError("bad input: %s" % x)
def run(inputs, ctx):
    print("before")
    check(inputs["x"])
"""}, "main.py", 1, [L("before"), E("bad input: 7", "ValueError", Contains("main.py\", line 3, in check"))],
     stdin=b'{"x": 7}')
case("custom_error_class", "node", {"index.js": """
class QuotaError extends Error {}
module.exports = async () => { throw new QuotaError('quota exceeded'); };
"""}, "index.js", 1, [E("quota exceeded", "QuotaError")])
case("custom_error_class", "python", {"main.py": """
class QuotaError(Exception):
    pass
async def run(inputs, ctx):
    raise QuotaError("quota exceeded")
"""}, "main.py", 1, [E("quota exceeded", "QuotaError")])
case("load_time_syntax_error", "node", {"index.js": "module.exports = async (inputs => {\n"},
     "index.js", 1, [E(Any(), "SyntaxError")])
case("load_time_syntax_error", "python", {"main.py": "def run(inputs, ctx) return 1\n"},
     "main.py", 1, [E(Any(), "SyntaxError")])
case("uncaught_in_callback", "node", {"index.js": """
module.exports = () => { setTimeout(() => { throw new RangeError('late'); }, 1); return new Promise(() => {}); };
"""}, "index.js", 1, [E("late", "RangeError")])
case("unhandled_rejection", "node", {"index.js": """
module.exports = async () => { Promise.reject(new Error('nobody catches')); await new Promise((r) => setTimeout(r, 50)); return 1; };
"""}, "index.js", 1, [E("nobody catches", "Error")])
case("promise_never_settles", "node", {"index.js": "module.exports = () => new Promise(() => {});\n"},
     "index.js", 1, [E("~never settled", "RunnerError", "")])

# --- process.exit / sys.exit / os._exit --------------------------------------------------
case("process_exit_3", "node", {"index.js": """
module.exports = async () => { console.log('bye'); process.stdout.write('partial'); process.exit(3); };
"""}, "index.js", 3, [L("bye"), L("partial")])
case("sys_exit_3", "python", {"main.py": """
import sys
def run(inputs, ctx):
    print("bye")
    sys.stdout.write("partial")
    sys.exit(3)
"""}, "main.py", 3, [L("bye"), L("partial")])
case("os_exit_3", "python", {"main.py": """
import os
def run(inputs, ctx):
    print("bye")
    os._exit(3)
"""}, "main.py", 3, [L("bye")])
case("sys_exit_message", "python", {"main.py": """
import sys
def run(inputs, ctx):
    sys.exit("giving up")
"""}, "main.py", 1, [L("giving up", "stderr")])

# --- runner errors -----------------------------------------------------------------------
for rt, entry, code in (("node", "index.js", "console.log('loaded'); module.exports = async () => 1;\n"),
                        ("python", "main.py", "print('loaded')\ndef run(inputs, ctx):\n    return 1\n")):
    files = {entry: code}
    case("bad_stdin_json", rt, files, entry, 1, [E("~not valid JSON", "RunnerError", "")], stdin=b"{not json")
    case("empty_stdin", rt, files, entry, 1, [E("~no inputs", "RunnerError", "")], stdin=b"")
    case("nan_in_stdin", rt, files, entry, 1, [E("~not valid JSON", "RunnerError", "")], stdin=b'{"a": NaN}')
    case("stdin_over_10MiB", rt, files, entry, 1, [E("inputs on stdin exceed 10 MiB", "RunnerError", "")],
         stdin=b'"' + b"x" * (10 * 1024 * 1024) + b'"')
    case("stdin_not_utf8", rt, files, entry, 1, [E("~not valid UTF-8", "RunnerError", "")], stdin=b'"\xff"')
    case("entrypoint_missing", rt, files, "nope/" + entry, 1, [E("~not found", "RunnerError", "")])
    case("entrypoint_unset", rt, files, None, 1, [E("FRAMEOS_ENTRYPOINT is not set", "RunnerError", "")])
    case("entrypoint_traversal", rt, files, "../" + entry, 1, [E("~invalid entrypoint", "RunnerError", "")])
    case("entrypoint_absolute", rt, files, "/etc/passwd", 1, [E("~invalid entrypoint", "RunnerError", "")])
case("no_function_exported", "node", {"index.js": "module.exports = { foo: 1 };\n"}, "index.js", 1,
     [E("~must export a function", "RunnerError", "")])
case("no_run_defined", "python", {"main.py": "def main(inputs, ctx):\n    return 1\n"}, "main.py", 1,
     [E("~must define run(inputs, ctx)", "RunnerError", "")])

# --- export shapes, ESM, relative imports ------------------------------------------------
case("exports_run", "node", {"index.js": "exports.run = async (i) => i.x + 1;\n"}, "index.js", 0, [R(2)], stdin=b'{"x":1}')
case("exports_default", "node", {"index.js": "exports.default = (i) => i.x + 2;\n"}, "index.js", 0, [R(3)], stdin=b'{"x":1}')
case("esm_entrypoint", "node", {"index.mjs": "export default async (i) => i.x + 3;\n"}, "index.mjs", 0, [R(4)], stdin=b'{"x":1}')
case("relative_import_subdir", "node", {"src/index.js": "const { double } = require('./util');\nmodule.exports = (i) => double(i.x);\n",
                                        "src/util.js": "exports.double = (x) => 2 * x;\n"}, "src/index.js", 0, [R(42)], stdin=b'{"x":21}')
case("relative_import_subdir", "python", {"src/main.py": "from util import double\ndef run(i, ctx):\n    return double(i['x'])\n",
                                          "src/util.py": "def double(x):\n    return 2 * x\n"}, "src/main.py", 0, [R(42)], stdin=b'{"x":21}')

# --- log formatting ----------------------------------------------------------------------
case("console_log_objects", "node", {"index.js": """
module.exports = async () => { console.log({ a: 1, b: [1, 2], c: 'x' }); console.log('n=%d', 5, null); console.warn(new Map([[1, 2]])); };
"""}, "index.js", 0, [L("{ a: 1, b: [ 1, 2 ], c: 'x' }"), L("n=5 null"), L("Map(1) { 1 => 2 }", "stderr"), R(None)])
case("print_objects", "python", {"main.py": """
import logging
def run(inputs, ctx):
    print({"a": 1, "b": [1, 2]})
    print("a", 1, None, sep="|")
    logging.warning("careful")
"""}, "main.py", 0, [L("{'a': 1, 'b': [1, 2]}"), L("a|1|None"), L("WARNING:root:careful", "stderr"), R(None)])
PARTIAL = [L("a"), L("b"), L("c", "stderr"), R(1)]
case("partial_last_line", "node", {"index.js": """
module.exports = async () => { process.stdout.write('a\\nb'); process.stderr.write('c'); return 1; };
"""}, "index.js", 0, PARTIAL)
case("partial_last_line", "python", {"main.py": """
import sys
def run(inputs, ctx):
    sys.stdout.write("a\\nb")
    sys.stdout.flush()
    sys.stderr.write("c")
    return 1
"""}, "main.py", 0, PARTIAL)
LONG = [L("x" * 16384 + TRUNC), L("\u20ac" * 5461 + TRUNC), L(""), L("after"), R(None)]
case("long_lines_truncated", "node", {"index.js": """
module.exports = async () => { console.log('x'.repeat(20000)); process.stdout.write('\\u20ac'.repeat(7000) + '\\n\\nafter'); };
"""}, "index.js", 0, LONG)
case("long_lines_truncated", "python", {"main.py": """
def run(inputs, ctx):
    print("x" * 20000)
    print("\\u20ac" * 7000 + "\\n\\nafter", end="")
"""}, "main.py", 0, LONG)
case("lone_surrogates", "node", {"index.js": """
module.exports = async () => { console.log('\\ud800x'); return { s: 'y\\udc00', k: '\\ud83d\\ude00' }; };
"""}, "index.js", 0, [L("\ufffdx"), R({"s": "y\ufffd", "k": "\U0001F600"})])
case("lone_surrogates", "python", {"main.py": """
def run(inputs, ctx):
    print("\\ud800x")
    return {"s": "y\\udc00", "k": "\\U0001F600"}
"""}, "main.py", 0, [L("\\ud800x"), R({"s": "y\ufffd", "k": "\U0001F600"})])

# --- output serialization ----------------------------------------------------------------
case("output_bigint", "node", {"index.js": "module.exports = async () => ({ n: 10n });\n"}, "index.js", 1,
     [E("output is not JSON-serializable: Do not know how to serialize a BigInt", "TypeError", "")])
case("output_circular", "node", {"index.js": "module.exports = async () => { const o = {}; o.self = o; return o; };\n"},
     "index.js", 1, [E("~output is not JSON-serializable: Converting circular structure", "TypeError", "")])
case("output_function", "node", {"index.js": "module.exports = async () => () => 1;\n"}, "index.js", 1,
     [E("~output is not JSON-serializable", "TypeError", "")])
case("output_undefined_is_null", "node", {"index.js": "module.exports = async () => {};\n"}, "index.js", 0, [R(None)])
case("output_set", "python", {"main.py": "def run(i, ctx):\n    return {'s': {1, 2}}\n"}, "main.py", 1,
     [E("output is not JSON-serializable: Object of type set is not JSON serializable", "TypeError", "")])
case("output_nan", "python", {"main.py": "def run(i, ctx):\n    return float('nan')\n"}, "main.py", 1,
     [E("~output is not JSON-serializable: Out of range float", "ValueError", "")])

# --- ctx.progress validation -------------------------------------------------------------
case("progress_invalid", "node", {"index.js": """
module.exports = async (i, ctx) => {
  const out = [];
  for (const f of [1.5, -0.1, NaN, Infinity, '0.5', null, true]) {
    try { ctx.progress(f, 'x'); out.push('ok'); } catch (e) { out.push(e.constructor.name); }
  }
  try { ctx.progress(0.5, 42); } catch (e) { out.push(e.constructor.name); }
  return out;
};
"""}, "index.js", 0, [R(["TypeError"] * 8)])
case("progress_invalid", "python", {"main.py": """
def run(i, ctx):
    out = []
    for f in (1.5, -0.1, float("nan"), float("inf"), "0.5", None, True):
        try:
            ctx.progress(f, "x")
            out.append("ok")
        except Exception as e:
            out.append(type(e).__name__)
    try:
        ctx.progress(0.5, 42)
    except Exception as e:
        out.append(type(e).__name__)
    return out
"""}, "main.py", 0, [R(["ValueError"] * 7 + ["TypeError"])])

# --- exits promptly after the result despite dangling work -------------------------------
case("dangling_timer", "node", {"index.js": "module.exports = async () => { setInterval(() => {}, 1000); return 'done'; };\n"},
     "index.js", 0, [R("done")], max_exit_seconds=10)
case("dangling_thread", "python", {"main.py": """
import threading, time
def run(i, ctx):
    threading.Thread(target=time.sleep, args=(30,)).start()
    return "done"
"""}, "main.py", 0, [R("done")], max_exit_seconds=10)

# --- nothing lost when the process exits right after a flood of output ---------------------
N = 20000
FLOOD = [L("line %d" % i) for i in range(N)]
case("flood_then_exit", "node", {"index.js": """
module.exports = async () => { for (let i = 0; i < %d; i++) console.log('line ' + i); process.exit(0); };
""" % N}, "index.js", 0, FLOOD)
case("flood_then_exit", "python", {"main.py": """
import os
def run(i, ctx):
    for n in range(%d):
        print("line %%d" %% n)
    os._exit(0)
""" % N}, "main.py", 0, FLOOD)

# --- secrets: ctx.secrets from the stdin header, never in the environment (ADR 0045) -----
SECRETS = {"API_TOKEN": "s3cr3t-\u00e9-token", "EMPTY_LIST": "[]"}
SEEN = {"keys": ["API_TOKEN", "EMPTY_LIST"], "token": "s3cr3t-\u00e9-token", "in_env": False,
        "in_proc_environ": False, "read_only": True, "header_var": False}
case("secrets", "node", {"index.js": """'use strict';
const fs = require('fs');
module.exports = async (inputs, ctx) => {
  let readOnly = false;
  try { ctx.secrets.API_TOKEN = 'changed'; } catch (e) { readOnly = e instanceof TypeError; }
  const environ = fs.readFileSync('/proc/self/environ', 'utf8');
  return {
    keys: Object.keys(ctx.secrets).sort(),
    token: ctx.secrets.API_TOKEN,
    in_env: Object.values(process.env).some((v) => v.includes('s3cr3t')),
    in_proc_environ: environ.includes('s3cr3t'),
    read_only: readOnly && Object.isFrozen(ctx.secrets) && ctx.secrets.API_TOKEN !== 'changed',
    header_var: 'FRAMEOS_HEADER' in process.env,
  };
};
"""}, "index.js", 0, [R(SEEN)], secrets=SECRETS)
case("secrets", "python", {"main.py": """
import os
def run(inputs, ctx):
    try:
        ctx.secrets.API_TOKEN = "changed"
        read_only = False
    except AttributeError:
        read_only = True
    with open("/proc/self/environ", "rb") as fh:
        environ = fh.read()
    assert ctx.secrets["API_TOKEN"] == ctx.secrets.API_TOKEN == ctx.secrets.get("API_TOKEN")
    assert "s3cr3t" not in repr(ctx.secrets) and "s3cr3t" not in repr(ctx)
    return {
        "keys": sorted(ctx.secrets),
        "token": ctx.secrets.API_TOKEN,
        "in_env": any("s3cr3t" in v for v in os.environ.values()),
        "in_proc_environ": b"s3cr3t" in environ,
        "read_only": read_only and ctx.secrets.API_TOKEN != "changed",
        "header_var": "FRAMEOS_HEADER" in os.environ,
    }
"""}, "main.py", 0, [R(SEEN)], secrets=SECRETS)
# Without a header, or with one without secrets: an empty ctx.secrets.
case("no_secrets", "node", {"index.js": "module.exports = async (i, ctx) => Object.keys(ctx.secrets).length;\n"},
     "index.js", 0, [R(0)])
case("no_secrets", "python", {"main.py": "def run(i, ctx):\n    return len(ctx.secrets)\n"}, "main.py", 0, [R(0)])
case("empty_header", "node", {"index.js": "module.exports = async (i, ctx) => [Object.keys(ctx.secrets).length, i.x];\n"},
     "index.js", 0, [R([0, 1])], stdin=b'{"x": 1}', secrets={})
case("empty_header", "python", {"main.py": "def run(i, ctx):\n    return [len(ctx.secrets), i['x']]\n"},
     "main.py", 0, [R([0, 1])], stdin=b'{"x": 1}', secrets={})
for rt, entry, code in (("node", "index.js", "module.exports = async () => 1;\n"),
                        ("python", "main.py", "def run(inputs, ctx):\n    return 1\n")):
    case("bad_header_json", rt, {entry: code}, entry, 1, [E("~header is not valid JSON", "RunnerError", "")],
         header=b"{nope", where="host")
    case("bad_header_secret", rt, {entry: code}, entry, 1, [E("~must be a string", "RunnerError", "")],
         header=b'{"secrets": {"A": 1}}', where="host")

# --- the lockdown itself (containers only) -----------------------------------------------
LOCK_OUT = {"uid": 10001, "gid": 10001, "agent": "EROFS", "root": "EROFS", "tmp": True, "net": "ENETUNREACH"}
case("lockdown", "node", {"index.js": """
const fs = require('fs'), net = require('net');
const err = (f) => { try { f(); return 'ok'; } catch (e) { return e.code; } };
module.exports = async () => ({
  uid: process.getuid(), gid: process.getgid(),
  agent: err(() => fs.writeFileSync('/agent/x', 'x')),
  root: err(() => fs.writeFileSync('/x', 'x')),
  tmp: (fs.writeFileSync('/tmp/x', 'x'), fs.readFileSync('/tmp/x', 'utf8') === 'x'),
  net: await new Promise((res) => net.connect(80, '1.1.1.1').on('connect', () => res('connected')).on('error', (e) => res(e.code))),
});
"""}, "index.js", 0, [R(LOCK_OUT)], where="docker")
case("lockdown", "python", {"main.py": """
import errno, os, socket
def err(f):
    try:
        f()
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
def write(p):
    with open(p, "w") as fh:
        fh.write("x")
def run(i, ctx):
    write("/tmp/x")
    return {"uid": os.getuid(), "gid": os.getgid(), "agent": err(lambda: write("/agent/x")),
            "root": err(lambda: write("/x")), "tmp": open("/tmp/x").read() == "x",
            "net": err(lambda: socket.create_connection(("1.1.1.1", 80), timeout=5))}
"""}, "main.py", 0, [R(LOCK_OUT)], where="docker")


# --------------------------------------------------------------------------------------------
def write_agent(c, idx, mode):
    # One directory per case and place: cases run concurrently.
    agents = os.path.join(WORK, "agents")
    os.makedirs(agents, mode=0o755, exist_ok=True)
    os.chmod(agents, 0o755)
    d = os.path.join(agents, "%s-%03d-%s-%s" % (mode, idx, c["runtime"], c["name"]))
    for rel, content in c["files"].items():
        p = os.path.join(d, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as fh:
            fh.write(content)
    os.makedirs(d, exist_ok=True)
    for root, dirs, files in os.walk(d):
        os.chmod(root, 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
    return d


def warm_stdin(c):
    header = {"entrypoint": c["entry"], "execution_id": c["env"].get("FRAMEOS_EXECUTION_ID", "")}
    if c["secrets"] is not None:
        header["secrets"] = c["secrets"]
    return json.dumps(header).encode() + b"\n" + c["stdin"]


def header_stdin(c):
    """A cold run's stdin: the header line first when the case has one."""
    if c["header"] is not None:
        return c["header"] + b"\n" + c["stdin"]
    if c["secrets"] is not None:
        return json.dumps({"secrets": c["secrets"]}).encode() + b"\n" + c["stdin"]
    return c["stdin"]


def command(c, d, mode):
    env = dict(c["env"])
    if mode == "warm":
        # Known only at hand-off: both arrive in the header line instead.
        env.pop("FRAMEOS_EXECUTION_ID", None)
        env["FRAMEOS_WARM"] = "1"
        mode = "host"
    else:
        if c["entry"] is not None:
            env["FRAMEOS_ENTRYPOINT"] = c["entry"]
        if c["secrets"] is not None or c["header"] is not None:
            env["FRAMEOS_HEADER"] = "1"
    if mode == "host":
        full = {k: v for k, v in os.environ.items() if not k.startswith("FRAMEOS_")}
        full.update(env)
        full["FRAMEOS_AGENT_DIR"] = d
        return RUNNERS[c["runtime"]], full, None
    name = "frameos-test-" + uuid.uuid4().hex[:12]
    cmd = ["docker", "run", "--rm", "-i", "--name", name] + LOCKDOWN + ["-v", d + ":/agent:ro"]
    for k, v in env.items():
        cmd += ["-e", "%s=%s" % (k, v)]
    cmd.append(IMAGES[c["runtime"]])
    if mode == "snapshot":
        cmd += SNAPSHOT
    return cmd, dict(os.environ), name


def check(c, out, err, rc, lingered):
    problems = []
    if rc != c["rc"]:
        problems.append("exit code %r, expected %r" % (rc, c["rc"]))
    if err.strip():
        problems.append("unexpected stderr: %r" % err[:500])
    try:
        text = out.decode("utf-8")
    except UnicodeDecodeError as e:
        return problems + ["stdout is not UTF-8: %s" % e]
    frames = []
    for n, line in enumerate(text.split("\n")):
        if line == "" and n == len(text.split("\n")) - 1:
            continue
        try:
            f = json.loads(line)
            assert isinstance(f, dict) and f.get("frameos") == 1 and f.get("type") in ("log", "progress", "result", "error")
            well_formed(f)
        except Exception:
            problems.append("line %d is not a frame: %r" % (n + 1, line[:300]))
            continue
        frames.append(f)
    terminal = [i for i, f in enumerate(frames) if f["type"] in ("result", "error")]
    if len(terminal) > 1 or (terminal and terminal[0] != len(frames) - 1):
        problems.append("terminal frame not unique/last")
    for f in frames:
        if f["type"] == "error" and ("runner.js" in f["stack"] or "runner.py" in f["stack"]):
            problems.append("stack not trimmed: %r" % f["stack"][:300])
    if not match(c["frames"], frames):
        exp = c["frames"]
        for i in range(max(len(exp), len(frames))):
            e = exp[i] if i < len(exp) else "<nothing>"
            a = frames[i] if i < len(frames) else "<nothing>"
            if i >= len(exp) or i >= len(frames) or not match(e, a):
                problems.append("frame %d (of %d, expected %d): got %s, expected %r"
                                % (i, len(frames), len(exp), json.dumps(a, ensure_ascii=True)[:400], e))
                break
    if c["max_exit_seconds"] and (lingered is None or lingered > c["max_exit_seconds"]):
        problems.append("exited %s s after its terminal frame (max %s)"
                        % ("?" if lingered is None else "%.1f" % lingered, c["max_exit_seconds"]))
    return problems


def is_terminal(line):
    if b'"result"' not in line and b'"error"' not in line:
        return False
    try:
        return json.loads(line).get("type") in ("result", "error")
    except Exception:
        return False


def run_case(c, d, mode):
    cmd, env, name = command(c, d, mode)
    stdin = warm_stdin(c) if mode == "warm" else header_stdin(c)
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    lines, err = [], []  # stdout lines with the time each arrived; stderr

    def read_out():
        for line in iter(p.stdout.readline, b""):
            lines.append((time.monotonic(), line))

    def write_in():
        try:
            p.stdin.write(stdin)
            p.stdin.close()
        except OSError:
            pass  # the runner may exit without reading its inputs

    io = [threading.Thread(target=f, daemon=True) for f in (read_out, lambda: err.append(p.stderr.read()), write_in)]
    for t in io:
        t.start()
    try:
        rc = p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        if name:
            subprocess.run(["docker", "rm", "-f", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return ["timed out after 60 s"]
    exited = time.monotonic()
    for t in io:
        t.join()
    terminal_at = next((t for t, line in lines if is_terminal(line)), None)
    lingered = None if terminal_at is None else exited - terminal_at
    out = b"".join(line for _, line in lines)
    if mode == "warm":
        ready = b'{"frameos":1,"type":"ready"}\n'
        if not out.startswith(ready):
            return ["warm mode: no ready line first: %r" % out[:200]]
        out = out[len(ready):]
    return check(c, out, b"".join(err).decode("utf-8", "replace"), rc, lingered)


def bench():
    d = os.path.join(WORK, "bench")
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    with open(os.path.join(d, "index.js"), "w") as fh:
        fh.write("module.exports = async (i) => ({ hello: i.name });\n")
    with open(os.path.join(d, "main.py"), "w") as fh:
        fh.write("def run(i, ctx):\n    return {'hello': i['name']}\n")
    for f in os.listdir(d):
        os.chmod(os.path.join(d, f), 0o644)
    for rt, entry in (("node", "index.js"), ("python", "main.py")):
        cmd = ["docker", "run", "--rm", "-i"] + LOCKDOWN + ["-v", d + ":/agent:ro", "-e",
               "FRAMEOS_ENTRYPOINT=" + entry, IMAGES[rt]]
        times = []
        for _ in range(20):
            t0 = time.monotonic()
            p = subprocess.run(cmd, input=b'{"name":"x"}', stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            times.append((time.monotonic() - t0) * 1000)
            assert p.returncode == 0 and b'"result"' in p.stdout, p
        size = subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", IMAGES[rt]],
                              stdout=subprocess.PIPE, text=True).stdout.strip()
        print("bench %-6s docker run --rm (lockdown flags) x20: median %.0f ms, min %.0f, max %.0f; image %.1f MB"
              % (rt, statistics.median(times), min(times), max(times), int(size) / 1e6))


modes = ["host", "warm"] + (["docker", "snapshot"] if DOCKER != "0" else [])
runs = []
for mode in modes:
    for idx, c in enumerate(CASES):
        if mode == "warm":
            if c["where"] in ("both", "host") and c["entry"] is not None and c["header"] is None:
                runs.append((mode, idx, c))
        elif mode == "snapshot":
            if c["where"] in ("both", "docker") and c["runtime"] == "node":
                runs.append((mode, idx, c))
        elif c["where"] in ("both", mode):
            runs.append((mode, idx, c))


def one(run):
    mode, idx, c = run
    if mode in ("docker", "snapshot") and DOCKER == "missing":
        return ["docker does not answer"]
    return run_case(c, write_agent(c, idx, mode), mode)


counts = {}
passed = failed = 0
started = time.monotonic()
with concurrent.futures.ThreadPoolExecutor(max_workers=JOBS) as pool:
    # Results are printed in case order, each as soon as it and those before it are done.
    for (mode, idx, c), problems in zip(runs, pool.map(one, runs)):
        label = "%-6s %-6s %s" % (mode, c["runtime"], c["name"])
        key = (mode, c["runtime"])
        ran, bad = counts.get(key, (0, 0))
        counts[key] = (ran + 1, bad + (1 if problems else 0))
        if problems:
            failed += 1
            print("FAIL " + label)
            for p in problems:
                print("     " + p)
        else:
            passed += 1
            print("ok   " + label)
        sys.stdout.flush()
if BENCH and DOCKER == "1":
    bench()
print("ran in %.0f s, %d at a time:" % (time.monotonic() - started, JOBS))
for mode in ("host", "warm", "docker", "snapshot"):
    if mode not in modes:
        print("  %-6s  not run (--host-only)" % mode)
        continue
    per = ", ".join("%s %d (%d failed)" % (rt, *counts.get((mode, rt), (0, 0))) for rt in ("node", "python"))
    print("  %-6s  %d cases: %s" % (mode, sum(counts.get((mode, rt), (0, 0))[0] for rt in ("node", "python")), per))
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
PYEOF

python3 "$WORK/driver.py" "$HERE" "$WORK" "$DOCKER" "$BENCH" "$JOBS"
