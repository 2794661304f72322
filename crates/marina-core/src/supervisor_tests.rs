//! Tests of the supervisor: routes from roles and health, endpoint plans
//! applied in the order they were read, and restarts taking turns with
//! operations.

use super::*;
use marina_common::model::Replication;

fn cluster(status: ClusterStatus, ready: bool) -> ClusterRecord {
    ClusterRecord {
        id: "cl_1".into(),
        tenant_id: "tn_1".into(),
        name: "c".into(),
        status,
        size_id: "small".into(),
        version: "10.11.1".into(),
        replication: Replication::Semisync,
        node_count: 3,
        writer_host: "127.77.0.1".into(),
        reader_host: "127.78.0.1".into(),
        endpoint_port: 3306,
        endpoints_ready: ready,
        secrets_enc: String::new(),
        generation: 1,
        failover_mode: FailoverMode::Automatic,
        writer_paused: false,
        restore: None,
        backup_policy: None,
        backup_slot: None,
        auto_reseed: false,
        primary_read_only: false,
        binlog_archive_since: None,
        created_at: String::new(),
        updated_at: String::new(),
    }
}

fn node(port: u16, role: NodeRole, status: NodeStatus) -> NodeRecord {
    NodeRecord {
        id: format!("nd_{port}"),
        cluster_id: "cl_1".into(),
        ordinal: 0,
        role,
        status,
        host: "127.0.0.1".into(),
        port,
        size_id: "small".into(),
        server_id: 1,
        status_reason: None,
        rejoin_gtid: None,
        fenced: false,
        host_id: None,
        zone: None,
        created_at: String::new(),
        updated_at: String::new(),
    }
}

#[test]
fn routes_follow_roles_and_health() {
    let nodes = vec![
        node(1, NodeRole::Primary, NodeStatus::Active),
        node(2, NodeRole::Replica, NodeStatus::Active),
        node(3, NodeRole::Replica, NodeStatus::Down),
    ];
    let all = |_: &NodeRecord| true;
    let lo = marina_endpoints::loopback_only();
    let [w, r] = cluster_routes(&cluster(ClusterStatus::Active, true), &nodes, &all, &lo).unwrap();
    assert_eq!(w.listen.to_string(), "127.77.0.1:3306");
    assert_eq!(w.backends, vec!["127.0.0.1:1".parse().unwrap()]);
    assert_eq!(r.backends, vec!["127.0.0.1:2".parse().unwrap()]);
    // No healthy replica: the reader leads to the primary.
    let lonely = vec![
        node(1, NodeRole::Primary, NodeStatus::Active),
        node(3, NodeRole::Replica, NodeStatus::Down),
    ];
    let [_, r] = cluster_routes(&cluster(ClusterStatus::Degraded, true), &lonely, &all, &lo).unwrap();
    assert_eq!(r.backends, vec!["127.0.0.1:1".parse().unwrap()]);
    // A lagging replica leaves the reader.
    let not_2 = |n: &NodeRecord| n.port != 2;
    let [_, r] = cluster_routes(&cluster(ClusterStatus::Active, true), &nodes, &not_2, &lo).unwrap();
    assert_eq!(r.backends, vec!["127.0.0.1:1".parse().unwrap()]);
    // While failing over or holding writes, the writer leads nowhere.
    let [w, _] = cluster_routes(&cluster(ClusterStatus::FailingOver, true), &nodes, &all, &lo).unwrap();
    assert!(w.backends.is_empty() && w.exclusive);
    let mut paused = cluster(ClusterStatus::Updating, true);
    paused.writer_paused = true;
    let [w, _] = cluster_routes(&paused, &nodes, &all, &lo).unwrap();
    assert!(w.backends.is_empty());
    // Not yet active, or being deleted: no routes.
    assert!(cluster_routes(&cluster(ClusterStatus::Creating, false), &nodes, &all, &lo).is_none());
    // The create's last step: routed (the writer to the primary) before `active`.
    let [w, _] = cluster_routes(&cluster(ClusterStatus::Creating, true), &nodes, &all, &lo).unwrap();
    assert_eq!(w.backends.len(), 1);
    assert!(cluster_routes(&cluster(ClusterStatus::Deleting, true), &nodes, &all, &lo).is_none());
}

/// A data path whose first apply is slow; it remembers the last plan.
#[derive(Default)]
struct SlowFirstApply {
    calls: std::sync::atomic::AtomicUsize,
    last: std::sync::Mutex<Option<EndpointPlan>>,
}

#[async_trait::async_trait]
impl marina_endpoints::DataPath for SlowFirstApply {
    fn kind(&self) -> &'static str {
        "test"
    }
    async fn apply(&self, plan: &EndpointPlan) -> Result<(), marina_endpoints::EndpointError> {
        if self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        *self.last.lock().unwrap() = Some(plan.clone());
        Ok(())
    }
    async fn refusals(&self) -> Result<Vec<marina_endpoints::RefusalCount>, marina_endpoints::EndpointError> {
        Ok(Vec::new())
    }
    async fn accepted(&self) -> Result<Vec<(SocketAddrV4, u64)>, marina_endpoints::EndpointError> {
        Ok(Vec::new())
    }
}

/// Marina on a fresh store in `dir` with the given runtime and data path, and
/// the tenant `tn_1`.
async fn app_with(
    dir: &std::path::Path,
    runtime: Arc<dyn marina_runtime::NodeRuntime>,
    datapath: Arc<dyn marina_endpoints::DataPath>,
) -> Arc<Marina> {
    let config = crate::config::Config {
        data_dir: dir.to_path_buf(),
        ..Default::default()
    };
    let store = marina_store::SqliteStore::open(&dir.join("marina.db")).await.unwrap();
    let admin: Arc<dyn marina_engine::NodeAdmin> = Arc::new(marina_engine::MysqlAdmin::default());
    let app = Marina::with_parts(config, Arc::new(store), runtime, admin, datapath).unwrap();
    let tenant = marina_common::model::Tenant {
        id: "tn_1".into(),
        name: "t".into(),
        created_at: "2026-11-26T00:00:00Z".into(),
        operator: false,
    };
    app.store.create_tenant(&tenant).await.unwrap();
    app
}

#[tokio::test]
async fn a_plan_read_earlier_never_lands_later() {
    let dir = tempfile::tempdir().unwrap();
    let admin: Arc<dyn marina_engine::NodeAdmin> = Arc::new(marina_engine::MysqlAdmin::default());
    let runtime = marina_runtime::LocalRuntime::new(dir.path(), None, admin, Duration::from_secs(1)).unwrap();
    let datapath = Arc::new(SlowFirstApply::default());
    let app = app_with(dir.path(), Arc::new(runtime), datapath.clone()).await;
    let op = crate::operations::new_operation("tn_1", marina_common::model::OperationType::CreateCluster, "cl_1");
    let nodes = [node(1, NodeRole::Primary, NodeStatus::Active)];
    app.store
        .create_cluster(&cluster(ClusterStatus::Creating, false), &nodes, &op, &[])
        .await
        .unwrap();
    // A pass reads the cluster before its endpoints are ready and is slow
    // to apply what it read...
    let early = tokio::spawn({
        let app = app.clone();
        async move { apply_endpoints(&app).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    // ...while the create's last step marks them ready and applies.
    app.store
        .update_cluster_status("cl_1", &[ClusterStatus::Creating], ClusterStatus::Creating, Some(true))
        .await
        .unwrap();
    apply_endpoints(&app).await.unwrap();
    early.await.unwrap().unwrap();
    let last = datapath.last.lock().unwrap().clone().unwrap();
    assert_eq!(last.routes.len(), 2, "the plan applied last is the one read last");
}

/// A runtime where no node runs and a start takes 300 ms.
#[derive(Default)]
struct SlowStarts {
    started: std::sync::atomic::AtomicUsize,
    finished: std::sync::atomic::AtomicUsize,
    /// A directory `nd_orphan` with no node row, which cannot be removed.
    stuck_orphan: bool,
}

#[async_trait::async_trait]
impl marina_runtime::NodeRuntime for SlowStarts {
    fn default_version(&self) -> &str {
        "10.11.1"
    }
    fn node_dir(&self, node_id: &str) -> std::path::PathBuf {
        std::path::PathBuf::from("/nonexistent").join(node_id)
    }
    async fn prepare(&self, _: &marina_runtime::NodeSpec) -> Result<(), marina_runtime::RuntimeError> {
        Ok(())
    }
    async fn start(&self, _: &marina_runtime::NodeSpec) -> Result<u32, marina_runtime::RuntimeError> {
        use std::sync::atomic::Ordering::SeqCst;
        self.started.fetch_add(1, SeqCst);
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.finished.fetch_add(1, SeqCst);
        Ok(1)
    }
    async fn state(&self, _: &str) -> ProcessState {
        ProcessState::Stopped
    }
    async fn disk_usage(&self, _: &str) -> u64 {
        0
    }
    async fn open_binlog(
        &self,
        id: &str,
        name: &str,
    ) -> Result<marina_runtime::NodeFile, marina_runtime::RuntimeError> {
        Err(marina_runtime::RuntimeError::Io {
            context: format!("{id} has no binlog {name} here"),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })
    }
    async fn stop(&self, _: &str, _: Duration) -> Result<(), marina_runtime::RuntimeError> {
        Ok(())
    }
    async fn kill(&self, _: &str) -> Result<(), marina_runtime::RuntimeError> {
        Ok(())
    }
    async fn destroy(&self, id: &str) -> Result<(), marina_runtime::RuntimeError> {
        if self.stuck_orphan && id == "nd_orphan" {
            let source = std::io::Error::from_raw_os_error(libc::EPERM);
            return Err(marina_runtime::RuntimeError::Io {
                context: "removing nd_orphan".into(),
                source,
            });
        }
        Ok(())
    }
    async fn nodes_on_disk(&self) -> Result<Vec<String>, marina_runtime::RuntimeError> {
        Ok(if self.stuck_orphan {
            vec!["nd_orphan".into()]
        } else {
            Vec::new()
        })
    }
}

#[tokio::test]
async fn an_operation_begins_only_after_a_restart_under_way_and_later_restarts_stay_away() {
    use std::sync::atomic::Ordering::SeqCst;
    let dir = tempfile::tempdir().unwrap();
    let runtime = Arc::new(SlowStarts::default());
    let app = app_with(dir.path(), runtime.clone(), Arc::new(SlowFirstApply::default())).await;
    let mut c = cluster(ClusterStatus::Active, true);
    c.node_count = 2;
    c.secrets_enc = app
        .seal_cluster_secrets(
            &c.id,
            &marina_common::model::ClusterSecrets {
                mgmt_password: "m".into(),
                repl_password: "r".into(),
                admin_hash: marina_engine::users::native_password_hash("a"),
                initial_catalog: None,
            },
        )
        .unwrap();
    // Both processes are gone; only the replica is restarted (the primary
    // is the monitor's: it fails over).
    let nodes = [
        node(1, NodeRole::Primary, NodeStatus::Active),
        node(2, NodeRole::Replica, NodeStatus::Active),
    ];
    let op = crate::operations::new_operation("tn_1", marina_common::model::OperationType::CreateCluster, "cl_1");
    app.store.create_cluster(&c, &nodes, &op, &[]).await.unwrap();
    let pass = tokio::spawn({
        let (app, c) = (app.clone(), c.clone());
        async move { reconcile_cluster(&app, &c).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(runtime.started.load(SeqCst), 1, "the replica's restart is under way");
    // A delete takes the cluster (its status is stored first), then its
    // worker passes the restart turn before the first step.
    app.store
        .update_cluster_status("cl_1", &[ClusterStatus::Active], ClusterStatus::Deleting, None)
        .await
        .unwrap();
    app.restart_turns.pass("cl_1").await;
    assert_eq!(runtime.finished.load(SeqCst), 1, "the operation began beside a restart");
    pass.await.unwrap().unwrap();
    // A pass that read the cluster before the delete leaves it alone.
    reconcile_cluster(&app, &c).await.unwrap();
    assert_eq!(
        runtime.started.load(SeqCst),
        1,
        "a node was restarted under an operation"
    );
}

fn sealed(app: &Marina, cluster_id: &str) -> String {
    let secrets = marina_common::model::ClusterSecrets {
        mgmt_password: "m".into(),
        repl_password: "r".into(),
        admin_hash: marina_engine::users::native_password_hash("a"),
        initial_catalog: None,
    };
    app.seal_cluster_secrets(cluster_id, &secrets).unwrap()
}

#[tokio::test]
async fn an_orphan_that_cannot_be_removed_never_holds_back_the_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Arc::new(SlowStarts {
        stuck_orphan: true,
        ..Default::default()
    });
    let datapath = Arc::new(SlowFirstApply::default());
    let app = app_with(dir.path(), runtime, datapath.clone()).await;
    let mut c = cluster(ClusterStatus::Active, true);
    c.secrets_enc = sealed(&app, &c.id);
    let nodes = [node(1, NodeRole::Primary, NodeStatus::Stopped)];
    let op = crate::operations::new_operation("tn_1", marina_common::model::OperationType::CreateCluster, "cl_1");
    app.store.create_cluster(&c, &nodes, &op, &[]).await.unwrap();
    reconcile_once(&app).await.unwrap();
    let applied = datapath
        .last
        .lock()
        .unwrap()
        .clone()
        .expect("the endpoints were applied");
    assert_eq!(applied.routes.len(), 2, "the cluster's routes are in the plan");
}

#[tokio::test]
async fn one_clusters_unreadable_secrets_never_stop_the_monitor_for_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_with(
        dir.path(),
        Arc::new(SlowStarts::default()),
        Arc::new(SlowFirstApply::default()),
    )
    .await;
    // cl_1's secrets cannot be opened (sealed for another cluster); cl_2's can.
    for (i, secrets) in [(1u16, sealed(&app, "cl_x")), (2, sealed(&app, "cl_2"))] {
        let mut c = cluster(ClusterStatus::Active, true);
        c.id = format!("cl_{i}");
        c.name = format!("c{i}");
        c.writer_host = format!("127.77.0.{i}");
        c.reader_host = format!("127.78.0.{i}");
        c.secrets_enc = secrets;
        let mut n = node(i, NodeRole::Primary, NodeStatus::Active);
        n.cluster_id = c.id.clone();
        let op = crate::operations::new_operation("tn_1", marina_common::model::OperationType::CreateCluster, &c.id);
        app.store.create_cluster(&c, &[n], &op, &[]).await.unwrap();
    }
    let report = crate::monitor::tick(&app, &mut HashMap::new()).await.unwrap();
    assert_eq!((report.clusters, report.nodes), (1, 1), "{report:?}");
    assert!(
        report.skipped.len() == 1 && report.skipped[0].starts_with("cl_1: "),
        "{report:?}"
    );
    assert!(app.monitor.node("nd_2").is_some(), "cl_2's node was probed");
    assert!(app.monitor.node("nd_1").is_none(), "cl_1's node was not");
}

/// A host whose listing is given, and that records what it destroyed.
struct ListedHost {
    listing: Result<Vec<String>, ()>,
    destroyed: std::sync::Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl marina_runtime::NodeRuntime for ListedHost {
    fn default_version(&self) -> &str {
        "10.11"
    }
    fn node_dir(&self, node_id: &str) -> std::path::PathBuf {
        std::path::PathBuf::from("/nonexistent").join(node_id)
    }
    async fn prepare(&self, _: &marina_runtime::NodeSpec) -> Result<(), marina_runtime::RuntimeError> {
        unreachable!("the sweep only lists and destroys")
    }
    async fn start(&self, _: &marina_runtime::NodeSpec) -> Result<u32, marina_runtime::RuntimeError> {
        unreachable!("the sweep only lists and destroys")
    }
    async fn state(&self, _: &str) -> ProcessState {
        ProcessState::Stopped
    }
    async fn open_binlog(&self, _: &str, _: &str) -> Result<marina_runtime::NodeFile, marina_runtime::RuntimeError> {
        unreachable!("the sweep only lists and destroys")
    }
    async fn disk_usage(&self, _: &str) -> u64 {
        0
    }
    async fn stop(&self, _: &str, _: Duration) -> Result<(), marina_runtime::RuntimeError> {
        unreachable!("the sweep only lists and destroys")
    }
    async fn kill(&self, _: &str) -> Result<(), marina_runtime::RuntimeError> {
        unreachable!("the sweep only lists and destroys")
    }
    async fn destroy(&self, node_id: &str) -> Result<(), marina_runtime::RuntimeError> {
        self.destroyed.lock().unwrap().push(node_id.into());
        Ok(())
    }
    async fn nodes_on_disk(&self) -> Result<Vec<String>, marina_runtime::RuntimeError> {
        match &self.listing {
            Ok(ids) => Ok(ids.clone()),
            Err(()) => Err(marina_runtime::RuntimeError::Remote {
                host: "hs_x".into(),
                code: "unreachable".into(),
                message: "no answer".into(),
            }),
        }
    }
}

#[tokio::test]
async fn a_host_that_fails_its_listing_leaves_the_others_swept() {
    let host = |listing: Result<Vec<&str>, ()>| {
        Arc::new(ListedHost {
            listing: listing.map(|l| l.into_iter().map(String::from).collect()),
            destroyed: Default::default(),
        })
    };
    let (silent, a, b) = (
        host(Err(())),
        host(Ok(vec!["nd_a", "nd_orphan_a"])),
        host(Ok(vec!["nd_b"])),
    );
    let runtimes: Vec<Arc<dyn marina_runtime::NodeRuntime>> = vec![silent.clone(), a.clone(), b.clone()];
    let read_after = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = read_after.clone();
    let removed = sweep_orphans(&runtimes, Duration::from_secs(1), || async move {
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(HashSet::from(["nd_a".to_string(), "nd_b".to_string()]))
    })
    .await
    .unwrap();
    assert_eq!(removed, 1);
    assert_eq!(*a.destroyed.lock().unwrap(), vec!["nd_orphan_a".to_string()]);
    assert!(b.destroyed.lock().unwrap().is_empty() && silent.destroyed.lock().unwrap().is_empty());
    assert!(read_after.load(std::sync::atomic::Ordering::SeqCst));
    // Nothing listed anywhere: the rows are not even read.
    let empty: Vec<Arc<dyn marina_runtime::NodeRuntime>> = vec![host(Ok(vec![])), host(Err(()))];
    let removed = sweep_orphans(&empty, Duration::from_secs(1), || async { panic!("no rows needed") })
        .await
        .unwrap();
    assert_eq!(removed, 0);
}
