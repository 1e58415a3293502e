//! A small client of the REST API (API.md §2) for the subcommands.

use std::fmt;

use anyhow::Context;
use serde_json::Value;

#[derive(Clone, Debug, clap::Args)]
pub struct Connection {
    /// Base URL of the gateway.
    #[arg(
        long,
        env = "FRAMEOS_API_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub api_url: String,
    /// Your API key.
    #[arg(long, env = "FRAMEOS_API_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

impl Client {
    pub fn new(connection: &Connection) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: connection.api_url.trim_end_matches('/').to_string(),
            key: connection.api_key.clone(),
        }
    }

    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> anyhow::Result<reqwest::RequestBuilder> {
        let builder = self.http.request(method, format!("{}{path}", self.base));
        Ok(match &self.key {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        })
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.request(reqwest::Method::GET, path)?).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(self.request(reqwest::Method::PATCH, path)?.json(body))
            .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(self.request(reqwest::Method::POST, path)?.json(body))
            .await
    }

    pub async fn post_with_key(
        &self,
        path: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> anyhow::Result<Value> {
        let mut request = self.request(reqwest::Method::POST, path)?.json(body);
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        self.send(request).await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.request(reqwest::Method::DELETE, path)?)
            .await
    }

    /// A streaming GET (Server-Sent Events); errors are read like any other answer.
    pub async fn stream(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        let response = self
            .request(reqwest::Method::GET, path)?
            .send()
            .await
            .with_context(|| format!("cannot reach the FrameOS API at {}", self.base))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(api_error(response).await)
    }

    pub async fn post_package(&self, path: &str, package: Vec<u8>) -> anyhow::Result<Value> {
        let request = self
            .request(reqwest::Method::POST, path)?
            .header("content-type", "application/gzip")
            .body(package);
        self.send(request).await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the FrameOS API at {}", self.base))?;
        if response.status().is_success() {
            return Ok(response.json().await.unwrap_or(Value::Null));
        }
        Err(api_error(response).await)
    }
}

/// An error answer of the API (`{"error": {"code", "message"}}`), with its HTTP status.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl ApiError {
    /// Whether `error` is (or was caused by) an answer with this HTTP status.
    pub fn has_status(error: &anyhow::Error, status: u16) -> bool {
        error.chain().any(|c| {
            c.downcast_ref::<ApiError>()
                .is_some_and(|e| e.status == status)
        })
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}, HTTP {})", self.message, self.code, self.status)
    }
}

impl std::error::Error for ApiError {}

/// The API's error shape as a typed error.
async fn api_error(response: reqwest::Response) -> anyhow::Error {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let (code, message) = match (
        body["error"]["code"].as_str(),
        body["error"]["message"].as_str(),
    ) {
        (Some(code), Some(message)) => (code.to_string(), message.to_string()),
        _ => (
            "http_error".to_string(),
            format!("the API answered HTTP {status}"),
        ),
    };
    anyhow::Error::new(ApiError {
        status: status.as_u16(),
        code,
        message,
    })
}
