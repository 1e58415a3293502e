//! A real S3 protocol server (s3s-fs) on a loopback port, storing into a temporary directory.

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub struct S3Server {
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    pub root: tempfile::TempDir,
    task: JoinHandle<()>,
}

impl S3Server {
    pub async fn start() -> anyhow::Result<S3Server> {
        let root = tempfile::tempdir()?;
        let bucket = "frameos-packages".to_string();
        // s3s-fs keeps a bucket as a directory under its root.
        std::fs::create_dir(root.path().join(&bucket))?;
        let access_key = "frameos-test".to_string();
        let secret_key = uuid::Uuid::new_v4().simple().to_string();
        let fs =
            s3s_fs::FileSystem::new(root.path()).map_err(|e| anyhow::anyhow!("s3s-fs: {e:?}"))?;
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(
            access_key.clone(),
            secret_key.clone(),
        ));
        let service = builder.build();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let task = tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            while let Ok((socket, _)) = listener.accept().await {
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        Ok(S3Server {
            endpoint,
            bucket,
            access_key,
            secret_key,
            root,
            task,
        })
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}
