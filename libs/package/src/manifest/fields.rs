//! Typed access to the fields of a JSON object, with errors that name the field.

use serde_json::{Map, Value};

use crate::Error;

pub(super) type Object = Map<String, Value>;

/// Refuses keys outside `known`; `prefix` locates the object ("resources." or "").
pub(super) fn reject_unknown(object: &Object, known: &[&str], prefix: &str) -> Result<(), Error> {
    match object.keys().find(|key| !known.contains(&key.as_str())) {
        Some(key) => Err(Error::manifest(
            &format!("{prefix}{key}"),
            format!("unknown field; expected one of: {}", known.join(", ")),
        )),
        None => Ok(()),
    }
}

pub(super) fn object<'v>(value: &'v Value, field: &str) -> Result<&'v Object, Error> {
    value
        .as_object()
        .ok_or_else(|| Error::manifest(field, "must be a JSON object"))
}

pub(super) fn required<'v>(object: &'v Object, key: &str) -> Result<&'v Value, Error> {
    object
        .get(key)
        .ok_or_else(|| Error::manifest(key, "is required"))
}

/// `null` counts as absent, so optional fields may be spelled out explicitly.
pub(super) fn optional<'v>(object: &'v Object, key: &str) -> Option<&'v Value> {
    object.get(key).filter(|value| !value.is_null())
}

pub(super) fn string<'v>(value: &'v Value, field: &str) -> Result<&'v str, Error> {
    value
        .as_str()
        .ok_or_else(|| Error::manifest(field, "must be a string"))
}

pub(super) fn array<'v>(value: &'v Value, field: &str) -> Result<&'v [Value], Error> {
    value
        .as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| Error::manifest(field, "must be an array"))
}

pub(super) fn whole_number(value: &Value, field: &str) -> Result<u64, Error> {
    value
        .as_u64()
        .ok_or_else(|| Error::manifest(field, "must be a non-negative whole number"))
}

pub(super) fn number(value: &Value, field: &str) -> Result<f64, Error> {
    value
        .as_f64()
        .filter(|n| n.is_finite())
        .ok_or_else(|| Error::manifest(field, "must be a number"))
}
