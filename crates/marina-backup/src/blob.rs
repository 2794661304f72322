//! Blob stores: objects written in two phases. `write` stores the bytes where
//! no reader can mistake them for a finished object (`<key>.partial` in a
//! directory, an uncompleted multipart upload in S3) and returns their size
//! and SHA-256; `commit` makes them visible under `key`. A crash between the
//! two leaves only something `delete_prefix` removes.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// Blob store failures.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("invalid object key {0:?}")]
    BadKey(String),
    #[error("object {0} does not exist")]
    NotFound(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BlobError {
    let context = context.into();
    move |source| BlobError::Io { context, source }
}

/// What `write` stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub size: u64,
    /// Lower-case hex SHA-256 of the bytes.
    pub sha256: String,
}

/// A place for backup objects.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Where objects go (for logs and docs).
    fn describe(&self) -> String;
    /// How another host reaches the same objects (an S3-compatible
    /// bucket, with credentials); `None`: only this machine can (a local
    /// directory).
    fn remote(&self) -> Option<crate::S3Config> {
        None
    }
    /// Stores everything `reader` yields under `key`, not yet visible.
    async fn write(&self, key: &str, reader: &mut (dyn AsyncRead + Unpin + Send)) -> Result<Written, BlobError>;
    /// Makes a written object visible under `key`.
    async fn commit(&self, key: &str) -> Result<(), BlobError>;
    /// Reads a visible object.
    async fn read(&self, key: &str) -> Result<Box<dyn AsyncRead + Unpin + Send>, BlobError>;
    /// Whether a visible object exists.
    async fn exists(&self, key: &str) -> Result<bool, BlobError>;
    /// Removes every object (visible or not) under `prefix`.
    async fn delete_prefix(&self, prefix: &str) -> Result<(), BlobError>;
}

/// Keys are relative paths of plain segments: `[A-Za-z0-9_.-]`, no `..`.
pub(crate) fn check_key(key: &str) -> Result<(), BlobError> {
    let ok = !key.is_empty()
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        });
    if ok { Ok(()) } else { Err(BlobError::BadKey(key.into())) }
}

/// How much a local write leaves to the kernel before it starts writing it
/// back: one piece of the compressor's output, so each step is one modest
/// request. Under the benchmark's write load, steps of 8 MiB cost the
/// primary more than steps of 1 MiB in the same run (0.93 x against 0.95 x
/// its commits, 6 backups each), and backups whose bytes were not written at
/// all read 0.98 x against 0.95 x in another: single runs, each within about
/// 2% noise, but both say the disk the databases sync to is part of a
/// backup's cost, and that bursts on it cost more.
const FLUSH_EVERY: u64 = crate::compress::WRITE as u64;

/// Starts write-back of `len` bytes of `file` from `offset` without waiting
/// for it and without a journal commit (`sync_file_range`, as PostgreSQL's
/// `backend_flush_after` does): the object reaches the disk in small steady
/// steps, and the databases' own fsyncs neither wait behind one large burst
/// nor behind commits forced by the backup (an `fdatasync` every 8 MiB did
/// that: each one commits the file system's journal the databases share).
/// Best effort: durability comes from the `sync_all` at the end.
async fn start_writeback(file: &tokio::fs::File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // The call may wait for room in the disk's queue: off the runtime's threads.
    let _ = tokio::task::spawn_blocking(move || {
        // SAFETY: `fd` stays open: the caller awaits this before using or
        // dropping `file`; no memory is passed.
        unsafe { libc::sync_file_range(fd, offset as i64, len as i64, libc::SYNC_FILE_RANGE_WRITE) }
    })
    .await;
}

/// Objects as files under a directory (default `<data-dir>/backups`).
pub struct LocalBlobStore {
    root: PathBuf,
}

impl LocalBlobStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalBlobStore { root: root.into() }
    }

    fn path(&self, key: &str) -> Result<PathBuf, BlobError> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    fn partial(path: &Path) -> PathBuf {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".partial");
        path.with_file_name(name)
    }
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    fn describe(&self) -> String {
        format!("directory {}", self.root.display())
    }

    async fn write(&self, key: &str, reader: &mut (dyn AsyncRead + Unpin + Send)) -> Result<Written, BlobError> {
        let path = self.path(key)?;
        let partial = Self::partial(&path);
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(io(format!("creating {}", dir.display())))?;
        }
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .await
            .map_err(io(format!("creating {}", partial.display())))?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut flushed = 0u64;
        // One read takes a whole piece of the compressor's output.
        let mut buf = vec![0u8; crate::compress::WRITE];
        loop {
            let n = reader
                .read(&mut buf)
                .await
                .map_err(io(format!("reading the data for {key}")))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n])
                .await
                .map_err(io(format!("writing {}", partial.display())))?;
            size += n as u64;
            if size - flushed >= FLUSH_EVERY {
                file.flush()
                    .await
                    .map_err(io(format!("writing {}", partial.display())))?;
                start_writeback(&file, flushed, size - flushed).await;
                flushed = size;
            }
        }
        file.sync_all()
            .await
            .map_err(io(format!("syncing {}", partial.display())))?;
        Ok(Written {
            size,
            sha256: hex::encode(hasher.finalize()),
        })
    }

    async fn commit(&self, key: &str) -> Result<(), BlobError> {
        let path = self.path(key)?;
        let partial = Self::partial(&path);
        match tokio::fs::rename(&partial, &path).await {
            Ok(()) => Ok(()),
            // Committed before a crash: the same result.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && path.is_file() => Ok(()),
            Err(e) => Err(io(format!("committing {}", path.display()))(e)),
        }
    }

    async fn read(&self, key: &str) -> Result<Box<dyn AsyncRead + Unpin + Send>, BlobError> {
        let path = self.path(key)?;
        match tokio::fs::File::open(&path).await {
            Ok(f) => Ok(Box::new(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(BlobError::NotFound(key.into())),
            Err(e) => Err(io(format!("opening {}", path.display()))(e)),
        }
    }

    async fn exists(&self, key: &str) -> Result<bool, BlobError> {
        Ok(self.path(key)?.is_file())
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<(), BlobError> {
        let path = self.path(prefix)?;
        match tokio::fs::remove_dir_all(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => tokio::fs::remove_file(&path)
                .await
                .map_err(io(format!("removing {}", path.display()))),
            Err(e) => Err(io(format!("removing {}", path.display()))(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn large_objects_are_written_back_in_steps_and_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::new(dir.path());
        // Several write-back steps and a partial last one.
        let data: Vec<u8> = (0..(2 * FLUSH_EVERY + 12_345)).map(|i| (i % 251) as u8).collect();
        let w = store.write("t/big", &mut &data[..]).await.unwrap();
        assert_eq!(w.size, data.len() as u64);
        assert_eq!(w.sha256, hex::encode(Sha256::digest(&data)));
        store.commit("t/big").await.unwrap();
        let mut back = Vec::new();
        store.read("t/big").await.unwrap().read_to_end(&mut back).await.unwrap();
        assert!(back == data, "read back whole");
    }

    #[tokio::test]
    async fn objects_appear_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::new(dir.path());
        let mut data: &[u8] = b"hello";
        let w = store.write("tn_1/bk_1/data.zst", &mut data).await.unwrap();
        assert_eq!(w.size, 5);
        assert_eq!(
            w.sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert!(
            !store.exists("tn_1/bk_1/data.zst").await.unwrap(),
            "not visible before commit"
        );
        assert!(matches!(
            store.read("tn_1/bk_1/data.zst").await,
            Err(BlobError::NotFound(_))
        ));
        store.commit("tn_1/bk_1/data.zst").await.unwrap();
        store.commit("tn_1/bk_1/data.zst").await.unwrap();
        let mut back = String::new();
        store
            .read("tn_1/bk_1/data.zst")
            .await
            .unwrap()
            .read_to_string(&mut back)
            .await
            .unwrap();
        assert_eq!(back, "hello");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("tn_1/bk_1/data.zst"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        store.delete_prefix("tn_1/bk_1").await.unwrap();
        assert!(!store.exists("tn_1/bk_1/data.zst").await.unwrap());
        store.delete_prefix("tn_1/bk_1").await.unwrap();
        for bad in ["", "../x", "a//b", "a/./b", "a b", "/abs"] {
            assert!(matches!(store.exists(bad).await, Err(BlobError::BadKey(_))), "{bad}");
        }
    }
}
