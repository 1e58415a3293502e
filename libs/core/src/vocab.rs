//! The fixed sets of words the platform speaks: each one a Rust enum defined once, with the
//! exact snake_case string of the REST contract (API.md) as its serde, `Display` and `FromStr`
//! form. Behind features, the same enums are sea-orm active enums (`sea-orm`: stored as those
//! strings, so no migration) and OpenAPI string enums (`utoipa`). The protobuf enums and the
//! conversions to them live in `frameos-proto`.

/// Defines one vocabulary enum: `Name, "what it is", ErrorCode { Variant => "value", ... }`.
/// An unknown string parses to an error with that code, naming every allowed value.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal, $code:ident {
            $($(#[$vmeta:meta])* $variant:ident => $value:tt),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash,
            serde::Serialize, serde::Deserialize,
        )]
        #[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
        #[cfg_attr(
            feature = "sea-orm",
            derive(sea_orm::DeriveActiveEnum, sea_orm::EnumIter),
            sea_orm(rs_type = "String", db_type = "Text")
        )]
        pub enum $name {
            $(
                $(#[$vmeta])*
                #[serde(rename = $value)]
                #[cfg_attr(feature = "sea-orm", sea_orm(string_value = $value))]
                $variant
            ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The contract's string for this value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $value),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|value| value.as_str() == s)
                    .ok_or_else(|| {
                        $crate::Error::new(
                            $crate::ErrorCode::$code,
                            format!(
                                "unknown {} {s:?}; expected one of {}",
                                $what,
                                [$($value),+].join(", ")
                            ),
                        )
                    })
            }
        }
    };
}

pub(crate) use vocabulary;

vocabulary! {
    /// Where an execution is in its life (API.md §2). It starts `queued`, becomes `running` on a
    /// node and ends in one of the four terminal statuses.
    ExecutionStatus, "execution status", InvalidRequest {
        Queued => "queued",
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        TimedOut => "timed_out",
        Canceled => "canceled",
    }
}

impl ExecutionStatus {
    /// The statuses an execution ends in.
    pub const TERMINAL: [ExecutionStatus; 4] = [
        ExecutionStatus::Succeeded,
        ExecutionStatus::Failed,
        ExecutionStatus::TimedOut,
        ExecutionStatus::Canceled,
    ];

    /// Whether the execution has ended (it never changes status again).
    pub fn is_terminal(self) -> bool {
        Self::TERMINAL.contains(&self)
    }
}

vocabulary! {
    /// The language an agent is written in (`runtime` of `agent.json`, API.md §1).
    Runtime, "runtime", InvalidRequest {
        Node => "node",
        Python => "python",
    }
}

vocabulary! {
    /// The charge of a paid execution: held while it runs, then captured (it succeeded) or
    /// voided (it did not).
    ChargeStatus, "charge status", InvalidRequest {
        Authorized => "authorized",
        Captured => "captured",
        Voided => "voided",
    }
}

vocabulary! {
    /// Where an agent version is in review: only `published` versions run.
    VersionStatus, "version status", InvalidRequest {
        PendingReview => "pending_review",
        Published => "published",
        Rejected => "rejected",
        Banned => "banned",
    }
}

vocabulary! {
    /// The decision of a review: an admin's approval or rejection, or the scanner's rejection.
    ReviewDecision, "review decision", InvalidRequest {
        Approved => "approved",
        Rejected => "rejected",
    }
}

vocabulary! {
    /// Where the webhook of an execution is (API.md §5.3): `waiting` for the execution to end,
    /// `retrying` after a failed attempt, then `delivered` (a 2xx answer) or `failed` (no 2xx
    /// within the retry window).
    WebhookState, "webhook state", InvalidRequest {
        Waiting => "waiting",
        Retrying => "retrying",
        Delivered => "delivered",
        Failed => "failed",
    }
}

impl WebhookState {
    /// Delivered or failed: no attempt follows.
    pub fn is_final(self) -> bool {
        matches!(self, WebhookState::Delivered | WebhookState::Failed)
    }
}

vocabulary! {
    /// Where a schedule is (API.md §5.3): `active` while it runs on its cron expression, then
    /// `expired` once its standing mandate has (nothing more runs).
    ScheduleStatus, "schedule status", InvalidRequest {
        Active => "active",
        Expired => "expired",
    }
}

vocabulary! {
    /// How an agent is priced: free, or a fixed price per execution.
    PricingModel, "pricing model", InvalidRequest {
        Free => "free",
        PerExecution => "per_execution",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorCode, LogStream, Role};

    fn round_trips<T>(all: &[T])
    where
        T: Copy
            + PartialEq
            + std::fmt::Debug
            + std::fmt::Display
            + std::str::FromStr<Err = crate::Error>
            + serde::Serialize
            + serde::de::DeserializeOwned,
    {
        for value in all {
            let text = value.to_string();
            assert_eq!(text.parse::<T>(), Ok(*value));
            let json = serde_json::to_string(value).unwrap_or_default();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<T>(&json).ok(), Some(*value));
            let upper = text.to_uppercase();
            assert!(upper.parse::<T>().is_err(), "{upper}");
            assert!(format!("{text} ").parse::<T>().is_err());
        }
        assert!("".parse::<T>().is_err());
    }

    #[test]
    fn every_value_round_trips_as_its_contract_string() {
        round_trips(ExecutionStatus::ALL);
        round_trips(Runtime::ALL);
        round_trips(ChargeStatus::ALL);
        round_trips(VersionStatus::ALL);
        round_trips(ReviewDecision::ALL);
        round_trips(PricingModel::ALL);
        round_trips(ScheduleStatus::ALL);
        round_trips(Role::ALL);
        round_trips(LogStream::ALL);
    }

    #[test]
    fn the_strings_are_the_ones_of_the_api() {
        let strings = |all: &[&str]| all.join(",");
        let execution: Vec<_> = ExecutionStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            strings(&execution),
            "queued,running,succeeded,failed,timed_out,canceled"
        );
        let version: Vec<_> = VersionStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            strings(&version),
            "pending_review,published,rejected,banned"
        );
        let charge: Vec<_> = ChargeStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(strings(&charge), "authorized,captured,voided");
        assert_eq!(PricingModel::PerExecution.as_str(), "per_execution");
        assert_eq!(ReviewDecision::Approved.as_str(), "approved");
        assert_eq!(Runtime::Python.as_str(), "python");
    }

    #[test]
    fn only_the_four_end_statuses_are_terminal() {
        let terminal: Vec<_> = ExecutionStatus::ALL
            .iter()
            .filter(|s| s.is_terminal())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(terminal, ["succeeded", "failed", "timed_out", "canceled"]);
    }

    #[test]
    fn an_unknown_word_names_the_allowed_ones() {
        let err = "done".parse::<ExecutionStatus>().unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        assert_eq!(
            err.message,
            "unknown execution status \"done\"; expected one of queued, running, succeeded, \
             failed, timed_out, canceled"
        );
        assert_eq!(
            "root".parse::<Role>().unwrap_err().code,
            ErrorCode::ValidationFailed
        );
    }
}
