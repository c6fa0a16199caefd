//! A small S3-compatible server for the benchmark: s3s-fs (objects as files under a directory)
//! serving HTTP on 127.0.0.1, the same server the tests start in-process. Both ivault and
//! restic talk to it over TCP with their own S3 clients.
//!
//! Usage: s3_server ROOT PORT   (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY;
//! each directory under ROOT is a bucket)

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(root), Some(port)) = (args.next(), args.next()) else {
        eprintln!("usage: s3_server ROOT PORT");
        std::process::exit(2);
    };
    let access = std::env::var("AWS_ACCESS_KEY_ID")?;
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY")?;
    std::fs::create_dir_all(&root)?;
    let fs = s3s_fs::FileSystem::new(&root).map_err(|e| format!("{root}: {e:?}"))?;
    let mut builder = s3s::service::S3ServiceBuilder::new(fs);
    builder.set_auth(s3s::auth::SimpleAuth::from_single(access, secret));
    let service = builder.build();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port.parse::<u16>()?)).await?;
    eprintln!(
        "s3_server: serving {root} on http://{}",
        listener.local_addr()?
    );
    loop {
        let (socket, _) = listener.accept().await?;
        let conn = ConnBuilder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(socket), service.clone())
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}
