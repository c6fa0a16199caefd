//! A real S3 server for the tests: s3s-fs (an S3 implementation over a directory) serving
//! HTTP on 127.0.0.1, in this process, on its own runtime. Clients reach it over TCP exactly as
//! they would reach MinIO or AWS.

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use invoice_vault::storage::{S3Config, S3Storage};
use std::path::PathBuf;

pub const ACCESS_KEY: &str = "ivault-test-access";
pub const SECRET_KEY: &str = "ivault-test-secret-key";

/// A runtime for a test server and a listener on a free port of 127.0.0.1, with its URL.
pub fn listen_on_loopback() -> (tokio::runtime::Runtime, tokio::net::TcpListener, String) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    (runtime, listener, endpoint)
}

pub struct S3Server {
    pub endpoint: String,
    pub root: PathBuf,
    _dir: tempfile::TempDir,
    _runtime: tokio::runtime::Runtime,
}

impl S3Server {
    pub fn start() -> S3Server {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let (runtime, listener, endpoint) = listen_on_loopback();
        let fs = s3s_fs::FileSystem::new(&root).unwrap();
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
        runtime.spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        S3Server {
            endpoint,
            root,
            _dir: dir,
            _runtime: runtime,
        }
    }

    /// Creates a bucket (s3s-fs keeps each bucket as a directory).
    pub fn bucket(&self, name: &str) -> String {
        std::fs::create_dir_all(self.root.join(name)).unwrap();
        name.to_string()
    }

    pub fn config(&self, bucket: &str, prefix: &str) -> S3Config {
        S3Config {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            endpoint: Some(self.endpoint.clone()),
            region: Some("us-east-1".into()),
            static_credentials: Some((ACCESS_KEY.into(), SECRET_KEY.into())),
            max_attempts: Some(2),
            ..Default::default()
        }
    }

    pub fn storage(&self, bucket: &str, prefix: &str) -> S3Storage {
        S3Storage::new(self.config(bucket, prefix)).unwrap()
    }

    /// Environment for an `ivault` process to use this server through the standard AWS chain.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
            ("IVAULT_S3_ENDPOINT", self.endpoint.clone()),
        ]
    }
}
