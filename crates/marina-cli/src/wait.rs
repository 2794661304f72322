//! `--wait`: polls an operation until it ends, showing its steps as they run
//! (a spinner line on a terminal, one line per step otherwise).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::client::Client;

const SPINNER: &[char] = &['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// Waits for operation `op_id`; returns the final operation. `label` is e.g.
/// "creating cluster orders".
pub async fn wait_operation(
    client: &Client,
    op_id: &str,
    label: &str,
    quiet: bool,
) -> anyhow::Result<(Value, Duration)> {
    let tty = std::io::stderr().is_terminal() && !quiet;
    let start = Instant::now();
    let mut tick = 0usize;
    let mut last_step = String::new();
    loop {
        let op = client.get(&format!("/v1/operations/{op_id}")).await?;
        let steps = op["steps"].as_array().cloned().unwrap_or_default();
        let done = steps.iter().filter(|s| s["status"] == "succeeded").count();
        let current = steps
            .iter()
            .find(|s| s["status"] == "running" || s["status"] == "pending")
            .and_then(|s| s["name"].as_str())
            .unwrap_or("finishing")
            .replace('_', " ");
        let status = op["status"].as_str().unwrap_or("");
        if tty {
            eprint!(
                "\r\x1b[2K{label} {} {current} ({done}/{})…",
                SPINNER[tick % SPINNER.len()],
                steps.len()
            );
            let _ = std::io::stderr().flush();
        } else if !quiet && current != last_step {
            eprintln!("{label}: {current} ({done}/{})", steps.len());
        }
        last_step = current;
        tick += 1;
        if status == "succeeded" || status == "failed" {
            if tty {
                eprint!("\r\x1b[2K");
            }
            return Ok((op, start.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}
