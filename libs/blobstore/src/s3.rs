//! Any S3-compatible object store through aws-sdk-s3.

use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use bytes::Bytes;

use crate::Error;

#[derive(Clone, Debug)]
pub struct S3Config {
    /// e.g. `https://<account>.r2.cloudflarestorage.com` or `http://127.0.0.1:9000`.
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: String,
    /// Static keys; when either is empty, the AWS default provider chain supplies credentials
    /// (environment, profile, web identity, container and instance metadata).
    pub access_key_id: String,
    pub secret_access_key: String,
    /// `http://host/bucket/key` instead of `http://bucket.host/key` (MinIO, most self-hosted stores).
    pub path_style: bool,
}

#[derive(Clone, Debug)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Store {
    pub fn new(config: &S3Config) -> Self {
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let region = Region::new(config.region.clone());
        let credentials = crate::credentials::provider(
            &config.access_key_id,
            &config.secret_access_key,
            &region,
            http_client.clone(),
        );
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(region)
            .credentials_provider(credentials)
            .force_path_style(config.path_style)
            .http_client(http_client);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        S3Store {
            client: aws_sdk_s3::Client::from_conf(builder.build()),
            bucket: config.bucket.clone(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub(crate) async fn put(&self, key: &str, body: Bytes) -> Result<(), Error> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/gzip")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| Error::S3(format!("put {key}: {}", e.into_service_error())))?;
        Ok(())
    }

    pub(crate) async fn get(&self, key: &str, limit: u64) -> Result<Bytes, Error> {
        let object = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                let e = e.into_service_error();
                if e.is_no_such_key() {
                    Error::NotFound {
                        key: key.to_string(),
                    }
                } else {
                    Error::S3(format!("get {key}: {e}"))
                }
            })?;
        let length = object.content_length().unwrap_or(0);
        if u64::try_from(length).unwrap_or(u64::MAX) > limit {
            return Err(Error::TooLarge {
                key: key.to_string(),
                limit,
            });
        }
        let body = object
            .body
            .collect()
            .await
            .map_err(|e| Error::S3(format!("read {key}: {e}")))?;
        let bytes = body.into_bytes();
        // The header could lie; the bound is on what we actually hold.
        if bytes.len() as u64 > limit {
            return Err(Error::TooLarge {
                key: key.to_string(),
                limit,
            });
        }
        Ok(bytes)
    }

    pub(crate) async fn check(&self) -> Result<(), Error> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| {
                Error::S3(format!(
                    "bucket {} unreachable: {}",
                    self.bucket,
                    e.into_service_error()
                ))
            })?;
        Ok(())
    }
}
