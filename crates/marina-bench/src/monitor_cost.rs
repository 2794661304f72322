//! `marina-bench monitor [--steps 1,5,10] [--seconds N]`: what watching
//! nodes costs the control plane.
//!
//! An in-process control plane (the whole of `marina serve`: monitor,
//! supervisor, endpoints, worker, schedulers) watches 3-node `xsmall`
//! clusters, `--steps` of them in turn (default 1, 5, 10: 3, 15 and 30
//! nodes). At each step, once every node is active and a few seconds have
//! passed, the process's CPU time (user + system, all its threads; the
//! nodes' `mariadbd` are other processes) is read over `--seconds` (20) with
//! nothing else running. A least-squares line `cpu = fixed + per_node x n`
//! through the steps gives the cost per node; extrapolated to 1,000 nodes
//! probed every 250 ms (scaled from `monitor.interval_ms`), the target is
//! under one core.

use std::time::Duration;

use anyhow::bail;
use serde_json::json;

use crate::cluster::wait_all_active;
use crate::common::{Bench, arg_value};
use crate::figures::{Figure, Target, record};

/// CPU time of this process (every thread), user + system.
pub fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe {
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
    }
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The least-squares line through `(x, y)` points: (intercept, slope).
pub fn fit(points: &[(f64, f64)]) -> (f64, f64) {
    let n = points.len() as f64;
    let (sx, sy) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let sxx: f64 = points.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let slope = if sxx == 0.0 { 0.0 } else { sxy / sxx };
    (my - slope * mx, slope)
}

pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let secs = arg_value(args, "--seconds", 20).max(2) as u64;
    let steps: Vec<usize> = args
        .iter()
        .position(|a| a == "--steps")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.split(',').filter_map(|v| v.parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 5, 10]);
    if steps.len() < 2 {
        bail!("--steps needs two cluster counts or more to fit a line");
    }
    let scratch = tempfile::Builder::new().prefix("marina-bench-monitor-").tempdir()?;
    let mut bench = Bench::start(scratch.path().join("marina"), |_| {}).await?;
    let interval_ms = bench.app.config.monitor.interval_ms as f64;
    println!(
        "# monitor cost: clusters of 3 xsmall nodes, monitor every {interval_ms} ms, CPU of the whole control plane over {secs} s per step"
    );
    let mut ids = Vec::new();
    let mut points = Vec::new();
    for &clusters in &steps {
        while ids.len() < clusters {
            let created = bench
                .api
                .call(
                    reqwest::Method::POST,
                    "/v1/clusters",
                    Some(json!({"name": format!("m{}", ids.len()), "size_id": "xsmall", "nodes": 3})),
                )
                .await?;
            bench
                .api
                .wait_op(created["operation"]["id"].as_str().unwrap_or_default())
                .await?;
            ids.push(created["cluster"]["id"].as_str().unwrap_or_default().to_string());
        }
        for id in &ids {
            wait_all_active(&bench.api, id).await?;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let before = cpu_time();
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let cores = (cpu_time() - before).as_secs_f64() / secs as f64;
        let nodes = (clusters * 3) as f64;
        println!("{nodes} nodes: {:.2} % of a core", cores * 100.0);
        points.push((nodes, cores));
    }
    let (fixed, per_node) = fit(&points);
    // Probing cost scales with probes per second: 250 ms is `250/interval`
    // times fewer than `interval` when the interval is shorter.
    let at_250 = per_node * interval_ms / 250.0;
    let extrapolated = fixed + at_250 * 1000.0;
    let per_node_us: Vec<f64> = points.iter().map(|(n, c)| (c - fixed) / n * 1e6).collect();
    println!(
        "fit: {:.3} % of a core fixed + {:.1} µs of CPU per node per second",
        fixed * 100.0,
        per_node * 1e6
    );
    record(Figure::new(
        "monitor CPU per node (each step, fixed part removed)",
        "µs/s",
        per_node_us,
    ));
    record(
        Figure::new(
            "control plane CPU for 1,000 nodes at 250 ms (extrapolated)",
            "cores",
            vec![extrapolated],
        )
        .target(Target::median_at_most(1.0)),
    );
    bench.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn fits_a_line() {
        let (a, b) = super::fit(&[(3.0, 0.05), (15.0, 0.11), (30.0, 0.185)]);
        assert!((b - 0.005).abs() < 1e-4, "{b}");
        assert!((a - 0.035).abs() < 2e-3, "{a}");
        assert_eq!(super::fit(&[(3.0, 1.0), (3.0, 2.0)]), (1.5, 0.0));
    }
}
