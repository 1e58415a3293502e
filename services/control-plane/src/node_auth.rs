//! Execution nodes authenticate with a shared token: without it, anyone who reaches the gRPC
//! port could claim executions and report forged results. With node mTLS on
//! (`FRAMEOS_TLS_CLIENT_CA`) the connection must also carry a client certificate the TLS
//! handshake verified against that CA: both are required, neither replaces the other (ADR 0018).

use subtle::ConstantTimeEq;
use tonic::{Request, Status};

/// Checks `authorization: Bearer <token>` on every NodeService call, in constant time, and,
/// with node mTLS, that the caller presented a verified client certificate.
#[derive(Clone)]
pub struct NodeToken {
    expected: String,
    client_certificate: bool,
}

impl NodeToken {
    pub fn new(token: &str) -> Self {
        NodeToken {
            expected: format!("Bearer {token}"),
            client_certificate: false,
        }
    }

    /// Also requires a client certificate (node mTLS). The TLS handshake verified any that was
    /// presented against `FRAMEOS_TLS_CLIENT_CA`, so one being there is enough.
    pub fn requiring_client_certificate(mut self, required: bool) -> Self {
        self.client_certificate = required;
        self
    }
}

impl tonic::service::Interceptor for NodeToken {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        if self.client_certificate && request.peer_certs().is_none_or(|certs| certs.is_empty()) {
            return Err(Status::unauthenticated(
                "node mTLS: a client certificate signed by the control plane's FRAMEOS_TLS_CLIENT_CA is required",
            ));
        }
        let presented = request
            .metadata()
            .get("authorization")
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if bool::from(presented.ct_eq(self.expected.as_bytes())) {
            Ok(request)
        } else {
            Err(Status::unauthenticated("invalid node token"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::service::Interceptor;

    #[test]
    fn only_the_configured_token_passes() {
        let mut check = NodeToken::new("s3cret");
        let mut good = Request::new(());
        good.metadata_mut()
            .insert("authorization", "Bearer s3cret".parse().unwrap());
        assert!(check.call(good).is_ok());
        let mut bad = Request::new(());
        bad.metadata_mut()
            .insert("authorization", "Bearer s3cre".parse().unwrap());
        assert_eq!(
            check.call(bad).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        assert!(check.call(Request::new(())).is_err());
    }

    #[test]
    fn with_mtls_the_token_alone_is_not_enough() {
        let mut check = NodeToken::new("s3cret").requiring_client_certificate(true);
        let mut good_token = Request::new(());
        good_token
            .metadata_mut()
            .insert("authorization", "Bearer s3cret".parse().unwrap());
        let refused = check.call(good_token).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
        assert!(
            refused.message().contains("client certificate"),
            "{refused:?}"
        );
    }
}
