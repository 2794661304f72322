//! `marina doctor`: what this host offers Marina, one finding per check, each
//! failing one with what to do. The verdicts are pure functions of what
//! `observe` read (unit-tested); nothing here changes the host.

use std::path::{Path, PathBuf};

use marina_common::size::NodeSize;

use crate::config::{Config, EndpointMode};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Ready.
    Ok,
    /// Works, with a limit worth knowing.
    Warn,
    /// Marina cannot do its job until it is fixed.
    Fail,
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub check: &'static str,
    pub level: Level,
    pub detail: String,
    /// What to do (for `Warn` and `Fail`).
    pub fix: Option<String>,
}

impl Finding {
    fn ok(check: &'static str, detail: String) -> Self {
        Finding {
            check,
            level: Level::Ok,
            detail,
            fix: None,
        }
    }

    fn bad(check: &'static str, level: Level, detail: String, fix: &str) -> Self {
        Finding {
            check,
            level,
            detail,
            fix: Some(fix.to_string()),
        }
    }

    /// `ok    mariadb      10.11.14 at /usr/sbin/mariadbd`, then `      → fix`.
    pub fn line(&self) -> String {
        let word = match self.level {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        };
        let mut out = format!("{word:<5} {:<12} {}", self.check, self.detail);
        if let Some(fix) = &self.fix {
            out.push_str(&format!("\n{:<18} → {fix}", ""));
        }
        out
    }
}

/// What `observe` read from the host.
#[derive(Debug, Clone)]
pub struct Observations {
    /// `mariadbd`'s path and version, or why not.
    pub mariadb: Result<(PathBuf, String), String>,
    /// Whether `mariadb-backup` is installed.
    pub mariadb_backup: bool,
    /// Whether `nft list tables` works for this process.
    pub nftables: bool,
    pub endpoint_mode: EndpointMode,
    /// The cgroup interface's description, and whether limits apply.
    pub cgroups: (String, bool),
    pub euid: u32,
    /// The first directory above the data dir that other uids cannot pass.
    pub blocking_dir: Option<(PathBuf, u32)>,
    pub run_as_root: bool,
    pub data_dir: PathBuf,
    /// Free bytes on the data dir's file system.
    pub free_disk: Option<u64>,
    /// Host memory in GiB.
    pub memory_gib: f64,
    pub catalog: Vec<NodeSize>,
    /// The API's `/healthz` answer at `url`, or why it failed.
    pub api: (String, Result<(), String>),
}

/// Every verdict, in the order a newcomer fixes them.
pub fn verdicts(o: &Observations) -> Vec<Finding> {
    vec![
        mariadb(o),
        endpoints(o),
        cgroups(o),
        node_users(o),
        disk(o),
        memory(o),
        api(o),
    ]
}

fn mariadb(o: &Observations) -> Finding {
    const FIX: &str =
        "install MariaDB 10.11: ./scripts/install-deps.sh (or apt-get install mariadb-server mariadb-backup)";
    match &o.mariadb {
        Ok((path, v)) if !o.mariadb_backup => Finding::bad(
            "mariadb",
            Level::Warn,
            format!(
                "{v} at {}, but no mariadb-backup: physical backups and reseeds fail",
                path.display()
            ),
            FIX,
        ),
        Ok((path, v)) if v.starts_with("10.11.") => Finding::ok("mariadb", format!("{v} at {}", path.display())),
        Ok((path, v)) => Finding::bad(
            "mariadb",
            Level::Warn,
            format!("{v} at {}: Marina is tested with 10.11", path.display()),
            FIX,
        ),
        Err(e) => Finding::bad("mariadb", Level::Fail, e.clone(), FIX),
    }
}

fn endpoints(o: &Observations) -> Finding {
    match (o.nftables, o.endpoint_mode) {
        (true, EndpointMode::Userspace) => Finding::ok("endpoints", "nftables usable; userspace proxy chosen".into()),
        (true, _) => Finding::ok("endpoints", "nftables usable: kernel endpoints".into()),
        (false, EndpointMode::Kernel) => Finding::bad(
            "endpoints",
            Level::Fail,
            "endpoints = kernel but `nft list tables` fails".into(),
            "run Marina as root with the nftables package installed, or use --endpoints auto",
        ),
        (false, _) => Finding::bad(
            "endpoints",
            Level::Warn,
            "nftables not usable: endpoints use the userspace proxy (slower, no per-source guards)".into(),
            "run as root with nftables installed (apt-get install nftables) for kernel endpoints",
        ),
    }
}

fn cgroups(o: &Observations) -> Finding {
    let (desc, usable) = &o.cgroups;
    if *usable {
        Finding::ok("cgroups", desc.clone())
    } else {
        Finding::bad(
            "cgroups",
            Level::Warn,
            desc.clone(),
            "run as root on a host with cgroup v2 (memory and cpu controllers) for per-node CPU and memory limits",
        )
    }
}

fn node_users(o: &Observations) -> Finding {
    if o.euid != 0 {
        return Finding::bad(
            "node users",
            Level::Warn,
            "not root: every node runs as this user (no per-cluster uid, no port guards)".into(),
            "run `marina serve` as root for per-cluster uids",
        );
    }
    match &o.blocking_dir {
        None => Finding::ok(
            "node users",
            format!("nodes can run unprivileged under {}", o.data_dir.display()),
        ),
        Some((dir, mode)) if o.run_as_root => Finding::bad(
            "node users",
            Level::Warn,
            format!(
                "{} is mode {mode:o}; nodes run as root (nodes.run_as_root)",
                dir.display()
            ),
            "prefer a data dir node uids can reach, e.g. --data-dir /var/lib/marina",
        ),
        Some((dir, mode)) => Finding::bad(
            "node users",
            Level::Fail,
            format!(
                "{} is mode {mode:o}: node uids cannot reach {}, so `marina serve` refuses to start",
                dir.display(),
                o.data_dir.display()
            ),
            &format!(
                "chmod o+x {} (lets others pass, not list), or use --data-dir /var/lib/marina, or set run_as_root = true under [nodes]",
                dir.display()
            ),
        ),
    }
}

fn smallest(catalog: &[NodeSize]) -> Option<&NodeSize> {
    catalog.iter().min_by(|a, b| a.memory.total_cmp(&b.memory))
}

fn disk(o: &Observations) -> Finding {
    let Some(free) = o.free_disk else {
        return Finding::bad(
            "disk",
            Level::Fail,
            format!("cannot read free space under {}", o.data_dir.display()),
            "create the data dir's parent directory",
        );
    };
    let gib = free as f64 / (1u64 << 30) as f64;
    let Some(size) = smallest(&o.catalog) else {
        return Finding::ok("disk", format!("{gib:.1} GiB free"));
    };
    let need = 3 * size.disk_quota_bytes();
    let detail = format!(
        "{gib:.1} GiB free; a 3-node {} cluster may use {:.1} GiB",
        size.id,
        need as f64 / (1u64 << 30) as f64
    );
    if free >= need {
        Finding::ok("disk", detail)
    } else {
        Finding::bad(
            "disk",
            Level::Warn,
            detail,
            "free space, or put the data dir on a larger file system (nodes are held read-only when full)",
        )
    }
}

fn memory(o: &Observations) -> Finding {
    let Some(size) = smallest(&o.catalog) else {
        return Finding::ok("memory", format!("{:.1} GiB", o.memory_gib));
    };
    let need = 3.0 * size.memory;
    let detail = format!(
        "{:.1} GiB; a 3-node {} cluster needs {need:.1} GiB",
        o.memory_gib, size.id
    );
    if o.memory_gib >= need {
        Finding::ok("memory", detail)
    } else {
        Finding::bad(
            "memory",
            Level::Warn,
            detail,
            "use smaller or fewer nodes, or raise [capacity] memory_overcommit",
        )
    }
}

fn api(o: &Observations) -> Finding {
    let (url, result) = &o.api;
    match result {
        Ok(()) => Finding::ok("api", format!("{url} answers")),
        Err(e) => Finding::bad(
            "api",
            Level::Warn,
            format!("{url}: {e}"),
            "start it with `./scripts/run.sh` or `marina serve` (or pass --url)",
        ),
    }
}

/// The first ancestor of `data_dir` (not the data dir itself, which Marina
/// opens up itself) that others cannot pass, with its mode.
pub fn blocking_ancestor(data_dir: &Path) -> Option<(PathBuf, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let existing = data_dir.ancestors().skip(1).find(|a| a.exists())?;
    let existing = std::fs::canonicalize(existing).ok()?;
    existing.ancestors().find_map(|a| {
        let mode = std::fs::metadata(a).ok()?.permissions().mode() & 0o7777;
        (mode & 0o001 == 0).then(|| (a.to_path_buf(), mode))
    })
}

/// Reads the host (nothing is changed); `api` is the caller's probe of the
/// API's address.
pub async fn observe(config: &Config, api: (String, Result<(), String>)) -> Observations {
    let mariadb = marina_runtime::template::find_binary("mariadbd")
        .map_err(|e| e.to_string())
        .and_then(|p| {
            let v = marina_runtime::template::detect_version(&p).map_err(|e| e.to_string())?;
            Ok((p, v))
        });
    let cg = marina_runtime::cgroup::Cgroups::detect(Path::new("/sys/fs/cgroup"), &config.nodes.cgroup_parent);
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let usable = euid == 0 && !matches!(cg, marina_runtime::cgroup::Cgroups::None);
    let free_disk = config
        .data_dir
        .ancestors()
        .find(|a| a.exists())
        .and_then(crate::monitor::disk::free_bytes);
    Observations {
        mariadb,
        mariadb_backup: marina_runtime::template::find_binary("mariadb-backup").is_ok(),
        nftables: marina_endpoints::kernel_available().await,
        endpoint_mode: config.endpoints.mode,
        cgroups: (cg.describe(), usable),
        euid,
        blocking_dir: blocking_ancestor(&config.data_dir),
        run_as_root: config.nodes.run_as_root,
        data_dir: config.data_dir.clone(),
        free_disk,
        memory_gib: config
            .capacity
            .host_memory_gib
            .unwrap_or_else(crate::placement::host_memory_gib),
        catalog: config.catalog(),
        api,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use marina_common::size::default_catalog;

    fn healthy() -> Observations {
        Observations {
            mariadb: Ok(("/usr/sbin/mariadbd".into(), "10.11.14".into())),
            mariadb_backup: true,
            nftables: true,
            endpoint_mode: EndpointMode::Auto,
            cgroups: ("cgroup v2 limits under /sys/fs/cgroup/marina".into(), true),
            euid: 0,
            blocking_dir: None,
            run_as_root: false,
            data_dir: "/var/lib/marina".into(),
            free_disk: Some(200 << 30),
            memory_gib: 24.0,
            catalog: default_catalog(),
            api: ("http://127.0.0.1:7300".into(), Ok(())),
        }
    }

    fn level_of(o: &Observations, check: &str) -> (Level, String) {
        let f = verdicts(o)
            .into_iter()
            .find(|f| f.check == check)
            .expect("check exists");
        (f.level, f.line())
    }

    #[test]
    fn a_ready_host_passes_every_check() {
        let all = verdicts(&healthy());
        assert_eq!(all.len(), 7);
        assert!(all.iter().all(|f| f.level == Level::Ok && f.fix.is_none()), "{all:?}");
    }

    #[test]
    fn each_problem_says_what_to_do() {
        type Spoil = Box<dyn Fn(&mut Observations)>;
        let cases: Vec<(&str, Spoil, Level, &str)> = vec![
            (
                "mariadb",
                Box::new(|o| o.mariadb = Err("mariadbd not found".into())),
                Level::Fail,
                "install-deps",
            ),
            (
                "mariadb",
                Box::new(|o| o.mariadb_backup = false),
                Level::Warn,
                "mariadb-backup",
            ),
            (
                "mariadb",
                Box::new(|o| o.mariadb = Ok(("/x".into(), "11.4.2".into()))),
                Level::Warn,
                "10.11",
            ),
            ("endpoints", Box::new(|o| o.nftables = false), Level::Warn, "nftables"),
            (
                "endpoints",
                Box::new(|o| {
                    o.nftables = false;
                    o.endpoint_mode = EndpointMode::Kernel;
                }),
                Level::Fail,
                "--endpoints auto",
            ),
            (
                "cgroups",
                Box::new(|o| o.cgroups = ("none".into(), false)),
                Level::Warn,
                "cgroup v2",
            ),
            (
                "node users",
                Box::new(|o| o.blocking_dir = Some(("/root".into(), 0o700))),
                Level::Fail,
                "chmod o+x /root",
            ),
            (
                "node users",
                Box::new(|o| {
                    o.blocking_dir = Some(("/root".into(), 0o700));
                    o.run_as_root = true;
                }),
                Level::Warn,
                "run as root",
            ),
            ("node users", Box::new(|o| o.euid = 1000), Level::Warn, "as root"),
            (
                "disk",
                Box::new(|o| o.free_disk = Some(5 << 30)),
                Level::Warn,
                "larger file system",
            ),
            ("disk", Box::new(|o| o.free_disk = None), Level::Fail, "create"),
            ("memory", Box::new(|o| o.memory_gib = 2.0), Level::Warn, "smaller"),
            (
                "api",
                Box::new(|o| o.api.1 = Err("nothing is listening there".into())),
                Level::Warn,
                "marina serve",
            ),
        ];
        for (check, spoil, want, hint) in cases {
            let mut o = healthy();
            spoil(&mut o);
            let (level, line) = level_of(&o, check);
            assert_eq!(level, want, "{line}");
            assert!(line.contains(hint), "{check}: {line:?} should mention {hint:?}");
            assert!(line.contains('→'), "{line}");
        }
    }

    #[test]
    fn the_first_closed_ancestor_is_found() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let closed = t.path().join("closed");
        std::fs::create_dir_all(closed.join("open")).unwrap();
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
        let (dir, mode) = blocking_ancestor(&closed.join("open/marina-data")).expect("closed is found");
        assert_eq!((dir, mode), (std::fs::canonicalize(&closed).unwrap(), 0o700));
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o711)).unwrap();
        let found = blocking_ancestor(&closed.join("open/marina-data"));
        assert!(found.as_ref().is_none_or(|(d, _)| !d.starts_with(&closed)), "{found:?}");
    }
}
