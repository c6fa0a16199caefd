//! moto's S3 server as a second, out-of-process S3 implementation for the tests. It does
//! what s3s-fs does not: Object Lock and listing multipart uploads. It does not check request
//! signatures, so credential tests run against s3s-fs. `scripts/test` installs it with pip.

use invoice_vault::storage::{S3Config, S3Storage};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    pub endpoint: String,
    child: Child,
}

impl Moto {
    /// Starts `python3 -m moto.server` on a free port of 127.0.0.1 and waits until it answers.
    pub fn start() -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "python3 is needed for the moto S3 server; run scripts/test, which installs it",
            );
        let mut moto = Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto's S3 server exited ({status}); install it with `pip install 'moto[server]'` or run scripts/test");
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto's S3 server did not start within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        moto
    }

    pub fn config(&self, bucket: &str, prefix: &str) -> S3Config {
        self.config_via(&self.endpoint, bucket, prefix)
    }

    /// A configuration that reaches this server through another endpoint (a fault proxy).
    pub fn config_via(&self, endpoint: &str, bucket: &str, prefix: &str) -> S3Config {
        S3Config {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            endpoint: Some(endpoint.to_string()),
            region: Some("us-east-1".into()),
            static_credentials: Some(("moto-access".into(), "moto-secret".into())),
            max_attempts: Some(2),
            ..Default::default()
        }
    }

    pub fn storage(&self, bucket: &str, prefix: &str) -> S3Storage {
        S3Storage::new(self.config(bucket, prefix)).unwrap()
    }

    /// A raw SDK client and a runtime to drive it, for setting up buckets and inspecting
    /// what ivault wrote.
    pub fn client(&self) -> (aws_sdk_s3::Client, tokio::runtime::Runtime) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "moto-access",
                "moto-secret",
                None,
                None,
                "test",
            ))
            .build();
        (aws_sdk_s3::Client::from_conf(conf), rt)
    }

    /// Creates a bucket, with Object Lock enabled or not.
    pub fn bucket(&self, name: &str, object_lock: bool) {
        let (client, rt) = self.client();
        rt.block_on(
            client
                .create_bucket()
                .bucket(name)
                .object_lock_enabled_for_bucket(object_lock)
                .send(),
        )
        .unwrap();
    }

    /// Environment for an `ivault` process to use this server through the standard AWS chain.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "moto-access".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "moto-secret".to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
            ("IVAULT_S3_ENDPOINT", self.endpoint.clone()),
        ]
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
