//! `frameos_core::Error` <-> `tonic::Status`, keeping the public error code intact.

use frameos_core::error::ERROR_CODE_METADATA;
use frameos_core::{Error, ErrorCode};
use tonic::metadata::MetadataValue;

/// Status for an error: the gRPC code from the enum, the public code in metadata.
pub fn to_status(error: &Error) -> tonic::Status {
    let mut status = tonic::Status::new(
        tonic::Code::from_i32(error.code.grpc_code()),
        error.message.clone(),
    );
    status.metadata_mut().insert(
        ERROR_CODE_METADATA,
        MetadataValue::from_static(error.code.as_str()),
    );
    status
}

/// The error a status stands for. A status without our metadata (a transport failure, a
/// foreign server) is mapped by its gRPC code alone.
pub fn from_status(status: &tonic::Status) -> Error {
    let code = status
        .metadata()
        .get(ERROR_CODE_METADATA)
        .and_then(|v| v.to_str().ok())
        .and_then(ErrorCode::parse)
        .unwrap_or_else(|| fallback_code(status.code()));
    let message = if status.message().is_empty() {
        code.as_str().replace('_', " ")
    } else {
        status.message().to_string()
    };
    Error::new(code, message)
}

fn fallback_code(code: tonic::Code) -> ErrorCode {
    use tonic::Code;
    match code {
        Code::InvalidArgument | Code::OutOfRange => ErrorCode::InvalidRequest,
        Code::Unauthenticated => ErrorCode::Unauthenticated,
        Code::PermissionDenied => ErrorCode::PermissionDenied,
        Code::NotFound => ErrorCode::NotFound,
        Code::AlreadyExists | Code::Aborted | Code::FailedPrecondition => ErrorCode::Conflict,
        Code::ResourceExhausted => ErrorCode::PayloadTooLarge,
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => ErrorCode::Unavailable,
        _ => ErrorCode::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_survives_a_round_trip() {
        for code in ErrorCode::ALL {
            let error = Error::new(*code, "boom");
            let back = from_status(&to_status(&error));
            assert_eq!(back, error);
        }
    }

    #[test]
    fn foreign_statuses_map_by_grpc_code() {
        let error = from_status(&tonic::Status::unavailable("connection refused"));
        assert_eq!(error.code, ErrorCode::Unavailable);
        assert_eq!(error.message, "connection refused");
    }
}
