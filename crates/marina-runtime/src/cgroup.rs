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
//!
//! Work that must only use CPU the nodes leave idle (backups) runs in one more
//! group beside theirs, `<parent>/backups`, marked `cpu.idle` (the kernel's
//! `SCHED_IDLE` for a whole group; CPU weight 1 or shares 2 where the file is
//! missing). A thread's own `SCHED_IDLE` is not enough once nodes have groups:
//! the scheduler shares CPU between groups first, so a process outside them
//! competes with each node's group as an equal whatever its policy. Measured
//! here (cgroup v1, kernel 6.18): two `SCHED_IDLE` spinners outside the groups
//! halved a loaded primary's commits; in the idle group they cost 14%, and
//! one spinner took 30% of a CPU from a busy process in a group of its own.
//!
//! A logical backup's tools run in `<parent>/backups-low` instead, with an
//! eighth of a node group's weight: most of a dump's work is its source
//! node's `mariadbd`, in the node's own group, and a client starved of all
//! CPU stalls it (measured with `marina-bench backup`, 256 MiB under a
//! saturating write load: in the idle group a dump took 3.7 x its quiet
//! time, in the low group 2.6 x for the same 0.97 x of the primary's
//! commits; a physical copy in the low group cost the primary 20% of its
//! commits, in the idle group 2%).

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

/// The group for work that yields CPU to every node (see the module doc).
pub const IDLE_GROUP: &str = "backups";
/// The group for work that may take a small share from busy nodes.
pub const LOW_GROUP: &str = "backups-low";
/// `LOW_GROUP`'s weight: an eighth of a node group's (v1 `cpu.shares` 1024).
pub const LOW_SHARES: u32 = 128;
/// `LOW_GROUP`'s v2 `cpu.weight` (a node group's is 100).
pub const LOW_WEIGHT: u32 = 12;

/// How much CPU a backup's tools may take from nodes that want all of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Share {
    /// None (`IDLE_GROUP`): they run only on CPU the nodes leave idle.
    Idle,
    /// A small guaranteed share (`LOW_GROUP`, an eighth of a node's weight).
    Low,
}

/// How a process (and, on v1, a single thread) joins a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupFiles {
    /// Write a pid here (or `0` from the process itself) to move a process.
    pub procs: PathBuf,
    /// Write a thread id here to move one thread (v1 only: v2 moves threads
    /// only inside threaded subtrees).
    pub threads: Option<PathBuf>,
}

impl GroupFiles {
    fn of(dir: &Path, v1: bool) -> GroupFiles {
        GroupFiles {
            procs: dir.join("cgroup.procs"),
            threads: v1.then(|| dir.join("tasks")),
        }
    }

    /// Moves process `pid`, all its threads, into the group.
    pub fn add_process(&self, pid: u32) -> std::io::Result<()> {
        write(&self.procs, &pid.to_string())
    }

    /// Moves the calling thread into the group where the host moves single
    /// threads (v1); elsewhere it stays where it is.
    pub fn add_this_thread(&self) -> std::io::Result<()> {
        match &self.threads {
            // SAFETY: gettid has no arguments and cannot fail.
            Some(threads) => write(threads, &unsafe { libc::gettid() }.to_string()),
            None => Ok(()),
        }
    }
}

/// The idle group, and the group Marina itself runs in (`home`): work that
/// must not fall behind (a backup copying its source's redo) leaves the idle
/// group for home when the nodes leave it too little CPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdleGroup {
    pub idle: GroupFiles,
    pub home: Option<GroupFiles>,
}

/// The path of this process's group in `/proc/self/cgroup`'s text: the CPU
/// controller's line on v1, the unified line on v2.
pub fn own_group(proc_self_cgroup: &str, v1: bool) -> Option<&str> {
    proc_self_cgroup.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
        let ours = if v1 {
            controllers.split(',').any(|c| c == "cpu")
        } else {
            controllers.is_empty()
        };
        ours.then_some(path)
    })
}

/// Removes the groups Marina made under `parent` on this host (tests and
/// benchmarks clean up with it).
pub fn remove_parent(parent: &str) {
    Cgroups::detect(Path::new("/sys/fs/cgroup"), parent).remove_all();
}

fn write(path: &Path, value: &str) -> std::io::Result<()> {
    std::fs::write(path, value)
}

/// Creates a v2 parent group delegating the memory and CPU controllers to
/// its children (they only get what their parent delegates).
fn v2_parent(parent: &Path) -> std::io::Result<()> {
    if !parent.exists() {
        std::fs::create_dir_all(parent)?;
        if let Some(root) = parent.parent() {
            let _ = write(&root.join("cgroup.subtree_control"), "+memory +cpu");
        }
        write(&parent.join("cgroup.subtree_control"), "+memory +cpu")?;
    }
    Ok(())
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
                v2_parent(parent)?;
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

    /// Creates (or re-marks) the group for `share` and says how to join it,
    /// and how to go back to this process's own group; `None` without
    /// usable cgroups.
    pub fn backup_group(&self, share: Share) -> std::io::Result<Option<IdleGroup>> {
        let name = match share {
            Share::Idle => IDLE_GROUP,
            Share::Low => LOW_GROUP,
        };
        let (g, hierarchy, v1) = match self {
            Cgroups::V2 { parent } => {
                v2_parent(parent)?;
                (parent.join(name), parent.parent(), false)
            }
            Cgroups::V1 { cpu, .. } => (cpu.join(name), cpu.parent(), true),
            Cgroups::None => return Ok(None),
        };
        std::fs::create_dir_all(&g)?;
        match share {
            Share::Idle if g.join("cpu.idle").exists() => write(&g.join("cpu.idle"), "1")?,
            Share::Idle if v1 => write(&g.join("cpu.shares"), "2")?,
            Share::Idle => write(&g.join("cpu.weight"), "1")?,
            Share::Low if v1 => write(&g.join("cpu.shares"), &LOW_SHARES.to_string())?,
            Share::Low => write(&g.join("cpu.weight"), &LOW_WEIGHT.to_string())?,
        }
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let home = hierarchy
            .zip(own_group(&own, v1))
            .map(|(h, path)| GroupFiles::of(&h.join(path.trim_start_matches('/')), v1));
        Ok(Some(IdleGroup {
            idle: GroupFiles::of(&g, v1),
            home,
        }))
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

    /// A directory laid out like a v1 host's `/sys/fs/cgroup`.
    fn fake_v1() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("memory")).unwrap();
        std::fs::create_dir_all(root.path().join("cpu")).unwrap();
        std::fs::write(root.path().join("memory/memory.limit_in_bytes"), "").unwrap();
        std::fs::write(root.path().join("cpu/cpu.cfs_quota_us"), "").unwrap();
        root
    }

    #[test]
    fn v1_layout_is_detected_and_limits_written() {
        let root = fake_v1();
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
    fn idle_group_is_marked_idle_or_given_the_least_weight() {
        let root = fake_v1();
        std::fs::create_dir_all(root.path().join("cpu/marina/backups")).unwrap();
        // A kernel with `cpu.idle` (5.15+): the group is marked idle.
        std::fs::write(root.path().join("cpu/marina/backups/cpu.idle"), "0").unwrap();
        let g = Cgroups::detect(root.path(), "marina")
            .backup_group(Share::Idle)
            .unwrap()
            .unwrap();
        let dir = root.path().join("cpu/marina/backups");
        assert_eq!(std::fs::read_to_string(dir.join("cpu.idle")).unwrap(), "1");
        assert!(!dir.join("cpu.shares").exists());
        assert_eq!(g.idle.procs, dir.join("cgroup.procs"));
        assert_eq!(g.idle.threads, Some(dir.join("tasks")));
        // Home is this process's own group in the same hierarchy.
        if own_group(&std::fs::read_to_string("/proc/self/cgroup").unwrap(), true).is_some() {
            let home = g.home.expect("a v1 cpu line names our group");
            assert!(home.procs.starts_with(root.path().join("cpu")), "{home:?}");
            assert!(home.threads.is_some());
        }
        // Without it, the least weight each version has.
        std::fs::remove_file(dir.join("cpu.idle")).unwrap();
        Cgroups::detect(root.path(), "marina")
            .backup_group(Share::Idle)
            .unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("cpu.shares")).unwrap(), "2");
        let v2 = tempfile::tempdir().unwrap();
        std::fs::write(v2.path().join("cgroup.controllers"), "cpu memory").unwrap();
        let g = Cgroups::detect(v2.path(), "marina")
            .backup_group(Share::Idle)
            .unwrap()
            .unwrap();
        let dir = v2.path().join("marina/backups");
        assert_eq!(std::fs::read_to_string(dir.join("cpu.weight")).unwrap(), "1");
        assert_eq!(g.idle.threads, None);
        assert_eq!(
            std::fs::read_to_string(v2.path().join("marina/cgroup.subtree_control")).unwrap(),
            "+memory +cpu"
        );
        assert_eq!(Cgroups::None.backup_group(Share::Idle).unwrap(), None);
    }

    #[test]
    fn low_group_gets_an_eighth_of_a_nodes_weight() {
        let root = fake_v1();
        let g = Cgroups::detect(root.path(), "marina")
            .backup_group(Share::Low)
            .unwrap()
            .unwrap();
        let dir = root.path().join("cpu/marina/backups-low");
        assert_eq!(std::fs::read_to_string(dir.join("cpu.shares")).unwrap(), "128");
        assert_eq!(g.idle.procs, dir.join("cgroup.procs"));
        let v2 = tempfile::tempdir().unwrap();
        std::fs::write(v2.path().join("cgroup.controllers"), "cpu memory").unwrap();
        Cgroups::detect(v2.path(), "marina").backup_group(Share::Low).unwrap();
        let weight = v2.path().join("marina/backups-low/cpu.weight");
        assert_eq!(std::fs::read_to_string(weight).unwrap(), "12");
        assert_eq!(Cgroups::None.backup_group(Share::Low).unwrap(), None);
    }

    #[test]
    fn own_group_is_read_from_the_cpu_or_unified_line() {
        let hybrid = "9:name=systemd:/\n4:memory:/jobs/7\n2:cpu,cpuacct:/jobs/7\n0::/\n";
        assert_eq!(own_group(hybrid, true), Some("/jobs/7"));
        assert_eq!(own_group(hybrid, false), Some("/"));
        assert_eq!(own_group("1:cpu:/\n", true), Some("/"));
        assert_eq!(
            own_group("0::/system.slice/marina.service\n", false),
            Some("/system.slice/marina.service")
        );
        assert_eq!(own_group("0::/x\n", true), None, "no v1 cpu line");
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
