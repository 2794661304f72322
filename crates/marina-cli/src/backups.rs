//! `marina backup …`: take, list, show and delete backups.

use anyhow::bail;
use clap::Subcommand;
use serde_json::{Value, json};

use crate::commands::{Common, resolve};
use crate::output::{Format, cell, print_json, table};
use crate::wait::wait_operation;

/// `marina backup …`
#[derive(Debug, Subcommand)]
pub enum BackupCmd {
    /// Take a backup of a cluster (by name or id).
    Create {
        cluster: String,
        /// `physical` (mariadb-backup, default) or `logical` (mariadb-dump).
        #[arg(long, default_value = "physical")]
        method: String,
        /// Wait until it is completed, showing progress.
        #[arg(long)]
        wait: bool,
    },
    /// List a cluster's backups.
    List { cluster: String },
    /// Show a backup.
    Show { id: String },
    /// Delete a backup and its data.
    Delete { id: String },
    /// Restore a backup into a new cluster (`cluster create NAME --from-backup ID`).
    Restore {
        /// The backup id.
        backup: String,
        /// The new cluster's name.
        #[arg(long)]
        name: String,
        /// Node size id.
        #[arg(long, default_value = "small")]
        size: String,
        /// Number of nodes (1–9).
        #[arg(long, default_value_t = 3)]
        nodes: u32,
        /// Wait until the new cluster is active, showing progress.
        #[arg(long)]
        wait: bool,
    },
}

fn rows(backups: &[Value]) -> String {
    let rows: Vec<Vec<String>> = backups
        .iter()
        .map(|b| {
            vec![
                cell(&b["id"]),
                cell(&b["method"]),
                cell(&b["status"]),
                cell(&b["size_bytes"]),
                cell(&b["gtid_position"]),
                cell(&b["finished_at"]),
            ]
        })
        .collect();
    table(&["ID", "METHOD", "STATUS", "BYTES", "GTID", "FINISHED"], &rows)
}

/// Runs `marina backup …`.
pub async fn run_backup(common: &Common, cmd: BackupCmd) -> anyhow::Result<()> {
    let client = common.client()?;
    let json_out = common.output == Format::Json;
    match cmd {
        BackupCmd::Restore {
            backup,
            name,
            size,
            nodes,
            wait,
        } => {
            let create = crate::ClusterCmd::Create {
                name,
                size,
                nodes,
                replication: None,
                version: None,
                from_backup: Some(backup),
                from_cluster: None,
                point_in_time: None,
                wait,
            };
            return crate::run_cluster(common, create).await;
        }
        BackupCmd::Create { cluster, method, wait } => {
            let id = resolve(&client, &cluster).await?;
            let created = client
                .post(&format!("/v1/clusters/{id}/backups"), &json!({"method": method}))
                .await?;
            let backup_id = cell(&created["backup"]["id"]);
            let op_id = cell(&created["operation"]["id"]);
            if !wait {
                if json_out {
                    print_json(&created);
                } else {
                    println!("backup {backup_id} of {cluster} is being taken; operation {op_id}");
                }
                return Ok(());
            }
            let (op, took) = wait_operation(&client, &op_id, &format!("backing up {cluster}"), json_out).await?;
            let b = client.get(&format!("/v1/backups/{backup_id}")).await?;
            if json_out {
                print_json(&b);
            } else if op["status"] == "succeeded" {
                println!(
                    "backup {backup_id} completed in {:.1}s: {} bytes at GTID {}",
                    took.as_secs_f64(),
                    cell(&b["size_bytes"]),
                    cell(&b["gtid_position"])
                );
            }
            if op["status"] != "succeeded" {
                bail!("backup {backup_id} failed: {}", cell(&op["error"]["message"]));
            }
        }
        BackupCmd::List { cluster } => {
            let id = resolve(&client, &cluster).await?;
            let all = client.list_all(&format!("/v1/clusters/{id}/backups")).await?;
            if json_out {
                print_json(&Value::Array(all));
            } else {
                print!("{}", rows(&all));
            }
        }
        BackupCmd::Show { id } => {
            let b = client.get(&format!("/v1/backups/{id}")).await?;
            if json_out {
                print_json(&b);
            } else {
                print!("{}", rows(std::slice::from_ref(&b)));
                println!(
                    "checksum: {}\nsource node: {}",
                    cell(&b["checksum"]),
                    cell(&b["source_node_id"])
                );
            }
        }
        BackupCmd::Delete { id } => {
            client.delete(&format!("/v1/backups/{id}")).await?;
            if !json_out {
                println!("backup {id} deleted");
            }
        }
    }
    Ok(())
}
