//! The SQLite store's rules: guarded updates, uniqueness as `Conflict`, tenant
//! scoping, paging cursors, and operation steps round-tripping.

use marina_common::model::*;
use marina_store::prelude::*;
use marina_store::{PageRequest, SqliteStore, StoreError};

fn tenant(id: &str) -> Tenant {
    Tenant {
        id: id.into(),
        name: id.into(),
        created_at: "2026-01-01T00:00:00Z".into(),
        operator: false,
    }
}

fn cluster(id: &str, tenant: &str, name: &str, host: u8) -> ClusterRecord {
    ClusterRecord {
        id: id.into(),
        tenant_id: tenant.into(),
        name: name.into(),
        status: ClusterStatus::Creating,
        size_id: "small".into(),
        version: "10.11.1".into(),
        replication: Replication::Semisync,
        node_count: 1,
        writer_host: format!("127.77.0.{host}"),
        reader_host: format!("127.78.0.{host}"),
        endpoint_port: 3306,
        endpoints_ready: false,
        secrets_enc: "sealed".into(),
        generation: 1,
        failover_mode: FailoverMode::Automatic,
        writer_paused: false,
        restore: None,
        backup_policy: None,
        backup_slot: None,
        auto_reseed: false,
        primary_read_only: false,
        binlog_archive_since: None,
        created_at: "2026-01-01T00:00:00Z".into(),
        updated_at: "2026-01-01T00:00:00Z".into(),
    }
}

fn node(id: &str, cluster: &str, port: u16) -> NodeRecord {
    NodeRecord {
        id: id.into(),
        cluster_id: cluster.into(),
        ordinal: 0,
        role: NodeRole::Primary,
        status: NodeStatus::Creating,
        host: "127.0.0.1".into(),
        port,
        size_id: "small".into(),
        server_id: 1,
        status_reason: None,
        rejoin_gtid: None,
        fenced: false,
        host_id: None,
        zone: None,
        created_at: "2026-01-01T00:00:00Z".into(),
        updated_at: "2026-01-01T00:00:00Z".into(),
    }
}

fn op(id: &str, tenant: &str, cluster: &str, t: OperationType) -> Operation {
    Operation {
        id: id.into(),
        object: "operation",
        op_type: t,
        status: OperationStatus::Pending,
        cluster_id: Some(cluster.into()),
        node_id: None,
        params: None,
        tenant_id: tenant.into(),
        created_at: "2026-01-01T00:00:00Z".into(),
        started_at: None,
        finished_at: None,
        error: None,
        steps: ["a", "b"]
            .iter()
            .map(|n| OperationStep {
                name: (*n).into(),
                status: StepStatus::Pending,
                started_at: None,
                finished_at: None,
            })
            .collect(),
    }
}

/// Inserts cluster `cl_{i}` named `name` for `tenant`, with one node on `port`
/// and its create operation.
async fn add(s: &SqliteStore, i: u8, tenant: &str, name: &str, port: u16) -> Result<(), StoreError> {
    let id = format!("cl_{i}");
    s.create_cluster(
        &cluster(&id, tenant, name, i),
        &[node(&format!("nd_{i}"), &id, port)],
        &op(&format!("op_{i}"), tenant, &id, OperationType::CreateCluster),
        &[],
    )
    .await
}

async fn store() -> SqliteStore {
    let s = SqliteStore::in_memory().await.unwrap();
    s.create_tenant(&tenant("tn_a")).await.unwrap();
    s.create_tenant(&tenant("tn_b")).await.unwrap();
    s
}

#[tokio::test]
async fn guarded_updates_apply_only_from_expected_status() {
    let s = store().await;
    add(&s, 1, "tn_a", "one", 5000).await.unwrap();
    // Wrong expectation: nothing changes, and that is a value, not an error.
    let miss = s
        .update_cluster_status("cl_1", &[ClusterStatus::Active], ClusterStatus::Degraded, None)
        .await
        .unwrap();
    assert!(miss.is_none());
    let hit = s
        .update_cluster_status("cl_1", &[ClusterStatus::Creating], ClusterStatus::Active, Some(true))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hit.status, ClusterStatus::Active);
    assert!(hit.endpoints_ready);
    assert_eq!(hit.generation, 2);
    // A delete may start only from the listed statuses, atomically with its operation.
    let del = op("op_del", "tn_a", "cl_1", OperationType::DeleteCluster);
    assert!(
        !s.begin_cluster_delete("cl_1", &[ClusterStatus::Failed], &del)
            .await
            .unwrap()
    );
    assert!(
        s.get_operation(None, "op_2").await.unwrap().is_none(),
        "no operation without the status change"
    );
    assert!(
        s.begin_cluster_delete("cl_1", &[ClusterStatus::Active], &del)
            .await
            .unwrap()
    );
    assert_eq!(
        s.get_cluster(None, "cl_1").await.unwrap().unwrap().status,
        ClusterStatus::Deleting
    );
    // Finishing releases the name, the addresses and the ports.
    assert!(s.finish_cluster_delete("cl_1").await.unwrap());
    assert!(s.get_cluster(None, "cl_1").await.unwrap().is_none());
    assert!(s.used_ports().await.unwrap().is_empty());
    assert!(s.used_endpoint_hosts().await.unwrap().is_empty());
    add(&s, 2, "tn_a", "one", 5000).await.unwrap();
}

#[tokio::test]
async fn monitor_writes_land_only_while_what_the_monitor_saw_holds() {
    use marina_store::MonitorWrite;
    let s = store().await;
    add(&s, 1, "tn_a", "one", 5000).await.unwrap();
    let c = s
        .update_cluster_status("cl_1", &[ClusterStatus::Creating], ClusterStatus::Active, Some(true))
        .await
        .unwrap()
        .unwrap();
    s.update_node("nd_1", NodeRole::Primary, NodeStatus::Active)
        .await
        .unwrap();
    let generation = c.generation;
    let down = |from| MonitorWrite::NodeStatus {
        node_id: "nd_1",
        role: NodeRole::Primary,
        from,
        to: NodeStatus::Down,
    };
    let node = || async { s.list_nodes("cl_1").await.unwrap().remove(0) };
    // A stale status, a stale role or a stale generation: nothing lands.
    assert!(
        !s.monitor_write("cl_1", generation, &down(NodeStatus::Creating))
            .await
            .unwrap()
    );
    let as_replica = MonitorWrite::FailNode {
        node_id: "nd_1",
        role: NodeRole::Replica,
        reason: "x",
    };
    assert!(!s.monitor_write("cl_1", generation, &as_replica).await.unwrap());
    assert!(
        !s.monitor_write("cl_1", generation - 1, &down(NodeStatus::Active))
            .await
            .unwrap()
    );
    assert!(
        !s.monitor_write("cl_2", generation, &down(NodeStatus::Active))
            .await
            .unwrap(),
        "another cluster's node"
    );
    assert_eq!(node().await.status, NodeStatus::Active);
    // What the monitor saw: it lands, without bumping the generation.
    assert!(
        s.monitor_write("cl_1", generation, &down(NodeStatus::Active))
            .await
            .unwrap()
    );
    assert_eq!(node().await.status, NodeStatus::Down);
    let fail = MonitorWrite::FailNode {
        node_id: "nd_1",
        role: NodeRole::Primary,
        reason: "diverged",
    };
    assert!(s.monitor_write("cl_1", generation, &fail).await.unwrap());
    assert_eq!(node().await.status_reason.as_deref(), Some("diverged"));
    s.set_node_fenced("nd_1", true).await.unwrap();
    s.set_node_ha("nd_1", None, Some("0-1-5")).await.unwrap();
    let unfence = MonitorWrite::Unfence {
        node_id: "nd_1",
        role: NodeRole::Primary,
    };
    let clear = MonitorWrite::ClearRejoinLimit {
        node_id: "nd_1",
        role: NodeRole::Primary,
    };
    assert!(s.monitor_write("cl_1", generation, &unfence).await.unwrap());
    assert!(s.monitor_write("cl_1", generation, &clear).await.unwrap());
    let n = node().await;
    assert!(!n.fenced && n.rejoin_gtid.is_none());
    // The cluster's status bumps the generation: the monitor's next write
    // from the same reading no longer lands.
    let degraded = MonitorWrite::ClusterStatus {
        to: ClusterStatus::Degraded,
    };
    assert!(s.monitor_write("cl_1", generation, &degraded).await.unwrap());
    assert!(!s.monitor_write("cl_1", generation, &degraded).await.unwrap());
    // An operation that began since (a new generation, a status the monitor
    // does not own) wins.
    let c = s.get_cluster(None, "cl_1").await.unwrap().unwrap();
    assert_eq!((c.status, c.generation), (ClusterStatus::Degraded, generation + 1));
    let del = op("op_del", "tn_a", "cl_1", OperationType::DeleteCluster);
    assert!(
        s.begin_cluster_delete("cl_1", &[ClusterStatus::Degraded], &del)
            .await
            .unwrap()
    );
    let active = MonitorWrite::ClusterStatus {
        to: ClusterStatus::Active,
    };
    assert!(!s.monitor_write("cl_1", generation + 1, &active).await.unwrap());
    assert_eq!(
        s.get_cluster(None, "cl_1").await.unwrap().unwrap().status,
        ClusterStatus::Deleting
    );
}

#[tokio::test]
async fn uniqueness_is_a_conflict_and_leaves_nothing_half_written() {
    let s = store().await;
    add(&s, 1, "tn_a", "one", 5000).await.unwrap();
    // Same name in the same tenant.
    let e = s
        .create_cluster(
            &cluster("cl_2", "tn_a", "one", 2),
            &[node("nd_2", "cl_2", 5001)],
            &op("op_2", "tn_a", "cl_2", OperationType::CreateCluster),
            &[],
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e}");
    // Same port, different name: the whole transaction is rolled back.
    let e = s
        .create_cluster(
            &cluster("cl_3", "tn_a", "three", 3),
            &[node("nd_3", "cl_3", 5000)],
            &op("op_3", "tn_a", "cl_3", OperationType::CreateCluster),
            &[],
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e}");
    assert!(s.get_cluster(None, "cl_3").await.unwrap().is_none());
    assert!(s.get_operation(None, "op_3").await.unwrap().is_none());
    // Same name in another tenant is fine.
    add(&s, 4, "tn_b", "one", 5004).await.unwrap();
}

#[tokio::test]
async fn reads_are_scoped_by_tenant_and_paged() {
    let s = store().await;
    for i in 0..5u8 {
        add(&s, i, "tn_a", &format!("c{i}"), 5000 + i as u16).await.unwrap();
    }
    assert!(s.get_cluster(Some("tn_b"), "cl_0").await.unwrap().is_none());
    assert!(s.get_cluster(Some("tn_a"), "cl_0").await.unwrap().is_some());
    assert!(s.get_operation(Some("tn_b"), "op_0").await.unwrap().is_none());
    assert!(
        s.list_clusters(
            "tn_b",
            PageRequest {
                limit: 10,
                cursor: None
            }
        )
        .await
        .unwrap()
        .items
        .is_empty()
    );
    let p1 = s
        .list_clusters("tn_a", PageRequest { limit: 2, cursor: None })
        .await
        .unwrap();
    let p2 = s
        .list_clusters(
            "tn_a",
            PageRequest {
                limit: 2,
                cursor: p1.next_cursor.as_deref(),
            },
        )
        .await
        .unwrap();
    let p3 = s
        .list_clusters(
            "tn_a",
            PageRequest {
                limit: 2,
                cursor: p2.next_cursor.as_deref(),
            },
        )
        .await
        .unwrap();
    let names: Vec<String> = [p1.items, p2.items, p3.items.clone()]
        .concat()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["c0", "c1", "c2", "c3", "c4"]);
    assert!(p3.next_cursor.is_none());
}

#[tokio::test]
async fn operation_progress_round_trips() {
    let s = store().await;
    s.create_cluster(
        &cluster("cl_1", "tn_a", "one", 1),
        &[],
        &op("op_1", "tn_a", "cl_1", OperationType::CreateCluster),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(s.unfinished_operations().await.unwrap().len(), 1);
    s.start_operation("op_1", "2026-01-01T00:00:01Z").await.unwrap();
    s.update_step("op_1", 0, StepStatus::Running, "2026-01-01T00:00:01Z")
        .await
        .unwrap();
    s.update_step("op_1", 0, StepStatus::Succeeded, "2026-01-01T00:00:02Z")
        .await
        .unwrap();
    let o = s.get_operation(None, "op_1").await.unwrap().unwrap();
    assert_eq!(o.status, OperationStatus::Running);
    assert_eq!(o.steps[0].status, StepStatus::Succeeded);
    assert_eq!(o.steps[0].started_at.as_deref(), Some("2026-01-01T00:00:01Z"));
    assert_eq!(o.steps[0].finished_at.as_deref(), Some("2026-01-01T00:00:02Z"));
    assert_eq!(o.steps[1].status, StepStatus::Pending);
    let err = OperationError {
        code: "unavailable".into(),
        message: "boom".into(),
    };
    s.finish_operation("op_1", OperationStatus::Failed, Some(&err), "2026-01-01T00:00:03Z")
        .await
        .unwrap();
    let o = s.get_operation(None, "op_1").await.unwrap().unwrap();
    assert_eq!(o.status, OperationStatus::Failed);
    assert_eq!(o.error.unwrap().message, "boom");
    assert!(s.unfinished_operations().await.unwrap().is_empty());
}

fn audit(id: &str, tenant: &str, created_at: &str, status: u16) -> AuditEvent {
    AuditEvent {
        id: id.into(),
        object: "audit_event",
        tenant_id: tenant.into(),
        token_id: "tok_1".into(),
        source: "127.0.0.2".into(),
        method: "POST".into(),
        route: "/v1/clusters".into(),
        path: "/v1/clusters".into(),
        status,
        result: AuditEvent::result_of(status).into(),
        error_code: (status >= 400).then(|| "conflict".to_string()),
        request_id: "req_1".into(),
        created_at: created_at.into(),
    }
}

#[tokio::test]
async fn audit_events_are_per_tenant_newest_first_and_pruned_by_age() {
    let s = store().await;
    s.insert_audit_event(&audit("ae_1", "tn_a", "2026-01-01T00:00:00.000Z", 202))
        .await
        .unwrap();
    s.insert_audit_event(&audit("ae_2", "tn_b", "2026-06-01T00:00:00.000Z", 202))
        .await
        .unwrap();
    s.insert_audit_event(&audit("ae_3", "tn_a", "2026-06-01T00:00:00.000Z", 409))
        .await
        .unwrap();
    let page = s
        .list_audit_events("tn_a", PageRequest { limit: 1, cursor: None })
        .await
        .unwrap();
    assert_eq!(page.items.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["ae_3"]);
    assert_eq!(page.items[0].result, "failed");
    assert_eq!(page.items[0].error_code.as_deref(), Some("conflict"));
    let next = s
        .list_audit_events(
            "tn_a",
            PageRequest {
                limit: 10,
                cursor: page.next_cursor.as_deref(),
            },
        )
        .await
        .unwrap();
    assert_eq!(next.items.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["ae_1"]);
    assert_eq!(next.items[0].result, "succeeded");
    assert_eq!(s.prune_audit_events("2026-03-01T00:00:00.000Z").await.unwrap(), 1);
    let left = s
        .list_audit_events(
            "tn_a",
            PageRequest {
                limit: 10,
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(left.items.len(), 1);
    let b = s
        .list_audit_events(
            "tn_b",
            PageRequest {
                limit: 10,
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(b.items.len(), 1, "another tenant's events are untouched and unseen");
}

#[tokio::test]
async fn a_schedule_slot_takes_one_backup() {
    let s = store().await;
    add(&s, 1, "tn_a", "c1", 41001).await.unwrap();
    let c = s.live_clusters().await.unwrap().remove(0);
    s.set_backup_policy(&c.id, None, "2026-01-01T00:00:00.000Z")
        .await
        .unwrap();
    let backup = |id: &str| BackupRecord {
        id: id.into(),
        tenant_id: "tn_a".into(),
        cluster_id: c.id.clone(),
        method: BackupMethod::Logical,
        status: BackupStatus::Pending,
        size_bytes: None,
        gtid_position: None,
        started_at: None,
        finished_at: None,
        source_node_id: None,
        checksum: None,
        mariadb_version: "10.11.1".into(),
        operation_id: format!("op_{id}"),
        trigger: "schedule".into(),
        error: None,
        created_at: "2026-01-01T00:00:01.000Z".into(),
    };
    let slot = Some((Some("2026-01-01T00:00:00.000Z"), "2026-01-01T00:00:02.000Z"));
    let first = op("op_bk_1", "tn_a", &c.id, OperationType::Backup);
    s.create_backup(&backup("bk_1"), &first, slot).await.unwrap();
    // A second pass that read the same slot loses, and leaves nothing behind.
    let second = op("op_bk_2", "tn_a", &c.id, OperationType::Backup);
    assert!(matches!(
        s.create_backup(&backup("bk_2"), &second, slot).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(s.get_backup(None, "bk_2").await.unwrap().is_none());
    assert!(s.get_operation(None, "op_bk_2").await.unwrap().is_none());
    let c = s.get_cluster(None, &c.id).await.unwrap().unwrap();
    assert_eq!(c.backup_slot.as_deref(), Some("2026-01-01T00:00:02.000Z"));
    assert!(
        !s.move_backup_slot(&c.id, Some("2026-01-01T00:00:00.000Z"), "x")
            .await
            .unwrap()
    );
}
