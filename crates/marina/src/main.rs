//! The `marina` binary: `marina serve` runs the control plane; every other
//! subcommand is the CLI client of its API.

mod agent;
mod doctor;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use marina_cli::{ClusterCmd, Common, NodeSizeCmd, OperationCmd, TokenCmd};
use marina_core::{Config, EndpointMode, Marina};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(
    name = "marina",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("MARINA_GIT_COMMIT"), ")"),
    about = "Self-hosted managed MariaDB: replicated clusters through a REST API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the control plane (API, operation worker, supervisor).
    Serve(ServeArgs),
    /// Manage clusters.
    Cluster {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        cmd: ClusterCmd,
    },
    /// Inspect operations.
    Operation {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        cmd: OperationCmd,
    },
    /// API tokens of your tenant.
    Token {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        cmd: TokenCmd,
    },
    /// Backups of your clusters.
    Backup {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        cmd: marina_cli::BackupCmd,
    },
    /// Node actions.
    Node {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        cmd: marina_cli::NodeCmd,
    },
    /// Databases inside a cluster.
    Db {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        cmd: marina_cli::DbCmd,
    },
    /// User accounts inside a cluster.
    User {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        cmd: marina_cli::UserCmd,
    },
    /// Hosts nodes run on (operator): list, show, cordon, uncordon, drain.
    Host {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        cmd: marina_cli::HostCmd,
    },
    /// OVH API applications (for the OVH adapter's signed requests).
    OvhApp {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        cmd: marina_cli::OvhAppCmd,
    },
    /// The node-size catalog.
    NodeSize {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        cmd: NodeSizeCmd,
    },
    /// Security groups: who may connect to a cluster's endpoints.
    SecurityGroup {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        cmd: marina_cli::SecurityGroupCmd,
    },
    /// Tenants (creating and listing them is the operator's).
    Tenant {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        cmd: marina_cli::TenantCmd,
    },
    /// Your tenant's audit log of mutating API calls.
    Audit {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        cmd: marina_cli::AuditCmd,
    },
    /// The control plane's background tasks and their last activation (operator).
    BackgroundTask {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        cmd: marina_cli::BackgroundTaskCmd,
    },
    /// Check this host for what Marina needs, one line per check.
    Doctor(doctor::DoctorArgs),
    /// Run a host agent: join a control plane with a one-time join token.
    Agent(agent::AgentArgs),
    /// Print a shell completion script: `marina completion bash > /etc/bash_completion.d/marina`.
    Completion {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// API listen address [default: 127.0.0.1:7300].
    #[arg(long)]
    listen: Option<String>,
    /// Data directory [default: ./marina-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// TOML configuration file (see deploy/marina.example.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Endpoint data path: kernel, userspace or auto [default: auto].
    #[arg(long)]
    endpoints: Option<EndpointMode>,
    /// Answer …/is-primary and …/is-replica without a token (load balancers).
    #[arg(long)]
    public_health_checks: bool,
    /// PEM certificate chain for HTTPS (with --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS (with --tls-cert).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve HTTPS with a self-signed certificate generated on first start and
    /// kept in <data-dir>/tls/ (clients trust it with --ca-cert).
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    tls_self_signed: bool,
    /// Allow plain HTTP on a non-loopback address (tokens would cross the
    /// network in clear).
    #[arg(long)]
    insecure_http: bool,
}

/// Plain HTTP is for loopback: elsewhere it needs TLS or `--insecure-http`.
fn check_plain_http(args: &ServeArgs, listen: std::net::SocketAddr) -> anyhow::Result<()> {
    let tls = args.tls_cert.is_some() || args.tls_self_signed;
    if !tls && !listen.ip().is_loopback() && !args.insecure_http {
        anyhow::bail!(
            "refusing plain HTTP on {listen}: API tokens would cross the network in clear. \
             Use --tls-cert/--tls-key or --tls-self-signed, or --insecure-http to accept the risk"
        );
    }
    Ok(())
}

/// The TLS configuration `marina serve` asked for, if any.
fn tls_setup(
    args: &ServeArgs,
    listen: std::net::SocketAddr,
    data_dir: &std::path::Path,
) -> anyhow::Result<Option<(std::sync::Arc<rustls::ServerConfig>, PathBuf)>> {
    use marina_api::transport;
    let files = if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        Some((cert.clone(), key.clone()))
    } else if args.tls_self_signed {
        let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        if !listen.ip().is_unspecified() && !names.contains(&listen.ip().to_string()) {
            names.push(listen.ip().to_string());
        }
        if let Ok(host) = std::fs::read_to_string("/etc/hostname") {
            let host = host.trim();
            if !host.is_empty() && !names.iter().any(|n| n == host) {
                names.push(host.to_string());
            }
        }
        Some(transport::self_signed(&data_dir.join("tls"), &names).map_err(|e| anyhow::anyhow!(e))?)
    } else {
        None
    };
    match files {
        Some((cert, key)) => {
            let config = transport::tls_config(&cert, &key).map_err(|e| anyhow::anyhow!(e))?;
            Ok(Some((config, cert)))
        }
        None => Ok(None),
    }
}

fn main() -> std::process::ExitCode {
    // Everything Marina creates (its store and the store's WAL, backups,
    // scratch copies of tenant data, sockets) is owner-only from its first
    // byte; the few files meant for others (a TLS certificate) get their mode
    // explicitly. Child processes inherit it (`mariadbd` sets its own).
    // SAFETY: umask(2) has no preconditions; called before any thread starts.
    unsafe {
        libc::umask(0o077);
    }
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::Cluster { common, cmd } => marina_cli::run_cluster(&common, cmd).await,
            Command::Operation { common, cmd } => marina_cli::run_operation(&common, cmd).await,
            Command::NodeSize { common, cmd } => marina_cli::run_node_size(&common, cmd).await,
            Command::Token {
                common,
                cmd: TokenCmd::Create { bootstrap: true, .. },
            } => recover_admin_token(&common.data_dir).await,
            Command::Token { common, cmd } => marina_cli::run_token(&common, cmd).await,
            Command::Backup { common, cmd } => marina_cli::run_backup(&common, cmd).await,
            Command::Node { common, cmd } => marina_cli::run_node(&common, cmd).await,
            Command::Db { common, cmd } => marina_cli::run_db(&common, cmd).await,
            Command::User { common, cmd } => marina_cli::run_user(&common, cmd).await,
            Command::Host { common, cmd } => marina_cli::run_host(&common, cmd).await,
            Command::OvhApp { common, cmd } => marina_cli::run_ovh_app(&common, cmd).await,
            Command::SecurityGroup { common, cmd } => marina_cli::run_security_group(&common, cmd).await,
            Command::Tenant { common, cmd } => marina_cli::run_tenant(&common, cmd).await,
            Command::Audit { common, cmd } => marina_cli::run_audit(&common, cmd).await,
            Command::BackgroundTask { common, cmd } => marina_cli::run_background_task(&common, cmd).await,
            Command::Doctor(args) => doctor::run(args).await,
            Command::Agent(args) => agent::run(args).await,
            Command::Completion { shell } => {
                let mut cmd = <Cli as clap::CommandFactory>::command();
                let mut script = Vec::new();
                clap_complete::generate(shell, &mut cmd, "marina", &mut script);
                // A closed pipe (`| head`) is the reader's choice, not an error.
                let _ = std::io::Write::write_all(&mut std::io::stdout(), &script);
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `marina token create --bootstrap`: the host root's way back in (see
/// `marina_core::auth::recover_admin_token`).
async fn recover_admin_token(data_dir: &std::path::Path) -> anyhow::Result<()> {
    let (token, path) = marina_core::auth::recover_admin_token(data_dir)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "admin token {} ({}) of the operator's tenant written to {} (0600); use it with MARINA_TOKEN=\"$(cat {})\" or --data-dir {}",
        token.name,
        token.id,
        path.display(),
        path.display(),
        data_dir.display()
    );
    Ok(())
}

/// The configuration file (or the defaults) with the command line's data dir
/// and endpoint mode, every path made absolute against the working directory
/// once (nodes run in their own directories).
pub(crate) fn load_config(
    path: Option<&std::path::Path>,
    data_dir: Option<PathBuf>,
    endpoints: Option<EndpointMode>,
    cwd: &std::path::Path,
) -> anyhow::Result<Config> {
    let mut config = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
            Config::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => Config::default(),
    };
    if let Some(d) = data_dir {
        config.data_dir = d;
    }
    if let Some(m) = endpoints {
        config.endpoints.mode = m;
    }
    if let Ok(cache) = std::env::var("MARINA_TEMPLATE_CACHE")
        && !cache.is_empty()
    {
        config.nodes.template_cache = Some(cache.into());
    }
    config.absolutize(cwd);
    Ok(config)
}

/// The directory relative paths are resolved against.
pub(crate) fn working_dir() -> anyhow::Result<PathBuf> {
    std::env::current_dir().map_err(|e| anyhow::anyhow!("reading the working directory: {e}"))
}

/// Logs to stderr at `MARINA_LOG` (default `info`): `serve` and `agent`.
pub(crate) fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("MARINA_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_logging();
    let cwd = working_dir()?;
    let mut config = load_config(args.config.as_deref(), args.data_dir.clone(), args.endpoints, &cwd)?;
    if let Some(l) = args.listen.clone() {
        config.listen = l;
    }
    if args.public_health_checks {
        config.public_health_checks = true;
    }
    let args = ServeArgs {
        tls_cert: args.tls_cert.map(|p| marina_core::config::absolute(&cwd, &p)),
        tls_key: args.tls_key.map(|p| marina_core::config::absolute(&cwd, &p)),
        ..args
    };
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr()?;
    // Checked before opening anything.
    check_plain_http(&args, addr)?;
    let app = Marina::open(config).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let tls = tls_setup(&args, addr, &app.config.data_dir)?;
    let token_path = app.config.data_dir.join("admin-token");
    if let Some(secret) = app.bootstrap().await.map_err(|e| anyhow::anyhow!("{e}"))? {
        println!("admin token (shown once, also in {}): {secret}", token_path.display());
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!(
        "marina listening on {scheme}://{addr} — data dir {} — admin token written to {} — endpoints: {}",
        app.config.data_dir.display(),
        token_path.display(),
        app.datapath.kind()
    );
    println!("console: {scheme}://{addr}/ui — metrics: {scheme}://{addr}/metrics");
    if let Some((_, cert)) = &tls {
        println!(
            "TLS certificate: {} (clients: --ca-cert {})",
            cert.display(),
            cert.display()
        );
    }
    let cancel = CancellationToken::new();
    let tasks = app.spawn_background(cancel.clone());
    let shutdown = {
        let cancel = cancel.clone();
        async move {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
            tracing::info!("shutting down; nodes keep running and are adopted at the next start");
            cancel.cancel();
        }
    };
    marina_api::serve(app, listener, tls.map(|(c, _)| c), shutdown).await?;
    cancel.cancel();
    for t in tasks {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), t).await;
    }
    Ok(())
}
