//! The payment rail: holds (authorizes) an amount when a paid execution is accepted, then
//! captures it once if the execution succeeded or voids it otherwise. Every call carries an
//! idempotency key derived from the execution, so a retry after a crash or a time-out can never
//! charge twice. [`SandboxRail`] is the built-in test-mode rail; real processors implement
//! [`PaymentRail`] too.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

mod sandbox;
#[cfg(test)]
mod tests;

mod journal;

pub use journal::{CallOutcome, RailCall, RailOperation};
pub use sandbox::{
    SandboxRail, SandboxState, TEST_DECLINE, TEST_FAIL_AUTHORIZE, TEST_FAIL_CAPTURE,
    TEST_FAIL_CAPTURE_ONCE,
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RailError {
    /// The payer's instrument refused; final for this request (402 `payment_declined`).
    #[error("payment declined: {reason}")]
    Declined { reason: String },
    /// The processor is unavailable; the same call with the same key may succeed later.
    #[error("payment rail failed: {reason}")]
    Failed { reason: String },
    #[error("no such authorization")]
    NotFound,
    /// The authorization is not in a state that allows the operation (`captured`, `voided`).
    #[error("the authorization is {state}")]
    InvalidState { state: String },
    /// A request that can never succeed: bad amount or currency, or an idempotency key reused
    /// with different parameters or for another operation. A bug in the caller.
    #[error("invalid rail request: {reason}")]
    Invalid { reason: String },
}

impl RailError {
    /// Whether retrying the same call with the same idempotency key can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, RailError::Failed { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum AuthState {
    Authorized,
    /// `fee_minor` is what the rail kept, as it reports it; the split takes it as given.
    Captured {
        fee_minor: i64,
    },
    Voided,
}

impl AuthState {
    /// The API's `charge.status`.
    pub fn as_str(&self) -> &'static str {
        match self {
            AuthState::Authorized => "authorized",
            AuthState::Captured { .. } => "captured",
            AuthState::Voided => "voided",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorization {
    pub id: String,
    /// The key of the authorize call that created it.
    pub idempotency_key: String,
    pub payer: String,
    pub amount_minor: i64,
    pub currency: String,
    pub state: AuthState,
    /// When the hold was placed; reconciliation releases holds nobody claimed after a while.
    /// Records saved before it existed read as the epoch (old).
    #[serde(default)]
    pub created_at: DateTime<Utc>,
}

/// A payment processor. Synchronous: a networked one is called from `spawn_blocking`. Every
/// mutating call is idempotent per key: the same key and parameters return the same outcome.
pub trait PaymentRail: Send + Sync {
    /// Holds `amount_minor` on the payer's instrument. The same key returns the same
    /// authorization (in its current state); the same key with other parameters is `Invalid`.
    fn authorize(
        &self,
        idempotency_key: &str,
        payer: &str,
        amount_minor: i64,
        currency: &str,
    ) -> Result<Authorization, RailError>;

    /// Captures the whole held amount, at most once. The same key returns the captured
    /// authorization again; capturing a voided one, or a captured one under another key, is
    /// `InvalidState`.
    fn capture(
        &self,
        authorization_id: &str,
        idempotency_key: &str,
    ) -> Result<Authorization, RailError>;

    /// Releases the hold. The same key returns the voided authorization again; voiding a
    /// captured one is `InvalidState`.
    fn void(
        &self,
        authorization_id: &str,
        idempotency_key: &str,
    ) -> Result<Authorization, RailError>;

    /// The authorization as the rail knows it, for reconciliation. Fallible: for a real
    /// processor this is a network call.
    fn get(&self, authorization_id: &str) -> Result<Option<Authorization>, RailError>;

    /// Every authorization the rail knows, by id.
    fn list(&self) -> Result<Vec<Authorization>, RailError>;
}
