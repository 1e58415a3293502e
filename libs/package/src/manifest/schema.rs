//! `inputs` / `outputs` must be JSON Schemas the platform can actually validate with.

use jsonschema::Draft;
use serde_json::Value;

use crate::Error;

/// Schema errors can quote the whole schema; keep messages readable.
const MAX_REASON_CHARS: usize = 300;

pub(super) fn check(field: &str, schema: &Value) -> Result<(), Error> {
    if !schema.is_object() {
        return Err(Error::manifest(field, "must be a JSON Schema object"));
    }
    // An unknown `$schema` would make the meta-validator go looking for it on the network.
    if schema.get("$schema").and_then(Value::as_str).is_some()
        && Draft::default().detect(schema) == Draft::Unknown
    {
        return Err(Error::manifest(
            field,
            "\"$schema\" must name a standard draft (4, 6, 7, 2019-09 or 2020-12)",
        ));
    }
    jsonschema::meta::validate(schema).map_err(|error| {
        let at = error.instance_path().to_string();
        let at = if at.is_empty() {
            String::new()
        } else {
            format!(" at {at}")
        };
        Error::manifest(
            field,
            format!("is not a valid JSON Schema{at}: {}", shorten(&error)),
        )
    })?;
    // Meta-valid is not enough: a bad regex or an unresolvable $ref only shows when compiling.
    jsonschema::options()
        .offline()
        .build(schema)
        .map_err(|error| {
            Error::manifest(field, format!("cannot be compiled: {}", shorten(&error)))
        })?;
    Ok(())
}

fn shorten(error: &impl std::fmt::Display) -> String {
    let text = error.to_string();
    match text.char_indices().nth(MAX_REASON_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Validates `instance` against `schema` (a schema accepted at upload). The error lists up to
/// five violations, each with the JSON pointer of the offending place.
pub fn validate(schema: &Value, instance: &Value) -> Result<(), String> {
    let validator = jsonschema::options()
        .offline()
        .build(schema)
        .map_err(|error| format!("the schema cannot be compiled: {}", shorten(&error)))?;
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .take(5)
        .map(|error| {
            let at = error.instance_path().to_string();
            if at.is_empty() {
                shorten(&error)
            } else {
                format!("{at}: {}", shorten(&error))
            }
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}
