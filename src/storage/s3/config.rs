//! Where a bucket is and how to reach it: `s3://` URLs and the SDK client.

use super::ObjectLock;
use aws_sdk_s3::Client;
use std::time::Duration;

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

pub(super) async fn client_for(cfg: &S3Config) -> Client {
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
