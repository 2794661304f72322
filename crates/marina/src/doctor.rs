//! `marina doctor`: prints one line per check of this host (MariaDB,
//! endpoints, cgroups, node users, disk, memory, the API) with what to do
//! when it fails; exits non-zero when Marina cannot run here.

use std::path::PathBuf;

use marina_core::EndpointMode;
use marina_core::doctor::{Level, observe, verdicts};

/// `marina doctor` options: the same configuration `marina serve` would use.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// TOML configuration file (as given to `marina serve`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory [default: ./marina-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Endpoint data path: kernel, userspace or auto.
    #[arg(long)]
    endpoints: Option<EndpointMode>,
    /// The API to check [default: http://<listen address of the configuration>].
    #[arg(long, env = "MARINA_URL")]
    url: Option<String>,
}

/// Runs the checks; an error (exit status 1) when one of them fails.
pub async fn run(args: DoctorArgs) -> anyhow::Result<()> {
    let config = crate::load_config(args.config.as_deref(), args.data_dir, args.endpoints)?;
    let url = args.url.unwrap_or_else(|| format!("http://{}", config.listen));
    let api = marina_cli::client::health(&url).await;
    let findings = verdicts(&observe(&config, (url, api)).await);
    for f in &findings {
        println!("{}", f.line());
    }
    let failed = findings.iter().filter(|f| f.level == Level::Fail).count();
    anyhow::ensure!(
        failed == 0,
        "{failed} check(s) failed: Marina cannot run on this host as configured"
    );
    Ok(())
}
