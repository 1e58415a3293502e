//! `Debug` of the messages that carry a secret's value (ADR 0045): the value is never shown, so
//! no `{:?}` of a request, a claim or a span field can print it.

use std::fmt;

use crate::v1;

impl fmt::Debug for v1::RunSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunSecret")
            .field("name", &self.name)
            .field("value", &"***")
            .finish()
    }
}

impl fmt::Debug for v1::PutSecretRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PutSecretRequest")
            .field("agent_slug", &self.agent_slug)
            .field("name", &self.name)
            .field("value", &"***")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_never_show_in_debug_output() {
        let claim = v1::ClaimExecutionResponse {
            secrets: vec![v1::RunSecret {
                name: "API_TOKEN".into(),
                value: "tok-8f2e".into(),
            }],
            ..Default::default()
        };
        let shown = format!("{claim:?} {:#?}", claim.secrets[0]);
        assert!(shown.contains("API_TOKEN"), "{shown}");
        assert!(!shown.contains("tok-8f2e"), "{shown}");
        let put = v1::PutSecretRequest {
            agent_slug: "a".into(),
            name: "N".into(),
            value: "hunter2".into(),
        };
        assert!(!format!("{put:?}").contains("hunter2"));
    }
}
