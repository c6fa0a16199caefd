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

use super::{validate_key, ObjectInfo, Storage, StorageError};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ObjectLockMode,
};
use aws_sdk_s3::Client;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// Objects larger than this are uploaded in parts.
pub const MULTIPART_THRESHOLD: usize = 16 * 1024 * 1024;
const PART_SIZE: usize = 8 * 1024 * 1024;
const PARTS_IN_FLIGHT: usize = 4;

/// Where and how to reach a bucket.
#[derive(Debug, Clone, Default)]
pub struct S3Config {
    pub bucket: String,
    /// Key prefix inside the bucket, without leading or trailing `/` (may be empty).
    pub prefix: String,
    /// Custom endpoint, e.g. `http://127.0.0.1:9000`; `None` uses AWS or `AWS_ENDPOINT_URL*`.
    pub endpoint: Option<String>,
    /// Region; `None` uses the AWS chain, then `us-east-1`.
    pub region: Option<String>,
    /// Named profile from the shared AWS config files.
    pub profile: Option<String>,
    /// Access key and secret for embedding and tests; the CLI always uses the AWS chain.
    pub static_credentials: Option<(String, String)>,
    /// Attempts per request, including the first (default 5).
    pub max_attempts: Option<u32>,
    /// Write every object under this Object Lock retention.
    pub object_lock: Option<ObjectLock>,
}

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
    fn mode(&self) -> ObjectLockMode {
        match self.mode {
            LockMode::Governance => ObjectLockMode::Governance,
            LockMode::Compliance => ObjectLockMode::Compliance,
        }
    }

    /// Retention runs from the time of each write.
    fn retain_until(&self) -> DateTime {
        let until =
            std::time::SystemTime::now() + Duration::from_secs(u64::from(self.days) * 24 * 60 * 60);
        DateTime::from(until)
    }
}

impl S3Config {
    /// Parses `s3://bucket[/prefix]`.
    pub fn from_url(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{url} is not an s3:// URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid_bucket {
            return Err(format!(
                "{url}: {bucket:?} is not a valid bucket name (3 to 63 lowercase letters, digits, '-' or '.'); write s3://bucket/prefix"
            ));
        }
        let prefix = prefix.trim_matches('/').to_string();
        if prefix.split('/').any(|p| p == "." || p == "..") {
            return Err(format!("{url}: the prefix may not contain . or .. parts"));
        }
        Ok(S3Config {
            bucket: bucket.to_string(),
            prefix,
            ..Default::default()
        })
    }
}

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
    /// Whether the server honours `If-None-Match: *`; probed before the first write.
    conditional_writes: OnceLock<bool>,
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
            conditional_writes: OnceLock::new(),
        })
    }

    /// Fails unless the bucket has Object Lock enabled: asked for before anything is written.
    pub fn require_object_lock(&self) -> Result<(), StorageError> {
        let bucket = &self.bucket;
        let endpoint = &self.endpoint;
        let not_enabled = || {
            StorageError::Other {
            key: String::new(),
            message: format!(
                "bucket {bucket} at {endpoint} does not have Object Lock enabled; enable it on the bucket (see docs/OPERATIONS.md) or leave out --object-lock-days"
            ),
            transient: false,
        }
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

    /// Whether puts with `If-None-Match: *` are refused on existing keys. Probed once by
    /// writing the repository's `config` again, byte for byte, with the condition: a server
    /// that honours it refuses, and one that ignores it merely rewrites identical bytes.
    fn conditional_writes(&self) -> bool {
        *self.conditional_writes.get_or_init(|| {
            let Ok(config) = self.get(crate::repo::config::CONFIG_KEY) else {
                // No repository yet (init): the first write is `config` itself.
                return true;
            };
            let Ok(full) = self.full_key(crate::repo::config::CONFIG_KEY) else {
                return true;
            };
            let res = self.runtime.block_on(
                self.client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(full)
                    .if_none_match("*")
                    .body(ByteStream::from(config))
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

    /// On a server without conditional writes: does the object exist already?
    async fn exists(&self, full: &str, key: &str) -> Result<bool, StorageError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(full)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => match self.error(key, e) {
                StorageError::NotFound(_) => Ok(false),
                other => Err(other),
            },
        }
    }

    /// One download; `Ok(Err(_))` when the body broke off after the SDK's retries were over.
    async fn get_once(
        &self,
        full: &str,
        key: &str,
    ) -> Result<Result<Vec<u8>, StorageError>, StorageError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(full)
            .send()
            .await
            .map_err(|e| self.error(key, e))?;
        // Straight into one buffer of the announced size: collecting the body first and
        // joining its pieces would copy every pack twice more.
        let mut data = Vec::with_capacity(out.content_length().unwrap_or(0).max(0) as usize);
        let read = out.body.into_async_read().read_to_end(&mut data).await;
        Ok(match read {
            Ok(_) => Ok(data),
            Err(e) => Err(StorageError::Other {
                key: key.to_string(),
                message: format!("the download from {} broke off: {e}", self.endpoint),
                transient: true,
            }),
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

    fn error<E: ProvideErrorMetadata>(
        &self,
        key: &str,
        e: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> StorageError {
        classify(key, &self.bucket, &self.endpoint, e)
    }

    async fn put_multipart(
        &self,
        full: &str,
        key: &str,
        data: &[u8],
        conditional: bool,
    ) -> Result<(), StorageError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(full)
            .set_object_lock_mode(self.object_lock.map(|l| l.mode()))
            .set_object_lock_retain_until_date(self.object_lock.map(|l| l.retain_until()))
            .send()
            .await
            .map_err(|e| self.error(key, e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_string();
        let result = self
            .upload_parts(full, key, &upload_id, data, conditional)
            .await;
        if result.is_err() {
            // Parts of an unfinished upload are billed and invisible: never leave them.
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(full)
                .upload_id(&upload_id)
                .send()
                .await;
        }
        result
    }

    async fn upload_parts(
        &self,
        full: &str,
        key: &str,
        upload_id: &str,
        data: &[u8],
        conditional: bool,
    ) -> Result<(), StorageError> {
        let chunks: Vec<(i32, &[u8])> = data
            .chunks(PART_SIZE)
            .enumerate()
            .map(|(i, c)| (i as i32 + 1, c))
            .collect();
        let mut parts = Vec::with_capacity(chunks.len());
        for group in chunks.chunks(PARTS_IN_FLIGHT) {
            let mut in_flight = tokio::task::JoinSet::new();
            for (n, chunk) in group {
                let req = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(full)
                    .upload_id(upload_id)
                    .part_number(*n)
                    .body(ByteStream::from(chunk.to_vec()));
                let n = *n;
                in_flight.spawn(async move { (n, req.send().await) });
            }
            while let Some(joined) = in_flight.join_next().await {
                let (n, res) = joined.map_err(|e| StorageError::Other {
                    key: key.to_string(),
                    message: format!("an upload task failed: {e}"),
                    transient: false,
                })?;
                let out = res.map_err(|e| self.error(key, e))?;
                parts.push(
                    CompletedPart::builder()
                        .part_number(n)
                        .set_e_tag(out.e_tag().map(str::to_string))
                        .build(),
                );
            }
        }
        // Parts finish in any order; the completion request lists them in order.
        parts.sort_by_key(|p| p.part_number());
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(full)
            .upload_id(upload_id)
            .set_if_none_match(conditional.then(|| "*".to_string()))
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| self.error(key, e))?;
        Ok(())
    }
}

async fn client_for(cfg: &S3Config) -> Client {
    use aws_config::retry::RetryConfig;
    use aws_config::timeout::TimeoutConfig;
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(cfg.max_attempts.unwrap_or(5))
                .with_initial_backoff(Duration::from_millis(200)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .operation_attempt_timeout(Duration::from_secs(120))
                .build(),
        );
    if let Some(p) = &cfg.profile {
        loader = loader.profile_name(p);
    }
    if let Some(r) = &cfg.region {
        loader = loader.region(aws_config::Region::new(r.clone()));
    }
    if let Some((ak, sk)) = &cfg.static_credentials {
        loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
            ak, sk, None, None, "ivault",
        ));
    }
    let shared = loader.load().await;
    let mut b = aws_sdk_s3::config::Builder::from(&shared);
    if shared.region().is_none() {
        b = b.region(aws_config::Region::new("us-east-1"));
    }
    let custom = cfg.endpoint.is_some()
        || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
        || std::env::var_os("AWS_ENDPOINT_URL").is_some();
    if let Some(e) = &cfg.endpoint {
        b = b.endpoint_url(e);
    }
    // Self-hosted servers rarely have per-bucket DNS names: path style by default there.
    if custom {
        b = b.force_path_style(true);
    }
    Client::from_conf(b.build())
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
            if data.len() > MULTIPART_THRESHOLD {
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
        let full = self.full_key(key)?;
        self.runtime.block_on(async {
            let mut attempt = 1;
            loop {
                match self.get_once(&full, key).await? {
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
    fn sweep_incomplete(&self, older_than: Duration) -> Result<usize, StorageError> {
        let cutoff = std::time::SystemTime::now() - older_than;
        let prefix = self.key_base();
        self.runtime.block_on(async {
            let mut stale = Vec::new();
            let (mut key_marker, mut id_marker) = (None, None);
            loop {
                let page = match self
                    .client
                    .list_multipart_uploads()
                    .bucket(&self.bucket)
                    .prefix(&prefix)
                    .set_key_marker(key_marker.take())
                    .set_upload_id_marker(id_marker.take())
                    .send()
                    .await
                {
                    Ok(page) => page,
                    // Servers without multipart listing have nothing this could clean.
                    Err(SdkError::ServiceError(se)) if se.raw().status().as_u16() == 501 => {
                        return Ok(0)
                    }
                    Err(e) => return Err(self.error("", e)),
                };
                for u in page.uploads() {
                    let old = u
                        .initiated()
                        .and_then(|t| std::time::SystemTime::try_from(*t).ok())
                        .is_some_and(|t| t <= cutoff);
                    if let (true, Some(k), Some(id)) = (old, u.key(), u.upload_id()) {
                        stale.push((k.to_string(), id.to_string()));
                    }
                }
                if !page.is_truncated().unwrap_or(false) {
                    break;
                }
                key_marker = page.next_key_marker().map(str::to_string);
                id_marker = page.next_upload_id_marker().map(str::to_string);
                if key_marker.is_none() {
                    break;
                }
            }
            for (k, id) in &stale {
                let aborted = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(k)
                    .upload_id(id)
                    .send()
                    .await
                    .map_err(|e| self.error(k, e));
                // Gone meanwhile (finished or aborted by another run) is as good as aborted.
                match aborted {
                    Ok(_) | Err(StorageError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(stale.len())
        })
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        let full = self.full_key(key)?;
        self.runtime.block_on(async {
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(&full)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.error(key, e))
        })
    }
}
