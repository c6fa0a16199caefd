//! Objects above [`MULTIPART_THRESHOLD`] go up in parts, several at once; unfinished uploads
//! are aborted, and the sweep aborts those a killed process left behind.

use super::S3Storage;
use crate::failpoint;
use crate::storage::StorageError;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use std::time::Duration;

/// Objects larger than this are uploaded in parts.
pub const MULTIPART_THRESHOLD: usize = 16 * 1024 * 1024;
const PART_SIZE: usize = 8 * 1024 * 1024;
const PARTS_IN_FLIGHT: usize = 4;
/// S3's smallest part but the last.
const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

/// Test hook, not for production use: `IVAULT_MULTIPART_PART_BYTES=N` (N at least 5 MiB)
/// uploads every object larger than N bytes in parts of N bytes. A backup's packs (about
/// 8 MiB) stay below [`MULTIPART_THRESHOLD`], so without it the tests' backups would never
/// upload in parts.
pub const PART_BYTES_ENV: &str = "IVAULT_MULTIPART_PART_BYTES";

/// Above which size objects go up in parts, and how large each part is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PartSizes {
    pub threshold: usize,
    pub part: usize,
}

impl PartSizes {
    /// The defaults, or what the test hook [`PART_BYTES_ENV`] asks for.
    pub(super) fn from_env() -> PartSizes {
        let asked = std::env::var(PART_BYTES_ENV)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n >= MIN_PART_SIZE);
        match asked {
            Some(n) => PartSizes {
                threshold: n,
                part: n,
            },
            None => PartSizes {
                threshold: MULTIPART_THRESHOLD,
                part: PART_SIZE,
            },
        }
    }
}

impl S3Storage {
    pub(super) async fn put_multipart(
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
            .chunks(self.part_sizes.part)
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
                failpoint::hit("part-uploaded");
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

    /// Aborts multipart uploads under the prefix that a killed process left unfinished.
    pub(super) fn abort_stale_uploads(&self, older_than: Duration) -> Result<usize, StorageError> {
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
                failpoint::hit("leftover-removed");
            }
            Ok(stale.len())
        })
    }
}
