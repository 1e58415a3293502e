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
    /// Every file whose (first MiB) is UTF-8 text, and every source file.
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
        id: "python.socket",
        severity: Severity::Medium,
        description: "Imports socket (raw network access); reported for review.",
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
