//! The regular expressions behind the source rules.
//!
//! A finding is placed at its match, after any leading context characters (the regex crate
//! has no look-behind, so `[^\w.]eval` matches the character before the name, which may be
//! the previous line's newline). Patterns have no capture groups: resolving groups can take
//! the slow engine over a long match (`require(` + megabytes of spaces + `'net')`).

use std::ops::Range;
use std::sync::LazyLock;

use regex::{Regex, RegexSet};

pub(crate) struct Pattern {
    pub rule: &'static str,
    pub regex: Regex,
    /// A further check of a hit (given the whole text, for its context), for what a regex
    /// cannot express (checksums, entropy, a digest label before a literal, look-behind).
    pub verify: Option<fn(&str, Range<usize>) -> bool>,
}

/// The patterns for one kind of file, and one search that tells which of them match at all:
/// a single pass over a clean file instead of one per pattern.
pub(crate) struct Patterns {
    list: Vec<Pattern>,
    screen: RegexSet,
}

impl Patterns {
    fn new(list: Vec<Pattern>) -> Self {
        let screen = RegexSet::new(list.iter().map(|pattern| pattern.regex.as_str()))
            .expect("built-in scanner patterns must compile as a set");
        Patterns { list, screen }
    }

    /// The patterns that match somewhere in `text` (before any `verify`).
    pub fn matching<'p>(&'p self, text: &str) -> impl Iterator<Item = &'p Pattern> {
        self.screen
            .matches(text)
            .into_iter()
            .map(|index| &self.list[index])
    }
}

fn pattern(rule: &'static str, source: &str) -> Pattern {
    // ASCII word boundaries: the DFA gives up on a Unicode `\b` at the first non-ASCII byte
    // and the search falls back to a far slower engine, which a large upload could exploit.
    let source = source.replace(r"\b", r"(?-u:\b)");
    // The sources are constants exercised by the tests: failing here is a bug in this file.
    let regex = Regex::new(&source).expect("built-in scanner pattern must compile");
    Pattern {
        rule,
        regex,
        verify: None,
    }
}

/// Where a match's finding is: after the non-name characters it starts with.
pub(crate) fn finding_start(text: &str, matched: Range<usize>) -> usize {
    let context = text.as_bytes()[matched.clone()]
        .iter()
        .take_while(|byte| !(byte.is_ascii_alphanumeric() || **byte == b'_' || **byte == b'$'))
        .count();
    matched.start + context
}

/// Not `def eval(`: the word before the name, on its line, is not `def`.
fn is_not_a_definition(text: &str, hit: Range<usize>) -> bool {
    let window = &text.as_bytes()[hit.start.saturating_sub(64)..hit.start];
    let end = window
        .iter()
        .rposition(|byte| *byte != b' ' && *byte != b'\t')
        .map_or(0, |last| last + 1);
    let Some(rest) = window[..end].strip_suffix(b"def") else {
        return true;
    };
    let blank_after = end < window.len();
    let whole_word = rest
        .last()
        .is_none_or(|byte| !(byte.is_ascii_alphanumeric() || *byte == b'_'));
    !(blank_after && whole_word)
}

/// `require("m")`, `import("m")`, `import x from "m"`, `import "m"`, with or without `node:`.
fn node_module(modules: &str) -> String {
    format!(
        r#"(?:\b(?:require|import)\s*\(\s*|\b(?:from|import)\s*)['"`](?:node:)?(?:{modules})['"`]"#
    )
}

/// `import m`, `import a, m as b`, `from m import x`, `from m.sub import x`,
/// `importlib.import_module("m")`, at the start of a line or after `;`.
fn python_module(modules: &str) -> String {
    format!(
        r#"(?m)(?:^|;)[ \t]*(?:import[ \t]+(?:[^\n;#]*[ \t,])?(?:{modules})(?:[ \t,;.#]|$)|from[ \t]+(?:{modules})(?:\.\w+)*[ \t]+import\b)|\bimport_module\s*\(\s*['"](?:{modules})['"]"#
    )
}

/// `from module import a, name` and `from module import (\n a,\n name,\n)`.
fn python_from_import(module: &str, names: &str) -> String {
    format!(
        r"(?m)(?:^|;)[ \t]*(?:from[ \t]+{module}[ \t]+import)[ \t]*(?:\([^)]*|[^\n;#]*)\b(?:{names})\b"
    )
}

const OS_EXEC_NAMES: &str = r"system|popen|exec[lv]p?e?|spawn[lv]p?e?|posix_spawnp?|forkpty";
const ASYNCIO_SOCKET_NAMES: &str = r"open_(?:unix_)?connection|start_(?:unix_)?server";

/// Node sources: the text patterns and the Node ones.
pub(crate) static NODE: LazyLock<Patterns> =
    LazyLock::new(|| Patterns::new(text_patterns().into_iter().chain(node_patterns()).collect()));

/// Python sources: the text patterns and the Python ones.
pub(crate) static PYTHON: LazyLock<Patterns> = LazyLock::new(|| {
    Patterns::new(
        text_patterns()
            .into_iter()
            .chain(python_patterns())
            .collect(),
    )
});

/// Every other UTF-8 file.
pub(crate) static TEXT: LazyLock<Patterns> = LazyLock::new(|| Patterns::new(text_patterns()));

fn node_patterns() -> Vec<Pattern> {
    vec![
        pattern("node.child_process", &node_module("child_process")),
        pattern("node.fs", &node_module("fs|fs/promises")),
        pattern("node.eval", &node_module("vm")),
        // eval( and indirect forms like (0, eval)(...), but not obj.eval( or evaluate(.
        pattern("node.eval", r"(?:^|[^\w.$])(?:eval)\s*[()]"),
        pattern(
            "node.eval",
            r"\b(?:globalThis|window|global|self)\s*\.\s*(?:eval)\s*\(",
        ),
        pattern("node.eval", r#"\b(?:set(?:Timeout|Interval))\s*\(\s*['"`]"#),
        pattern(
            "node.function_constructor",
            r"(?:^|[^\w.$])(?:(?:new\s+)?Function)\s*\(",
        ),
        pattern(
            "node.function_constructor",
            r#"\.\s*(?:constructor)\s*\(\s*['"`]"#,
        ),
        pattern("node.raw_socket", &node_module("net|dgram|tls")),
        // Uses of the socket APIs (also as values: `const c = net.connect`), whichever way the
        // module was obtained.
        pattern(
            "node.raw_socket",
            r"\bnet\s*\.\s*(?:connect|createConnection|createServer|Socket|Server)\b",
        ),
        pattern(
            "node.raw_socket",
            r"\btls\s*\.\s*(?:connect|createServer|TLSSocket|Server)\b",
        ),
        pattern(
            "node.raw_socket",
            r"\bdgram\s*\.\s*(?:createSocket|Socket)\b",
        ),
        // The internal bindings under net and dgram.
        pattern(
            "node.raw_socket",
            r#"\bprocess\s*\.\s*(?:binding|_linkedBinding)\s*\(\s*['"`](?:tcp|udp|pipe|tls|stream)_wrap['"`]"#,
        ),
    ]
}

fn python_patterns() -> Vec<Pattern> {
    vec![
        pattern("python.subprocess", &python_module("subprocess")),
        pattern(
            "python.subprocess",
            r"\b(?:create_subprocess_(?:exec|shell))\s*\(",
        ),
        pattern(
            "python.os_exec",
            &format!(r"\bos\s*\.\s*(?:{OS_EXEC_NAMES})\s*\("),
        ),
        pattern("python.os_exec", &python_from_import("os", OS_EXEC_NAMES)),
        pattern("python.os_exec", &python_module("pty")),
        // Builtins only: not model.eval(), not a method defined as `def eval(self)`.
        Pattern {
            verify: Some(is_not_a_definition),
            ..pattern("python.eval_exec", r"(?:^|[^\w.])(?:eval|exec)\s*\(")
        },
        pattern(
            "python.eval_exec",
            r#"\b(?:__builtins__|builtins)\s*(?:\.\s*|\[\s*['"])(?:eval|exec)\b"#,
        ),
        pattern("python.dynamic_import", r"\b(?:__import__)\s*\("),
        pattern("python.ctypes", &python_module("ctypes|cffi")),
        pattern(
            "python.raw_socket",
            &python_module("socket|_socket|socketserver"),
        ),
        pattern(
            "python.raw_socket",
            r"\bsocket\s*\.\s*(?:socket|create_connection|create_server|socketpair|fromfd)\s*\(",
        ),
        pattern(
            "python.raw_socket",
            &format!(r"\basyncio\s*\.\s*(?:{ASYNCIO_SOCKET_NAMES})\s*\("),
        ),
        pattern(
            "python.raw_socket",
            &python_from_import("asyncio", ASYNCIO_SOCKET_NAMES),
        ),
        // Event-loop transports: unambiguous names on any receiver, the common names only on
        // something called a loop (a user's `db.create_connection()` is not a socket).
        pattern(
            "python.raw_socket",
            r"\.\s*(?:create_datagram_endpoint|create_unix_connection|create_unix_server|sock_connect)\s*\(",
        ),
        pattern(
            "python.raw_socket",
            r"\b(?:\w*loop|get_(?:event|running)_loop\s*\(\s*\))\s*\.\s*(?:create_connection|create_server)\s*\(",
        ),
        // ssl.wrap_socket(...) and SSLContext.wrap_socket(...) take a raw socket.
        pattern("python.raw_socket", r"\.\s*(?:wrap_socket)\s*\("),
    ]
}

fn text_patterns() -> Vec<Pattern> {
    vec![
        pattern("crypto.wallet_address", r"\b(?:0x[0-9a-fA-F]{40})\b"),
        // bech32 (segwit v0) and bech32m (taproot) mainnet addresses, 42 to 62 characters.
        Pattern {
            verify: Some(|text, hit| crate::wallet::is_bitcoin_bech32(&text[hit])),
            ..pattern(
                "crypto.wallet_address",
                r"\b(?:bc1[ac-hj-np-z02-9]{39,59}|BC1[AC-HJ-NP-Z02-9]{39,59})\b",
            )
        },
        // Exactly 64 hex digits (32 bytes), alone or after 0x; see hex_key.rs for what passes.
        Pattern {
            verify: Some(crate::hex_key::is_key_like),
            ..pattern("crypto.hex_key", r"\b(?:(?:0[xX])?[0-9a-fA-F]{64})\b")
        },
    ]
}
