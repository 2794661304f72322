//! Repairing a replica whose relay log cannot be read or written.
//!
//! A replica's relay log is only a local copy of what it fetched from the
//! primary's binlog. When the SQL thread stops on a relay-log error (MariaDB
//! errors 1594 `ER_SLAVE_RELAY_LOG_READ_FAILURE` and 1595
//! `ER_SLAVE_RELAY_LOG_WRITE_FAILURE`), the data is not at fault: the copy is.
//! Under GTID replication the fix is to throw the copy away and fetch again
//! from the replica's own applied position (`gtid_slave_pos`), which is what
//! re-attaching does (`CHANGE MASTER` purges the relay logs).
//!
//! Rules:
//! - Only those two errors are repaired; every other SQL error fails the node
//!   (it may be a data conflict that needs an operator or a reseed).
//! - At most `MAX_REPAIRS` per node within `WINDOW`: a relay log that keeps
//!   breaking points at the disk or the server, so the node then fails with
//!   the error like any other.
//! - The count lives in memory: a control-plane restart gives a node a fresh
//!   allowance, which is harmless (each repair only re-fetches).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Repairs allowed per node within `WINDOW`.
pub const MAX_REPAIRS: usize = 3;
/// The window the repairs are counted in.
pub const WINDOW: Duration = Duration::from_secs(3600);

/// Whether an SQL thread error number is a relay-log failure.
pub fn is_relay_log_error(errno: u32) -> bool {
    matches!(errno, 1594 | 1595)
}

/// Recent repairs per node.
#[derive(Default)]
pub struct RelayRepairs {
    at: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl RelayRepairs {
    /// Records a repair of `node_id` at `now` and returns true, unless the
    /// node had `MAX_REPAIRS` already within `WINDOW` (then nothing is
    /// recorded and the answer is false).
    pub fn allow(&self, node_id: &str, now: Instant) -> bool {
        let mut at = self.at.lock().unwrap_or_else(|e| e.into_inner());
        let times = at.entry(node_id.to_string()).or_default();
        while times.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            times.pop_front();
        }
        if times.len() >= MAX_REPAIRS {
            return false;
        }
        times.push_back(now);
        true
    }

    /// Whether `allow` would allow a repair now (records nothing).
    pub fn would_allow(&self, node_id: &str, now: Instant) -> bool {
        let at = self.at.lock().unwrap_or_else(|e| e.into_inner());
        at.get(node_id)
            .is_none_or(|times| times.iter().filter(|t| now.duration_since(**t) < WINDOW).count() < MAX_REPAIRS)
    }

    /// Forgets nodes that are no longer probed.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|id, _| keep(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_relay_log_errors_are_repairable() {
        assert!(is_relay_log_error(1594));
        assert!(is_relay_log_error(1595));
        // Duplicate key, row not found, and no error at all are not.
        assert!(!is_relay_log_error(1062));
        assert!(!is_relay_log_error(1032));
        assert!(!is_relay_log_error(0));
    }

    #[test]
    fn repairs_are_limited_per_node_within_the_window() {
        let r = RelayRepairs::default();
        let t0 = Instant::now();
        for i in 0..MAX_REPAIRS {
            assert!(r.allow("a", t0 + Duration::from_secs(i as u64)), "repair {i}");
        }
        assert!(!r.allow("a", t0 + Duration::from_secs(60)), "one too many");
        assert!(r.allow("b", t0 + Duration::from_secs(60)), "counted per node");
        // Once the first repair is older than the window, one more is allowed.
        assert!(r.allow("a", t0 + WINDOW));
        assert!(!r.allow("a", t0 + WINDOW + Duration::from_millis(500)));
        r.retain(|id| id != "a");
        assert!(r.allow("a", t0 + WINDOW + Duration::from_secs(2)), "forgotten");
    }
}
