//! Disk quotas: one tenant must not fill the disk every tenant and Marina's
//! own store live on.
//!
//! Rules:
//! - Each node may use its size's disk (`disk_gib`, or `disk_mib` where an
//!   operator set an exact figure) for everything in its directory: data,
//!   binary and relay logs, temporary files. The monitor measures each node's
//!   directory (allocated blocks, links not followed) every
//!   `monitor.disk_check_interval_ms`, and on every monitor tick once a node
//!   is past `WATCH_PERCENT` (`measure_due`): near the line, what a tenant
//!   writes between two measurements is what would overshoot the quota.
//! - The host keeps `capacity.disk_reserve_gib` free on the data dir's file
//!   system for Marina's store, backups and operations.
//! - A cluster is *limited* when any of its nodes reaches `LIMIT_PERCENT` of
//!   its quota, or the host's free space falls below the reserve. Its primary
//!   is then held read-only (the customer `admin` has no `READ_ONLY ADMIN`, so
//!   every write it or its users send is refused), with a `disk_quota_read_only`
//!   event and the reason in `/status`. Writes everywhere replicate everywhere,
//!   so one node over the line limits the whole cluster.
//! - `read_only = ON` waits for the statements that are writing (a long
//!   `INSERT … SELECT` would run on past the line): when one would make it
//!   wait, every tenant session is ended first (the primary is *fenced*,
//!   event `disk_quota_fenced`). A cluster is *full* when a node reaches its
//!   whole quota anyway (or the host's free space falls under half the
//!   reserve): its primary is fenced once more, whatever is running.
//! - It is released below `RELEASE_PERCENT` (and with the reserve back): the
//!   gap keeps a cluster near the line from flapping. The way back is to free
//!   space through Marina (`DELETE …/databases/{name}` runs as Marina's
//!   account, which read-only does not stop) or to resize to a larger size.
//! - The decision (`assess`) is pure and unit-tested; the monitor acts on it.

use std::path::Path;

/// A node at or above this share of its quota limits its cluster.
pub const LIMIT_PERCENT: f64 = 90.0;
/// A limited cluster is released once every node is below this share.
pub const RELEASE_PERCENT: f64 = 85.0;
/// A node at or above this share of its quota fences its cluster's primary.
pub const FULL_PERCENT: f64 = 100.0;
/// A node at or above this share is measured on every monitor tick.
pub const WATCH_PERCENT: f64 = 70.0;

/// What one node's directory uses against its quota.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeDisk {
    pub used_bytes: u64,
    pub quota_bytes: u64,
}

impl NodeDisk {
    pub fn percent(&self) -> f64 {
        if self.quota_bytes == 0 {
            return 100.0;
        }
        self.used_bytes as f64 * 100.0 / self.quota_bytes as f64
    }
}

/// The decision for one cluster.
#[derive(Debug, Clone, PartialEq)]
pub enum DiskVerdict {
    /// Writes allowed.
    Within,
    /// The primary is held read-only, for this reason; `full`: its running
    /// writes must be stopped too (a node at its whole quota, or the host
    /// under half its reserve).
    Limited { reason: String, full: bool },
}

/// Decides a cluster's disk state from its nodes' usage, the host's free
/// space on the data dir's file system and whether it is limited now.
pub fn assess(nodes: &[(String, NodeDisk)], host_free: Option<u64>, reserve: u64, limited_now: bool) -> DiskVerdict {
    let line = if limited_now { RELEASE_PERCENT } else { LIMIT_PERCENT };
    let over = nodes
        .iter()
        .filter(|(_, d)| d.percent() >= line)
        .max_by(|a, b| a.1.percent().total_cmp(&b.1.percent()));
    if let Some((id, d)) = over {
        return DiskVerdict::Limited {
            full: d.percent() >= FULL_PERCENT || host_free.is_some_and(|f| f < reserve / 2),
            reason: format!(
                "node {id} uses {} MiB of its {} MiB disk quota ({:.0}%): the cluster is read-only until space is \
                 freed (drop a database through the API) or it is resized to a larger size",
                d.used_bytes >> 20,
                d.quota_bytes >> 20,
                d.percent()
            ),
        };
    }
    match host_free {
        Some(free) if free < reserve || (limited_now && free < reserve.saturating_add(reserve / 10)) => {
            DiskVerdict::Limited {
                full: free < reserve / 2,
                reason: format!(
                    "the host has {} MiB free on the data dir's file system, under the {} MiB kept for Marina: \
                     clusters are read-only until space is freed",
                    free >> 20,
                    reserve >> 20
                ),
            }
        }
        _ => DiskVerdict::Within,
    }
}

/// Whether a node whose last measurement (if any) is `last`, taken `age`
/// ago, is measured again now.
pub fn measure_due(last: Option<(NodeDisk, std::time::Duration)>, every: std::time::Duration) -> bool {
    last.is_none_or(|(d, age)| age >= every || d.percent() >= WATCH_PERCENT)
}

/// Free bytes for unprivileged users on the file system holding `path`.
pub fn free_bytes(path: &Path) -> Option<u64> {
    statvfs(path).map(|s| s.f_bavail * s.f_frsize)
}

/// The size of the file system holding `path`.
pub fn total_bytes(path: &Path) -> Option<u64> {
    statvfs(path).map(|s| s.f_blocks * s.f_frsize)
}

fn statvfs(path: &Path) -> Option<libc::statvfs> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes into the zeroed struct we own; `c` is a valid C string.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    (unsafe { libc::statvfs(c.as_ptr(), &mut s) } == 0).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn node(used_mib: u64, quota_mib: u64) -> (String, NodeDisk) {
        (
            "nd_a".into(),
            NodeDisk {
                used_bytes: used_mib * MIB,
                quota_bytes: quota_mib * MIB,
            },
        )
    }

    #[test]
    fn clusters_are_limited_at_ninety_percent_and_released_below_eighty_five() {
        let reserve = 1024 * MIB;
        let plenty = Some(100 * 1024 * MIB);
        // (used, quota, limited now) -> limited after
        let table = [
            (0, 100, false, false),
            (89, 100, false, false),
            (90, 100, false, true),
            (150, 100, false, true),
            (89, 100, true, true),
            (85, 100, true, true),
            (84, 100, true, false),
            (10, 0, false, true),
        ];
        for (used, quota, now, want) in table {
            let v = assess(&[node(used, quota)], plenty, reserve, now);
            assert_eq!(
                matches!(v, DiskVerdict::Limited { .. }),
                want,
                "{used}/{quota} limited={now}: {v:?}"
            );
        }
        // The worst node names the reason.
        let v = assess(
            &[node(10, 100), ("nd_b".into(), node(95, 100).1)],
            plenty,
            reserve,
            false,
        );
        match v {
            DiskVerdict::Limited { reason, full } => {
                assert!(reason.contains("nd_b") && reason.contains("95%"), "{reason}");
                assert!(!full, "95% is not full");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_node_at_its_whole_quota_or_a_host_under_half_its_reserve_is_full() {
        let reserve = 1024 * MIB;
        let plenty = Some(100 * 1024 * MIB);
        // (used, quota, host free) -> full
        let table = [
            (99, 100, plenty, false),
            (100, 100, plenty, true),
            (130, 100, plenty, true),
            (1, 100, Some(600 * MIB), false),
            (1, 100, Some(500 * MIB), true),
            (95, 100, Some(500 * MIB), true),
        ];
        for (used, quota, free, want) in table {
            match assess(&[node(used, quota)], free, reserve, false) {
                DiskVerdict::Limited { full, .. } => assert_eq!(full, want, "{used}/{quota} free {free:?}"),
                DiskVerdict::Within => panic!("{used}/{quota} free {free:?} is limited"),
            }
        }
    }

    #[test]
    fn nodes_near_the_line_are_measured_every_tick() {
        use std::time::Duration;
        let every = Duration::from_secs(5);
        let young = Duration::from_millis(250);
        // (used %, age) -> due
        let table = [
            (None, true),
            (Some((10, young)), false),
            (Some((10, every)), true),
            (Some((69, young)), false),
            (Some((70, young)), true),
            (Some((95, Duration::ZERO)), true),
        ];
        for (last, want) in table {
            let last = last.map(|(pct, age)| (node(pct, 100).1, age));
            assert_eq!(measure_due(last, every), want, "{last:?}");
        }
    }

    #[test]
    fn the_host_reserve_limits_every_cluster() {
        let reserve = 1024 * MIB;
        assert!(matches!(
            assess(&[node(1, 100)], Some(500 * MIB), reserve, false),
            DiskVerdict::Limited { .. }
        ));
        assert_eq!(
            assess(&[node(1, 100)], Some(2048 * MIB), reserve, false),
            DiskVerdict::Within
        );
        // Released only with a tenth of the reserve to spare.
        assert!(matches!(
            assess(&[node(1, 100)], Some(1050 * MIB), reserve, true),
            DiskVerdict::Limited { .. }
        ));
        assert_eq!(
            assess(&[node(1, 100)], Some(1200 * MIB), reserve, true),
            DiskVerdict::Within
        );
        // Unknown free space limits nothing by itself.
        assert_eq!(assess(&[node(1, 100)], None, reserve, false), DiskVerdict::Within);
    }

    #[test]
    fn free_space_is_read_from_the_file_system() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(dir.path()).is_some_and(|f| f > 0));
        assert_eq!(free_bytes(&dir.path().join("missing")), None);
    }
}
