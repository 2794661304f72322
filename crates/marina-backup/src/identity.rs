//! Who a tool that loads tenant data runs as.
//!
//! A restore feeds text a tenant wrote (a dump, `mariadb-binlog`'s output)
//! to the `mariadb` client. Even with its client commands off, the client is
//! the one process of a restore that parses tenant input, so it runs with no
//! more privilege than the node it loads into: as the uid and gid that own
//! the node's directory (a cluster's own uid when Marina is root), and it
//! logs in with the management password it reads on descriptor 3 — a pipe
//! the tool's own process makes after it changed uid, so the password is
//! never on a command line, in the environment or in a file, and the pipe
//! belongs to that uid (`/dev/fd/3` opens for it).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use tokio::process::Command;

/// The most option text descriptor 3 carries: it is written into a pipe
/// before the tool runs, so it must fit the kernel's smallest pipe buffer.
const MAX_FD3: usize = 4096;

/// A tool's uid and gid (`None`: Marina's own) and the text it reads on
/// descriptor 3 (`None`: no descriptor 3). `Debug` shows neither the text
/// nor its length.
#[derive(Clone, Default)]
pub struct Identity {
    ids: Option<(u32, u32)>,
    fd3: Option<Vec<u8>>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("ids", &self.ids)
            .field("fd3", &self.fd3.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Identity {
    /// Runs as the owner of `dir` when Marina is root and someone else owns
    /// it; as Marina otherwise.
    pub fn owner_of(dir: &Path) -> std::io::Result<Self> {
        let meta = std::fs::symlink_metadata(dir)?;
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let ids = (root && meta.uid() != 0).then(|| (meta.uid(), meta.gid()));
        Ok(Self { ids, fd3: None })
    }

    /// Runs as `uid`:`gid`.
    pub fn ids(uid: u32, gid: u32) -> Self {
        Self {
            ids: Some((uid, gid)),
            fd3: None,
        }
    }

    /// Also hands the tool `text` on descriptor 3 (at most 4 KiB).
    pub fn with_fd3(mut self, text: impl Into<Vec<u8>>) -> Self {
        let text = text.into();
        assert!(text.len() <= MAX_FD3, "descriptor 3 carries options, not data");
        self.fd3 = Some(text);
        self
    }

    /// Sets `cmd` up to run as this identity.
    pub(crate) fn apply(&self, cmd: &mut Command) {
        if let Some((uid, gid)) = self.ids {
            // Also drops the supplementary groups (std does when root sets a uid).
            cmd.uid(uid).gid(gid);
        }
        let Some(text) = self.fd3.clone() else {
            return;
        };
        // SAFETY: the closure runs in the forked child after its uid changed
        // and before exec; it only makes async-signal-safe calls (pipe, write,
        // dup2, close) and reads memory allocated before the fork.
        unsafe {
            cmd.pre_exec(move || hand_over(&text));
        }
    }
}

/// Puts `text` in a new pipe whose read end is descriptor 3 (kept open
/// across exec) and whose write end is closed.
fn hand_over(text: &[u8]) -> std::io::Result<()> {
    let last = std::io::Error::last_os_error;
    let mut fds = [0; 2];
    // SAFETY: see `Identity::apply`; every descriptor used is the child's own.
    unsafe {
        if libc::pipe(fds.as_mut_ptr()) != 0 {
            return Err(last());
        }
        let mut off = 0;
        while off < text.len() {
            let n = libc::write(fds[1], text[off..].as_ptr().cast(), text.len() - off);
            if n <= 0 {
                return Err(last());
            }
            off += n as usize;
        }
        libc::close(fds[1]);
        if fds[0] != 3 {
            if libc::dup2(fds[0], 3) < 0 {
                return Err(last());
            }
            libc::close(fds[0]);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs root (as the test suite runs): only root can change uid.
    #[tokio::test]
    async fn a_tool_runs_as_the_uid_and_reads_its_options_on_fd3() {
        let who = Identity::ids(65534, 65533).with_fd3("[client]\npassword=\"s\"\n");
        assert!(!format!("{who:?}").contains("password"));
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "id -u; id -g; id -G; cat /dev/fd/3"]).env_clear();
        who.apply(&mut cmd);
        let out = cmd.output().await.unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "65534\n65533\n65533\n[client]\npassword=\"s\"\n",
            "uid, gid, no other group, and the options"
        );
    }

    #[test]
    fn the_owner_of_a_directory_is_who_runs() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Identity::owner_of(dir.path()).unwrap().ids, None, "root's own");
        std::os::unix::fs::chown(dir.path(), Some(4242), Some(4243)).unwrap();
        assert_eq!(Identity::owner_of(dir.path()).unwrap().ids, Some((4242, 4243)));
    }
}
