//! `marina node list|show|history|processlist|variables|status-variables`:
//! what a node is and what it is doing, read through the API.

use serde_json::{Value, json};

use crate::client::Client;
use crate::commands::resolve;
use crate::output::{Format, cell, columns, detail, emit, table};

/// A cluster's nodes.
pub async fn list(client: &Client, format: Format, cluster: &str) -> anyhow::Result<()> {
    let id = resolve(client, cluster).await?;
    let page = client.get(&format!("/v1/clusters/{id}/nodes")).await?;
    emit(format, &page["data"], |d| {
        let items = d.as_array().cloned().unwrap_or_default();
        columns(
            &items,
            &[
                ("NODE", "id"),
                ("ROLE", "role"),
                ("STATUS", "status"),
                ("HOST", "host"),
                ("PORT", "port"),
                ("SIZE", "size_id"),
                ("LAG", "lag_seconds"),
            ],
        )
    });
    Ok(())
}

/// One node with the monitor's last probe of it (`probe`).
pub async fn show(client: &Client, format: Format, cluster: &str, node: &str) -> anyhow::Result<()> {
    let id = resolve(client, cluster).await?;
    let mut n = client.get(&format!("/v1/clusters/{id}/nodes/{node}")).await?;
    let status = client.get(&format!("/v1/clusters/{id}/status")).await?;
    let probe = status["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["node_id"] == node)
        .cloned()
        .unwrap_or(Value::Null);
    n["probe"] = probe;
    emit(format, &n, detail);
    Ok(())
}

/// The node's last 15 minutes of samples.
pub async fn history(client: &Client, format: Format, cluster: &str, node: &str) -> anyhow::Result<()> {
    let id = resolve(client, cluster).await?;
    let h = client.get(&format!("/v1/clusters/{id}/nodes/{node}/history")).await?;
    emit(format, &h, detail);
    Ok(())
}

/// Which live view of a node to read.
#[derive(Debug, Clone, Copy)]
pub enum Live {
    Processlist,
    Variables,
    StatusVariables,
}

/// A live view of the node (`SHOW PROCESSLIST`, `SHOW GLOBAL VARIABLES`,
/// `SHOW GLOBAL STATUS`), optionally only the rows containing `like`.
pub async fn live(
    client: &Client,
    format: Format,
    cluster: &str,
    node: &str,
    view: Live,
    like: Option<&str>,
) -> anyhow::Result<()> {
    let id = resolve(client, cluster).await?;
    let segment = match view {
        Live::Processlist => "processlist",
        Live::Variables => "variables",
        Live::StatusVariables => "status-variables",
    };
    let page = client.get(&format!("/v1/clusters/{id}/nodes/{node}/{segment}")).await?;
    let rows: Vec<Value> = page["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| like.is_none_or(|l| r.to_string().to_lowercase().contains(&l.to_lowercase())))
        .collect();
    emit(format, &json!(rows), |_| render_rows(&rows));
    Ok(())
}

/// Rows of arbitrary columns (the server's own names) as a table.
fn render_rows(rows: &[Value]) -> String {
    let mut headers: Vec<String> = Vec::new();
    for r in rows {
        for k in r.as_object().into_iter().flatten().map(|(k, _)| k) {
            if !headers.contains(k) {
                headers.push(k.clone());
            }
        }
    }
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| headers.iter().map(|h| cell(&r[h])).collect())
        .collect();
    let refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    table(&refs, &body)
}
