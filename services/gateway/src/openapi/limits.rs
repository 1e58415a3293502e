//! The server's limits as JSON Schema, for the request types' `schema_with`/`param(schema_with)`.
//! Each function states a rule the control plane or the gateway enforces, exactly: text is
//! trimmed before it is measured, so the patterns allow surrounding whitespace and count what is
//! left (a stock client generating "valid" data must never be refused, nor "invalid" accepted).

use utoipa::openapi::Object;
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};

/// Most items on a page of agents or executions (the control plane refuses more).
pub const MAX_PAGE_SIZE: u64 = 100;
/// Most characters of an account's or an agent's name, once trimmed.
pub const MAX_NAME_CHARS: usize = 128;
/// Most characters of an agent's description (not trimmed).
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
/// Most characters of a rejection's reason, once trimmed.
pub const MAX_REASON_CHARS: usize = 2000;
/// Most characters of the marketplace's search text, once trimmed.
pub const MAX_QUERY_CHARS: usize = 200;

/// What `str::trim` removes (Unicode White_Space), as the inside of a regex class.
const WS: &str = r"\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";
/// What `char::is_control` is (the C0 and C1 controls), as the inside of a regex class.
const CONTROL: &str = r"\x00-\x1F\x7F-\x9F";

/// Text of `min..=max` characters (`min` 0 or 1) once trimmed; `printable`: no control
/// character inside.
fn trimmed(min: usize, max: usize, printable: bool) -> String {
    let (edge, inner) = if printable {
        (format!("[^{WS}{CONTROL}]"), format!("[^{CONTROL}]"))
    } else {
        (format!("[^{WS}]"), r"[\s\S]".to_string())
    };
    let core = format!("{edge}(?:{inner}{{0,{}}}{edge})?", max.saturating_sub(2));
    let core = if min == 0 {
        format!("(?:{core})?")
    } else {
        core
    };
    format!("^[{WS}]*{core}[{WS}]*$")
}

fn text(pattern: String, description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .description(Some(description))
        .build()
}

pub fn account_name() -> Object {
    text(
        trimmed(1, MAX_NAME_CHARS, true),
        "Unique among accounts: 1 to 128 printable characters (surrounding whitespace is trimmed).",
    )
}

pub fn key_name() -> Object {
    text(
        trimmed(1, MAX_NAME_CHARS, true),
        "Your name for the key: 1 to 128 printable characters (surrounding whitespace is trimmed).",
    )
}

pub fn agent_name() -> Object {
    text(
        trimmed(1, MAX_NAME_CHARS, false),
        "1 to 128 characters (surrounding whitespace is trimmed).",
    )
}

pub fn reason() -> Object {
    text(
        trimmed(1, MAX_REASON_CHARS, false),
        "Shown to the developer: 1 to 2000 characters (surrounding whitespace is trimmed).",
    )
}

pub fn search_query() -> Object {
    text(
        trimmed(0, MAX_QUERY_CHARS, false),
        "Search text, matched against slug, name and description: at most 200 characters \
         (surrounding whitespace is trimmed).",
    )
}

/// Optional, so `null` is accepted too.
pub fn description() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .max_length(Some(MAX_DESCRIPTION_CHARS))
        .description(Some("At most 2000 characters."))
        .build()
}

/// A new agent's slug: `[a-z0-9-]{2,64}` once trimmed.
pub fn new_slug() -> Object {
    let mut slug = text(
        format!("^[{WS}]*[a-z0-9-]{{2,64}}[{WS}]*$"),
        "`[a-z0-9-]{2,64}` (surrounding whitespace is trimmed); the package's `name` must equal it.",
    );
    slug.examples = vec![serde_json::json!("word-count")];
    slug
}

/// One of a fixed set of strings. (The vocabulary's types in `frameos-core` replace these.)
pub fn one_of(values: &[&str], description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .description(Some(description))
        .build()
}

/// `page_size` of the agent and execution lists: 0 or absent is the default (20).
pub fn page_size() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .maximum(Some(MAX_PAGE_SIZE))
        .description(Some("Items per page, at most 100; 0 or absent: 20."))
        .build()
}

pub use frameos_rest::schema::currency_or_default;

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, text: &str) -> bool {
        regex::Regex::new(pattern).unwrap().is_match(text)
    }

    #[test]
    fn names_count_what_trimming_leaves() {
        let name = account_name().pattern.unwrap();
        assert!(matches(&name, "ada"));
        assert!(matches(&name, " \tAda Lovelace\n"));
        assert!(matches(&name, &"n".repeat(128)));
        assert!(matches(&name, &format!("  {}  ", "n".repeat(128))));
        for bad in ["", "   ", "a\u{7}b", &"n".repeat(129)] {
            assert!(!matches(&name, bad), "{bad:?}");
        }
        let agent = agent_name().pattern.unwrap();
        assert!(matches(&agent, "a\u{7}b"));
        assert!(!matches(&agent, "\u{3000}"));
    }

    #[test]
    fn the_other_limits() {
        let query = search_query().pattern.unwrap();
        assert!(matches(&query, ""));
        assert!(matches(&query, &format!(" {} ", "q".repeat(200))));
        assert!(!matches(&query, &"q".repeat(201)));
        let slug = new_slug().pattern.unwrap();
        assert!(matches(&slug, "word-count") && matches(&slug, " ab "));
        assert!(
            !matches(&slug, "a") && !matches(&slug, "Word") && !matches(&slug, &"a".repeat(65))
        );
    }
}
