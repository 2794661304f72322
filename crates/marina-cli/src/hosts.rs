//! `marina host …`: the machines nodes run on (the operator's tenant):
//! list, show, cordon, uncordon, drain.

use clap::Subcommand;
use serde_json::{Value, json};

use crate::commands::Common;
use crate::output::{cell, detail, emit, table};

/// `marina host …`
#[derive(Debug, Subcommand)]
pub enum HostCmd {
    /// List hosts with their zone, status, nodes and memory (operator).
    List,
    /// Show a host.
    Show { id: String },
    /// Keep new nodes off a host (its nodes stay).
    Cordon { id: String },
    /// Let a cordoned or draining host take new nodes again.
    Uncordon { id: String },
    /// Move a host's nodes off it and keep new ones away.
    Drain {
        id: String,
        /// Wait until no node is left on it (polls every second).
        #[arg(long)]
        wait: bool,
        /// How long `--wait` waits, in seconds.
        #[arg(long, default_value_t = 3600)]
        timeout_secs: u64,
    },
    /// One-time tokens host agents join with (`marina agent --join`).
    JoinToken {
        #[command(subcommand)]
        cmd: JoinTokenCmd,
    },
}

/// `marina host join-token …`
#[derive(Debug, Subcommand)]
pub enum JoinTokenCmd {
    /// Make a join token (its secret is printed once).
    Create {
        /// The zone of the host that joins with it.
        #[arg(long)]
        zone: Option<String>,
        /// How long it may be used, in seconds (60 to 604800; default 3600).
        #[arg(long)]
        ttl_secs: Option<u64>,
    },
}

/// `used/total GiB` of a host's memory.
fn memory(h: &Value) -> String {
    let gib = |v: &Value| v.as_u64().unwrap_or(0) as f64 / (1u64 << 30) as f64;
    format!("{:.1}/{:.0} GiB", gib(&h["memory_used_bytes"]), gib(&h["memory_bytes"]))
}

/// Polls a draining host until it runs no node.
async fn wait_drained(client: &crate::client::Client, id: &str, timeout: std::time::Duration) -> anyhow::Result<Value> {
    let began = std::time::Instant::now();
    loop {
        let host = client.get(&format!("/v1/hosts/{id}")).await?;
        if host["nodes"].as_u64() == Some(0) {
            return Ok(host);
        }
        if host["status"] != "draining" {
            anyhow::bail!("host {id} is {} now: the drain was stopped", cell(&host["status"]));
        }
        if began.elapsed() > timeout {
            anyhow::bail!(
                "host {id} still runs {} node(s) after {timeout:?}",
                cell(&host["nodes"])
            );
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// Runs `marina host …`.
pub async fn run_host(common: &Common, cmd: HostCmd) -> anyhow::Result<()> {
    let client = common.client()?;
    let f = common.output;
    let action = |verb: &str, id: &str| format!("/v1/hosts/{id}/{verb}");
    let host = match cmd {
        HostCmd::List => {
            let page = client.get("/v1/hosts").await?;
            emit(f, &page["data"], |d| {
                let rows: Vec<Vec<String>> = d
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .map(|h| {
                        vec![
                            cell(&h["id"]),
                            cell(&h["zone"]),
                            cell(&h["address"]),
                            cell(&h["status"]),
                            cell(&h["nodes"]),
                            memory(h),
                        ]
                    })
                    .collect();
                table(&["ID", "ZONE", "ADDRESS", "STATUS", "NODES", "MEMORY"], &rows)
            });
            return Ok(());
        }
        HostCmd::Show { id } => client.get(&format!("/v1/hosts/{id}")).await?,
        HostCmd::Cordon { id } => client.post(&action("cordon", &id), &json!({})).await?,
        HostCmd::Uncordon { id } => client.post(&action("uncordon", &id), &json!({})).await?,
        HostCmd::Drain { id, wait, timeout_secs } => {
            let host = client.post(&action("drain", &id), &json!({})).await?;
            if !wait {
                host
            } else {
                wait_drained(&client, &id, std::time::Duration::from_secs(timeout_secs)).await?
            }
        }
        HostCmd::JoinToken {
            cmd: JoinTokenCmd::Create { zone, ttl_secs },
        } => {
            let created = client
                .post("/v1/hosts/join-tokens", &json!({"zone": zone, "ttl_secs": ttl_secs}))
                .await?;
            emit(f, &created, |c| {
                format!(
                    "join token {} (expires {}) — secret (shown once): {}\n\
                     on the new host: MARINA_JOIN_TOKEN=<secret> marina agent --join <this API's URL>\n",
                    cell(&c["token"]["id"]),
                    cell(&c["token"]["expires_at"]),
                    cell(&c["secret"])
                )
            });
            return Ok(());
        }
    };
    emit(f, &host, detail);
    Ok(())
}
