//! Object Lock: the retention every object is written under, and the check that the bucket
//! has Object Lock enabled.

use super::S3Storage;
use crate::storage::StorageError;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::DateTime;
use aws_sdk_s3::types::ObjectLockMode;
use std::time::Duration;

/// Object Lock retention for every object written: ransomware with the backup host's
/// credentials cannot delete or overwrite a locked object before its retention ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectLock {
    pub mode: LockMode,
    pub days: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Users with `s3:BypassGovernanceRetention` may still delete early.
    Governance,
    /// Nobody, not even the account root, can delete before the retention ends.
    Compliance,
}

impl std::str::FromStr for LockMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "governance" => Ok(LockMode::Governance),
            "compliance" => Ok(LockMode::Compliance),
            _ => Err(format!("{s}: use governance or compliance")),
        }
    }
}

impl ObjectLock {
    pub(super) fn mode(&self) -> ObjectLockMode {
        match self.mode {
            LockMode::Governance => ObjectLockMode::Governance,
            LockMode::Compliance => ObjectLockMode::Compliance,
        }
    }

    /// Retention runs from the time of each write.
    pub(super) fn retain_until(&self) -> DateTime {
        let until =
            std::time::SystemTime::now() + Duration::from_secs(u64::from(self.days) * 24 * 60 * 60);
        DateTime::from(until)
    }
}

impl S3Storage {
    /// Fails unless the bucket has Object Lock enabled: asked for before anything is written.
    pub fn require_object_lock(&self) -> Result<(), StorageError> {
        let bucket = &self.bucket;
        let endpoint = &self.endpoint;
        let not_enabled = || StorageError::Other {
            key: String::new(),
            message: format!("bucket {bucket} at {endpoint} does not have Object Lock enabled"),
            transient: false,
        };
        let res = self.runtime.block_on(
            self.client
                .get_object_lock_configuration()
                .bucket(bucket)
                .send(),
        );
        match res {
            Ok(out) => {
                let enabled = out
                    .object_lock_configuration()
                    .and_then(|c| c.object_lock_enabled())
                    .is_some_and(|e| e.as_str() == "Enabled");
                if enabled {
                    Ok(())
                } else {
                    Err(not_enabled())
                }
            }
            Err(SdkError::ServiceError(se))
                if matches!(
                    se.err().code(),
                    Some(
                        "ObjectLockConfigurationNotFoundError"
                            | "NotImplemented"
                            | "InvalidRequest"
                    )
                ) || matches!(se.raw().status().as_u16(), 404 | 501)
                    && se.err().code() != Some("NoSuchBucket") =>
            {
                Err(not_enabled())
            }
            Err(e) => Err(self.error(bucket, e)),
        }
    }
}
