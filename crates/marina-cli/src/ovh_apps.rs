//! `marina ovh-app …`: the OVH API applications of your tenant (the key and
//! secret OVH-style clients sign their requests with; the consumer key is a
//! Marina token).

use clap::Subcommand;
use serde_json::{Value, json};

use crate::commands::Common;
use crate::output::{Format, cell, print_json, table};

/// `marina ovh-app …`
#[derive(Debug, Subcommand)]
pub enum OvhAppCmd {
    /// Register an application (its secret is printed once).
    Create { name: String },
    /// List applications (never their secrets).
    List,
    /// Delete an application: requests signed with it are refused.
    Delete { application_key: String },
}

/// Runs `marina ovh-app …`.
pub async fn run_ovh_app(common: &Common, cmd: OvhAppCmd) -> anyhow::Result<()> {
    let client = common.client()?;
    let json_out = common.output == Format::Json;
    match cmd {
        OvhAppCmd::Create { name } => {
            let created = client.post("/v1/ovh-applications", &json!({"name": name})).await?;
            if json_out {
                print_json(&created);
            } else {
                println!("OVH application {} created", cell(&created["application"]["name"]));
                println!("application key: {}", cell(&created["application"]["application_key"]));
                println!(
                    "application secret (shown once): {}",
                    cell(&created["application_secret"])
                );
                println!("consumer key: a Marina token (marina token create …)");
            }
        }
        OvhAppCmd::List => {
            let page = client.get("/v1/ovh-applications").await?;
            if json_out {
                print_json(&page["data"]);
            } else {
                let rows: Vec<Vec<String>> = page["data"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .map(|a: &Value| vec![cell(&a["name"]), cell(&a["application_key"]), cell(&a["created_at"])])
                    .collect();
                print!("{}", table(&["NAME", "APPLICATION KEY", "CREATED"], &rows));
            }
        }
        OvhAppCmd::Delete { application_key } => {
            client
                .delete(&format!("/v1/ovh-applications/{application_key}"))
                .await?;
            if !json_out {
                println!("OVH application {application_key} deleted");
            }
        }
    }
    Ok(())
}
