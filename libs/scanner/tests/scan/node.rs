use crate::{assert_clean, assert_hit, hits};

#[test]
fn child_process_in_every_import_form() {
    for source in [
        "const cp = require('child_process');",
        "const cp = require(\"node:child_process\")",
        "const cp = require( `child_process` )",
        "import { exec } from 'child_process';",
        "import cp from \"node:child_process\";",
        "import * as cp from 'child_process'",
        "export { spawn } from 'child_process'",
        "import 'child_process';",
        "const cp = await import('node:child_process');",
        "import cp = require('child_process');",
    ] {
        assert_hit("index.ts", source, "node.child_process");
    }
}

#[test]
fn child_process_near_misses() {
    for source in [
        "const x = require('child_process_helpers');",
        "const x = require('my-child_process');",
        "// we never spawn processes",
        "const name = Array.from('child_process');",
    ] {
        assert_clean("index.js", source);
    }
}

#[test]
fn fs_is_medium_and_does_not_fail_the_scan() {
    for source in [
        "const fs = require('fs');",
        "const fs = require('node:fs/promises');",
        "import { readFile } from 'fs/promises';",
        "import fs from \"node:fs\";",
    ] {
        assert_hit("index.mjs", source, "node.fs");
    }
    let report = frameos_scanner::scan([("index.js", &b"require('fs')"[..])]);
    assert!(report.passed);
    assert_clean(
        "index.js",
        "const x = require('fs-extra'); require('fsevents');",
    );
}

#[test]
fn eval_calls_but_not_methods_or_lookalikes() {
    for source in [
        "eval('1 + 1')",
        "const r = eval (code);",
        "x = (0, eval)('this')",
        "globalThis.eval(code)",
        "window . eval(code)",
        "setTimeout('alert(1)', 10)",
        "const vm = require('vm');",
        "import vm from 'node:vm';",
    ] {
        assert_hit("index.js", source, "node.eval");
    }
    for source in [
        "model.eval(x)",
        "await evaluate(expression)",
        "page.evaluate(() => 1)",
        "const evaluator = 1; myeval(x); $eval(x)",
        "setTimeout(() => done(), 10)",
        "const medieval = 'eval';",
    ] {
        assert_clean("index.js", source);
    }
}

#[test]
fn function_constructor() {
    for source in [
        "const f = new Function('a', 'return a');",
        "const f = Function('return this')();",
        "const f = new  Function (body);",
        "const g = (() => {}).constructor('return process')();",
    ] {
        assert_hit("index.cjs", source, "node.function_constructor");
    }
    for source in [
        "function run() {}",
        "isFunction(x); obj.Function(x);",
        "type F = Function;",
        "class A { constructor(x) {} }",
        "const AsyncFunction = 1;",
    ] {
        assert_clean("index.js", source);
    }
}

#[test]
fn node_rules_only_apply_to_node_files() {
    assert_clean(
        "README.md",
        "Never call eval('x') or require('child_process').",
    );
    assert_clean("main.py", "require('child_process')");
    assert_hit("lib/x.TSX", "eval(x)", "node.eval");
}

#[test]
fn matches_spanning_lines_report_the_line_of_the_call() {
    let source = "const a = 1;\nconst cp = require(\n  'child_process'\n);\n\neval(\n'x')";
    assert_eq!(
        hits("index.js", source),
        [
            ("node.child_process".to_owned(), 2),
            ("node.eval".to_owned(), 6)
        ]
    );
}

#[test]
fn raw_sockets_are_reported_for_review() {
    for source in [
        "const net = require('net');",
        "const net = require(\"node:net\")",
        "import net from 'net';",
        "import { createSocket } from 'node:dgram';",
        "import tls from 'tls'",
        "const tls = await import('node:tls');",
        "const s = net.connect(443, 'example.com');",
        "const s = net.createConnection({ port: 80 });",
        "const s = new net.Socket();",
        "const s = new net.Socket;",
        "const server = net.createServer(onConnection);",
        "const c = net.connect; c(80, 'example.com');",
        "const d = dgram.createSocket('udp4');",
        "const t = tls.connect(443, 'example.com');",
        "const t = new tls.TLSSocket(socket);",
        "const { TCP } = process.binding('tcp_wrap');",
        "const { UDP } = process._linkedBinding(\"udp_wrap\");",
    ] {
        assert_hit("index.ts", source, "node.raw_socket");
        assert!(
            frameos_scanner::scan([("a.js", source.as_bytes())]).passed,
            "medium, not a rejection"
        );
    }
    for source in [
        // HTTP(S) goes through the platform's proxy.
        "const https = require('https'); https.get(url);",
        "import http from 'node:http';",
        "const r = await fetch('https://api.example.com/v1');",
        // Other modules and names that merely contain net, tls or dgram.
        "const a = require('net-utils'); const b = require('dotnet');",
        "import { io } from 'socket.io-client';",
        "const network = new Network(); network.connect();",
        "magnet.connect(); internet.Socket; cabinet.createServer()",
        "const tlsOptions = { minVersion: 'TLSv1.2' };",
        "ws.send(x); socket.emit('event'); page.connect();",
        "const b = process.binding('fs');",
    ] {
        assert_clean("index.js", source);
    }
}
