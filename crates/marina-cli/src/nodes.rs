//! `marina node …`: add, remove, reboot, start, stop, maintenance, read-only
//! and reseed. Every action is an operation; `--wait` follows it to the end.
//! The read-only views (list, show, history, live views) are in `node_info`.

use anyhow::bail;
use clap::Subcommand;
use serde_json::{Value, json};

use crate::client::Client;
use crate::commands::{Common, resolve};
use crate::node_info::Live;
use crate::output::{Format, cell, print_json};
use crate::wait::wait_operation;

/// `marina node …`
#[derive(Debug, Subcommand)]
pub enum NodeCmd {
    /// List a cluster's nodes.
    List { cluster: String },
    /// Show a node and the monitor's last probe of it.
    Show { cluster: String, node: String },
    /// The node's last 15 minutes (queries/s, connections, lag).
    History { cluster: String, node: String },
    /// The node's sessions (`SHOW PROCESSLIST`), read live.
    Processlist { cluster: String, node: String },
    /// The node's global variables, read live.
    Variables {
        cluster: String,
        node: String,
        /// Only rows containing this text.
        #[arg(long)]
        like: Option<String>,
    },
    /// The node's status counters (`SHOW GLOBAL STATUS`), read live.
    StatusVariables {
        cluster: String,
        node: String,
        /// Only rows containing this text.
        #[arg(long)]
        like: Option<String>,
    },
    /// Add a replica, cloned from a live node.
    Add {
        cluster: String,
        /// The new node's size (the cluster's by default).
        #[arg(long)]
        size: Option<String>,
        #[arg(long)]
        wait: bool,
    },
    /// Remove a node (the primary is switched over first).
    Remove {
        cluster: String,
        node: String,
        #[arg(long)]
        wait: bool,
    },
    /// Resize one node (the primary after a switchover).
    Resize {
        cluster: String,
        node: String,
        /// The new node size id.
        #[arg(long)]
        size: String,
        #[arg(long)]
        wait: bool,
    },
    /// Restart a node's mariadbd cleanly (the primary after a switchover).
    Reboot {
        cluster: String,
        node: String,
        /// Reboot a primary in place, without switching over.
        #[arg(long)]
        force: bool,
        #[arg(long)]
        wait: bool,
    },
    /// Start a stopped node.
    Start {
        cluster: String,
        node: String,
        #[arg(long)]
        wait: bool,
    },
    /// Stop a replica (its data stays).
    Stop {
        cluster: String,
        node: String,
        #[arg(long)]
        wait: bool,
    },
    /// Put a replica in maintenance (`on`) or take it out (`off`).
    Maintenance {
        cluster: String,
        node: String,
        #[arg(value_parser = ["on", "off"])]
        state: String,
        #[arg(long)]
        wait: bool,
    },
    /// Set the primary read-only (`on`) or writable (`off`); manual failover mode only.
    ReadOnly {
        cluster: String,
        node: String,
        #[arg(value_parser = ["on", "off"])]
        state: String,
        #[arg(long)]
        wait: bool,
    },
    /// Rebuild a replica from a fresh copy of the primary or from the latest
    /// physical backup, then reattach it.
    Reseed {
        cluster: String,
        node: String,
        /// `primary` (default) or `backup`.
        #[arg(long, default_value = "primary")]
        from: String,
        /// Wait until it replicates again, showing progress.
        #[arg(long)]
        wait: bool,
    },
}

/// One request and what to say about it.
pub(crate) struct Action {
    pub(crate) method: reqwest::Method,
    pub(crate) path: String,
    pub(crate) body: Value,
    /// e.g. "rebooting nd_…"
    pub(crate) doing: String,
    pub(crate) wait: bool,
}

/// Runs `marina node …`.
pub async fn run_node(common: &Common, cmd: NodeCmd) -> anyhow::Result<()> {
    let client = common.client()?;
    let json_out = common.output == Format::Json;
    let on = |s: &str| s == "on";
    let f = common.output;
    let a = match cmd {
        NodeCmd::List { cluster } => return crate::node_info::list(&client, f, &cluster).await,
        NodeCmd::Show { cluster, node } => return crate::node_info::show(&client, f, &cluster, &node).await,
        NodeCmd::History { cluster, node } => return crate::node_info::history(&client, f, &cluster, &node).await,
        NodeCmd::Processlist { cluster, node } => {
            return crate::node_info::live(&client, f, &cluster, &node, Live::Processlist, None).await;
        }
        NodeCmd::Variables { cluster, node, like } => {
            return crate::node_info::live(&client, f, &cluster, &node, Live::Variables, like.as_deref()).await;
        }
        NodeCmd::StatusVariables { cluster, node, like } => {
            let view = Live::StatusVariables;
            return crate::node_info::live(&client, f, &cluster, &node, view, like.as_deref()).await;
        }
        NodeCmd::Add { cluster, size, wait } => {
            let id = resolve(&client, &cluster).await?;
            let body = size.map_or(json!({}), |s| json!({ "size_id": s }));
            Action {
                method: reqwest::Method::POST,
                path: format!("/v1/clusters/{id}/nodes"),
                body,
                doing: format!("adding a replica to {cluster}"),
                wait,
            }
        }
        NodeCmd::Remove { cluster, node, wait } => {
            let id = resolve(&client, &cluster).await?;
            Action {
                method: reqwest::Method::DELETE,
                path: format!("/v1/clusters/{id}/nodes/{node}"),
                body: Value::Null,
                doing: format!("removing {node}"),
                wait,
            }
        }
        NodeCmd::Resize {
            cluster,
            node,
            size,
            wait,
        } => {
            let id = resolve(&client, &cluster).await?;
            Action {
                method: reqwest::Method::PATCH,
                path: format!("/v1/clusters/{id}/nodes/{node}"),
                body: json!({ "size_id": size }),
                doing: format!("resizing {node} to {size}"),
                wait,
            }
        }
        NodeCmd::Reboot {
            cluster,
            node,
            force,
            wait,
        } => {
            simple(
                &client,
                &cluster,
                &node,
                "reboot",
                json!({ "force": force }),
                "rebooting",
                wait,
            )
            .await?
        }
        NodeCmd::Start { cluster, node, wait } => {
            simple(&client, &cluster, &node, "start", json!({}), "starting", wait).await?
        }
        NodeCmd::Stop { cluster, node, wait } => {
            simple(&client, &cluster, &node, "stop", json!({}), "stopping", wait).await?
        }
        NodeCmd::Maintenance {
            cluster,
            node,
            state,
            wait,
        } => {
            let body = json!({ "enabled": on(&state) });
            simple(
                &client,
                &cluster,
                &node,
                "maintenance",
                body,
                "setting maintenance on",
                wait,
            )
            .await?
        }
        NodeCmd::ReadOnly {
            cluster,
            node,
            state,
            wait,
        } => {
            let body = json!({ "enabled": on(&state) });
            simple(
                &client,
                &cluster,
                &node,
                "read-only",
                body,
                "setting read-only on",
                wait,
            )
            .await?
        }
        NodeCmd::Reseed {
            cluster,
            node,
            from,
            wait,
        } => {
            let doing = format!("reseeding {node} from the {from}");
            simple(
                &client,
                &cluster,
                &node,
                "reseed",
                json!({ "from": from }),
                &doing,
                wait,
            )
            .await?
        }
    };
    run_action(&client, a, json_out).await
}

/// `POST …/nodes/{node}/{action}` on cluster `cluster` (name or id).
async fn simple(
    client: &Client,
    cluster: &str,
    node: &str,
    action: &str,
    body: Value,
    doing: &str,
    wait: bool,
) -> anyhow::Result<Action> {
    let id = resolve(client, cluster).await?;
    let doing = if doing.contains(node) {
        doing.to_string()
    } else {
        format!("{doing} {node}")
    };
    Ok(Action {
        method: reqwest::Method::POST,
        path: format!("/v1/clusters/{id}/nodes/{node}/{action}"),
        body,
        doing,
        wait,
    })
}

/// Sends the request, then reports the operation or follows it to its end.
pub(crate) async fn run_action(client: &Client, a: Action, json_out: bool) -> anyhow::Result<()> {
    let accepted = match a.method {
        reqwest::Method::DELETE => client.delete(&a.path).await?,
        reqwest::Method::PATCH => client.patch(&a.path, &a.body).await?,
        _ => client.post(&a.path, &a.body).await?,
    };
    report(client, &accepted, &a.doing, a.wait, json_out).await
}

/// Reports the operation of an accepted request, or with `wait` follows it
/// to its end (exit status non-zero when it failed).
pub(crate) async fn report(
    client: &Client,
    accepted: &Value,
    doing: &str,
    wait: bool,
    json_out: bool,
) -> anyhow::Result<()> {
    let op_id = cell(&accepted["operation"]["id"]);
    if !wait {
        if json_out {
            print_json(accepted);
        } else {
            println!("{doing}: operation {op_id}");
        }
        return Ok(());
    }
    let (op, took) = wait_operation(client, &op_id, doing, json_out).await?;
    if json_out {
        print_json(&op);
    } else if op["status"] == "succeeded" {
        println!("{doing}: done in {:.1}s", took.as_secs_f64());
    }
    if op["status"] != "succeeded" {
        bail!("{doing} failed: {}", cell(&op["error"]["message"]));
    }
    Ok(())
}
