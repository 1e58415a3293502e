//! The rule catalogue: what is looked for, how bad it is, and in which files.

use serde::Serialize;

use crate::Severity;

/// Which files a rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    /// .js .cjs .mjs .jsx .ts .cts .mts .tsx
    Node,
    /// .py .pyw
    Python,
    /// Every file that is UTF-8 text throughout, and every source file.
    AnyText,
    /// Every file, text or not.
    AnyFile,
}

impl Language {
    /// The source language of a path, by extension.
    pub fn of(path: &str) -> Option<Language> {
        let (_, extension) = path.rsplit_once('.')?;
        match extension.to_ascii_lowercase().as_str() {
            "js" | "cjs" | "mjs" | "jsx" | "ts" | "cts" | "mts" | "tsx" => Some(Language::Node),
            "py" | "pyw" => Some(Language::Python),
            _ => None,
        }
    }
}

/// One check of the scanner, described for the documentation and the admin UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub id: &'static str,
    pub severity: Severity,
    pub description: &'static str,
    pub languages: &'static [Language],
}

const NODE: &[Language] = &[Language::Node];
const PYTHON: &[Language] = &[Language::Python];

static RULES: &[Rule] = &[
    Rule {
        id: "node.child_process",
        severity: Severity::High,
        description: "Imports child_process (require, import, dynamic import, node: prefix): \
                      spawning programs escapes the runtime.",
        languages: NODE,
    },
    Rule {
        id: "node.eval",
        severity: Severity::High,
        description: "Calls the global eval (directly, indirectly or via globalThis), passes a \
                      string to setTimeout/setInterval, or imports the vm module.",
        languages: NODE,
    },
    Rule {
        id: "node.function_constructor",
        severity: Severity::High,
        description: "Builds code from strings with Function(...) / new Function(...).",
        languages: NODE,
    },
    Rule {
        id: "node.raw_socket",
        severity: Severity::Medium,
        description: "Opens raw sockets: imports net, dgram or tls, uses net.connect / \
                      net.createConnection / net.createServer / net.Socket, tls.connect / \
                      tls.TLSSocket, dgram.createSocket, or the tcp/udp/pipe/tls_wrap bindings. \
                      Containers have no network; egress is HTTP(S) through the platform's \
                      proxy (http, https, fetch).",
        languages: NODE,
    },
    Rule {
        id: "node.fs",
        severity: Severity::Medium,
        description: "Imports fs, fs/promises or node:fs; reported for review.",
        languages: NODE,
    },
    Rule {
        id: "python.subprocess",
        severity: Severity::High,
        description: "Imports subprocess or calls asyncio.create_subprocess_*.",
        languages: PYTHON,
    },
    Rule {
        id: "python.os_exec",
        severity: Severity::High,
        description: "Runs programs through os.system, os.popen, os.exec*, os.spawn*, \
                      os.posix_spawn* or the pty module.",
        languages: PYTHON,
    },
    Rule {
        id: "python.eval_exec",
        severity: Severity::High,
        description: "Calls the eval or exec builtins (method calls such as model.eval() are fine).",
        languages: PYTHON,
    },
    Rule {
        id: "python.dynamic_import",
        severity: Severity::High,
        description: "Calls __import__(...), which hides what a module imports.",
        languages: PYTHON,
    },
    Rule {
        id: "python.ctypes",
        severity: Severity::High,
        description: "Imports ctypes or cffi, which call native code directly.",
        languages: PYTHON,
    },
    Rule {
        id: "python.raw_socket",
        severity: Severity::Medium,
        description: "Opens raw sockets: imports socket, _socket or socketserver, calls \
                      socket.socket / create_connection / create_server, \
                      asyncio.open_connection / start_server, an event loop's \
                      create_connection / create_datagram_endpoint / sock_connect, or \
                      wrap_socket. Containers have no network; egress is HTTP(S) through the \
                      platform's proxy (urllib.request).",
        languages: PYTHON,
    },
    Rule {
        id: "crypto.wallet_address",
        severity: Severity::High,
        description: "Contains a cryptocurrency wallet address (Ethereum 0x + 40 hex digits, \
                      Bitcoin bech32 bc1... with a valid checksum).",
        languages: &[Language::AnyText],
    },
    Rule {
        id: "crypto.hex_key",
        severity: Severity::High,
        description: "Contains a key-like hex literal: exactly 64 hex digits (32 bytes, \
                      optionally 0x-prefixed) that look random (at least 3 bits of entropy per \
                      digit, no run of 8, no repeated block) and are not labelled as a digest \
                      (sha256:/sha256=/sha256-, a key named *sha256, *digest, *checksum, *hash, \
                      *integrity, *etag or *fingerprint, BSD or sha256sum checksum lines, a \
                      comparison with a computed digest, or SHA-256 of the empty string).",
        languages: &[Language::AnyText],
    },
    Rule {
        id: "binary.native_code",
        severity: Severity::High,
        description: "Ships native code: a .node/.so/.dylib/.dll file, or ELF, Mach-O or PE \
                      executable content under any name.",
        languages: &[Language::AnyFile],
    },
];

/// Every rule the scanner applies.
pub fn rules() -> &'static [Rule] {
    RULES
}

pub(crate) fn severity_of(id: &str) -> Severity {
    RULES
        .iter()
        .find(|rule| rule.id == id)
        .map_or(Severity::High, |rule| rule.severity)
}
