//! One error-code enum that maps to both a gRPC status code and an HTTP status.
//!
//! The snake_case string of a code is part of the public REST contract
//! (`{"error": {"code": "...", "message": "..."}}`); over gRPC it travels in the
//! `frameos-error-code` metadata entry next to the matching `tonic::Code`.

use std::fmt;

/// gRPC metadata key that carries [`ErrorCode::as_str`].
pub const ERROR_CODE_METADATA: &str = "frameos-error-code";

macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident => ($name:literal, $http:literal, $grpc:literal)),+ $(,)?) => {
        /// Every way a FrameOS request can fail.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant),+
        }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];

            /// The stable snake_case code of the REST contract.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $name),+ }
            }

            /// HTTP status the gateway answers with.
            pub fn http_status(self) -> u16 {
                match self { $(ErrorCode::$variant => $http),+ }
            }

            /// Numeric `tonic::Code` (kept numeric so this crate stays free of tonic).
            pub fn grpc_code(self) -> i32 {
                match self { $(ErrorCode::$variant => $grpc),+ }
            }

            pub fn parse(s: &str) -> Option<ErrorCode> {
                match s { $($name => Some(ErrorCode::$variant),)+ _ => None }
            }
        }
    };
}

// gRPC codes: 3 InvalidArgument, 5 NotFound, 6 AlreadyExists, 7 PermissionDenied,
// 8 ResourceExhausted, 9 FailedPrecondition, 13 Internal, 14 Unavailable, 16 Unauthenticated.
error_codes! {
    /// Malformed request: bad JSON, missing field, wrong type.
    InvalidRequest => ("invalid_request", 400, 3),
    /// No API key, or one that matches no account.
    Unauthenticated => ("unauthenticated", 401, 16),
    /// The caller's role is too low for this operation.
    PermissionDenied => ("permission_denied", 403, 7),
    /// The object does not exist or belongs to someone else.
    NotFound => ("not_found", 404, 5),
    /// An agent with this slug exists already.
    SlugTaken => ("slug_taken", 409, 6),
    /// An account with this name exists already.
    AccountExists => ("account_exists", 409, 6),
    /// This exact version was published before; versions are immutable.
    VersionExists => ("version_exists", 409, 6),
    /// The state of the object does not allow the operation (e.g. approving a rejected version).
    Conflict => ("conflict", 409, 9),
    /// The package exceeds the compressed or uncompressed size limit.
    PackageTooLarge => ("package_too_large", 413, 8),
    /// The request body exceeds the gateway's limit.
    PayloadTooLarge => ("payload_too_large", 413, 8),
    /// The archive is not a well-formed gzip-compressed tar.
    InvalidPackage => ("invalid_package", 422, 3),
    /// The archive holds something dangerous: a link, an absolute path, `..`, a device, setuid bits.
    UnsafeArchive => ("unsafe_archive", 422, 3),
    /// `agent.json` is missing or one of its fields is invalid.
    InvalidManifest => ("invalid_manifest", 422, 3),
    /// A dependency of `agent.json` names no published agent, or a range none of its published
    /// versions satisfies.
    InvalidDependency => ("invalid_dependency", 422, 3),
    /// The new version is not greater than every existing version of the agent.
    VersionNotGreater => ("version_not_greater", 422, 9),
    /// A semantically invalid request body (values out of range, unknown enum values).
    ValidationFailed => ("validation_failed", 422, 3),
    /// Execution inputs that do not match the agent version's `inputs` JSON Schema.
    InvalidInputs => ("invalid_inputs", 422, 3),
    /// A report from an execution attempt that is no longer the current one (fencing).
    StaleAttempt => ("stale_attempt", 409, 9),
    /// An `Idempotency-Key` reused with a different body.
    IdempotencyKeyReused => ("idempotency_key_reused", 422, 9),
    /// `ctx.call` of an agent the calling version does not declare in `dependencies`.
    UndeclaredDependency => ("undeclared_dependency", 422, 9),
    /// A call whose price does not fit in what is left of the root mandate's budget, or is above
    /// the call's `max_amount_minor`; nothing is charged for it.
    BudgetExceeded => ("budget_exceeded", 402, 9),
    /// A call of an agent that is already running further up the same call tree.
    Cycle => ("cycle", 422, 9),
    /// A call that would nest executions deeper than five.
    TooDeep => ("too_deep", 422, 9),
    /// A called (child) execution ended without succeeding.
    ChildFailed => ("child_failed", 422, 9),
    /// The agent was banned by an admin: it cannot run, be called or get new versions.
    AgentBanned => ("agent_banned", 409, 9),
    /// The payment rail declined the authorization.
    PaymentDeclined => ("payment_declined", 402, 9),
    /// The caller is over its fair-use limit (request rate, open event streams); retry later.
    RateLimited => ("rate_limited", 429, 8),
    /// A dependency (database, package store, control plane) is unreachable.
    Unavailable => ("unavailable", 503, 14),
    /// A bug or an unexpected failure of the platform itself. Never a client's mistake.
    Internal => ("internal", 500, 13),
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error with its public code and a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
        }
    }

    pub fn not_found(what: impl fmt::Display) -> Self {
        Error::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::Internal, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::Unavailable, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_name() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(*code));
        }
        assert_eq!(ErrorCode::parse("no_such_code"), None);
    }

    #[test]
    fn client_mistakes_are_never_server_errors() {
        for code in ErrorCode::ALL {
            let server_side = matches!(code, ErrorCode::Internal | ErrorCode::Unavailable);
            assert_eq!(code.http_status() >= 500, server_side, "{code}");
        }
    }
}
