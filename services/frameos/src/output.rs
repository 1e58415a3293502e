//! `--output text|json`: what a command prints on stdout. Machine output (JSON) goes to stdout
//! alone; progress, warnings and errors always go to stderr, so `frameos ... --output json | jq`
//! works whatever happens.

use std::io::Write;

use serde_json::Value;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Readable lines for a terminal.
    #[default]
    Text,
    /// JSON on stdout: one document per command (one per line for `executions follow`).
    Json,
}

impl Output {
    pub fn is_json(self) -> bool {
        self == Output::Json
    }

    /// `value` on stdout as JSON when `--output json`, else the lines `text` makes of it.
    pub fn emit(self, value: &Value, text: impl FnOnce(&Value)) -> anyhow::Result<()> {
        if self.is_json() {
            json_line(value)
        } else {
            text(value);
            Ok(())
        }
    }
}

/// `value` as one line of JSON on stdout, flushed (a reader of a pipe sees it at once).
pub fn json_line(value: &Value) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, value)?;
    stdout.write_all(b"\n")?;
    stdout.flush()?;
    Ok(())
}

/// A JSON field as text, `?` when absent (for the text renderings).
pub fn field(value: &Value, name: &str) -> String {
    match &value[name] {
        Value::String(s) => s.clone(),
        Value::Null => "?".to_string(),
        other => other.to_string(),
    }
}

/// `2030-01-31T09:30:12.5Z` → `2030-01-31 09:30Z`, for a narrow table; `absent` for null.
pub fn minute(value: &Value, absent: &str) -> String {
    match value.as_str() {
        Some(at) if at.len() >= 16 && at.is_char_boundary(16) => {
            format!("{} {}Z", &at[..10], &at[11..16])
        }
        Some(at) => at.to_string(),
        None => absent.to_string(),
    }
}
