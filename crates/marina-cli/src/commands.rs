//! The CLI's subcommands (`cluster`, `operation`, `node-size`).

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::client::Client;
use crate::output::{Format, cell, columns, detail, emit, endpoint, print_json, table};
use crate::wait::wait_operation;

/// Options every client command takes.
#[derive(Debug, Args, Clone)]
pub struct Common {
    /// API address.
    #[arg(long, env = "MARINA_URL", global = true)]
    pub url: Option<String>,
    /// Data dir whose `admin-token` is used when MARINA_TOKEN is not set.
    #[arg(
        long = "data-dir",
        env = "MARINA_DATA_DIR",
        default_value = "./marina-data",
        global = true
    )]
    pub data_dir: std::path::PathBuf,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value = "table", global = true)]
    pub output: Format,
    /// PEM certificate to trust for an HTTPS `--url` (e.g. a self-signed
    /// Marina's `<data-dir>/tls/marina.crt`).
    #[arg(long = "ca-cert", env = "MARINA_CA_CERT", global = true)]
    pub ca_cert: Option<std::path::PathBuf>,
}

impl Common {
    pub(crate) fn client(&self) -> anyhow::Result<Client> {
        Client::from_env(self.url.clone(), &self.data_dir, self.ca_cert.as_deref())
    }
}

/// `marina cluster …`
#[derive(Debug, Subcommand)]
pub enum ClusterCmd {
    /// Create a cluster.
    Create {
        name: String,
        /// Node size id (`marina node-size list`).
        #[arg(long, default_value = "small")]
        size: String,
        /// Number of nodes (1–9).
        #[arg(long, default_value_t = 3)]
        nodes: u32,
        /// `semisync` (default), `semisync_strict` (never falls back to async) or `async`.
        #[arg(long)]
        replication: Option<String>,
        /// MariaDB version.
        #[arg(long)]
        version: Option<String>,
        /// Start from this backup (`marina backup list CLUSTER`).
        #[arg(long, conflicts_with = "point_in_time")]
        from_backup: Option<String>,
        /// Start from this cluster's data as of `--point-in-time`.
        #[arg(long, requires = "point_in_time")]
        from_cluster: Option<String>,
        /// RFC 3339 time to restore `--from-cluster` to.
        #[arg(long, requires = "from_cluster")]
        point_in_time: Option<String>,
        /// Wait until the cluster is active, showing progress.
        #[arg(long)]
        wait: bool,
    },
    /// List clusters.
    List,
    /// Show a cluster (by name or id).
    Show { cluster: String },
    /// Delete a cluster (by name or id).
    Delete {
        cluster: String,
        /// Wait until everything is gone.
        #[arg(long)]
        wait: bool,
    },
    /// Resize every node, rolling (replicas, a switchover, the old primary).
    Resize {
        cluster: String,
        /// The new node size id.
        #[arg(long)]
        size: String,
        #[arg(long)]
        wait: bool,
    },
    /// Restart every node cleanly, rolling (replicas, a switchover, the old primary).
    Reboot {
        cluster: String,
        #[arg(long)]
        wait: bool,
    },
    /// The monitor's view: each node's role, health, lag and GTID position.
    Status { cluster: String },
    /// Planned primary change: the primary is drained, then a replica promoted.
    Switchover {
        cluster: String,
        /// The replica to promote (Marina chooses when absent).
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        wait: bool,
    },
    /// Promote a replica now, without waiting for the primary (it is fenced).
    Failover {
        cluster: String,
        /// The replica to promote (Marina chooses when absent).
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        wait: bool,
    },
    /// What happened to the cluster (failovers, fencing, backups), newest first.
    Events {
        cluster: String,
        /// How many events.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// The times a point-in-time restore of the cluster can reach.
    RestoreWindow { cluster: String },
    /// Change failover mode, security groups or the backup policy.
    Update(crate::cluster_ops::UpdateArgs),
    /// A new password for the cluster's `admin` account (shown once).
    ResetPassword { cluster: String },
}

/// `marina operation …`
#[derive(Debug, Subcommand)]
pub enum OperationCmd {
    /// List your operations, newest first.
    List {
        /// Only this cluster's (name or id).
        #[arg(long)]
        cluster: Option<String>,
        /// Only those in this status: pending, running, succeeded, failed.
        #[arg(long)]
        status: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show an operation and its steps.
    Show {
        id: String,
        /// Wait until it ends.
        #[arg(long)]
        wait: bool,
    },
}

/// `marina token …`
#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Create a token (its secret is printed once).
    Create {
        /// The token's name (with --bootstrap: recovery-admin-<time>).
        #[arg(required_unless_present = "bootstrap")]
        name: Option<String>,
        /// Scopes: read, write, admin (repeat the flag).
        #[arg(long = "scope", default_value = "read")]
        scopes: Vec<String>,
        /// Recovery for the host's root: write a new admin token of the
        /// operator's tenant straight into the store of --data-dir and into
        /// <data-dir>/admin-token (0600), without the API. Works with
        /// `marina serve` stopped or running.
        #[arg(long, conflicts_with = "scopes")]
        bootstrap: bool,
    },
    /// List tokens (never their secrets).
    List,
    /// Show one token (never its secret).
    Show { id: String },
    /// Revoke a token.
    Revoke { id: String },
}

/// `marina node-size …`
#[derive(Debug, Subcommand)]
pub enum NodeSizeCmd {
    /// List node sizes.
    List,
    /// Show one node size.
    Show { id: String },
}

/// Resolves a cluster name or id to its id.
pub(crate) async fn resolve(client: &Client, name_or_id: &str) -> anyhow::Result<String> {
    resolve_named(client, name_or_id, "cl_", "/v1/clusters", "cluster").await
}

/// An id (it starts with `prefix`) as given, or the id of the item of the
/// list at `path` with that name.
pub(crate) async fn resolve_named(
    client: &Client,
    name_or_id: &str,
    prefix: &str,
    path: &str,
    what: &str,
) -> anyhow::Result<String> {
    if name_or_id.starts_with(prefix) {
        return Ok(name_or_id.to_string());
    }
    let all = client.list_all(path).await?;
    all.iter()
        .find(|c| c["name"] == name_or_id)
        .and_then(|c| c["id"].as_str().map(String::from))
        .ok_or_else(|| {
            anyhow!(
                "no {what} named {name_or_id:?} (marina {} list)",
                what.replace(' ', "-")
            )
        })
}

fn cluster_rows(clusters: &[Value]) -> String {
    let rows: Vec<Vec<String>> = clusters
        .iter()
        .map(|c| {
            vec![
                cell(&c["name"]),
                cell(&c["id"]),
                cell(&c["status"]),
                cell(&c["size_id"]),
                cell(&c["node_count"]),
                endpoint(&c["endpoints"]["writer"]),
                endpoint(&c["endpoints"]["reader"]),
            ]
        })
        .collect();
    table(&["NAME", "ID", "STATUS", "SIZE", "NODES", "WRITER", "READER"], &rows)
}

fn cluster_detail(c: &Value) -> String {
    let mut out = format!(
        "name:        {}\nid:          {}\nstatus:      {}\nsize:        {}\nversion:     {}\nreplication: {}\nwriter:      {}\nreader:      {}\ncreated:     {}\n\n",
        cell(&c["name"]),
        cell(&c["id"]),
        cell(&c["status"]),
        cell(&c["size_id"]),
        cell(&c["version"]),
        cell(&c["replication"]),
        endpoint(&c["endpoints"]["writer"]),
        endpoint(&c["endpoints"]["reader"]),
        cell(&c["created_at"]),
    );
    let rows: Vec<Vec<String>> = c["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|n| {
            vec![
                cell(&n["id"]),
                cell(&n["role"]),
                cell(&n["status"]),
                format!("{}:{}", cell(&n["host"]), cell(&n["port"])),
            ]
        })
        .collect();
    out.push_str(&table(&["NODE", "ROLE", "STATUS", "ADDRESS"], &rows));
    out
}

fn operation_detail(op: &Value) -> String {
    let mut out = format!(
        "operation {} ({}) {}\n",
        cell(&op["id"]),
        cell(&op["type"]),
        cell(&op["status"])
    );
    if let Some(msg) = op["error"]["message"].as_str() {
        out.push_str(&format!("error: {msg}\n"));
    }
    let rows: Vec<Vec<String>> = op["steps"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| {
            vec![
                cell(&s["name"]),
                cell(&s["status"]),
                cell(&s["started_at"]),
                cell(&s["finished_at"]),
            ]
        })
        .collect();
    out.push_str(&table(&["STEP", "STATUS", "STARTED", "FINISHED"], &rows));
    out
}

/// Runs `marina cluster …`.
pub async fn run_cluster(common: &Common, cmd: ClusterCmd) -> anyhow::Result<()> {
    let client = common.client()?;
    let json_out = common.output == Format::Json;
    match cmd {
        ClusterCmd::Create {
            name,
            size,
            nodes,
            replication,
            version,
            from_backup,
            from_cluster,
            point_in_time,
            wait,
        } => {
            let mut body = json!({"name": name, "size_id": size, "nodes": nodes});
            if let Some(b) = from_backup {
                body["restore"] = json!({"backup_id": b});
            }
            if let (Some(c), Some(t)) = (from_cluster, point_in_time) {
                body["restore"] = json!({"cluster_id": resolve(&client, &c).await?, "point_in_time": t});
            }
            if let Some(r) = replication {
                body["replication"] = json!(r);
            }
            if let Some(v) = version {
                body["version"] = json!(v);
            }
            let created = client.post("/v1/clusters", &body).await?;
            let op_id = created["operation"]["id"].as_str().unwrap_or_default().to_string();
            let id = created["cluster"]["id"].as_str().unwrap_or_default().to_string();
            let user = cell(&created["credentials"]["username"]);
            let pass = cell(&created["credentials"]["password"]);
            if !wait {
                if json_out {
                    print_json(&created);
                } else {
                    println!("cluster {name} ({id}) is being created; operation {op_id}");
                    println!("username {user}, password {pass} (shown once)");
                }
                return Ok(());
            }
            let (op, took) = wait_operation(&client, &op_id, &format!("creating cluster {name}"), json_out).await?;
            let cluster = client.get(&format!("/v1/clusters/{id}")).await?;
            if json_out {
                let mut out = created.clone();
                out["cluster"] = cluster;
                out["operation"] = op.clone();
                print_json(&out);
            } else if op["status"] == "succeeded" {
                println!(
                    "cluster {name} active in {:.1}s — writer {}, reader {}",
                    took.as_secs_f64(),
                    endpoint(&cluster["endpoints"]["writer"]),
                    endpoint(&cluster["endpoints"]["reader"])
                );
                println!("username {user}, password {pass} (shown once)");
            }
            if op["status"] != "succeeded" {
                bail!("creating cluster {name} failed: {}", cell(&op["error"]["message"]));
            }
            Ok(())
        }
        ClusterCmd::List => {
            let all = client.list_all("/v1/clusters").await?;
            if json_out {
                print_json(&Value::Array(all));
            } else {
                print!("{}", cluster_rows(&all));
            }
            Ok(())
        }
        ClusterCmd::Show { cluster } => {
            let id = resolve(&client, &cluster).await?;
            let c = client.get(&format!("/v1/clusters/{id}")).await?;
            if json_out {
                print_json(&c);
            } else {
                print!("{}", cluster_detail(&c));
            }
            Ok(())
        }
        ClusterCmd::Resize { cluster, size, wait } => {
            let id = resolve(&client, &cluster).await?;
            let action = crate::nodes::Action {
                method: reqwest::Method::PATCH,
                path: format!("/v1/clusters/{id}"),
                body: serde_json::json!({ "size_id": size }),
                doing: format!("resizing cluster {cluster} to {size}"),
                wait,
            };
            crate::nodes::run_action(&client, action, json_out).await
        }
        ClusterCmd::Reboot { cluster, wait } => {
            let id = resolve(&client, &cluster).await?;
            let action = crate::nodes::Action {
                method: reqwest::Method::POST,
                path: format!("/v1/clusters/{id}/reboot"),
                body: serde_json::json!({}),
                doing: format!("rebooting cluster {cluster}"),
                wait,
            };
            crate::nodes::run_action(&client, action, json_out).await
        }
        ClusterCmd::Status { cluster } => crate::cluster_ops::status(&client, common.output, &cluster).await,
        ClusterCmd::Switchover { cluster, to, wait } => {
            crate::cluster_ops::promote(&client, common.output, &cluster, "switchover", to, wait).await
        }
        ClusterCmd::Failover { cluster, to, wait } => {
            crate::cluster_ops::promote(&client, common.output, &cluster, "failover", to, wait).await
        }
        ClusterCmd::Events { cluster, limit } => {
            crate::cluster_ops::events(&client, common.output, &cluster, limit).await
        }
        ClusterCmd::RestoreWindow { cluster } => {
            crate::cluster_ops::restore_window(&client, common.output, &cluster).await
        }
        ClusterCmd::Update(args) => crate::cluster_ops::update(&client, common.output, args).await,
        ClusterCmd::ResetPassword { cluster } => {
            crate::cluster_ops::reset_password(&client, common.output, &cluster).await
        }
        ClusterCmd::Delete { cluster, wait } => {
            let id = resolve(&client, &cluster).await?;
            let accepted = client.delete(&format!("/v1/clusters/{id}")).await?;
            let op_id = accepted["operation"]["id"].as_str().unwrap_or_default().to_string();
            if !wait {
                if json_out {
                    print_json(&accepted);
                } else {
                    println!("cluster {cluster} is being deleted; operation {op_id}");
                }
                return Ok(());
            }
            let (op, took) = wait_operation(&client, &op_id, &format!("deleting cluster {cluster}"), json_out).await?;
            if json_out {
                print_json(&op);
            } else if op["status"] == "succeeded" {
                println!("cluster {cluster} deleted in {:.1}s", took.as_secs_f64());
            }
            if op["status"] != "succeeded" {
                bail!("deleting cluster {cluster} failed: {}", cell(&op["error"]["message"]));
            }
            Ok(())
        }
    }
}

/// Runs `marina operation …`.
pub async fn run_operation(common: &Common, cmd: OperationCmd) -> anyhow::Result<()> {
    let client = common.client()?;
    let (id, wait) = match cmd {
        OperationCmd::Show { id, wait } => (id, wait),
        OperationCmd::List { cluster, status, limit } => {
            let mut path = format!("/v1/operations?limit={limit}");
            if let Some(c) = cluster {
                path.push_str(&format!("&cluster_id={}", resolve(&client, &c).await?));
            }
            if let Some(s) = status {
                path.push_str(&format!("&status={s}"));
            }
            let page = client.get(&path).await?;
            emit(common.output, &page["data"], |d| {
                let items = d.as_array().cloned().unwrap_or_default();
                columns(
                    &items,
                    &[
                        ("ID", "id"),
                        ("TYPE", "type"),
                        ("STATUS", "status"),
                        ("CLUSTER", "cluster_id"),
                        ("CREATED", "created_at"),
                        ("ERROR", "error.message"),
                    ],
                )
            });
            return Ok(());
        }
    };
    let op = if wait {
        wait_operation(&client, &id, &format!("operation {id}"), common.output == Format::Json)
            .await?
            .0
    } else {
        client.get(&format!("/v1/operations/{id}")).await?
    };
    if common.output == Format::Json {
        print_json(&op);
    } else {
        print!("{}", operation_detail(&op));
    }
    if wait && op["status"] == "failed" {
        bail!("operation {id} failed");
    }
    Ok(())
}

/// Runs `marina token …`.
pub async fn run_token(common: &Common, cmd: TokenCmd) -> anyhow::Result<()> {
    let client = common.client()?;
    let json_out = common.output == Format::Json;
    match cmd {
        TokenCmd::Create { bootstrap: true, .. } => {
            anyhow::bail!("`token create --bootstrap` is run by the `marina` binary against the data dir, not the API")
        }
        TokenCmd::Create { name, scopes, .. } => {
            let created = client
                .post("/v1/tokens", &json!({"name": name, "scopes": scopes}))
                .await?;
            if json_out {
                print_json(&created);
            } else {
                println!(
                    "token {} ({}) created with scopes {}",
                    cell(&created["token"]["name"]),
                    cell(&created["token"]["id"]),
                    created["token"]["scopes"]
                );
                println!("secret (shown once): {}", cell(&created["secret"]));
            }
        }
        TokenCmd::List => {
            let all = client.list_all("/v1/tokens").await?;
            if json_out {
                print_json(&Value::Array(all));
            } else {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|t| {
                        let scopes: Vec<String> = t["scopes"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default()
                            .iter()
                            .map(cell)
                            .collect();
                        vec![
                            cell(&t["name"]),
                            cell(&t["id"]),
                            scopes.join(","),
                            cell(&t["created_at"]),
                            cell(&t["last_used_at"]),
                        ]
                    })
                    .collect();
                print!("{}", table(&["NAME", "ID", "SCOPES", "CREATED", "LAST USED"], &rows));
            }
        }
        TokenCmd::Show { id } => {
            let all = client.list_all("/v1/tokens").await?;
            let t = all
                .into_iter()
                .find(|t| t["id"] == id.as_str() || t["name"] == id.as_str())
                .ok_or_else(|| anyhow!("no live token {id:?} in your tenant (marina token list)"))?;
            emit(common.output, &t, detail);
        }
        TokenCmd::Revoke { id } => {
            client.delete(&format!("/v1/tokens/{id}")).await?;
            if !json_out {
                println!("token {id} revoked");
            }
        }
    }
    Ok(())
}

/// Runs `marina node-size …`.
pub async fn run_node_size(common: &Common, cmd: NodeSizeCmd) -> anyhow::Result<()> {
    let client = common.client()?;
    if let NodeSizeCmd::Show { id } = cmd {
        let size = client.get(&format!("/v1/node-sizes/{id}")).await?;
        emit(common.output, &size, detail);
        return Ok(());
    }
    let page = client.get("/v1/node-sizes").await?;
    if common.output == Format::Json {
        print_json(&page["data"]);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = page["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| {
            vec![
                cell(&s["id"]),
                cell(&s["vcpu"]),
                format!("{} GiB", cell(&s["memory"])),
                format!("{} GiB", cell(&s["disk_gib"])),
                cell(&s["title"]),
            ]
        })
        .collect();
    print!("{}", table(&["ID", "VCPU", "MEMORY", "DISK", "TITLE"], &rows));
    Ok(())
}
