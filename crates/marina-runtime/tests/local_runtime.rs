//! `LocalRuntime` against real mariadbd: start, adopt (also from a second
//! runtime instance, as after a control-plane restart), stop, destroy, and the
//! typed start errors (port in use, exited with the log's tail).

use std::sync::Arc;
use std::time::Duration;

use marina_engine::cnf::NodeConfig;
use marina_engine::users::{AccountHashes, MGMT_USER, init_sql, native_password_hash};
use marina_engine::{MysqlAdmin, NodeAddr, NodeAdmin};
use marina_runtime::{LocalRuntime, NodeRuntime, NodeSpec, ProcessState, RuntimeError};

const TEMPLATE_CACHE: &str = "/tmp/marina-test-templates";

/// The uid test nodes run as (no passwd entry needed).
const NODE_UID: u32 = 1_599_000_001;

/// The real uid of a process.
fn process_uid(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn runtime(root: &std::path::Path) -> LocalRuntime {
    LocalRuntime::new(
        root,
        Some(TEMPLATE_CACHE.into()),
        Arc::new(MysqlAdmin::default()),
        Duration::from_secs(30),
    )
    .expect("MariaDB is installed")
}

/// Kills, on drop, every mariadbd started under `dir` (even when a test fails).
struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let needle = format!("--defaults-file={}/", self.0.display());
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmd = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if cmd.split(|b| *b == 0).any(|a| a.starts_with(needle.as_bytes())) {
                // SAFETY: kill(2) on a mariadbd this test started.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spec(rt: &LocalRuntime, node_id: &str, port: u16) -> NodeSpec {
    let hashes = AccountHashes {
        mgmt: native_password_hash("mgmt-pw"),
        repl: native_password_hash("repl-pw"),
        admin: native_password_hash("admin-pw"),
    };
    NodeSpec {
        node_id: node_id.into(),
        config: NodeConfig {
            node_dir: rt.node_dir(node_id),
            bind_address: "127.0.0.1".into(),
            port,
            server_id: 1,
            buffer_pool_bytes: 128 << 20,
            max_connections: 50,
            semisync: true,
            semisync_timeout_ms: 1000,
            starts_as_replica: false,
            run_uid: Some(NODE_UID),
        },
        init_sql: init_sql(&hashes),
        version: rt.default_version().into(),
        limits: marina_runtime::cgroup::Limits {
            memory_bytes: 1 << 30,
            cpus: 1,
        },
        mgmt: NodeAddr {
            host: "127.0.0.1".into(),
            port,
            user: MGMT_USER.into(),
            password: "mgmt-pw".into(),
            socket: Some(rt.node_dir(node_id).join("mariadbd.sock").display().to_string()),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_adopt_stop_destroy() {
    let dir = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup(dir.path().to_path_buf());
    let rt = runtime(dir.path());
    let port = free_port();
    let s = spec(&rt, "nd_rt_test_one", port);
    rt.prepare(&s).await.unwrap();
    let pid = rt.start(&s).await.unwrap();
    assert_eq!(rt.state("nd_rt_test_one").await, ProcessState::Running(pid));
    // The node runs as its cluster's uid and owns its directory, which
    // nobody else can enter; its files are private.
    assert!(rt.runs_unprivileged(), "the tests run as root under /tmp");
    assert_eq!(process_uid(pid), NODE_UID);
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir_meta = std::fs::metadata(&s.config.node_dir).unwrap();
    assert_eq!((dir_meta.uid(), dir_meta.mode() & 0o777), (NODE_UID, 0o700));
    for f in ["my.cnf", "init.sql"] {
        let meta = std::fs::metadata(s.config.node_dir.join(f)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{f}");
        assert_eq!(meta.uid(), NODE_UID, "{f}");
    }
    assert!(
        !std::fs::read_to_string(s.config.init_path())
            .unwrap()
            .contains("mgmt-pw")
    );
    // Temporary files (and a replica's `SQL_LOAD-` check file) go to the
    // node's own directory, not the /tmp every cluster's uid shares.
    let rows = MysqlAdmin::default()
        .rows(&s.mgmt, "SELECT @@tmpdir AS t, @@slave_load_tmpdir AS l")
        .await
        .unwrap();
    let own = s.config.tmp_path().display().to_string();
    assert_eq!(
        rows[0],
        vec![("t".to_string(), Some(own.clone())), ("l".to_string(), Some(own))]
    );
    assert_eq!(std::fs::metadata(s.config.tmp_path()).unwrap().uid(), NODE_UID);
    // Starting again adopts; so does a fresh runtime (a restarted control plane).
    assert_eq!(rt.start(&s).await.unwrap(), pid);
    let rt2 = runtime(dir.path());
    assert_eq!(rt2.start(&s).await.unwrap(), pid);
    // The management account works and the node starts read-only.
    MysqlAdmin::default().ping(&s.mgmt).await.unwrap();
    // Its redo can be read (a physical backup's pace follows it): a current
    // LSN, and the log size the node was given for its buffer pool.
    let (lsn, capacity) = MysqlAdmin::default().redo(&s.mgmt).await.unwrap();
    assert!(lsn > 0);
    assert_eq!(capacity, marina_engine::cnf::redo_log_bytes(128 << 20));
    // Preparing again keeps the datadir (idempotent).
    rt.prepare(&s).await.unwrap();
    assert_eq!(rt.state("nd_rt_test_one").await, ProcessState::Running(pid));

    rt.stop("nd_rt_test_one", Duration::from_secs(20)).await.unwrap();
    assert_eq!(rt.state("nd_rt_test_one").await, ProcessState::Stopped);
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "port released"
    );
    // Stopping a stopped node is fine; it starts again with its data.
    rt.stop("nd_rt_test_one", Duration::from_secs(1)).await.unwrap();
    let pid2 = rt.start(&s).await.unwrap();
    assert_ne!(pid2, pid);
    rt.destroy("nd_rt_test_one").await.unwrap();
    assert!(!rt.node_dir("nd_rt_test_one").exists());
    assert!(rt.nodes_on_disk().await.unwrap().is_empty());
    rt.destroy("nd_rt_test_one").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_start_errors() {
    let dir = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup(dir.path().to_path_buf());
    let rt = runtime(dir.path());

    // Port held by someone else.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let s = spec(&rt, "nd_rt_busy", port);
    rt.prepare(&s).await.unwrap();
    match rt.start(&s).await {
        Err(RuntimeError::PortInUse { port: p, .. }) => assert_eq!(p, port),
        other => panic!("expected PortInUse, got {other:?}"),
    }
    drop(busy);

    // A server that exits during start-up is reported with its log.
    let s = spec(&rt, "nd_rt_bad", free_port());
    rt.prepare(&s).await.unwrap();
    let mut cnf = std::fs::read_to_string(s.config.cnf_path()).unwrap();
    cnf.push_str("no_such_option_marina = 1\n");
    std::fs::write(s.config.cnf_path(), cnf).unwrap();
    match rt.start(&s).await {
        Err(e @ RuntimeError::Exited { .. }) => {
            assert!(e.to_string().contains("no_such_option_marina"), "{e}");
        }
        other => panic!("expected Exited, got {other:?}"),
    }
    assert_eq!(rt.state("nd_rt_bad").await, ProcessState::Stopped);
}

#[tokio::test]
async fn binlogs_are_read_by_plain_name_and_never_through_a_link() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let data = rt.node_dir("nd_files").join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("mariadb-bin.000001"), b"binlog bytes").unwrap();
    let mut f = rt.open_binlog("nd_files", "mariadb-bin.000001").await.unwrap();
    let mut text = String::new();
    f.reader.read_to_string(&mut text).await.unwrap();
    assert_eq!(text, "binlog bytes");
    assert!(f.modified.is_some());
    // A link planted in the node's directory (the node's uid owns it) is
    // not followed, and a name with a directory part is refused.
    std::fs::write(dir.path().join("secret"), b"not the node's").unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret"), data.join("mariadb-bin.000002")).unwrap();
    for name in ["mariadb-bin.000002", "../my.cnf", "/etc/passwd", "..", ""] {
        assert!(rt.open_binlog("nd_files", name).await.is_err(), "{name:?} was opened");
    }
}
