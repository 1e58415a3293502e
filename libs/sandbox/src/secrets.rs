//! The secrets of the run's agent (API.md §5.3, ADR 0045). They reach the runner only in the
//! first line of its stdin, never in the container's or process's environment, labels or
//! command line (all of which `docker inspect` and `/proc` show), and every value is masked in
//! what the run reports (see [`crate::redact`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::redact::Redactor;

/// Secret values by name. Cheap to clone; `Debug` shows the names only.
#[derive(Clone, Default)]
pub struct Secrets {
    values: Arc<BTreeMap<String, String>>,
    /// Built on first use, once per run, shared by the clones.
    redactor: Arc<OnceLock<Redactor>>,
}

impl Secrets {
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Secrets {
        Secrets {
            values: Arc::new(pairs.into_iter().collect()),
            redactor: Arc::default(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// The names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// `text` with every occurrence of a value replaced by `***`.
    pub fn redact<'t>(&self, text: &'t str) -> std::borrow::Cow<'t, str> {
        self.redactor().redact(text)
    }

    pub(crate) fn redactor(&self) -> &Redactor {
        self.redactor
            .get_or_init(|| Redactor::new(self.values.values().map(String::as_str)))
    }

    /// The `secrets` member of the runner's stdin header.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.values
                .iter()
                .map(|(name, value)| (name.clone(), serde_json::Value::String(value.clone())))
                .collect(),
        )
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("names", &self.values.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Equal values; the masker is derived from them.
impl PartialEq for Secrets {
    fn eq(&self, other: &Secrets) -> bool {
        self.values == other.values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> Secrets {
        Secrets::new([
            ("API_TOKEN".to_string(), "tok-123".to_string()),
            ("DB_PASSWORD".to_string(), "hunter2".to_string()),
        ])
    }

    #[test]
    fn debug_shows_names_never_values() {
        let shown = format!("{:?}", secrets());
        assert!(
            shown.contains("API_TOKEN") && shown.contains("DB_PASSWORD"),
            "{shown}"
        );
        assert!(
            !shown.contains("tok-123") && !shown.contains("hunter2"),
            "{shown}"
        );
        // Nor through a spec that holds them.
        let spec = crate::Spec {
            secrets: secrets(),
            ..crate::Spec::default()
        };
        assert!(!format!("{spec:?}").contains("hunter2"));
    }

    #[test]
    fn clones_share_one_masker_and_compare_by_value() {
        let a = secrets();
        let b = a.clone();
        assert_eq!(a.redact("x tok-123 y"), "x *** y");
        assert!(std::ptr::eq(a.redactor(), b.redactor()));
        assert_eq!(a, secrets());
        assert_ne!(a, Secrets::default());
        assert_eq!(
            a.to_json(),
            serde_json::json!({"API_TOKEN": "tok-123", "DB_PASSWORD": "hunter2"})
        );
    }
}
