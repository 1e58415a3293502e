//! Where the S3 client gets its credentials: static keys when they are configured, otherwise the
//! AWS default provider chain — environment, shared profile files, web identity (a Kubernetes
//! service account through IRSA or EKS pod identity), the ECS container endpoint, and instance
//! metadata (IMDSv2), in that order — refreshed by the SDK before they expire.

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::provider_config::ProviderConfig;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use aws_sdk_s3::config::SharedHttpClient;
use aws_sdk_s3::config::{Credentials, Region};
use tokio::sync::OnceCell;

/// Static keys when both are given, the default chain otherwise. `http_client` serves the
/// chain's own calls (STS for web identity, the metadata endpoints).
pub(crate) fn provider(
    access_key_id: &str,
    secret_access_key: &str,
    region: &Region,
    http_client: SharedHttpClient,
) -> SharedCredentialsProvider {
    if !access_key_id.is_empty() && !secret_access_key.is_empty() {
        return SharedCredentialsProvider::new(Credentials::new(
            access_key_id,
            secret_access_key,
            None,
            None,
            "frameos",
        ));
    }
    tracing::info!("s3 credentials come from the aws default provider chain");
    SharedCredentialsProvider::new(DefaultChain {
        region: region.clone(),
        config: ProviderConfig::default()
            .with_region(Some(region.clone()))
            .with_http_client(http_client),
        chain: OnceCell::new(),
    })
}

/// The default chain, built on first use: building it is async (it reads profile files), while
/// a store is made synchronously from its configuration.
#[derive(Debug)]
struct DefaultChain {
    region: Region,
    config: ProviderConfig,
    chain: OnceCell<DefaultCredentialsChain>,
}

impl ProvideCredentials for DefaultChain {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            let chain = self
                .chain
                .get_or_init(|| {
                    DefaultCredentialsChain::builder()
                        .configure(self.config.clone())
                        .region(self.region.clone())
                        .build()
                })
                .await;
            chain.provide_credentials().await
        })
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    fn http_client() -> SharedHttpClient {
        aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https()
    }

    async fn resolve(access_key_id: &str, secret: &str) -> Credentials {
        provider(
            access_key_id,
            secret,
            &Region::new("eu-west-1"),
            http_client(),
        )
        .provide_credentials()
        .await
        .expect("credentials")
    }

    #[tokio::test]
    async fn configured_keys_are_used_as_they_are() {
        let credentials = resolve("AKIDSTATIC", "static-secret").await;
        assert_eq!(credentials.access_key_id(), "AKIDSTATIC");
        assert_eq!(credentials.secret_access_key(), "static-secret");
    }

    const TEST: &str =
        "credentials::tests::without_keys_the_chain_reads_the_environment_then_the_profile";

    /// Runs this test again in a child process with `env` (the chain reads the process
    /// environment, which a test must not change under the others' feet); the child checks
    /// that the chain resolves `expected` (access key id, secret).
    fn in_child(expected: (&str, &str), env: &[(&str, &str)]) {
        let mut command = Command::new(std::env::current_exe().expect("test binary"));
        command
            .args(["--exact", TEST, "--nocapture"])
            .env(
                "FRAMEOS_CHAIN_CHILD_EXPECTS",
                format!("{}:{}", expected.0, expected.1),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true");
        for name in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_ROLE_ARN",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        ] {
            command.env_remove(name);
        }
        command.envs(env.iter().copied());
        let output = command.output().expect("child test runs");
        assert!(
            output.status.success() && String::from_utf8_lossy(&output.stdout).contains("1 passed"),
            "child expecting {expected:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    #[tokio::test]
    async fn without_keys_the_chain_reads_the_environment_then_the_profile() {
        // In the child: resolve with no configured keys and compare.
        if let Ok(expected) = std::env::var("FRAMEOS_CHAIN_CHILD_EXPECTS") {
            let credentials = resolve("", "").await;
            let got = format!(
                "{}:{}",
                credentials.access_key_id(),
                credentials.secret_access_key()
            );
            assert_eq!(got, expected);
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let credentials_file = dir.path().join("credentials");
        std::fs::write(
            &credentials_file,
            "[default]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = profile-secret\n",
        )
        .unwrap();
        let config_file = dir.path().join("config");
        std::fs::write(&config_file, "").unwrap();
        let files = [
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                credentials_file.to_str().unwrap(),
            ),
            ("AWS_CONFIG_FILE", config_file.to_str().unwrap()),
        ];
        in_child(("AKIDPROFILE", "profile-secret"), &files);
        let mut with_env = files.to_vec();
        with_env.extend([
            ("AWS_ACCESS_KEY_ID", "AKIDENV"),
            ("AWS_SECRET_ACCESS_KEY", "env-secret"),
        ]);
        in_child(("AKIDENV", "env-secret"), &with_env);
    }
}
