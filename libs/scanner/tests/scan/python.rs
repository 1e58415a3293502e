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
fn socket_is_medium() {
    for source in [
        "import socket",
        "from socket import create_connection",
        "import ssl, socket",
    ] {
        assert_hit("main.py", source, "python.socket");
    }
    let report = frameos_scanner::scan([("main.py", &b"import socket"[..])]);
    assert!(report.passed);
    assert_clean(
        "main.py",
        "import socketserver_like\nfrom websocket import x",
    );
}

#[test]
fn python_rules_only_apply_to_python_files() {
    assert_clean("index.js", "import subprocess\nos.system(x)\n__import__(x)");
    assert_clean("notes.txt", "os.system('rm -rf /')");
    assert_hit("tool.pyw", "import subprocess", "python.subprocess");
}
