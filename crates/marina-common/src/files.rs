//! Writing files as root inside directories that someone else owns.
//!
//! Marina runs as root and writes a few files into each node's directory
//! (`my.cnf`, `init.sql`, `error.log`, step markers), which belongs to the
//! cluster's uid: a compromised `mariadbd` can put anything there, a symlink
//! to `/etc/shadow` included. Rules:
//! - the last path component is never followed: files are created with
//!   `O_CREAT | O_EXCL | O_NOFOLLOW` (after unlinking what was there; unlink
//!   removes a link, never its target) and opened with `O_NOFOLLOW`;
//! - a file is replaced by writing a fresh temporary file and renaming it over
//!   the name (rename replaces a planted link, it does not write through it);
//! - every file is 0600 from its first byte (the mode is given to `open`).
//!
//! The parent directories are Marina's own (`<data-dir>/nodes/` is root's), so
//! only the last component needs the guard.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use libc::O_NOFOLLOW;

/// Creates `dir` (and missing parents) 0700.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Creates `path` anew (whatever was there, a planted link included, is
/// removed first), 0600, and writes `contents` to it, synced.
pub fn create_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(O_NOFOLLOW)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

/// Replaces `path` with `contents` atomically: a fresh 0600 temporary file
/// beside it, renamed over it.
pub fn replace_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    create_private(&tmp, contents)?;
    std::fs::rename(&tmp, path)
}

/// Opens `path` for appending (created 0600 when missing) without following
/// a link at its name: a link planted there is removed and a new file made.
pub fn open_append(path: &Path) -> std::io::Result<File> {
    let open = || {
        OpenOptions::new()
            .create(true)
            .append(true)
            .custom_flags(O_NOFOLLOW)
            .mode(0o600)
            .open(path)
    };
    match open() {
        // ELOOP: the name is a symbolic link.
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            std::fs::remove_file(path)?;
            open()
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn planted(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        let victim = dir.join(format!("victim-{name}"));
        std::fs::write(&victim, "precious\n").unwrap();
        let link = dir.join(name);
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        (link, victim)
    }

    #[test]
    fn planted_links_are_replaced_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let (link, victim) = planted(dir.path(), "my.cnf");
        // The temporary name too.
        let (_, tmp_victim) = planted(dir.path(), "my.cnf.tmp");
        replace_private(&link, b"[mysqld]\n").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        assert_eq!(std::fs::read_to_string(&tmp_victim).unwrap(), "precious\n");
        assert!(!std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&link).unwrap(), "[mysqld]\n");
        assert_eq!(std::fs::metadata(&link).unwrap().permissions().mode() & 0o777, 0o600);

        let (log, log_victim) = planted(dir.path(), "error.log");
        let mut f = open_append(&log).unwrap();
        f.write_all(b"started\n").unwrap();
        assert_eq!(std::fs::read_to_string(&log_victim).unwrap(), "precious\n");
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "started\n");
        // An existing regular file is appended to.
        open_append(&log).unwrap().write_all(b"again\n").unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "started\nagain\n");

        let (marker, marker_victim) = planted(dir.path(), "restored-bk_1");
        create_private(&marker, b"bk_1").unwrap();
        assert_eq!(std::fs::read_to_string(&marker_victim).unwrap(), "precious\n");
    }
}
