//! What an API key may do (API.md §4.5): `read`, `run`, `publish`, `admin`. A key's scopes never
//! exceed what its account's role allows; a key used beyond them is refused with
//! `permission_denied` naming the missing scope.

use std::fmt;
use std::str::FromStr;

use crate::{Error, ErrorCode, Role};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read what the account may see: agents, versions, executions, logs, balances.
    Read,
    /// Start and cancel executions.
    Run,
    /// Create agents and publish versions.
    Publish,
    /// Administer: accounts, the review queue.
    Admin,
}

impl Scope {
    pub const ALL: &'static [Scope] = &[Scope::Read, Scope::Run, Scope::Publish, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Run => "run",
            Scope::Publish => "publish",
            Scope::Admin => "admin",
        }
    }

    /// The lowest role whose keys may hold this scope.
    pub fn role(self) -> Role {
        match self {
            Scope::Read | Scope::Run => Role::User,
            Scope::Publish => Role::Developer,
            Scope::Admin => Role::Admin,
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .iter()
            .copied()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::ValidationFailed,
                    format!("unknown scope {s:?}; expected one of read, run, publish, admin"),
                )
            })
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Scopes(u8);

impl Scopes {
    pub const NONE: Scopes = Scopes(0);

    /// Everything a key of `role` may hold: the default of a new key, and the scopes of keys
    /// made before scopes existed.
    pub fn of_role(role: Role) -> Scopes {
        Scope::ALL
            .iter()
            .filter(|scope| role.at_least(scope.role()))
            .collect()
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every scope of `other` is in `self`.
    pub fn covers(self, other: Scopes) -> bool {
        other.0 & !self.0 == 0
    }

    /// The scopes of `other` missing from `self`.
    pub fn missing(self, other: Scopes) -> Scopes {
        Scopes(other.0 & !self.0)
    }

    pub fn intersection(self, other: Scopes) -> Scopes {
        Scopes(self.0 & other.0)
    }

    /// In the order of [`Scope::ALL`].
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL
            .iter()
            .copied()
            .filter(move |s| self.contains(*s))
    }

    /// `read,run` (the stored form); parsed back by [`Scopes::parse_list`].
    pub fn to_list(self) -> String {
        self.iter().map(Scope::as_str).collect::<Vec<_>>().join(",")
    }

    /// Comma-separated scope names; surrounding blanks and empty items are ignored.
    pub fn parse_list(list: &str) -> Result<Scopes, Error> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::parse::<Scope>)
            .collect()
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Scopes(iter.into_iter().fold(0, |bits, scope| bits | scope.bit()))
    }
}

impl<'a> FromIterator<&'a Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = &'a Scope>>(iter: I) -> Self {
        iter.into_iter().copied().collect()
    }
}

/// `read, run`, or `none`.
impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<_> = self.iter().map(Scope::as_str).collect();
        f.write_str(&names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_and_nothing_else_parses() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>(), Ok(*scope));
            let json = serde_json::to_string(scope).unwrap_or_default();
            assert_eq!(json, format!("\"{scope}\""));
        }
        assert!("write".parse::<Scope>().is_err());
        assert!("Read".parse::<Scope>().is_err());
    }

    #[test]
    fn roles_bound_the_scopes() {
        let names = |role| Scopes::of_role(role).to_list();
        assert_eq!(names(Role::User), "read,run");
        assert_eq!(names(Role::Developer), "read,run,publish");
        assert_eq!(names(Role::Admin), "read,run,publish,admin");
    }

    #[test]
    fn sets_compare_and_list() {
        let read_run: Scopes = [Scope::Read, Scope::Run].iter().collect();
        let all = Scopes::of_role(Role::Admin);
        assert!(all.covers(read_run));
        assert!(!read_run.covers(all));
        assert_eq!(read_run.missing(all).to_list(), "publish,admin");
        assert!(read_run.covers(Scopes::NONE));
        assert_eq!(Scopes::parse_list(" run , read,"), Ok(read_run));
        assert_eq!(Scopes::parse_list(""), Ok(Scopes::NONE));
        assert!(Scopes::parse_list("read,root").is_err());
        assert_eq!(read_run.to_string(), "read, run");
        assert_eq!(Scopes::NONE.to_string(), "none");
        assert_eq!(read_run.intersection(all), read_run);
    }
}
