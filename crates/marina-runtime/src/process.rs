//! Process helpers: finding a node's `mariadbd` by pid file with an identity check,
//! signalling by pid (never by name), and waiting for exit.

use std::path::Path;
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

/// The last `lines` lines of a log file.
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

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
