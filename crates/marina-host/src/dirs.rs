//! Directories and files on the host: fresh private scratch directories,
//! plain names, installing a prepared datadir, fetching a blob to a file.

use std::path::{Component, Path, PathBuf};

use marina_backup::{BlobStore, PipelineError, pipeline};
use marina_engine::backup as tools;

/// A file system failure on `p`, as a pipeline error.
pub(crate) fn io_err(what: &str, p: &Path) -> impl FnOnce(std::io::Error) -> PipelineError {
    let what = format!("{what} {}", p.display());
    move |e| PipelineError::Io(format!("{what}: {e}"))
}

/// `name` when it is one plain path component (no separator, not `.` or
/// `..`): callers name entries, never paths.
pub(crate) fn plain(name: &str) -> Result<&str, PipelineError> {
    let mut parts = Path::new(name).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(_)), None) if !name.contains('/') => Ok(name),
        _ => Err(PipelineError::Io(format!("{name:?} is not a plain file name"))),
    }
}

/// An empty directory at `dir`, 0700 (whatever an earlier attempt left is
/// removed; a link planted there is removed, never followed, and `mkdir`
/// fails rather than reuse a name someone recreated in between).
pub fn fresh_dir(dir: &Path) -> Result<(), PipelineError> {
    use std::os::unix::fs::DirBuilderExt;
    let _ = std::fs::remove_dir_all(dir);
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(io_err("creating", parent))?;
    }
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(io_err("creating", dir))
}

/// Prepares the copy in `scratch`, swaps it in as `<node_dir>/data` and
/// writes `marker` (holding `text`) last.
pub(crate) async fn install_prepared(
    node_dir: &Path,
    scratch: &Path,
    marker: &Path,
    text: &str,
) -> Result<(), PipelineError> {
    pipeline::run(&PathBuf::from("mariadb-backup"), &tools::prepare_args(scratch)).await?;
    let data = node_dir.join("data");
    match std::fs::remove_dir_all(&data) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("removing", &data)(e)),
    }
    std::fs::rename(scratch, &data).map_err(io_err("installing", &data))?;
    // The node's directory belongs to its uid: never write through a link.
    marina_common::files::create_private(marker, text.as_bytes()).map_err(io_err("writing", marker))
}

/// Copies the blob `key` to a new private file `to`.
pub(crate) async fn fetch(blobs: &dyn BlobStore, key: &str, to: &Path) -> Result<(), PipelineError> {
    let mut r = blobs.read(key).await?;
    let mut w = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .await
        .map_err(io_err("creating", to))?;
    tokio::io::copy(&mut r, &mut w).await.map_err(io_err("writing", to))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn only_plain_names_pass() {
        for ok in ["clone.tmp", "op_123", "nd_1-mariadb-bin.000002"] {
            assert_eq!(plain(ok).unwrap(), ok);
        }
        for bad in ["", ".", "..", "../x", "a/b", "/etc", "x/"] {
            assert!(plain(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_fresh_dir_is_empty_private_and_replaces_a_planted_link() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("work");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("left"), b"x").unwrap();
        fresh_dir(&dir).unwrap();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        // A link in its place is removed, its target untouched.
        let target = root.path().join("target");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("keep"), b"x").unwrap();
        std::fs::remove_dir(&dir).unwrap();
        std::os::unix::fs::symlink(&target, &dir).unwrap();
        fresh_dir(&dir).unwrap();
        assert!(!std::fs::symlink_metadata(&dir).unwrap().file_type().is_symlink());
        assert!(target.join("keep").exists());
    }

    #[tokio::test]
    async fn a_fetched_blob_is_a_new_private_file() {
        let root = tempfile::tempdir().unwrap();
        let blobs = marina_backup::LocalBlobStore::new(root.path().join("blobs"));
        blobs.write("k/one", &mut &b"binlog bytes"[..]).await.unwrap();
        blobs.commit("k/one").await.unwrap();
        let to = root.path().join("one");
        fetch(&blobs, "k/one", &to).await.unwrap();
        assert_eq!(std::fs::read(&to).unwrap(), b"binlog bytes");
        assert_eq!(std::fs::metadata(&to).unwrap().permissions().mode() & 0o777, 0o600);
        // Never over an existing file (or a link planted there).
        assert!(fetch(&blobs, "k/one", &to).await.is_err());
    }
}
