//! `frameos_core::Scope` <-> the `frameos.v1.Scope` enum of keys.proto.

use frameos_core::{Error, ErrorCode, Scope, Scopes};

use crate::v1;

pub fn to_proto(scope: Scope) -> v1::Scope {
    match scope {
        Scope::Read => v1::Scope::Read,
        Scope::Run => v1::Scope::Run,
        Scope::Publish => v1::Scope::Publish,
        Scope::Admin => v1::Scope::Admin,
    }
}

/// The wire values of a set (a `repeated Scope` field), in the order read, run, publish, admin.
pub fn to_wire(scopes: Scopes) -> Vec<i32> {
    scopes.iter().map(|s| to_proto(s) as i32).collect()
}

/// A `repeated Scope` field as a set; an unspecified or unknown value is a validation error.
pub fn from_wire(values: &[i32]) -> Result<Scopes, Error> {
    values
        .iter()
        .map(|value| match v1::Scope::try_from(*value) {
            Ok(v1::Scope::Read) => Ok(Scope::Read),
            Ok(v1::Scope::Run) => Ok(Scope::Run),
            Ok(v1::Scope::Publish) => Ok(Scope::Publish),
            Ok(v1::Scope::Admin) => Ok(Scope::Admin),
            Ok(v1::Scope::Unspecified) | Err(_) => Err(Error::new(
                ErrorCode::ValidationFailed,
                format!("unknown scope {value}; expected one of read, run, publish, admin"),
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_survives_the_wire() {
        for scope in Scope::ALL {
            let set: Scopes = [*scope].iter().collect();
            assert_eq!(from_wire(&to_wire(set)), Ok(set));
        }
        assert!(from_wire(&[0]).is_err());
        assert!(from_wire(&[99]).is_err());
    }
}
