//! Cluster services: create (validate, check capacity, allocate, record the
//! cluster with its create operation), read, list and delete. The work itself is
//! done by the operation worker (`operations/`).

use std::collections::HashSet;

use marina_common::model::*;
use marina_common::{Error, ids, time_fmt};
use marina_engine::users::native_password_hash;
use marina_store::{Page, PageRequest};

use crate::Marina;
use crate::operations::new_operation;
use crate::placement;

/// Most nodes a cluster may have.
pub const MAX_NODES: u32 = 9;
/// How often an insert is retried when another request took the same address or port.
const ALLOCATION_ATTEMPTS: usize = 8;

/// What `create_cluster` returns: the admin password is shown only here.
pub struct Created {
    pub cluster: ClusterRecord,
    pub nodes: Vec<NodeRecord>,
    pub operation: Operation,
    pub admin_password: String,
}

/// Statuses from which a delete may start.
const DELETABLE: &[ClusterStatus] = &[ClusterStatus::Active, ClusterStatus::Degraded, ClusterStatus::Failed];

impl Marina {
    /// Validates and records a new cluster and its create operation.
    pub async fn create_cluster(&self, tenant_id: &str, input: CreateClusterInput) -> Result<Created, Error> {
        ids::validate_name(&input.name).map_err(Error::InvalidRequest)?;
        let size = self.size(&input.size_id).cloned().ok_or_else(|| {
            let known: Vec<&str> = self.sizes.iter().map(|s| s.id.as_str()).collect();
            Error::InvalidRequest(format!(
                "unknown size_id {:?}; sizes are: {}",
                input.size_id,
                known.join(", ")
            ))
        })?;
        if !(1..=MAX_NODES).contains(&input.nodes) {
            return Err(Error::InvalidRequest(format!(
                "nodes must be between 1 and {MAX_NODES}, got {}",
                input.nodes
            )));
        }
        let installed = self.runtime.default_version().to_string();
        let restore = match &input.restore {
            Some(r) => Some(self.restore_source(tenant_id, r, &installed).await?),
            None => None,
        };
        let version = match input.version.as_deref() {
            None | Some("") => installed.clone(),
            Some(v) if v == installed || installed.starts_with(&format!("{v}.")) => installed.clone(),
            Some(v) => {
                return Err(Error::InvalidRequest(format!(
                    "version {v:?} is not available; available: {installed}"
                )));
            }
        };
        let initial_catalog = crate::catalog::initial_catalog(&input)?;
        self.check_security_groups(tenant_id, &input.security_group_ids).await?;
        if self.store.get_cluster_by_name(tenant_id, &input.name).await?.is_some() {
            return Err(Error::Conflict(format!(
                "a cluster named {:?} already exists",
                input.name
            )));
        }
        self.check_capacity(size.memory * input.nodes as f64).await?;
        self.check_quota(tenant_id, 1, input.nodes, size.memory * input.nodes as f64)
            .await?;
        let hosts = self
            .place(
                input.nodes as usize,
                &size,
                &[],
                input.placement,
                restore.is_some() && self.blobs.remote().is_none(),
            )
            .await?;

        let admin_password = ids::random_password(24);
        let secrets = ClusterSecrets {
            mgmt_password: ids::random_password(32),
            repl_password: ids::random_password(32),
            admin_hash: native_password_hash(&admin_password),
            initial_catalog,
        };
        let replication = input.replication.unwrap_or(Replication::Semisync);

        for _ in 0..ALLOCATION_ATTEMPTS {
            let used_hosts: HashSet<String> = self.store.used_endpoint_hosts().await?.into_iter().collect();
            let (writer, reader) = placement::endpoint_pair(
                self.config.endpoints.writer_pool,
                self.config.endpoints.reader_pool,
                &used_hosts,
            )
            .ok_or_else(|| Error::CapacityExceeded("no free endpoint address left in the pools".into()))?;
            let used_ports: HashSet<u16> = self.store.used_ports().await?.into_iter().collect();
            let bind = self.config.nodes.bind_address;
            let ports = placement::pick_ports(
                input.nodes as usize,
                self.config.nodes.port_min,
                self.config.nodes.port_max,
                &used_ports,
                |p| std::net::TcpListener::bind((bind, p)).is_ok(),
            )
            .ok_or_else(|| Error::CapacityExceeded("no free node port left in the configured range".into()))?;

            let now = time_fmt::now_rfc3339();
            let id = ids::new_id(ids::prefix::CLUSTER);
            let secrets_enc = self.seal_cluster_secrets(&id, &secrets)?;
            let cluster = ClusterRecord {
                id,
                tenant_id: tenant_id.into(),
                name: input.name.clone(),
                status: ClusterStatus::Creating,
                size_id: size.id.clone(),
                version: version.clone(),
                replication,
                node_count: input.nodes,
                writer_host: writer.to_string(),
                reader_host: reader.to_string(),
                endpoint_port: self.config.endpoints.port,
                endpoints_ready: false,
                secrets_enc,
                generation: 1,
                failover_mode: FailoverMode::Automatic,
                writer_paused: false,
                restore: restore.clone(),
                backup_policy: None,
                backup_slot: None,
                auto_reseed: false,
                primary_read_only: false,
                binlog_archive_since: None,
                created_at: now.clone(),
                updated_at: now.clone(),
            };
            let nodes: Vec<NodeRecord> = ports
                .iter()
                .enumerate()
                .map(|(i, port)| NodeRecord {
                    id: ids::new_id(ids::prefix::NODE),
                    cluster_id: cluster.id.clone(),
                    ordinal: i as u32,
                    role: if i == 0 { NodeRole::Primary } else { NodeRole::Replica },
                    status: NodeStatus::Creating,
                    host: hosts
                        .get(i)
                        .and_then(|h| h.address.clone())
                        .unwrap_or_else(|| bind.to_string()),
                    port: *port,
                    size_id: size.id.clone(),
                    server_id: i as u32 + 1,
                    status_reason: None,
                    rejoin_gtid: None,
                    fenced: false,
                    host_id: hosts.get(i).map(|h| h.host_id.clone()),
                    zone: hosts.get(i).map(|h| h.zone.clone()),
                    created_at: now.clone(),
                    updated_at: now.clone(),
                })
                .collect();
            let op_type = if restore.is_some() {
                OperationType::RestoreCluster
            } else {
                OperationType::CreateCluster
            };
            let op = new_operation(tenant_id, op_type, &cluster.id);
            match self
                .store
                .create_cluster(&cluster, &nodes, &op, &input.security_group_ids)
                .await
            {
                Ok(()) => {
                    self.event(
                        tenant_id,
                        &cluster.id,
                        None,
                        "cluster_creating",
                        match &restore {
                            None => format!(
                                "cluster {} requested: {} × {} nodes, {} replication",
                                cluster.name, cluster.node_count, cluster.size_id, cluster.replication
                            ),
                            Some(r) => format!(
                                "cluster {} requested from backup {}: {} × {} nodes, {} replication",
                                cluster.name, r.backup_id, cluster.node_count, cluster.size_id, cluster.replication
                            ),
                        },
                    )
                    .await;
                    self.work.notify_one();
                    return Ok(Created {
                        cluster,
                        nodes,
                        operation: op,
                        admin_password,
                    });
                }
                Err(marina_store::StoreError::Conflict(_)) => {
                    if self.store.get_cluster_by_name(tenant_id, &input.name).await?.is_some() {
                        return Err(Error::Conflict(format!(
                            "a cluster named {:?} already exists",
                            input.name
                        )));
                    }
                    // Another create took our address or port: allocate again.
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Unavailable("too many concurrent creates; try again".into()))
    }

    /// Refuses work the hosts cannot hold (`capacity_exceeded`).
    pub(crate) async fn check_capacity(&self, requested_gib: f64) -> Result<(), Error> {
        let host = self
            .config
            .capacity
            .host_memory_gib
            .unwrap_or_else(placement::host_memory_gib);
        let used: f64 = self
            .store
            .all_nodes()
            .await?
            .iter()
            .map(|n| self.size(&n.size_id).map(|s| s.memory).unwrap_or(0.0))
            .sum();
        placement::check_memory(host, self.config.capacity.memory_overcommit, used, requested_gib)
            .map_err(Error::CapacityExceeded)
    }

    /// Refuses what would take the tenant over its quotas (`quota_exceeded`).
    pub(crate) async fn check_quota(
        &self,
        tenant_id: &str,
        new_clusters: u32,
        nodes: u32,
        memory_gib: f64,
    ) -> Result<(), Error> {
        let q = &self.config.quotas;
        let clusters = self
            .store
            .live_clusters()
            .await?
            .into_iter()
            .filter(|c| c.tenant_id == tenant_id);
        let (mut n_clusters, mut n_nodes, mut mem) = (0u32, 0u32, 0f64);
        for c in clusters {
            n_clusters += 1;
            for n in self.store.list_nodes(&c.id).await? {
                n_nodes += 1;
                mem += self.size(&n.size_id).map(|s| s.memory).unwrap_or(0.0);
            }
        }
        if new_clusters > 0 && n_clusters + new_clusters > q.clusters {
            return Err(Error::QuotaExceeded(format!(
                "the tenant's quota is {} clusters and it has {n_clusters}",
                q.clusters
            )));
        }
        if n_nodes + nodes > q.nodes {
            return Err(Error::QuotaExceeded(format!(
                "the tenant's quota is {} nodes; it has {n_nodes} and asks for {nodes} more",
                q.nodes
            )));
        }
        if mem + memory_gib > q.memory_gib {
            return Err(Error::QuotaExceeded(format!(
                "the tenant's quota is {} GiB of node memory; it uses {mem} GiB and asks for {memory_gib} GiB more",
                q.memory_gib
            )));
        }
        Ok(())
    }

    /// A cluster and its nodes.
    pub async fn get_cluster(&self, tenant_id: &str, id: &str) -> Result<(ClusterRecord, Vec<NodeRecord>), Error> {
        let c = self.cluster(tenant_id, id).await?;
        let nodes = self.store.list_nodes(&c.id).await?;
        Ok((c, nodes))
    }

    /// A page of the tenant's clusters with their nodes.
    pub async fn list_clusters(
        &self,
        tenant_id: &str,
        page: PageRequest<'_>,
    ) -> Result<Page<(ClusterRecord, Vec<NodeRecord>)>, Error> {
        let p = self.store.list_clusters(tenant_id, page).await?;
        let mut items = Vec::with_capacity(p.items.len());
        for c in p.items {
            let nodes = self.store.list_nodes(&c.id).await?;
            items.push((c, nodes));
        }
        Ok(Page {
            items,
            next_cursor: p.next_cursor,
        })
    }

    /// Every cluster of the tenant with its nodes, all pages (the seed
    /// adapters, whose lists are not paged).
    pub async fn all_clusters(&self, tenant_id: &str) -> Result<Vec<(ClusterRecord, Vec<NodeRecord>)>, Error> {
        marina_store::all_pages(|cursor| async move {
            let page = PageRequest {
                limit: marina_store::PAGE_ALL,
                cursor: cursor.as_deref(),
            };
            self.list_clusters(tenant_id, page).await
        })
        .await
    }

    /// Starts deleting a cluster: 409 while another operation changes it.
    pub async fn delete_cluster(&self, tenant_id: &str, id: &str) -> Result<Operation, Error> {
        let c = self.cluster(tenant_id, id).await?;
        let op = new_operation(tenant_id, OperationType::DeleteCluster, &c.id);
        if !self.store.begin_cluster_delete(&c.id, DELETABLE, &op).await? {
            let now = self.cluster(tenant_id, id).await?;
            return Err(Error::Conflict(format!(
                "cluster {} is {}; it can be deleted once its current operation finishes",
                now.name, now.status
            )));
        }
        self.event(
            tenant_id,
            &c.id,
            None,
            "cluster_deleting",
            format!("cluster {} is being deleted", c.name),
        )
        .await;
        self.work.notify_one();
        self.reconcile.notify_one();
        Ok(op)
    }

    /// An operation of the caller's tenant, or 404.
    pub async fn operation(&self, tenant_id: &str, id: &str) -> Result<Operation, Error> {
        self.store
            .get_operation(Some(tenant_id), id)
            .await?
            .ok_or_else(|| Error::not_found("operation", id))
    }
}
