//! Process helpers: finding a node's `mariadbd` by pid file with an identity check,
//! signalling by pid (never by name), and waiting for exit.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Reads a pid file.
pub(crate) fn read_pid(pid_file: &Path) -> Option<u32> {
    std::fs::read_to_string(pid_file).ok()?.trim().parse().ok()
}

/// Whether `pid` is a live (not zombie) process whose command line contains
/// `needle` — the identity check that keeps Marina from adopting or killing a
/// recycled pid.
pub(crate) fn is_our_process(pid: u32, needle: &str) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state is the field after the parenthesised command name.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    if matches!(state, Some('Z') | Some('X') | None) {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    cmdline.split(|b| *b == 0).any(|arg| arg == needle.as_bytes())
}

/// Sends a signal to one pid.
pub(crate) fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) with a specific positive pid has no memory-safety concerns.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Waits until `alive()` is false or `timeout` passes; true when it exited.
pub(crate) async fn wait_exit(timeout: Duration, alive: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while alive() {
        if start.elapsed() >= timeout {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// Whether something listens on `127.0.0.1:port` / can't be bound.
pub(crate) fn port_busy(host: &str, port: u16) -> bool {
    std::net::TcpListener::bind((host, port)).is_err()
}

/// Gives `dir` and everything under it to `uid` (uid and gid), without
/// following symlinks.
pub(crate) fn chown_tree(dir: &Path, uid: u32) -> Result<(), crate::RuntimeError> {
    let err = |p: &Path| crate::RuntimeError::io(format!("chown {}", p.display()));
    std::os::unix::fs::lchown(dir, Some(uid), Some(uid)).map_err(err(dir))?;
    if std::fs::symlink_metadata(dir).map_err(err(dir))?.is_dir() {
        for entry in std::fs::read_dir(dir).map_err(err(dir))? {
            chown_tree(&entry.map_err(err(dir))?.path(), uid)?;
        }
    }
    Ok(())
}

/// Which user node processes can run as under a data dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeUsers {
    /// One unprivileged uid per cluster (Marina is root and node uids can
    /// reach the data dir).
    PerCluster,
    /// Marina is not root: nodes run as Marina's own user.
    MarinaUser,
    /// Marina is root but a node uid cannot reach the data dir: `dir`, an
    /// ancestor, lets no other user through. Nodes would run as root.
    Blocked { dir: PathBuf, mode: u32 },
}

/// Makes `<root>` and `<root>/nodes` traversable by node uids and says which
/// user nodes can run as: one uid per cluster needs Marina to be root (to
/// switch uid) and every ancestor of the data dir to let others through.
pub(crate) fn prepare_unprivileged_root(root: &Path) -> NodeUsers {
    use std::os::unix::fs::PermissionsExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return NodeUsers::MarinaUser;
    }
    let blocked = |dir: &Path| NodeUsers::Blocked {
        dir: dir.to_path_buf(),
        mode: std::fs::metadata(dir)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0),
    };
    let Ok(root) = std::fs::canonicalize(root) else {
        return blocked(root);
    };
    let nodes = root.join("nodes");
    if std::fs::create_dir_all(&nodes).is_err() {
        return blocked(&nodes);
    }
    for dir in [&root, &nodes] {
        let Ok(meta) = std::fs::metadata(dir) else {
            return blocked(dir);
        };
        let mode = meta.permissions().mode() | 0o001;
        if std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).is_err() {
            return blocked(dir);
        }
    }
    match root.ancestors().find(|a| {
        std::fs::metadata(a)
            .map(|m| m.permissions().mode() & 0o001 == 0)
            .unwrap_or(true)
    }) {
        Some(a) => blocked(a),
        None => NodeUsers::PerCluster,
    }
}

/// The last `lines` lines of a log file.
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Resolves when process `pid` exits. `pidfd_open(2)` gives a descriptor
/// that turns readable at exit for any process, ours as a child or adopted
/// after a restart; `still_ours` is checked once the descriptor is open, so a
/// recycled pid is never watched. Without pidfds (old kernels) the process is
/// polled every 20 ms.
pub(crate) async fn exited(pid: u32, still_ours: impl Fn() -> bool) {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor
    // or -1; it touches no memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0 as libc::c_uint) };
    let watched = (fd >= 0).then(|| {
        // SAFETY: `fd` was just returned to us and nothing else owns it.
        let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) };
        // SAFETY: `OwnedFd` keeps the descriptor open and unchanged for as
        // long as the `AsyncFd` owns it.
        unsafe { tokio::io::unix::AsyncFd::register_with_interest(owned, tokio::io::Interest::READABLE) }.ok()
    });
    if !still_ours() {
        return;
    }
    match watched.flatten() {
        Some(afd) => {
            let _ = afd.readable().await;
        }
        None => {
            while still_ours() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn exit_is_known_at_once() {
        let mut child = std::process::Command::new("sleep").arg("0.3").spawn().unwrap();
        let pid = child.id();
        let started = Instant::now();
        // Killed after 50 ms: known well before `sleep` would have ended.
        let killer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            signal(pid, libc::SIGKILL);
        });
        tokio::time::timeout(Duration::from_secs(2), exited(pid, || true))
            .await
            .expect("exit noticed");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(50) && took < Duration::from_millis(250),
            "{took:?}"
        );
        killer.await.unwrap();
        let _ = child.wait();
        // A process that is not ours is not watched.
        tokio::time::timeout(Duration::from_millis(100), exited(std::process::id(), || false))
            .await
            .expect("returns at once");
    }

    #[test]
    fn identity_check_matches_exact_argument() {
        let me = std::process::id();
        let args: Vec<String> = std::env::args().collect();
        assert!(is_our_process(me, &args[0]));
        assert!(!is_our_process(me, "--defaults-file=/nowhere/my.cnf"));
        assert!(!is_our_process(u32::MAX - 1, &args[0]));
    }

    #[test]
    fn tail_keeps_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        std::fs::write(&p, "a\nb\nc\nd\n").unwrap();
        assert_eq!(log_tail(&p, 2), "c\nd");
        assert_eq!(log_tail(&dir.path().join("missing"), 2), "");
    }
}
