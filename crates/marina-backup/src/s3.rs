//! An S3-compatible blob store (AWS S3, MinIO, Ceph RGW, …) through the
//! `object_store` crate, on the same rustls/ring TLS stack as the rest of
//! Marina.
//!
//! Two phases as the trait asks: `write` uploads `<key>.partial` (multipart,
//! hashing on the way), `commit` copies it server-side to `<key>` and removes
//! the partial object. A crash leaves at most a `.partial` object, which
//! `delete_prefix` removes with the rest of the backup.

use async_trait::async_trait;
use futures_util::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::{BlobError, BlobStore, Written};

/// Where and how to reach the bucket.
#[derive(Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub bucket: String,
    /// `https://s3.eu-west-1.amazonaws.com`, `http://127.0.0.1:9000`, …
    pub endpoint: String,
    #[serde(default = "default_region")]
    pub region: String,
    /// Key prefix inside the bucket (`marina/`).
    #[serde(default)]
    pub prefix: String,
    /// Credentials; the environment's `AWS_ACCESS_KEY_ID` /
    /// `AWS_SECRET_ACCESS_KEY` when absent.
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub secret_access_key: Option<String>,
}

impl std::fmt::Debug for S3Config {
    // Never prints the secret key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("prefix", &self.prefix)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

fn default_region() -> String {
    "us-east-1".into()
}

/// Objects in a bucket.
pub struct S3BlobStore {
    store: Box<dyn ObjectStore>,
    describe: String,
    prefix: String,
    /// The configuration with the credentials it was built with (for
    /// another host reaching the same bucket: `BlobStore::remote`).
    resolved: S3Config,
}

fn s3_err(context: &str) -> impl FnOnce(object_store::Error) -> BlobError + '_ {
    move |e| BlobError::Io {
        context: context.to_string(),
        source: std::io::Error::other(e.to_string()),
    }
}

impl S3BlobStore {
    pub fn new(c: &S3Config) -> Result<Self, BlobError> {
        // reqwest is built without a crypto provider: use ring, like the CLI.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let key = c
            .access_key_id
            .clone()
            .or_else(|| std::env::var("AWS_ACCESS_KEY_ID").ok())
            .unwrap_or_default();
        let secret = c
            .secret_access_key
            .clone()
            .or_else(|| std::env::var("AWS_SECRET_ACCESS_KEY").ok())
            .unwrap_or_default();
        let store = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(&c.bucket)
            .with_region(&c.region)
            .with_endpoint(&c.endpoint)
            .with_allow_http(c.endpoint.starts_with("http://"))
            .with_virtual_hosted_style_request(false)
            .with_access_key_id(&key)
            .with_secret_access_key(&secret)
            .build()
            .map_err(s3_err("configuring the S3 store"))?;
        Ok(S3BlobStore {
            store: Box::new(store),
            describe: format!("s3 bucket {} at {}", c.bucket, c.endpoint),
            prefix: c.prefix.trim_matches('/').to_string(),
            resolved: S3Config {
                access_key_id: Some(key),
                secret_access_key: Some(secret),
                ..c.clone()
            },
        })
    }

    fn path(&self, key: &str) -> Result<Path, BlobError> {
        crate::blob::check_key(key)?;
        Ok(if self.prefix.is_empty() {
            Path::from(key)
        } else {
            Path::from(format!("{}/{key}", self.prefix))
        })
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn remote(&self) -> Option<S3Config> {
        Some(self.resolved.clone())
    }

    async fn write(&self, key: &str, reader: &mut (dyn AsyncRead + Unpin + Send)) -> Result<Written, BlobError> {
        let partial = self.path(&format!("{key}.partial"))?;
        let upload = self
            .store
            .put_multipart(&partial)
            .await
            .map_err(s3_err("starting an upload"))?;
        let mut w = WriteMultipart::new(upload);
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 1024 * 1024];
        loop {
            let n = match reader.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    let _ = w.abort().await;
                    return Err(BlobError::Io {
                        context: format!("reading the data for {key}"),
                        source: e,
                    });
                }
            };
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            w.wait_for_capacity(4).await.map_err(s3_err("uploading"))?;
            w.write(&buf[..n]);
            size += n as u64;
        }
        w.finish().await.map_err(s3_err("finishing an upload"))?;
        Ok(Written {
            size,
            sha256: hex::encode(hasher.finalize()),
        })
    }

    async fn commit(&self, key: &str) -> Result<(), BlobError> {
        let (partial, done) = (self.path(&format!("{key}.partial"))?, self.path(key)?);
        match self.store.copy(&partial, &done).await {
            Ok(()) => {}
            // Committed before a crash: the same result.
            Err(object_store::Error::NotFound { .. }) if self.exists(key).await? => return Ok(()),
            Err(e) => return Err(s3_err("committing")(e)),
        }
        self.store
            .delete(&partial)
            .await
            .map_err(s3_err("removing the partial object"))
    }

    async fn read(&self, key: &str) -> Result<Box<dyn AsyncRead + Unpin + Send>, BlobError> {
        let path = self.path(key)?;
        let got = match self.store.get(&path).await {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => return Err(BlobError::NotFound(key.into())),
            Err(e) => return Err(s3_err("reading")(e)),
        };
        let stream = got.into_stream().map_err(|e| std::io::Error::other(e.to_string()));
        Ok(Box::new(tokio_util::io::StreamReader::new(stream)))
    }

    async fn exists(&self, key: &str) -> Result<bool, BlobError> {
        match self.store.head(&self.path(key)?).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(s3_err("checking an object")(e)),
        }
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<(), BlobError> {
        let base = self.path(prefix)?;
        let listed: Vec<Path> = self
            .store
            .list(Some(&base))
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .map_err(s3_err("listing"))?;
        // `list` is by path segment; a key that is itself an object is listed
        // by its parent, so remove it directly too.
        let mut all = listed;
        if self.exists(prefix).await? {
            all.push(base);
        }
        for p in all {
            match self.store.delete(&p).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(s3_err("deleting")(e)),
            }
        }
        Ok(())
    }
}
