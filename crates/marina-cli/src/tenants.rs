//! `marina tenant …` (creating and listing tenants is the operator's),
//! `marina audit list` (the tenant's mutating API calls) and
//! `marina background-task list` (the operator's view of the control plane's
//! background work).

use clap::Subcommand;
use serde_json::{Value, json};

use crate::commands::Common;
use crate::output::{cell, columns, detail, emit};

/// `marina tenant …`
#[derive(Debug, Subcommand)]
pub enum TenantCmd {
    /// Create a tenant and its first admin token (operator; the secret is shown once).
    Create { name: String },
    /// List every tenant (operator).
    List,
    /// Show a tenant (yours when no id is given).
    Show { id: Option<String> },
}

/// `marina audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Your tenant's mutating API calls, newest first.
    List {
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

/// `marina background-task …`
#[derive(Debug, Subcommand)]
pub enum BackgroundTaskCmd {
    /// Every background task: its last activation, result and error (operator).
    List,
}

/// Runs `marina background-task …`.
pub async fn run_background_task(common: &Common, cmd: BackgroundTaskCmd) -> anyhow::Result<()> {
    let client = common.client()?;
    let BackgroundTaskCmd::List = cmd;
    let page = client.get("/v1/background-tasks").await?;
    emit(common.output, &page["data"], |d| {
        let items = d.as_array().cloned().unwrap_or_default();
        columns(
            &items,
            &[
                ("TASK", "name"),
                ("ACTIVATIONS", "activations"),
                ("FAILURES", "failures"),
                ("LAST", "last.started_at"),
                ("WHY", "last.reason"),
                ("MS", "last.duration_ms"),
                ("RESULT", "last.result"),
                ("ERROR", "last.error"),
            ],
        )
    });
    Ok(())
}

/// Runs `marina tenant …`.
pub async fn run_tenant(common: &Common, cmd: TenantCmd) -> anyhow::Result<()> {
    let client = common.client()?;
    let f = common.output;
    match cmd {
        TenantCmd::Create { name } => {
            let created = client.post("/v1/tenants", &json!({ "name": name })).await?;
            emit(f, &created, |c| {
                format!(
                    "tenant {name} ({}) created\nadmin token {} — secret (shown once): {}\n",
                    cell(&c["tenant"]["id"]),
                    cell(&c["token"]["id"]),
                    cell(&c["secret"])
                )
            });
        }
        TenantCmd::List => {
            let all = client.list_all("/v1/tenants").await?;
            emit(f, &Value::Array(all), |d| {
                let items = d.as_array().cloned().unwrap_or_default();
                columns(&items, &[("NAME", "name"), ("ID", "id"), ("CREATED", "created_at")])
            });
        }
        TenantCmd::Show { id } => {
            let path = format!("/v1/tenants/{}", id.as_deref().unwrap_or("current"));
            let t = client.get(&path).await?;
            emit(f, &t, detail);
        }
    }
    Ok(())
}

/// Runs `marina audit …`.
pub async fn run_audit(common: &Common, cmd: AuditCmd) -> anyhow::Result<()> {
    let client = common.client()?;
    let AuditCmd::List { limit } = cmd;
    let page = client.get(&format!("/v1/audit-events?limit={limit}")).await?;
    emit(common.output, &page["data"], |d| {
        let items = d.as_array().cloned().unwrap_or_default();
        columns(
            &items,
            &[
                ("TIME", "created_at"),
                ("TOKEN", "token_id"),
                ("SOURCE", "source"),
                ("METHOD", "method"),
                ("PATH", "path"),
                ("STATUS", "status"),
                ("RESULT", "result"),
            ],
        )
    });
    Ok(())
}
