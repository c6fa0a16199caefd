//! S3 failures as storage errors: one clear sentence each, marked transient or permanent.

use super::S3Storage;
use crate::storage::StorageError;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

impl S3Storage {
    pub(super) fn error<E: ProvideErrorMetadata>(
        &self,
        key: &str,
        e: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> StorageError {
        classify(key, &self.bucket, &self.endpoint, e)
    }
}

/// One sentence for an S3 failure; permanent failures say what to check.
fn classify<E: ProvideErrorMetadata>(
    key: &str,
    bucket: &str,
    endpoint: &str,
    e: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> StorageError {
    let other = |message: String, transient: bool| StorageError::Other {
        key: key.to_string(),
        message,
        transient,
    };
    match &e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => other(
            format!("cannot reach the S3 endpoint {endpoint}; check the URL, the network and that the server is running"),
            true,
        ),
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            match (se.err().code(), status) {
                (Some("NoSuchBucket"), _) => other(
                    format!("bucket {bucket} does not exist at {endpoint}; create it or correct the URL"),
                    false,
                ),
                (Some("NoSuchKey"), _) | (_, 404) => StorageError::NotFound(key.to_string()),
                (Some("PreconditionFailed"), _) | (_, 412) => StorageError::AlreadyExists(key.to_string()),
                (Some("InvalidAccessKeyId" | "SignatureDoesNotMatch" | "InvalidToken" | "ExpiredToken"), _) => other(
                    format!("{endpoint} rejected the credentials for bucket {bucket}; check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the profile"),
                    false,
                ),
                (Some("AccessDenied"), _) | (_, 403) => StorageError::PermissionDenied(format!(
                    "{key} in bucket {bucket} (the credentials lack permission; see docs/OPERATIONS.md for the bucket policy)"
                )),
                (code, s) if s >= 500 || code == Some("SlowDown") => {
                    other(format!("the S3 server answered {s} {}", code.unwrap_or("")), true)
                }
                (code, s) => other(format!("the S3 server answered {s} {}", code.unwrap_or("")), false),
            }
        }
        _ => other(format!("S3 request failed: {}", e.to_string().replace('\n', " ")), false),
    }
}
