//! Marina's benchmarks (`docs/benchmarks.md` has the latest figures and how
//! to reproduce each). Every figure is printed as `name: value unit (ratio x
//! baseline; target …)` with all its runs (`figures.rs`); the run ends with
//! a summary table and exits non-zero when any target was missed.
//!
//! `marina-bench all [--quick]` runs every benchmark below in turn
//! (`--quick`: fewer rounds and less data, under 15 minutes on a 2-core
//! machine); each also runs alone with its own options.

mod backup;
mod cluster;
mod common;
mod endpoints;
mod figures;
mod monitor_cost;
mod nodes;
mod provision;
mod recovery;

const USAGE: &str = "usage: marina-bench all [--quick]
       marina-bench provision [--runs N]
       marina-bench recovery [--trials N]
       marina-bench endpoints [--seconds N] [--rounds N]
       marina-bench monitor [--steps 1,5,10] [--seconds N]
       marina-bench backup [--size-mib N] [--busy-rate-mib X] [--busy-stretch X] [--seconds N] [--rounds N] [--pairs N]
       marina-bench nodes [--size-mib N] [--rounds N] [--trials N]";

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Every benchmark, full size or quick.
async fn all(quick: bool) -> anyhow::Result<()> {
    if quick {
        provision::run(&args(&["--runs", "3"])).await?;
        recovery::run(&args(&["--trials", "10"])).await?;
        endpoints::run(&args(&["--seconds", "3", "--rounds", "2"])).await?;
        monitor_cost::run(&args(&["--steps", "1,3,5", "--seconds", "10"])).await?;
        backup::run(&args(&[
            "--size-mib",
            "128",
            "--seconds",
            "10",
            "--rounds",
            "2",
            "--pairs",
            "2",
        ]))
        .await?;
        nodes::run(&args(&["--size-mib", "128", "--rounds", "2", "--trials", "2"])).await
    } else {
        provision::run(&[]).await?;
        recovery::run(&[]).await?;
        endpoints::run(&[]).await?;
        monitor_cost::run(&[]).await?;
        backup::run(&[]).await?;
        nodes::run(&[]).await
    }
}

/// Runs the benchmark `name` with `rest` as its options.
async fn run(name: &str, rest: &[String]) -> anyhow::Result<()> {
    match name {
        "all" => all(rest.iter().any(|a| a == "--quick")).await,
        "provision" => provision::run(rest).await,
        "recovery" => recovery::run(rest).await,
        "endpoints" => endpoints::run(rest).await,
        "monitor" => monitor_cost::run(rest).await,
        "backup" => backup::run(rest).await,
        "nodes" => nodes::run(rest).await,
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn interrupted() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let rest = argv.get(1..).unwrap_or_default();
    let name = argv.first().map(String::as_str).unwrap_or_default();
    // Interrupted, the running benchmark is dropped: its `Bench` kills the
    // nodes by pid and removes its nftables table and cgroups, its scratch
    // directories go, and helper processes are killed on drop.
    let ran = tokio::select! {
        ran = run(name, rest) => ran,
        signal = interrupted() => signal.and(Err(anyhow::anyhow!("interrupted: cleaned up and stopped"))),
    };
    let missed = figures::summary();
    ran?;
    if !missed.is_empty() {
        eprintln!("targets missed:\n  {}", missed.join("\n  "));
        std::process::exit(1);
    }
    Ok(())
}
