//! `marina cluster status|switchover|failover|events|restore-window|update|
//! reset-password`: the high-availability and settings side of a cluster.

use anyhow::bail;
use clap::Args;
use serde_json::{Value, json};

use crate::client::Client;
use crate::commands::{resolve, resolve_named};
use crate::nodes::{Action, run_action};
use crate::output::{Format, cell, columns, detail, emit};

/// `marina cluster update`: what `PATCH /v1/clusters/{id}` changes.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    pub cluster: String,
    /// `automatic` or `manual` failover.
    #[arg(long)]
    pub failover_mode: Option<String>,
    /// Rebuild a diverged replica on its own (`true`/`false`; with --failover-mode).
    #[arg(long, requires = "failover_mode")]
    pub auto_reseed: Option<bool>,
    /// Security group (id or name) to attach; repeat the flag. Replaces the list.
    #[arg(long = "security-group", conflicts_with = "no_security_groups")]
    pub security_groups: Vec<String>,
    /// Detach every security group.
    #[arg(long)]
    pub no_security_groups: bool,
    /// Scheduled backups: a cron expression in UTC (replaces the policy).
    #[arg(long, conflicts_with = "no_backup_policy")]
    pub backup_schedule: Option<String>,
    /// `physical` (default) or `logical` scheduled backups.
    #[arg(long, requires = "backup_schedule")]
    pub backup_method: Option<String>,
    /// Keep at most this many scheduled backups.
    #[arg(long, requires = "backup_schedule")]
    pub retain_count: Option<u32>,
    /// Remove scheduled backups older than this many days.
    #[arg(long, requires = "backup_schedule")]
    pub retain_days: Option<u32>,
    /// Archive binlogs continuously for point-in-time restores.
    #[arg(long, requires = "backup_schedule")]
    pub binlog_archive: bool,
    /// Remove the backup policy.
    #[arg(long)]
    pub no_backup_policy: bool,
    /// Wait for an operation the change starts.
    #[arg(long)]
    pub wait: bool,
}

/// The PATCH body of `args` (security groups already resolved to ids).
pub fn update_body(args: &UpdateArgs, groups: Vec<String>) -> anyhow::Result<Value> {
    let mut body = json!({});
    if let Some(mode) = &args.failover_mode {
        body["failover"] = json!({ "mode": mode });
        if let Some(r) = args.auto_reseed {
            body["failover"]["auto_reseed"] = json!(r);
        }
    }
    if args.no_security_groups || !groups.is_empty() {
        body["security_group_ids"] = json!(groups);
    }
    if args.no_backup_policy {
        body["backup_policy"] = Value::Null;
    } else if let Some(schedule) = &args.backup_schedule {
        let mut p = json!({ "schedule": schedule, "binlog_archive": args.binlog_archive });
        if let Some(m) = &args.backup_method {
            p["method"] = json!(m);
        }
        if let Some(n) = args.retain_count {
            p["retain_count"] = json!(n);
        }
        if let Some(n) = args.retain_days {
            p["retain_days"] = json!(n);
        }
        body["backup_policy"] = p;
    }
    if body.as_object().is_some_and(|o| o.is_empty()) {
        bail!("nothing to update: give --failover-mode, --security-group, --backup-schedule or --no-backup-policy");
    }
    Ok(body)
}

/// A security group id (`sg_…`) or the id of the group with that name.
pub(crate) async fn resolve_group(client: &Client, name_or_id: &str) -> anyhow::Result<String> {
    resolve_named(client, name_or_id, "sg_", "/v1/security-groups", "security group").await
}

/// `cluster update`.
pub async fn update(client: &Client, format: Format, args: UpdateArgs) -> anyhow::Result<()> {
    let id = resolve(client, &args.cluster).await?;
    let mut groups = Vec::new();
    for g in &args.security_groups {
        groups.push(resolve_group(client, g).await?);
    }
    let body = update_body(&args, groups)?;
    let answer = client.patch(&format!("/v1/clusters/{id}"), &body).await?;
    if answer.get("operation").is_some() {
        let doing = format!("updating cluster {}", args.cluster);
        return crate::nodes::report(client, &answer, &doing, args.wait, format == Format::Json).await;
    }
    emit(format, &answer, |c| {
        format!("cluster {} updated\n{}", args.cluster, detail(c))
    });
    Ok(())
}

/// `cluster switchover|failover`: `kind` is the path segment.
pub async fn promote(
    client: &Client,
    format: Format,
    cluster: &str,
    kind: &str,
    to: Option<String>,
    wait: bool,
) -> anyhow::Result<()> {
    let id = resolve(client, cluster).await?;
    let body = to.map_or(json!({}), |n| json!({ "target_node_id": n }));
    let doing = match kind {
        "switchover" => format!("switching over cluster {cluster}"),
        _ => format!("failing over cluster {cluster}"),
    };
    let a = Action {
        method: reqwest::Method::POST,
        path: format!("/v1/clusters/{id}/{kind}"),
        body,
        doing,
        wait,
    };
    run_action(client, a, format == Format::Json).await
}

/// `cluster status`: the monitor's view of every node.
pub async fn status(client: &Client, format: Format, cluster: &str) -> anyhow::Result<()> {
    let id = resolve(client, cluster).await?;
    let s = client.get(&format!("/v1/clusters/{id}/status")).await?;
    emit(format, &s, detail);
    Ok(())
}

/// `cluster events`: newest first.
pub async fn events(client: &Client, format: Format, cluster: &str, limit: u32) -> anyhow::Result<()> {
    let id = resolve(client, cluster).await?;
    let page = client.get(&format!("/v1/clusters/{id}/events?limit={limit}")).await?;
    emit(format, &page["data"], |d| {
        let items = d.as_array().cloned().unwrap_or_default();
        columns(
            &items,
            &[
                ("TIME", "created_at"),
                ("TYPE", "type"),
                ("NODE", "node_id"),
                ("MESSAGE", "message"),
            ],
        )
    });
    Ok(())
}

/// `cluster restore-window`: the times a point-in-time restore can reach.
pub async fn restore_window(client: &Client, format: Format, cluster: &str) -> anyhow::Result<()> {
    let id = resolve(client, cluster).await?;
    let w = client.get(&format!("/v1/clusters/{id}/restore-window")).await?;
    emit(format, &w, |w| {
        format!(
            "cluster {cluster} can be restored to any time from {} to {}\n",
            cell(&w["earliest"]),
            cell(&w["latest"])
        )
    });
    Ok(())
}

/// `cluster reset-password`: a new password for the cluster's admin account.
pub async fn reset_password(client: &Client, format: Format, cluster: &str) -> anyhow::Result<()> {
    let id = resolve(client, cluster).await?;
    let answer = client
        .post(&format!("/v1/clusters/{id}/reset-password"), &json!({}))
        .await?;
    emit(format, &answer, |a| {
        format!(
            "username {}, password {} (shown once)\n",
            cell(&a["credentials"]["username"]),
            cell(&a["credentials"]["password"])
        )
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> UpdateArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct P {
            #[command(flatten)]
            a: UpdateArgs,
        }
        let mut argv = vec!["x", "orders"];
        argv.extend_from_slice(extra);
        P::try_parse_from(argv).expect("parses").a
    }

    #[test]
    fn update_bodies() {
        let b = update_body(&args(&["--failover-mode", "manual", "--auto-reseed", "true"]), vec![]).unwrap();
        assert_eq!(b, json!({"failover": {"mode": "manual", "auto_reseed": true}}));
        let b = update_body(&args(&["--no-security-groups"]), vec![]).unwrap();
        assert_eq!(b, json!({"security_group_ids": []}));
        let b = update_body(&args(&["--security-group", "web"]), vec!["sg_1".into()]).unwrap();
        assert_eq!(b, json!({"security_group_ids": ["sg_1"]}));
        let b = update_body(
            &args(&[
                "--backup-schedule",
                "0 3 * * *",
                "--retain-count",
                "7",
                "--binlog-archive",
            ]),
            vec![],
        )
        .unwrap();
        assert_eq!(
            b,
            json!({"backup_policy": {"schedule": "0 3 * * *", "retain_count": 7, "binlog_archive": true}})
        );
        let b = update_body(&args(&["--no-backup-policy"]), vec![]).unwrap();
        assert_eq!(b, json!({"backup_policy": null}));
        assert!(update_body(&args(&[]), vec![]).is_err());
    }
}
