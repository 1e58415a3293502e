//! Why a package was refused, with the public error code of each reason.

use frameos_core::ErrorCode;

/// Everything that can go wrong while opening, inspecting or extracting a package.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the package is {size} bytes compressed; the limit is {limit} bytes")]
    CompressedTooLarge { size: u64, limit: u64 },

    #[error("the package expands to more than {limit} bytes; that is the limit")]
    UncompressedTooLarge { limit: u64 },

    #[error("the package holds more than {limit} files and directories; that is the limit")]
    TooManyEntries { limit: usize },

    #[error("the package is not a well-formed gzip-compressed tar archive: {0}")]
    Malformed(String),

    #[error("unsafe archive entry \"{path}\": {reason}")]
    Unsafe { path: String, reason: String },

    #[error("agent.json is missing from the root of the package")]
    ManifestMissing,

    #[error("invalid agent.json: {0}")]
    ManifestSyntax(String),

    #[error("invalid agent.json field \"{field}\": {reason}")]
    Manifest { field: String, reason: String },

    #[error("dependency \"{slug}\": {reason}")]
    Dependency { slug: String, reason: String },

    #[error("manifest name \"{name}\" does not match the agent slug \"{slug}\"")]
    SlugMismatch { name: String, slug: String },

    #[error("the entrypoint \"{0}\" is not a regular file in the package")]
    EntrypointMissing(String),

    /// The extraction target is unusable: a caller bug, not the uploader's fault.
    #[error("cannot extract into {path}: {reason}")]
    Destination { path: String, reason: String },

    #[error("extraction failed at {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::CompressedTooLarge { .. }
            | Error::UncompressedTooLarge { .. }
            | Error::TooManyEntries { .. } => ErrorCode::PackageTooLarge,
            Error::Malformed(_) => ErrorCode::InvalidPackage,
            Error::Unsafe { .. } => ErrorCode::UnsafeArchive,
            Error::ManifestMissing
            | Error::ManifestSyntax(_)
            | Error::Manifest { .. }
            | Error::SlugMismatch { .. }
            | Error::EntrypointMissing(_) => ErrorCode::InvalidManifest,
            Error::Dependency { .. } => ErrorCode::InvalidDependency,
            Error::Destination { .. } | Error::Io { .. } => ErrorCode::Internal,
        }
    }

    pub(crate) fn unsafe_entry(path: &str, reason: impl Into<String>) -> Self {
        Error::Unsafe {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn manifest(field: &str, reason: impl Into<String>) -> Self {
        Error::Manifest {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }
}

impl From<Error> for frameos_core::Error {
    fn from(error: Error) -> Self {
        frameos_core::Error::new(error.code(), error.to_string())
    }
}
