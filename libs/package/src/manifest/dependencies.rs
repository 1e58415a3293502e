//! `dependencies` of agent.json: the agents this one may call, each with an npm-style SemVer
//! range (`^1.2.0`, `~1.2`, `>=1.0.0 <2.0.0`), parsed by `nodejs-semver` (npm's grammar; the
//! `semver` crate speaks Cargo's). Whether a published version satisfies a range is the
//! control plane's check at publish and at run time.

use std::collections::BTreeMap;

use serde_json::Value;

use super::fields;
use crate::Error;

const MAX_DEPENDENCIES: usize = 20;
const MAX_RANGE_CHARS: usize = 256;

/// An npm-style range, kept with its text so the manifest reads back as written.
#[derive(Debug, Clone)]
pub struct Range {
    text: String,
    parsed: nodejs_semver::Range,
}

/// Two ranges are the same when written the same: that is what the manifest stores.
impl PartialEq for Range {
    fn eq(&self, other: &Range) -> bool {
        self.text == other.text
    }
}

impl Range {
    /// Parses `text`; the error says why, for a message naming the dependency.
    pub fn parse(text: &str) -> Result<Range, String> {
        if text.chars().count() > MAX_RANGE_CHARS {
            return Err(format!("a range is at most {MAX_RANGE_CHARS} characters"));
        }
        let parsed = nodejs_semver::Range::parse(text)
            .map_err(|e| format!("{text:?} is not an npm-style SemVer range ({e})"))?;
        Ok(Range {
            text: text.to_owned(),
            parsed,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `version` (strict SemVer, as versions are stored) is in the range. Pre-releases
    /// are in it only when the range names one of the same version, as npm has it.
    pub fn satisfied_by(&self, version: &str) -> bool {
        nodejs_semver::Version::parse(version).is_ok_and(|v| v.satisfies(&self.parsed))
    }
}

pub(super) fn dependencies(
    value: Option<&Value>,
    own_name: &str,
) -> Result<BTreeMap<String, Range>, Error> {
    let Some(value) = value else {
        return Ok(BTreeMap::new());
    };
    let object = fields::object(value, "dependencies")?;
    if object.len() > MAX_DEPENDENCIES {
        return Err(Error::manifest(
            "dependencies",
            format!("at most {MAX_DEPENDENCIES} dependencies"),
        ));
    }
    let mut out = BTreeMap::new();
    for (slug, range) in object {
        let refuse = |reason: String| Error::Dependency {
            slug: slug.clone(),
            reason,
        };
        if slug == own_name {
            return Err(refuse("an agent cannot depend on itself".into()));
        }
        let valid_slug = (2..=64).contains(&slug.len())
            && slug
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid_slug {
            return Err(refuse("not an agent slug ([a-z0-9-]{2,64})".into()));
        }
        let Some(text) = range.as_str() else {
            return Err(refuse("the range must be a string like \"^1.2.0\"".into()));
        };
        out.insert(slug.clone(), Range::parse(text).map_err(refuse)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npm_ranges_mean_what_npm_means() {
        let caret = Range::parse("^1.2.0").unwrap();
        assert!(caret.satisfied_by("1.2.0") && caret.satisfied_by("1.9.3"));
        assert!(!caret.satisfied_by("2.0.0") && !caret.satisfied_by("1.1.9"));
        let tilde = Range::parse("~1.2").unwrap();
        assert!(tilde.satisfied_by("1.2.7") && !tilde.satisfied_by("1.3.0"));
        let spaced = Range::parse(">=1.0.0 <2.0.0").unwrap();
        assert!(spaced.satisfied_by("1.5.0") && !spaced.satisfied_by("2.0.0"));
        let either = Range::parse("^1.0.0 || ^3.0.0").unwrap();
        assert!(either.satisfied_by("3.1.0") && !either.satisfied_by("2.0.0"));
        assert!(
            !caret.satisfied_by("1.3.0-beta.1"),
            "no pre-release unless asked for"
        );
        assert!(!caret.satisfied_by("not a version"));
        assert_eq!(spaced.as_str(), ">=1.0.0 <2.0.0");
        assert!(Range::parse("^^1").is_err());
        assert!(Range::parse(&"1".repeat(300)).is_err());
    }
}
