//! What crosses the fake's wire: a request's decoded parameters in, an endpoint's answer (a
//! status and a body, an object or Stripe's error object) out.

use serde_json::{Value, json};

/// One endpoint's answer. `remember`: whether the idempotency layer keeps it (Stripe keeps
/// what an endpoint answered once it began executing, not a refused parameter).
pub(super) struct Outcome {
    pub status: u16,
    pub body: Value,
    pub remember: bool,
}

impl Outcome {
    pub(super) fn ok(body: Value) -> Outcome {
        Outcome {
            status: 200,
            body,
            remember: true,
        }
    }
}

pub(super) fn error(status: u16, kind: &str, code: Option<&str>, message: &str) -> Outcome {
    let mut error = json!({"type": kind, "message": message});
    if let Some(code) = code {
        error["code"] = json!(code);
    }
    Outcome {
        status,
        body: json!({ "error": error }),
        remember: true,
    }
}

/// A refused parameter: answered, never remembered under the key.
pub(super) fn invalid_param(param: &str, code: &str, message: &str) -> Outcome {
    let mut outcome = error(400, "invalid_request_error", Some(code), message);
    outcome.body["error"]["param"] = json!(param);
    outcome.remember = false;
    outcome
}

/// The parameters of one request, as decoded pairs (`metadata[payer]`, repeated `expand[]`).
pub(super) struct Params<'a>(pub &'a [(String, String)]);

impl<'a> Params<'a> {
    pub fn one(&self, name: &str) -> Option<&'a str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn expand(&self) -> Vec<&'a str> {
        self.0
            .iter()
            .filter(|(k, _)| k == "expand[]")
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Refuses a parameter the endpoint does not take, as Stripe does.
    pub fn only(&self, allowed: &[&str]) -> Result<(), Outcome> {
        for (name, _) in self.0 {
            let known = allowed.contains(&name.as_str())
                || (name.starts_with("metadata[") && allowed.contains(&"metadata"));
            if !known {
                return Err(invalid_param(
                    name,
                    "parameter_unknown",
                    &format!("Received unknown parameter: {name}"),
                ));
            }
        }
        let expandable = ["latest_charge", "latest_charge.balance_transaction"];
        for path in self.expand() {
            if !expandable.contains(&path.trim_start_matches("data.")) {
                return Err(invalid_param(
                    "expand",
                    "parameter_invalid_string",
                    &format!("This property cannot be expanded ({path})."),
                ));
            }
        }
        Ok(())
    }
}
