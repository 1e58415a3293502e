//! Account roles. Each role can do everything the roles below it can.

use std::fmt;
use std::str::FromStr;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Developer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Developer => "developer",
            Role::Admin => "admin",
        }
    }

    /// Whether this role includes the rights of `required`.
    pub fn at_least(self, required: Role) -> bool {
        self >= required
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user" => Ok(Role::User),
            "developer" => Ok(Role::Developer),
            "admin" => Ok(Role::Admin),
            other => Err(crate::Error::new(
                crate::ErrorCode::ValidationFailed,
                format!("unknown role {other:?}; expected one of user, developer, admin"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_by_rights() {
        assert!(Role::Admin.at_least(Role::Developer));
        assert!(Role::Developer.at_least(Role::User));
        assert!(!Role::User.at_least(Role::Developer));
        assert!(!Role::Developer.at_least(Role::Admin));
        assert_eq!("developer".parse::<Role>(), Ok(Role::Developer));
        assert!("root".parse::<Role>().is_err());
    }
}
