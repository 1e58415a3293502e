//! The REST error body, `{"error": {"code", "message"}}`, and its conversions.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use frameos_core::error::ERROR_CODE_METADATA;
use frameos_core::{Error, ErrorCode};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::schema::{ObjectBuilder, Type};

/// A failed request, answered with the code's HTTP status and the documented body.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError(Error::new(code, message))
    }

    pub fn code(&self) -> ErrorCode {
        self.0.code
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.0.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        ApiError(error)
    }
}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        let error = frameos_proto::status::from_status(&status);
        if error.code.http_status() >= 500 {
            // Client mistakes are the client's business; these are ours to look into.
            tracing::warn!(code = %error.code, grpc_code = ?status.code(), message = %error.message, "control plane call failed");
        }
        // Without our code in metadata the status came from the transport ("tcp connect error"):
        // say what could not be reached.
        if status.metadata().get(ERROR_CODE_METADATA).is_none()
            && error.code == ErrorCode::Unavailable
        {
            return ApiError::new(
                ErrorCode::Unavailable,
                format!("the control plane is unavailable: {}", error.message),
            );
        }
        ApiError(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), Json(ErrorBody::from(self.0))).into_response()
    }
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code; clients branch on it.
    #[schema(schema_with = error_code_schema)]
    pub code: &'static str,
    /// For people; may change between releases.
    pub message: String,
}

impl From<Error> for ErrorBody {
    fn from(error: Error) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code: error.code.as_str(),
                message: error.message,
            },
        }
    }
}

/// The code is an enum in the document, listing every code the platform can answer with.
fn error_code_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(ErrorCode::ALL.iter().map(|code| code.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn every_code_answers_with_its_status_and_the_documented_body() {
        for code in ErrorCode::ALL {
            let response = ApiError::new(*code, "it broke").into_response();
            assert_eq!(response.status().as_u16(), code.http_status(), "{code}");
            let body = body_of(response).await;
            assert_eq!(
                body,
                serde_json::json!({"error": {"code": code.as_str(), "message": "it broke"}})
            );
        }
    }

    #[tokio::test]
    async fn grpc_statuses_keep_their_public_code() {
        let status = frameos_proto::status::to_status(&Error::new(ErrorCode::SlugTaken, "taken"));
        let response = ApiError::from(status).into_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(body_of(response).await["error"]["code"], "slug_taken");

        let transport = tonic::Status::unavailable("connection refused");
        let response = ApiError::from(transport).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = body_of(response).await;
        assert_eq!(body["error"]["code"], "unavailable");
        assert_eq!(
            body["error"]["message"],
            "the control plane is unavailable: connection refused"
        );
    }
}
