//! `ctx.call` (API.md §5.1) at the sandbox's edge: the runner writes a `call` frame on stdout,
//! the sandbox hands it to the [`Calls`] of the run (the execution node's link to the control
//! plane), and writes the [`Reply`] back on the runner's stdin. The container itself never
//! gets a network for it.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Deserialize;

/// At most this many calls of one run wait at once; more are refused, not queued.
pub const MAX_CONCURRENT_CALLS: usize = 8;

/// One `ctx.call` of the agent.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Call {
    /// The runner's number for it, unique within the run.
    pub call_id: u64,
    /// The slug of the agent to run.
    pub agent: String,
    pub inputs: serde_json::Value,
    /// What the caller allows this call to cost, in minor units.
    #[serde(default)]
    pub max_amount_minor: Option<i64>,
}

/// What a call answers: the child's output, or why there is none.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    Output(serde_json::Value),
    Error {
        /// `undeclared_dependency`, `budget_exceeded`, `cycle`, `too_deep`, `child_failed`, …
        code: String,
        message: String,
        /// The child execution's status, when one ran.
        status: Option<String>,
    },
}

impl Reply {
    pub fn error(code: &str, message: impl Into<String>) -> Reply {
        Reply::Error {
            code: code.to_string(),
            message: message.into(),
            status: None,
        }
    }

    /// The reply line the runner reads on stdin.
    pub(crate) fn line(&self, call_id: u64) -> Vec<u8> {
        let value = match self {
            Reply::Output(output) => serde_json::json!({
                "frameos": 1, "type": "reply", "call_id": call_id, "output": output,
            }),
            Reply::Error {
                code,
                message,
                status,
            } => serde_json::json!({
                "frameos": 1, "type": "reply", "call_id": call_id,
                "error": {"code": code, "message": message, "status": status},
            }),
        };
        let mut line = value.to_string().into_bytes();
        line.push(b'\n');
        line
    }
}

type Handler = dyn Fn(Call) -> BoxFuture<'static, Reply> + Send + Sync;

/// Who answers a run's calls. Runs without one answer every call `calls_unavailable`.
#[derive(Clone)]
pub struct Calls(Arc<Handler>);

impl Calls {
    pub fn new(
        handler: impl Fn(Call) -> BoxFuture<'static, Reply> + Send + Sync + 'static,
    ) -> Calls {
        Calls(Arc::new(handler))
    }

    pub(crate) fn start(&self, call: Call) -> BoxFuture<'static, Reply> {
        (self.0)(call)
    }
}

impl fmt::Debug for Calls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Calls(..)")
    }
}

/// The same handler: specs are compared for pooling, not for who answers their calls.
impl PartialEq for Calls {
    fn eq(&self, other: &Calls) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// The inputs as one stdin line: the runner reads them up to the first newline and the replies
/// after it. A raw newline in valid JSON is whitespace between tokens (inside a string it is
/// escaped), so turning it into a space keeps the document's meaning.
pub(crate) fn one_line(inputs: &[u8]) -> Cow<'_, [u8]> {
    if inputs.contains(&b'\n') {
        Cow::Owned(
            inputs
                .iter()
                .map(|&b| if b == b'\n' { b' ' } else { b })
                .collect(),
        )
    } else {
        Cow::Borrowed(inputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_become_one_line_with_the_same_meaning() {
        let pretty = b"{\n  \"text\": \"a\\nb\"\n}";
        let line = one_line(pretty);
        assert!(!line.contains(&b'\n'));
        let a: serde_json::Value = serde_json::from_slice(pretty).unwrap();
        let b: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(a, b);
        assert!(matches!(one_line(b"{}"), Cow::Borrowed(_)));
    }

    #[test]
    fn replies_are_one_json_line_each() {
        let ok = Reply::Output(serde_json::json!({"words": 2})).line(7);
        assert_eq!(ok.last(), Some(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&ok).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"frameos": 1, "type": "reply", "call_id": 7, "output": {"words": 2}})
        );
        let refused = Reply::error("budget_exceeded", "over budget").line(8);
        let v: serde_json::Value = serde_json::from_slice(&refused).unwrap();
        assert_eq!(
            v["error"],
            serde_json::json!({"code": "budget_exceeded", "message": "over budget", "status": null})
        );
    }
}
