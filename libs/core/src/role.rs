//! Account roles. Each role can do everything the roles below it can.

crate::vocab::vocabulary! {
    /// What an account may do; ordered by rights (`user` < `developer` < `admin`).
    Role, "role", ValidationFailed {
        User => "user",
        Developer => "developer",
        Admin => "admin",
    }
}

impl Role {
    /// Whether this role includes the rights of `required`.
    pub fn at_least(self, required: Role) -> bool {
        self >= required
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
