//! `marina db …` and `marina user …`: databases and accounts inside a
//! cluster. The calls are synchronous (done when the command returns);
//! `--wait` is accepted for symmetry with the other commands.

use clap::Subcommand;
use serde_json::json;

use crate::commands::{Common, resolve};
use crate::output::{Format, cell, print_json, table};

/// `marina db …`
#[derive(Debug, Subcommand)]
pub enum DbCmd {
    /// Create a database.
    Create {
        cluster: String,
        name: String,
        #[arg(long)]
        wait: bool,
    },
    /// List the cluster's databases.
    List { cluster: String },
    /// Drop a database.
    Delete {
        cluster: String,
        name: String,
        #[arg(long)]
        wait: bool,
    },
}

/// `marina user …`
#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Create an account (the password is generated unless given, and shown once).
    Create {
        cluster: String,
        name: String,
        /// A database the account gets all privileges on (repeatable).
        #[arg(long = "database")]
        databases: Vec<String>,
        /// Host pattern it may connect from (default `%`).
        #[arg(long)]
        host: Option<String>,
        /// The password (8-128 characters); generated when absent.
        #[arg(long)]
        password: Option<String>,
        #[arg(long)]
        wait: bool,
    },
    /// List the cluster's accounts.
    List { cluster: String },
    /// Drop an account (every host of that name unless `--host`).
    Delete {
        cluster: String,
        name: String,
        #[arg(long)]
        host: Option<String>,
        #[arg(long)]
        wait: bool,
    },
}

/// Runs `marina db …`.
pub async fn run_db(common: &Common, cmd: DbCmd) -> anyhow::Result<()> {
    let client = common.client()?;
    let json_out = common.output == Format::Json;
    match cmd {
        DbCmd::Create { cluster, name, .. } => {
            let id = resolve(&client, &cluster).await?;
            let db = client
                .post(&format!("/v1/clusters/{id}/databases"), &json!({ "name": name }))
                .await?;
            if json_out {
                print_json(&db);
            } else {
                println!("database {name} created in {cluster}");
            }
        }
        DbCmd::List { cluster } => {
            let id = resolve(&client, &cluster).await?;
            let list = client.get(&format!("/v1/clusters/{id}/databases")).await?;
            if json_out {
                print_json(&list);
            } else {
                let rows: Vec<Vec<String>> = list["data"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|d| vec![cell(&d["name"])])
                    .collect();
                print!("{}", table(&["NAME"], &rows));
            }
        }
        DbCmd::Delete { cluster, name, .. } => {
            let id = resolve(&client, &cluster).await?;
            client.delete(&format!("/v1/clusters/{id}/databases/{name}")).await?;
            if !json_out {
                println!("database {name} dropped from {cluster}");
            }
        }
    }
    Ok(())
}

/// Runs `marina user …`.
pub async fn run_user(common: &Common, cmd: UserCmd) -> anyhow::Result<()> {
    let client = common.client()?;
    let json_out = common.output == Format::Json;
    match cmd {
        UserCmd::Create {
            cluster,
            name,
            databases,
            host,
            password,
            ..
        } => {
            let id = resolve(&client, &cluster).await?;
            let mut body = json!({ "name": name, "databases": databases });
            if let Some(h) = host {
                body["host"] = json!(h);
            }
            if let Some(p) = password {
                body["password"] = json!(p);
            }
            let created = client.post(&format!("/v1/clusters/{id}/users"), &body).await?;
            if json_out {
                print_json(&created);
            } else {
                println!(
                    "user {}@{} created in {cluster}; password (shown once): {}",
                    name,
                    cell(&created["user"]["host"]),
                    cell(&created["password"])
                );
            }
        }
        UserCmd::List { cluster } => {
            let id = resolve(&client, &cluster).await?;
            let list = client.get(&format!("/v1/clusters/{id}/users")).await?;
            if json_out {
                print_json(&list);
            } else {
                let rows: Vec<Vec<String>> = list["data"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|u| {
                        let dbs: Vec<String> = u["databases"].as_array().into_iter().flatten().map(cell).collect();
                        vec![cell(&u["name"]), cell(&u["host"]), dbs.join(",")]
                    })
                    .collect();
                print!("{}", table(&["NAME", "HOST", "DATABASES"], &rows));
            }
        }
        UserCmd::Delete {
            cluster, name, host, ..
        } => {
            let id = resolve(&client, &cluster).await?;
            let q = host.map(|h| format!("?host={h}")).unwrap_or_default();
            client.delete(&format!("/v1/clusters/{id}/users/{name}{q}")).await?;
            if !json_out {
                println!("user {name} dropped from {cluster}");
            }
        }
    }
    Ok(())
}
