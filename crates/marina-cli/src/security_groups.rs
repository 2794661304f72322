//! `marina security-group …`: who may connect to a cluster's endpoints.
//! Groups are named or addressed by id; `cluster update --security-group`
//! attaches them.

use clap::Subcommand;
use serde_json::{Value, json};

use crate::cluster_ops::resolve_group;
use crate::commands::Common;
use crate::output::{cell, columns, detail, emit};

/// `marina security-group …`
#[derive(Debug, Subcommand)]
pub enum SecurityGroupCmd {
    /// Create a group (no rules: attached to a cluster it admits nobody yet).
    Create {
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// List your groups.
    List,
    /// Show a group and its rules.
    Show { group: String },
    /// Delete a group no cluster uses.
    Delete { group: String },
    /// Add or delete a group's rules.
    #[command(subcommand)]
    Rule(RuleCmd),
}

/// `marina security-group rule …`
#[derive(Debug, Subcommand)]
pub enum RuleCmd {
    /// Admit `--cidr` to endpoint ports `--from-port`..`--to-port`.
    Add {
        group: String,
        /// IPv4 or IPv6 network, e.g. 127.0.0.2/32.
        #[arg(long)]
        cidr: String,
        #[arg(long)]
        from_port: u32,
        /// Default: --from-port.
        #[arg(long)]
        to_port: Option<u32>,
    },
    /// Delete a rule.
    Delete { group: String, rule: String },
}

/// Runs `marina security-group …`.
pub async fn run_security_group(common: &Common, cmd: SecurityGroupCmd) -> anyhow::Result<()> {
    let client = common.client()?;
    let f = common.output;
    match cmd {
        SecurityGroupCmd::Create { name, description } => {
            let mut body = json!({ "name": name });
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            let g = client.post("/v1/security-groups", &body).await?;
            emit(f, &g, |g| {
                format!("security group {name} ({}) created\n", cell(&g["id"]))
            });
        }
        SecurityGroupCmd::List => {
            let all = client.list_all("/v1/security-groups").await?;
            emit(f, &Value::Array(all.clone()), |_| {
                let rows: Vec<Value> = all
                    .iter()
                    .map(|g| {
                        let mut g = g.clone();
                        g["rule_count"] = json!(g["rules"].as_array().map_or(0, Vec::len));
                        g
                    })
                    .collect();
                columns(
                    &rows,
                    &[
                        ("NAME", "name"),
                        ("ID", "id"),
                        ("RULES", "rule_count"),
                        ("DESCRIPTION", "description"),
                    ],
                )
            });
        }
        SecurityGroupCmd::Show { group } => {
            let id = resolve_group(&client, &group).await?;
            let g = client.get(&format!("/v1/security-groups/{id}")).await?;
            emit(f, &g, detail);
        }
        SecurityGroupCmd::Delete { group } => {
            let id = resolve_group(&client, &group).await?;
            client.delete(&format!("/v1/security-groups/{id}")).await?;
            emit(f, &json!({ "id": id, "deleted": true }), |_| {
                format!("security group {group} deleted\n")
            });
        }
        SecurityGroupCmd::Rule(RuleCmd::Add {
            group,
            cidr,
            from_port,
            to_port,
        }) => {
            let id = resolve_group(&client, &group).await?;
            let body = json!({ "cidr": cidr, "from_port": from_port, "to_port": to_port.unwrap_or(from_port) });
            let r = client.post(&format!("/v1/security-groups/{id}/rules"), &body).await?;
            emit(f, &r, |r| format!("rule {} added to {group}\n", cell(&r["id"])));
        }
        SecurityGroupCmd::Rule(RuleCmd::Delete { group, rule }) => {
            let id = resolve_group(&client, &group).await?;
            client.delete(&format!("/v1/security-groups/{id}/rules/{rule}")).await?;
            emit(f, &json!({ "id": rule, "deleted": true }), |_| {
                format!("rule {rule} deleted\n")
            });
        }
    }
    Ok(())
}
