//! `marina doctor`: prints one line per check of this host (MariaDB,
//! endpoints, cgroups, node users, disk, memory, the API) with what to do
//! when it fails; exits non-zero when Marina cannot run here.

use marina_core::doctor::{Level, observe, verdicts};

/// `marina doctor` options: `marina serve`'s own (so `scripts/run.sh` checks
/// exactly what it is about to serve), and the API address to try.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    serve: crate::ServeArgs,
    /// The API to check [default: the listen address, http or https].
    #[arg(long, env = "MARINA_URL")]
    url: Option<String>,
}

/// Runs the checks; an error (exit status 1) when one of them fails.
pub async fn run(args: DoctorArgs) -> anyhow::Result<()> {
    let s = args.serve;
    let mut config = crate::load_config(s.config.as_deref(), s.data_dir, s.endpoints, &crate::working_dir()?)?;
    if let Some(l) = s.listen {
        config.listen = l;
    }
    let tls = s.tls_cert.is_some() || s.tls_self_signed;
    let scheme = if tls { "https" } else { "http" };
    let url = args.url.unwrap_or_else(|| format!("{scheme}://{}", config.listen));
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
