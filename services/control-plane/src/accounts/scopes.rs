//! The one table of what each API call needs of the key that makes it (API.md §4.5). REST
//! reaches the control plane through these very calls, so the table covers both protocols;
//! [`super::auth::AuthLayer`] enforces it before any handler runs.
//!
//! Roles and ownership are still the handlers' (`auth::require`): a scope narrows what a key of
//! the account may do, it never widens the role.

use frameos_core::{Error, ErrorCode, Scope};

use super::auth::Principal;

/// What a call needs beyond a valid key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// A key with this scope.
    Scope(Scope),
    /// Any valid key: asking who one is (the gateway's fair use asks that of every key), and
    /// managing keys, where the handler lets a key create or revoke only keys whose scopes it
    /// holds itself.
    AnyKey,
}

use Need::{AnyKey, Scope as S};
use Scope::{Admin, Publish, Read, Run};

/// Every API method, by gRPC path. A method missing here is refused to every key (and a test
/// checks that none is missing).
const TABLE: &[(&str, Need)] = &[
    ("/frameos.v1.AccountService/CreateAccount", S(Admin)),
    ("/frameos.v1.AccountService/WhoAmI", AnyKey),
    ("/frameos.v1.AgentService/CreateAgent", S(Publish)),
    ("/frameos.v1.AgentService/UpdateAgent", S(Publish)),
    ("/frameos.v1.AgentService/ListAgents", S(Read)),
    ("/frameos.v1.AgentService/GetAgent", S(Read)),
    ("/frameos.v1.AgentService/PublishVersion", S(Publish)),
    ("/frameos.v1.AgentService/ListVersions", S(Read)),
    ("/frameos.v1.AgentService/ListReviews", S(Admin)),
    ("/frameos.v1.AgentService/ApproveVersion", S(Admin)),
    ("/frameos.v1.AgentService/BanAgent", S(Admin)),
    ("/frameos.v1.ScheduleService/CreateSchedule", S(Run)),
    ("/frameos.v1.ScheduleService/GetSchedule", S(Read)),
    ("/frameos.v1.ScheduleService/ListSchedules", S(Read)),
    ("/frameos.v1.ScheduleService/DeleteSchedule", S(Run)),
    ("/frameos.v1.WebhookService/GetWebhookSecret", S(Run)),
    ("/frameos.v1.WebhookService/RotateWebhookSecret", S(Run)),
    ("/frameos.v1.WebhookService/ListWebhookDeliveries", S(Read)),
    ("/frameos.v1.AgentService/RejectVersion", S(Admin)),
    ("/frameos.v1.AgentService/ListReleases", S(Read)),
    ("/frameos.v1.AgentService/ListPackageFiles", S(Read)),
    ("/frameos.v1.AgentService/GetPackageFile", S(Read)),
    ("/frameos.v1.BillingService/ListMandateKeys", S(Read)),
    ("/frameos.v1.BillingService/GetBalance", S(Read)),
    ("/frameos.v1.BillingService/ListEarnings", S(Read)),
    ("/frameos.v1.ExecutionService/CreateExecution", S(Run)),
    ("/frameos.v1.ExecutionService/CancelExecution", S(Run)),
    ("/frameos.v1.ExecutionService/GetExecution", S(Read)),
    ("/frameos.v1.ExecutionService/ListExecutions", S(Read)),
    ("/frameos.v1.ExecutionService/ListLogs", S(Read)),
    ("/frameos.v1.ExecutionService/WatchExecution", S(Read)),
    ("/frameos.v1.ExecutionService/GetMandate", S(Read)),
    ("/frameos.v1.ExecutionService/CreateStreamToken", S(Read)),
    ("/frameos.v1.ApiKeyService/CreateApiKey", AnyKey),
    ("/frameos.v1.ApiKeyService/ListApiKeys", S(Read)),
    ("/frameos.v1.ApiKeyService/RevokeApiKey", AnyKey),
    ("/frameos.v1.SecretService/PutSecret", S(Publish)),
    ("/frameos.v1.SecretService/ListSecrets", S(Read)),
    ("/frameos.v1.SecretService/DeleteSecret", S(Publish)),
];

/// The package of the API; health, reflection (and node calls, which carry no API key) are
/// outside it.
const API_PREFIX: &str = "/frameos.v1.";

/// Whether `principal` may make the call at `path`.
pub fn check(path: &str, principal: &Principal) -> Result<(), Error> {
    if !path.starts_with(API_PREFIX) {
        return Ok(());
    }
    let method = path.rsplit('/').next().unwrap_or(path);
    match TABLE
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, need)| *need)
    {
        Some(AnyKey) => Ok(()),
        Some(S(scope)) if principal.scopes.contains(scope) => Ok(()),
        Some(S(scope)) => Err(Error::new(
            ErrorCode::PermissionDenied,
            format!(
                "this API key lacks the `{scope}` scope, which {method} needs (the key has: {})",
                principal.scopes
            ),
        )),
        None => Err(Error::new(
            ErrorCode::PermissionDenied,
            format!("{method} has no scope assigned, so no API key may call it"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use frameos_core::Role;
    use prost::Message;

    use super::*;

    fn key(scopes: &[Scope]) -> Principal {
        Principal {
            account_id: "a".into(),
            role: Role::Admin,
            key_id: "k".into(),
            scopes: scopes.iter().collect(),
        }
    }

    #[test]
    fn a_key_beyond_its_scopes_is_told_which_one_it_lacks() {
        let reader = key(&[Read]);
        assert!(check("/frameos.v1.AgentService/ListAgents", &reader).is_ok());
        let refused = check("/frameos.v1.AgentService/PublishVersion", &reader).unwrap_err();
        assert_eq!(refused.code, ErrorCode::PermissionDenied);
        assert!(refused.message.contains("`publish` scope"), "{refused:?}");
        assert!(refused.message.contains("PublishVersion"), "{refused:?}");
        // Who am I needs no scope; health and reflection are not API calls.
        let none = key(&[]);
        assert!(check("/frameos.v1.AccountService/WhoAmI", &none).is_ok());
        assert!(check("/grpc.health.v1.Health/Check", &none).is_ok());
        assert!(check("/frameos.v1.AgentService/Unknown", &key(Scope::ALL)).is_err());
    }

    /// Every method of every API service in the compiled protos has its row (a new rpc cannot
    /// slip through unmapped), and the admin key passes them all.
    #[test]
    fn every_api_method_is_in_the_table() {
        let files = prost_types::FileDescriptorSet::decode(frameos_proto::FILE_DESCRIPTOR_SET)
            .expect("the descriptor set decodes");
        let all = key(Scope::ALL);
        let mut methods = 0;
        for file in files.file.iter().filter(|f| f.package() == "frameos.v1") {
            for service in file.service.iter().filter(|s| s.name() != "NodeService") {
                for method in &service.method {
                    let path = format!("/frameos.v1.{}/{}", service.name(), method.name());
                    assert!(
                        TABLE.iter().any(|(p, _)| *p == path),
                        "{path} is missing from the scope table"
                    );
                    assert!(check(&path, &all).is_ok(), "{path}");
                    methods += 1;
                }
            }
        }
        assert!(methods >= 20, "only {methods} methods found");
    }
}
