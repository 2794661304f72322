//! CPU and memory limits of node processes through cgroups.
//!
//! - v2 when `/sys/fs/cgroup` is the unified hierarchy with the `memory` and
//!   `cpu` controllers: `<parent>/<node>/{memory.max, cpu.max}`;
//! - else v1 when the `memory` and `cpu` hierarchies are mounted:
//!   `memory/<parent>/<node>/memory.limit_in_bytes` and
//!   `cpu/<parent>/<node>/cpu.cfs_{period,quota}_us`;
//! - else none: nodes run without limits and `describe` says so (Marina logs
//!   it at start).
//!
//! A node's group is created (or updated: a resize) when it starts and by
//! `apply`; its pid joins it; the group is removed with the node. The memory
//! limit is the size's memory, the CPU quota its vCPUs.

use std::path::{Path, PathBuf};

/// A node's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub memory_bytes: u64,
    pub cpus: u32,
}

/// Which cgroup interface this host offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cgroups {
    V2 { parent: PathBuf },
    V1 { memory: PathBuf, cpu: PathBuf },
    None,
}

const PERIOD_US: u64 = 100_000;

/// Removes the groups Marina made under `parent` on this host (tests and
/// benchmarks clean up with it).
pub fn remove_parent(parent: &str) {
    Cgroups::detect(Path::new("/sys/fs/cgroup"), parent).remove_all();
}

fn write(path: &Path, value: &str) -> std::io::Result<()> {
    std::fs::write(path, value)
}

impl Cgroups {
    /// Detects the interface under `root` (normally `/sys/fs/cgroup`); groups
    /// go under `parent` (a plain name), created with the first node's.
    pub fn detect(root: &Path, parent: &str) -> Cgroups {
        let controllers = std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
        let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
        if has("memory") && has("cpu") {
            return Cgroups::V2 {
                parent: root.join(parent),
            };
        }
        let (memory, cpu) = (root.join("memory"), root.join("cpu"));
        if memory.join("memory.limit_in_bytes").exists() && cpu.join("cpu.cfs_quota_us").exists() {
            return Cgroups::V1 {
                memory: memory.join(parent),
                cpu: cpu.join(parent),
            };
        }
        Cgroups::None
    }

    /// What the host offers, for the start-up log and the docs.
    pub fn describe(&self) -> String {
        match self {
            Cgroups::V2 { parent } => format!("cgroup v2 limits under {}", parent.display()),
            Cgroups::V1 { memory, cpu } => {
                format!("cgroup v1 limits under {} and {}", memory.display(), cpu.display())
            }
            Cgroups::None => "no usable cgroup controllers: nodes run without CPU/memory limits".into(),
        }
    }

    /// Creates or updates `node`'s group with `limits`, and moves `pid` in.
    pub fn apply(&self, node: &str, pid: Option<u32>, limits: Limits) -> std::io::Result<()> {
        let quota = u64::from(limits.cpus.max(1)) * PERIOD_US;
        match self {
            Cgroups::V2 { parent } => {
                if !parent.exists() {
                    std::fs::create_dir_all(parent)?;
                    // Children only get the controllers their parent delegates.
                    if let Some(root) = parent.parent() {
                        let _ = write(&root.join("cgroup.subtree_control"), "+memory +cpu");
                    }
                    write(&parent.join("cgroup.subtree_control"), "+memory +cpu")?;
                }
                let g = parent.join(node);
                std::fs::create_dir_all(&g)?;
                write(&g.join("memory.max"), &limits.memory_bytes.to_string())?;
                write(&g.join("cpu.max"), &format!("{quota} {PERIOD_US}"))?;
                if let Some(pid) = pid {
                    write(&g.join("cgroup.procs"), &pid.to_string())?;
                }
            }
            Cgroups::V1 { memory, cpu } => {
                let (m, c) = (memory.join(node), cpu.join(node));
                std::fs::create_dir_all(&m)?;
                std::fs::create_dir_all(&c)?;
                write(&m.join("memory.limit_in_bytes"), &limits.memory_bytes.to_string())?;
                write(&c.join("cpu.cfs_period_us"), &PERIOD_US.to_string())?;
                write(&c.join("cpu.cfs_quota_us"), &quota.to_string())?;
                if let Some(pid) = pid {
                    write(&m.join("cgroup.procs"), &pid.to_string())?;
                    write(&c.join("cgroup.procs"), &pid.to_string())?;
                }
            }
            Cgroups::None => {}
        }
        Ok(())
    }

    /// `node`'s group directories (for tests and removal).
    pub fn dirs(&self, node: &str) -> Vec<PathBuf> {
        match self {
            Cgroups::V2 { parent } => vec![parent.join(node)],
            Cgroups::V1 { memory, cpu } => vec![memory.join(node), cpu.join(node)],
            Cgroups::None => vec![],
        }
    }

    /// Removes every node group and the parent (their processes are gone;
    /// a group whose last process is still exiting is retried for a while).
    pub fn remove_all(&self) {
        let parents: Vec<PathBuf> = match self {
            Cgroups::V2 { parent } => vec![parent.clone()],
            Cgroups::V1 { memory, cpu } => vec![memory.clone(), cpu.clone()],
            Cgroups::None => vec![],
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        for dir in parents.iter().filter(|d| d.is_dir()) {
            loop {
                let children: Vec<PathBuf> = std::fs::read_dir(dir)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
                    .collect();
                let emptied = children.iter().all(|c| std::fs::remove_dir(c).is_ok());
                if (emptied && std::fs::remove_dir(dir).is_ok()) || std::time::Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    }

    /// Removes `node`'s group (its processes are gone).
    pub fn remove(&self, node: &str) {
        for d in self.dirs(node) {
            let _ = std::fs::remove_dir(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_layout_is_detected_and_limits_written() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("memory")).unwrap();
        std::fs::create_dir_all(root.path().join("cpu")).unwrap();
        std::fs::write(root.path().join("memory/memory.limit_in_bytes"), "").unwrap();
        std::fs::write(root.path().join("cpu/cpu.cfs_quota_us"), "").unwrap();
        let cg = Cgroups::detect(root.path(), "marina");
        assert!(matches!(cg, Cgroups::V1 { .. }), "{cg:?}");
        cg.apply(
            "nd_1",
            None,
            Limits {
                memory_bytes: 1 << 30,
                cpus: 2,
            },
        )
        .unwrap();
        let mem = std::fs::read_to_string(root.path().join("memory/marina/nd_1/memory.limit_in_bytes")).unwrap();
        assert_eq!(mem, (1u64 << 30).to_string());
        let quota = std::fs::read_to_string(root.path().join("cpu/marina/nd_1/cpu.cfs_quota_us")).unwrap();
        assert_eq!(quota, "200000");
    }

    #[test]
    fn v2_without_controllers_and_nothing_mounted_mean_no_limits() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(Cgroups::detect(root.path(), "marina"), Cgroups::None);
        std::fs::write(root.path().join("cgroup.controllers"), "hugetlb pids").unwrap();
        assert_eq!(Cgroups::detect(root.path(), "marina"), Cgroups::None);
        assert!(Cgroups::None.describe().contains("without CPU/memory limits"));
    }

    #[test]
    fn v2_layout_gets_max_files() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("cgroup.controllers"), "cpuset cpu io memory pids").unwrap();
        let cg = Cgroups::detect(root.path(), "marina");
        assert!(matches!(cg, Cgroups::V2 { .. }), "{cg:?}");
        cg.apply(
            "nd_2",
            None,
            Limits {
                memory_bytes: 512,
                cpus: 1,
            },
        )
        .unwrap();
        let g = root.path().join("marina/nd_2");
        assert_eq!(std::fs::read_to_string(g.join("memory.max")).unwrap(), "512");
        assert_eq!(std::fs::read_to_string(g.join("cpu.max")).unwrap(), "100000 100000");
    }
}
