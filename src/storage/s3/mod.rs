//! S3-compatible object storage (AWS, MinIO, Ceph RGW, OSS, COS, R2, …) through `aws-sdk-s3`.
//!
//! The trait is synchronous; each call runs on a small private tokio runtime. Objects are
//! written whole with `If-None-Match: *`, so an existing object is never replaced, and objects
//! above [`MULTIPART_THRESHOLD`] go up in parts, several at once; a failed multipart upload is
//! aborted so no parts are left behind. Transient failures (timeouts, resets, 5xx, SlowDown)
//! are retried by the SDK's standard retry policy (exponential backoff with jitter); permanent
//! ones (missing bucket, bad credentials, access denied) are not, and come back as one clear
//! sentence. Credentials come from the standard AWS chain only (environment, shared profile,
//! web identity), never from the command line, and are never printed.

mod config;
mod errors;
mod lock;
mod multipart;

pub use config::S3Config;
pub use lock::{LockMode, ObjectLock};
pub use multipart::{MULTIPART_THRESHOLD, PART_BYTES_ENV};

use config::client_for;
use multipart::PartSizes;

use super::{validate_key, ObjectInfo, Storage, StorageError};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumAlgorithm;
use aws_sdk_s3::Client;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// How often a download that broke off mid-body is tried in all (the SDK retries only
/// failures before the body starts).
const BODY_ATTEMPTS: u32 = 4;

#[derive(Debug)]
pub struct S3Storage {
    client: Client,
    runtime: tokio::runtime::Runtime,
    bucket: String,
    prefix: String,
    endpoint: String,
    object_lock: Option<ObjectLock>,
    part_sizes: PartSizes,
    /// Whether the server honours `If-None-Match: *`; probed before the first write.
    conditional_writes: OnceLock<bool>,
    /// An existing object the probe may write again, named by whoever owns the layout.
    probe_key: OnceLock<String>,
}

impl S3Storage {
    pub fn new(cfg: S3Config) -> Result<Self, StorageError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| StorageError::Other {
                key: String::new(),
                message: format!("cannot start the S3 client: {e}"),
                transient: false,
            })?;
        let client = runtime.block_on(client_for(&cfg));
        let endpoint = cfg
            .endpoint
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL_S3").ok())
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .unwrap_or_else(|| "AWS".to_string());
        Ok(S3Storage {
            client,
            runtime,
            bucket: cfg.bucket,
            prefix: cfg.prefix,
            endpoint,
            object_lock: cfg.object_lock,
            part_sizes: PartSizes::from_env(),
            conditional_writes: OnceLock::new(),
            probe_key: OnceLock::new(),
        })
    }

    /// Whether puts with `If-None-Match: *` are refused on existing keys. Probed once by
    /// writing the probe object again, byte for byte, with the condition: a server that
    /// honours it refuses, and one that ignores it merely rewrites identical bytes.
    fn conditional_writes(&self) -> bool {
        *self.conditional_writes.get_or_init(|| {
            // Without a probe object (a repository being created) there is nothing to learn
            // from: the first write is that object itself.
            let Some(probe) = self.probe_key.get() else {
                return true;
            };
            let Ok(existing) = self.get(probe) else {
                return true;
            };
            let Ok(full) = self.full_key(probe) else {
                return true;
            };
            let res = self.runtime.block_on(
                self.client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(full)
                    .if_none_match("*")
                    .body(ByteStream::from(existing))
                    .send(),
            );
            let honoured = match &res {
                Err(SdkError::ServiceError(se)) => {
                    se.err().code() == Some("PreconditionFailed") || se.raw().status().as_u16() == 412
                }
                _ => false,
            };
            if !honoured {
                tracing::warn!(
                    "the S3 server at {} ignores If-None-Match: *; ivault checks for each object before writing it instead (not atomic between concurrent writers)",
                    self.endpoint
                );
            }
            honoured
        })
    }

    /// On a server without conditional writes: does the object exist already? Asked with a
    /// listing, not a HEAD request: the backup host's policy may read no object but `config`
    /// (docs/OPERATIONS.md). The key itself is the first key a listing of it as a prefix gives.
    async fn exists(&self, full: &str, key: &str) -> Result<bool, StorageError> {
        let page = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(full)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| self.error(key, e))?;
        Ok(page.contents().iter().any(|o| o.key() == Some(full)))
    }

    /// One download of the whole object or of `range` (first byte, length); `Ok(Err(_))` when
    /// the body broke off after the SDK's retries were over.
    async fn get_once(
        &self,
        full: &str,
        key: &str,
        range: Option<(u64, u64)>,
    ) -> Result<Result<Vec<u8>, StorageError>, StorageError> {
        let mut request = self.client.get_object().bucket(&self.bucket).key(full);
        if let Some((offset, len)) = range {
            request = request.range(format!("bytes={offset}-{}", offset + len - 1));
        }
        let out = match request.send().await {
            Ok(out) => out,
            // A range that begins at or after the end of the object: nothing to read.
            Err(SdkError::ServiceError(se))
                if range.is_some() && se.raw().status().as_u16() == 416 =>
            {
                return Ok(Ok(Vec::new()))
            }
            Err(e) => return Err(self.error(key, e)),
        };
        // Straight into one buffer of the announced size: collecting the body first and
        // joining its pieces would copy every pack twice more.
        let mut data = Vec::with_capacity(out.content_length().unwrap_or(0).max(0) as usize);
        let partial = out.content_range().is_some();
        let read = out.body.into_async_read().read_to_end(&mut data).await;
        Ok(match read {
            // A server that ignores the Range header sends the whole object.
            Ok(_) => match range {
                Some((offset, len)) if !partial => Ok(super::slice_of(data, offset, len)),
                _ => Ok(data),
            },
            Err(e) => Err(StorageError::Other {
                key: key.to_string(),
                message: format!("the download from {} broke off: {e}", self.endpoint),
                transient: true,
            }),
        })
    }

    /// A download, tried again when the body breaks off.
    fn download(&self, key: &str, range: Option<(u64, u64)>) -> Result<Vec<u8>, StorageError> {
        let full = self.full_key(key)?;
        self.runtime.block_on(async {
            let mut attempt = 1;
            loop {
                match self.get_once(&full, key, range).await? {
                    Err(broke_off) if attempt >= BODY_ATTEMPTS => return Err(broke_off),
                    Err(broke_off) => {
                        tracing::debug!("{broke_off}; trying again");
                        tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                        attempt += 1;
                    }
                    Ok(data) => return Ok(data),
                }
            }
        })
    }

    /// What every object key in the bucket starts with: the prefix and a `/`, or nothing.
    fn key_base(&self) -> String {
        if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        }
    }

    fn full_key(&self, key: &str) -> Result<String, StorageError> {
        validate_key(key)?;
        Ok(format!("{}{key}", self.key_base()))
    }
}

impl Storage for S3Storage {
    fn location(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        let full = self.full_key(key)?;
        let conditional = self.conditional_writes();
        self.runtime.block_on(async {
            if !conditional && self.exists(&full, key).await? {
                return Err(StorageError::AlreadyExists(key.to_string()));
            }
            if data.len() > self.part_sizes.threshold {
                return self.put_multipart(&full, key, data, conditional).await;
            }
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&full)
                .set_if_none_match(conditional.then(|| "*".to_string()))
                .set_object_lock_mode(self.object_lock.map(|l| l.mode()))
                .set_object_lock_retain_until_date(self.object_lock.map(|l| l.retain_until()))
                // Locked writes must carry a checksum the server can see before the body.
                .set_checksum_algorithm(self.object_lock.map(|_| ChecksumAlgorithm::Crc32))
                .body(ByteStream::from(data.to_vec()))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.error(key, e))
        })
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        self.download(key, None)
    }

    fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>, StorageError> {
        if len == 0 {
            self.full_key(key)?;
            return Ok(Vec::new());
        }
        self.download(key, Some((offset, len)))
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        let base = self.key_base();
        let full_prefix = format!("{base}{prefix}");
        self.runtime.block_on(async {
            let mut out = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let page = self
                    .client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(&full_prefix)
                    .set_continuation_token(token.take())
                    .send()
                    .await
                    .map_err(|e| self.error(prefix, e))?;
                for o in page.contents() {
                    let Some(k) = o.key().and_then(|k| k.strip_prefix(&base)) else {
                        continue;
                    };
                    out.push(ObjectInfo {
                        key: k.to_string(),
                        size: o.size().unwrap_or(0).max(0) as u64,
                    });
                }
                match page.next_continuation_token() {
                    Some(t) if page.is_truncated().unwrap_or(false) => token = Some(t.to_string()),
                    _ => return Ok(out),
                }
            }
        })
    }

    /// Aborts multipart uploads under the prefix that a killed process left unfinished.
    fn set_probe_object(&self, key: &str) {
        let _ = self.probe_key.set(key.to_string());
    }

    fn sweep_incomplete(&self, older_than: Duration) -> Result<usize, StorageError> {
        self.abort_stale_uploads(older_than)
    }

    /// On a versioned bucket the current version itself is deleted, not hidden behind a
    /// delete marker: that frees the space, and a version still under Object Lock is refused
    /// (and stays listed) instead of vanishing from view while it is kept and billed.
    fn delete(&self, key: &str) -> Result<(), StorageError> {
        let full = self.full_key(key)?;
        self.runtime.block_on(async {
            let head = self
                .client
                .head_object()
                .bucket(&self.bucket)
                .key(&full)
                .send()
                .await;
            let version = match head {
                Ok(h) => h.version_id().filter(|v| *v != "null").map(str::to_string),
                Err(e) => match self.error(key, e) {
                    StorageError::NotFound(_) => return Ok(()),
                    other => return Err(other),
                },
            };
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(&full)
                .set_version_id(version)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.error(key, e))
        })
    }
}
