//! Execution nodes authenticate with a shared token: without it, anyone who reaches the gRPC
//! port could claim executions and report forged results.

use subtle::ConstantTimeEq;
use tonic::{Request, Status};

/// Checks `authorization: Bearer <token>` on every NodeService call, in constant time.
#[derive(Clone)]
pub struct NodeToken {
    expected: String,
}

impl NodeToken {
    pub fn new(token: &str) -> Self {
        NodeToken {
            expected: format!("Bearer {token}"),
        }
    }
}

impl tonic::service::Interceptor for NodeToken {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
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
}
