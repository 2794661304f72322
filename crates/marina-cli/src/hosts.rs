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
    Drain { id: String },
}

/// `used/total GiB` of a host's memory.
fn memory(h: &Value) -> String {
    let gib = |v: &Value| v.as_u64().unwrap_or(0) as f64 / (1u64 << 30) as f64;
    format!("{:.1}/{:.0} GiB", gib(&h["memory_used_bytes"]), gib(&h["memory_bytes"]))
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
        HostCmd::Drain { id } => client.post(&action("drain", &id), &json!({})).await?,
    };
    emit(f, &host, detail);
    Ok(())
}
