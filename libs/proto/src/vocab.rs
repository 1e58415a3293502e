//! The vocabulary of `frameos-core` <-> the protobuf enums of `proto/frameos/v1`: the one
//! place the two meet. A field left UNSPECIFIED, or holding a number this build does not know,
//! is the sender's mistake: `InvalidRequest` (gRPC INVALID_ARGUMENT), never an internal error.

use frameos_core::{
    ChargeStatus, Error, ErrorCode, ExecutionStatus, LogStream, ReviewDecision, Role, Runtime,
    VersionStatus,
};

use crate::v1;

/// A vocabulary enum carried in a protobuf enum field (an `i32` in the generated structs).
pub trait ProtoEnum: Sized + Copy {
    /// The field's value for `self`.
    fn to_proto(self) -> i32;

    /// The value of a required field: UNSPECIFIED and unknown numbers are refused.
    fn from_proto(value: i32) -> Result<Self, Error>;

    /// The value of an optional field (a filter): UNSPECIFIED is `None`, unknown numbers are
    /// refused.
    fn from_proto_optional(value: i32) -> Result<Option<Self>, Error> {
        if value == 0 {
            Ok(None)
        } else {
            Self::from_proto(value).map(Some)
        }
    }
}

fn unspecified(what: &str) -> Error {
    Error::new(ErrorCode::InvalidRequest, format!("{what} is unspecified"))
}

fn unknown(what: &str, value: i32) -> Error {
    Error::new(
        ErrorCode::InvalidRequest,
        format!("{what} {value} is not one this server knows"),
    )
}

macro_rules! proto_enum {
    ($name:ident, $what:literal { $($variant:ident),+ $(,)? }) => {
        impl From<$name> for v1::$name {
            fn from(value: $name) -> Self {
                match value {
                    $($name::$variant => v1::$name::$variant),+
                }
            }
        }

        impl TryFrom<v1::$name> for $name {
            type Error = Error;

            fn try_from(value: v1::$name) -> Result<Self, Error> {
                match value {
                    v1::$name::Unspecified => Err(unspecified($what)),
                    $(v1::$name::$variant => Ok($name::$variant)),+
                }
            }
        }

        impl ProtoEnum for $name {
            fn to_proto(self) -> i32 {
                v1::$name::from(self) as i32
            }

            fn from_proto(value: i32) -> Result<Self, Error> {
                v1::$name::try_from(value)
                    .map_err(|_| unknown($what, value))?
                    .try_into()
            }
        }
    };
}

proto_enum!(ExecutionStatus, "execution status" {
    Queued, Running, Succeeded, Failed, TimedOut, Canceled,
});
proto_enum!(ChargeStatus, "charge status" { Authorized, Captured, Voided });
proto_enum!(LogStream, "log stream" { Stdout, Stderr, System });
proto_enum!(Role, "role" { User, Developer, Admin });
proto_enum!(Runtime, "runtime" { Node, Python });
proto_enum!(VersionStatus, "version status" { PendingReview, Published, Rejected, Banned });
proto_enum!(ReviewDecision, "review decision" { Approved, Rejected });

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<T: ProtoEnum + PartialEq + std::fmt::Debug>(all: &[T]) {
        for value in all {
            let wire = value.to_proto();
            assert_ne!(wire, 0, "{value:?} must not be UNSPECIFIED");
            assert_eq!(T::from_proto(wire), Ok(*value));
            assert_eq!(T::from_proto_optional(wire), Ok(Some(*value)));
        }
        for bad in [0, -1, 99] {
            let err = T::from_proto(bad).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidRequest, "{bad}: {err}");
            let status = crate::status::to_status(&err);
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
        }
        assert_eq!(T::from_proto_optional(0), Ok(None));
        assert!(T::from_proto_optional(99).is_err());
    }

    #[test]
    fn every_value_round_trips_and_unspecified_is_the_callers_mistake() {
        round_trips(ExecutionStatus::ALL);
        round_trips(ChargeStatus::ALL);
        round_trips(LogStream::ALL);
        round_trips(Role::ALL);
        round_trips(Runtime::ALL);
        round_trips(VersionStatus::ALL);
        round_trips(ReviewDecision::ALL);
    }

    #[test]
    fn the_message_names_the_field_kind() {
        let err = ExecutionStatus::from_proto(0).unwrap_err();
        assert_eq!(err.message, "execution status is unspecified");
        let err = Runtime::from_proto(7).unwrap_err();
        assert_eq!(err.message, "runtime 7 is not one this server knows");
    }

    #[test]
    fn the_wire_numbers_are_the_ones_of_the_proto_files() {
        assert_eq!(ExecutionStatus::Queued.to_proto(), 1);
        assert_eq!(ExecutionStatus::Canceled.to_proto(), 6);
        assert_eq!(LogStream::System.to_proto(), 3);
        assert_eq!(Role::Admin.to_proto(), 3);
        assert_eq!(VersionStatus::Rejected.to_proto(), 3);
    }
}
