//! The regular expressions behind the source rules.
//!
//! A pattern may name two groups: `at`, the part whose line is reported (so a leading context
//! character on the previous line does not shift it), and `skip`, which marks a match to ignore
//! (the regex crate has no look-behind, so exclusions are matched and then dropped).

use std::sync::LazyLock;

use regex::Regex;

pub(crate) struct Pattern {
    pub rule: &'static str,
    pub regex: Regex,
    /// A further check of the `at` text, for what a regex cannot express (checksums).
    pub verify: Option<fn(&str) -> bool>,
}

fn pattern(rule: &'static str, source: &str) -> Pattern {
    // The sources are constants exercised by the tests: failing here is a bug in this file.
    let regex = Regex::new(source).expect("built-in scanner pattern must compile");
    Pattern {
        rule,
        regex,
        verify: None,
    }
}

/// `require("m")`, `import("m")`, `import x from "m"`, `import "m"`, with or without `node:`.
fn node_module(modules: &str) -> String {
    format!(
        r#"(?P<at>\b(?:require|import)\s*\(\s*|\b(?:from|import)\s*)['"`](?:node:)?(?:{modules})['"`]"#
    )
}

/// `import m`, `import a, m as b`, `from m import x`, `from m.sub import x`,
/// `importlib.import_module("m")`, at the start of a line or after `;`.
fn python_module(modules: &str) -> String {
    format!(
        r#"(?m)(?:^|;)[ \t]*(?P<at>import[ \t]+(?:[^\n;#]*[ \t,])?(?:{modules})(?:[ \t,;.#]|$)|from[ \t]+(?:{modules})(?:\.\w+)*[ \t]+import\b)|\bimport_module\s*\(\s*['"](?:{modules})['"]"#
    )
}

const OS_EXEC_NAMES: &str = r"system|popen|exec[lv]p?e?|spawn[lv]p?e?|posix_spawnp?|forkpty";

pub(crate) static NODE: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    vec![
        pattern("node.child_process", &node_module("child_process")),
        pattern("node.fs", &node_module("fs|fs/promises")),
        pattern("node.eval", &node_module("vm")),
        // eval( and indirect forms like (0, eval)(...), but not obj.eval( or evaluate(.
        pattern("node.eval", r"(?:^|[^\w.$])(?P<at>eval)\s*[()]"),
        pattern(
            "node.eval",
            r"\b(?:globalThis|window|global|self)\s*\.\s*(?P<at>eval)\s*\(",
        ),
        pattern(
            "node.eval",
            r#"\b(?P<at>set(?:Timeout|Interval))\s*\(\s*['"`]"#,
        ),
        pattern(
            "node.function_constructor",
            r"(?:^|[^\w.$])(?P<at>(?:new\s+)?Function)\s*\(",
        ),
        pattern(
            "node.function_constructor",
            r#"\.\s*(?P<at>constructor)\s*\(\s*['"`]"#,
        ),
    ]
});

pub(crate) static PYTHON: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    vec![
        pattern("python.subprocess", &python_module("subprocess")),
        pattern(
            "python.subprocess",
            r"\b(?P<at>create_subprocess_(?:exec|shell))\s*\(",
        ),
        pattern(
            "python.os_exec",
            &format!(r"\bos\s*\.\s*(?P<at>{OS_EXEC_NAMES})\s*\("),
        ),
        pattern(
            "python.os_exec",
            &format!(
                r"(?m)(?:^|;)[ \t]*(?P<at>from[ \t]+os[ \t]+import)[ \t]*(?:\([^)]*|[^\n;#]*)\b(?:{OS_EXEC_NAMES})\b"
            ),
        ),
        pattern("python.os_exec", &python_module("pty")),
        // Builtins only: not model.eval(), not a method defined as `def eval(self)`.
        pattern(
            "python.eval_exec",
            r"(?:^|[^\w.])(?P<skip>def[ \t]+)?(?P<at>eval|exec)\s*\(",
        ),
        pattern(
            "python.eval_exec",
            r#"\b(?:__builtins__|builtins)\s*(?:\.\s*|\[\s*['"])(?P<at>eval|exec)\b"#,
        ),
        pattern("python.dynamic_import", r"\b(?P<at>__import__)\s*\("),
        pattern("python.ctypes", &python_module("ctypes|cffi")),
        pattern("python.socket", &python_module("socket")),
    ]
});

pub(crate) static TEXT: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    vec![
        pattern("crypto.wallet_address", r"\b(?P<at>0x[0-9a-fA-F]{40})\b"),
        // bech32 (segwit v0) and bech32m (taproot) mainnet addresses, 42 to 62 characters.
        Pattern {
            verify: Some(crate::wallet::is_bitcoin_bech32),
            ..pattern(
                "crypto.wallet_address",
                r"\b(?P<at>bc1[ac-hj-np-z02-9]{39,59}|BC1[AC-HJ-NP-Z02-9]{39,59})\b",
            )
        },
    ]
});
