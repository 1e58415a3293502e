use crate::{assert_clean, assert_hit};

#[test]
fn subprocess_imports_and_asyncio_spawns() {
    for source in [
        "import subprocess",
        "import os, subprocess",
        "import subprocess as sp",
        "    import subprocess  # lazily",
        "from subprocess import run, PIPE",
        "from subprocess.foo import bar",
        "x = 1; import subprocess",
        "mod = importlib.import_module('subprocess')",
        "await asyncio.create_subprocess_exec('ls')",
        "await asyncio.create_subprocess_shell('ls')",
    ] {
        assert_hit("main.py", source, "python.subprocess");
    }
    for source in [
        "import subprocess_tools",
        "import mysubprocess",
        "from mypkg import subprocess_helpers",
        "# subprocess is not used here",
        "print('import subprocess')",
    ] {
        assert_clean("main.py", source);
    }
}

#[test]
fn os_exec_family_and_pty() {
    for source in [
        "os.system('ls')",
        "os.popen('ls').read()",
        "os.execv('/bin/sh', ['sh'])",
        "os.execlpe('sh', 'sh', env)",
        "os.spawnlp(os.P_WAIT, 'ls', 'ls')",
        "os.posix_spawn('/bin/ls', ['ls'], {})",
        "from os import system",
        "from os import path, popen",
        "import pty",
        "from pty import spawn",
    ] {
        assert_hit("main.py", source, "python.os_exec");
    }
    assert_hit(
        "main.py",
        "from os import (\n    path,\n    system,\n)",
        "python.os_exec",
    );
    for source in [
        "os.path.join('a', 'b')",
        "os.systemd_notify()",
        "from os import path, environ",
        "import os",
        "mypos.system('x')",
    ] {
        assert_clean("main.py", source);
    }
}

#[test]
fn eval_and_exec_builtins_but_not_methods() {
    for source in [
        "eval('1 + 1')",
        "result = exec(code, {})",
        "x = [eval (s) for s in items]",
        "def run(self, s): return eval(s)",
        "builtins.exec(code)",
        "__builtins__['eval']",
    ] {
        assert_hit("main.py", source, "python.eval_exec");
    }
    for source in [
        "model.eval()",
        "cursor.execute('select 1')",
        "def eval(self, data):",
        "    def exec(self):",
        "async def  eval(self, data):",
        "evaluate(x); executor(x)",
        "retrieval(x)",
    ] {
        assert_clean("main.py", source);
    }
}

#[test]
fn dynamic_import() {
    assert_hit("main.py", "m = __import__('os')", "python.dynamic_import");
    assert_hit(
        "main.py",
        "m = builtins.__import__ ('os')",
        "python.dynamic_import",
    );
    assert_clean(
        "main.py",
        "from __future__ import annotations\nimport importlib",
    );
}

#[test]
fn ctypes_and_cffi() {
    for source in [
        "import ctypes",
        "from ctypes import CDLL",
        "import cffi",
        "from ctypes.util import find_library",
    ] {
        assert_hit("main.py", source, "python.ctypes");
    }
    assert_clean("main.py", "import ctypesgen_helpers\nctypes_note = 1");
}

#[test]
fn raw_sockets_are_reported_for_review() {
    for source in [
        "import socket",
        "import ssl, socket",
        "from socket import create_connection",
        "import _socket",
        "import socketserver",
        "mod = importlib.import_module('socket')",
        "s = mod.socket.socket(AF_INET, SOCK_STREAM)",
        "s = socket.create_connection(('example.com', 443))",
        "r, w = await asyncio.open_connection('example.com', 443)",
        "server = await asyncio.start_server(handle, '127.0.0.1', 8080)",
        "from asyncio import open_connection",
        "from asyncio import (\n    sleep,\n    open_connection,\n)",
        "t, p = await loop.create_connection(Proto, 'example.com', 80)",
        "await asyncio.get_running_loop().create_connection(Proto, 'h', 80)",
        "await self._loop.create_datagram_endpoint(Proto, remote_addr=('h', 53))",
        "await loop.sock_connect(sock, ('h', 80))",
        "tls = context.wrap_socket(sock, server_hostname='h')",
        "tls = ssl.wrap_socket(sock)",
    ] {
        assert_hit("main.py", source, "python.raw_socket");
        assert!(
            frameos_scanner::scan([("main.py", source.as_bytes())]).passed,
            "medium, not a rejection"
        );
    }
    for source in [
        // HTTP(S) goes through the platform's proxy.
        "import urllib.request\nurllib.request.urlopen(url)",
        "import ssl\nctx = ssl.create_default_context()",
        // Look-alikes: other modules, user functions, the sqlite tutorial's helper.
        "import socketserver_like\nfrom websocket import x",
        "conn = create_connection(db_file)\nconn = db.create_connection()",
        "await asyncio.sleep(1); asyncio.run(main())",
        "socket_count = socket_count + 1\nwebsocket.send(x)",
        "print('import socket')  # we do not import socket",
        "loop.run_until_complete(main())",
        "from asyncio import sleep, gather",
    ] {
        assert_clean("main.py", source);
    }
}

#[test]
fn python_rules_only_apply_to_python_files() {
    assert_clean("index.js", "import subprocess\nos.system(x)\n__import__(x)");
    assert_clean("notes.txt", "os.system('rm -rf /')");
    assert_hit("tool.pyw", "import subprocess", "python.subprocess");
}
