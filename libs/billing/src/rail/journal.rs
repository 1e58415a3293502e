//! The rail's request log: every call it received, with its idempotency key and what came of
//! it, as a processor's dashboard lists them. A second capture of one hold would show here even
//! though the hold itself only ever reads `captured`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Authorization, RailError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RailOperation {
    Authorize,
    Capture,
    Void,
}

impl RailOperation {
    pub fn as_str(self) -> &'static str {
        match self {
            RailOperation::Authorize => "authorize",
            RailOperation::Capture => "capture",
            RailOperation::Void => "void",
        }
    }
}

/// What one call did. Only `Authorized`, `Captured` and `Voided` changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    Authorized,
    Captured,
    Voided,
    /// An idempotent repeat: the first call's result, nothing moved.
    Replayed,
    Declined,
    Failed,
    NotFound,
    InvalidState,
    Invalid,
}

impl CallOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Authorized => "authorized",
            CallOutcome::Captured => "captured",
            CallOutcome::Voided => "voided",
            CallOutcome::Replayed => "replayed",
            CallOutcome::Declined => "declined",
            CallOutcome::Failed => "failed",
            CallOutcome::NotFound => "not_found",
            CallOutcome::InvalidState => "invalid_state",
            CallOutcome::Invalid => "invalid",
        }
    }

    /// The outcome of a call that ended in `error`.
    pub fn of_error(error: &RailError) -> CallOutcome {
        match error {
            RailError::Declined { .. } => CallOutcome::Declined,
            RailError::Failed { .. } => CallOutcome::Failed,
            RailError::NotFound => CallOutcome::NotFound,
            RailError::InvalidState { .. } => CallOutcome::InvalidState,
            RailError::Invalid { .. } => CallOutcome::Invalid,
        }
    }
}

/// One entry of the request log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RailCall {
    pub operation: RailOperation,
    pub idempotency_key: String,
    /// The hold the call was about, when there is one.
    pub authorization_id: Option<String>,
    /// The amount the call moved or would have moved.
    pub amount_minor: Option<i64>,
    pub outcome: CallOutcome,
    pub at: DateTime<Utc>,
}

impl RailCall {
    /// The log entry of a call; `fresh` says whether a success changed the hold (else it was a
    /// replay of an earlier call with the same key).
    pub(super) fn of(
        operation: RailOperation,
        idempotency_key: &str,
        authorization_id: Option<&str>,
        result: &Result<(Authorization, bool), RailError>,
    ) -> RailCall {
        let (outcome, amount_minor, authorization_id) = match result {
            Ok((auth, fresh)) => {
                let outcome = match (fresh, operation) {
                    (false, _) => CallOutcome::Replayed,
                    (true, RailOperation::Authorize) => CallOutcome::Authorized,
                    (true, RailOperation::Capture) => CallOutcome::Captured,
                    (true, RailOperation::Void) => CallOutcome::Voided,
                };
                (outcome, Some(auth.amount_minor), Some(auth.id.clone()))
            }
            Err(e) => (
                CallOutcome::of_error(e),
                None,
                authorization_id.map(str::to_string),
            ),
        };
        RailCall {
            operation,
            idempotency_key: idempotency_key.to_string(),
            authorization_id,
            amount_minor,
            outcome,
            at: Utc::now(),
        }
    }
}
