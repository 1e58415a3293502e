//! Billing without I/O: integer money, the revenue split (seed §10, issue 4), Ed25519-signed
//! payment mandates and the payment rail with its sandbox. The control plane owns the database,
//! the ledger and the calls; everything here is deterministic given its inputs (key generation
//! and nonces aside), so it can be tested exhaustively.

pub mod currency;
pub mod mandate;
pub mod money;
pub mod rail;
pub mod split;
pub mod standing;

pub use mandate::{Keyring, MandateError, MandatePayload, SignedMandate, canonical_bytes};
pub use money::{Currency, MAX_MINOR, Money, parse_minor};
pub use rail::{AuthState, Authorization, PaymentRail, RailError, SandboxRail, SandboxState};
pub use split::{FeeSchedule, Split, SplitPolicy, Tier};
pub use standing::StandingMandate;

/// Errors of money arithmetic and of the split. Mandates and rails have their own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("invalid currency {code:?}: {reason}")]
    InvalidCurrency { code: String, reason: String },
    #[error("invalid amount: {0}")]
    InvalidAmount(String),
    #[error("amount arithmetic overflowed")]
    Overflow,
    #[error("currencies differ: {left} and {right}")]
    CurrencyMismatch { left: Currency, right: Currency },
    #[error(
        "the rail fee of {fee} exceeds the {available} left for the platform of a gross of {gross}"
    )]
    FeeExceedsShare {
        gross: i64,
        fee: i64,
        available: i64,
    },
    #[error("invalid split policy: {0}")]
    InvalidPolicy(String),
}
