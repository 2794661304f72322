//! One driver for every background task (omicron's
//! `nexus/src/app/background/driver.rs` pattern).
//!
//! Rules for a task:
//! - It is **activated** by a timer (its period, counted from the start of
//!   the previous activation) and, when it has one, by a signal (a `Notify`
//!   on `Marina`: "a new operation was recorded", "reconcile now"). A signal
//!   during an activation causes one more activation right after it.
//! - An activation is **idempotent** and takes no input: it reads the store
//!   and the monitor's view afresh. It does not retry internally — the next
//!   activation is the retry.
//! - Each activation runs in its **own tokio task**: a panic becomes a
//!   recorded failure (`result: "panicked"`) and the next activation runs as
//!   usual, instead of a loop that silently stopped.
//! - Every activation is recorded: why it ran, when, how long, its result,
//!   its error and the task's own status document — served at
//!   `GET /v1/background-tasks` (operator), `marina background-task list`
//!   and `/metrics`.

mod tasks;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use marina_common::Error;
use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::Marina;

/// One kind of background work.
#[async_trait]
pub trait BackgroundTask: Send + Sync + 'static {
    /// One activation; returns a small status document on success.
    async fn activate(&self, app: &Arc<Marina>) -> Result<serde_json::Value, Error>;
}

/// Why an activation ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActivationReason {
    /// The first activation after start-up.
    Start,
    /// The task's period elapsed.
    Timer,
    /// Someone asked for it (a new operation, a state change).
    Signal,
}

/// How an activation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActivationResult {
    Ok,
    Failed,
    Panicked,
}

impl ActivationResult {
    pub fn as_str(self) -> &'static str {
        match self {
            ActivationResult::Ok => "ok",
            ActivationResult::Failed => "failed",
            ActivationResult::Panicked => "panicked",
        }
    }
}

/// The latest finished activation of a task.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Activation {
    /// Why it ran.
    pub reason: ActivationReason,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// How long it ran.
    pub duration_ms: u64,
    /// How it ended.
    pub result: ActivationResult,
    /// The error or panic message when it did not end well.
    pub error: Option<String>,
    /// The task's own status document (counts, what it did).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// A task's record, as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TaskStatus {
    /// Stable name (`monitor`, `operation_worker`, …).
    pub name: &'static str,
    /// What the task does.
    pub description: &'static str,
    /// Its timer period.
    pub period_ms: u64,
    /// Activations finished since start-up.
    pub activations: u64,
    /// Of those, how many failed or panicked.
    pub failures: u64,
    /// When the activation running now started (RFC 3339), if one is.
    pub running_since: Option<String>,
    /// The latest finished activation.
    pub last: Option<Activation>,
}

/// The statuses of every task, shared with the API.
#[derive(Default)]
pub struct Registry(Mutex<Vec<TaskStatus>>);

impl Registry {
    /// Every task's status, in registration order.
    pub fn snapshot(&self) -> Vec<TaskStatus> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn update(&self, name: &str, f: impl FnOnce(&mut TaskStatus)) {
        if let Some(t) = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter_mut()
            .find(|t| t.name == name)
        {
            f(t);
        }
    }

    fn register(&self, spec: &Spec) {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|t| t.name != spec.name);
        all.push(TaskStatus {
            name: spec.name,
            description: spec.description,
            period_ms: spec.period.as_millis() as u64,
            activations: 0,
            failures: 0,
            running_since: None,
            last: None,
        });
    }
}

/// A task and how it is activated.
pub struct Spec {
    pub name: &'static str,
    pub description: &'static str,
    pub period: Duration,
    /// The `Notify` on `Marina` that activates it early, if any.
    pub signal: Option<fn(&Marina) -> &Notify>,
    pub task: Arc<dyn BackgroundTask>,
}

impl Marina {
    /// Starts every background task under the driver; they stop when
    /// `cancel` fires (an activation in progress finishes first).
    pub fn spawn_background(self: &Arc<Self>, cancel: CancellationToken) -> Vec<tokio::task::JoinHandle<()>> {
        tasks::all(self)
            .into_iter()
            .map(|spec| {
                self.background.register(&spec);
                tokio::spawn(drive(self.clone(), spec, cancel.clone()))
            })
            .collect()
    }

    /// Every background task's status.
    pub fn background_tasks(&self) -> Vec<TaskStatus> {
        self.background.snapshot()
    }
}

/// Runs one task's activations until `cancel` fires.
async fn drive(app: Arc<Marina>, spec: Spec, cancel: CancellationToken) {
    let mut reason = ActivationReason::Start;
    loop {
        let started = Instant::now();
        activate_once(&app, &spec, reason).await;
        let rest = spec.period.saturating_sub(started.elapsed());
        let signal = async {
            match spec.signal {
                Some(f) => f(&app).notified().await,
                None => std::future::pending().await,
            }
        };
        reason = tokio::select! {
            _ = cancel.cancelled() => return,
            _ = signal => ActivationReason::Signal,
            _ = tokio::time::sleep(rest) => ActivationReason::Timer,
        };
    }
}

/// One activation in its own task, recorded whatever its end.
async fn activate_once(app: &Arc<Marina>, spec: &Spec, reason: ActivationReason) {
    let started_at = marina_common::time_fmt::now_rfc3339();
    app.background
        .update(spec.name, |t| t.running_since = Some(started_at.clone()));
    let started = Instant::now();
    let (task, a) = (spec.task.clone(), app.clone());
    let joined = tokio::spawn(async move { task.activate(&a).await }).await;
    let duration = started.elapsed();
    let (result, error, details) = match joined {
        Ok(Ok(details)) => (ActivationResult::Ok, None, details),
        Ok(Err(e)) => {
            tracing::warn!(task = spec.name, error = %e, "background task failed; its next activation retries");
            (ActivationResult::Failed, Some(e.to_string()), serde_json::Value::Null)
        }
        Err(e) => {
            let msg = panic_message(e);
            tracing::error!(task = spec.name, panic = %msg, "background task panicked; its next activation runs as usual");
            (ActivationResult::Panicked, Some(msg), serde_json::Value::Null)
        }
    };
    app.metrics.background_activation(spec.name, result.as_str(), duration);
    app.background.update(spec.name, |t| {
        t.running_since = None;
        t.activations += 1;
        if result != ActivationResult::Ok {
            t.failures += 1;
        }
        t.last = Some(Activation {
            reason,
            started_at,
            duration_ms: duration.as_millis() as u64,
            result,
            error,
            details,
        });
    });
}

/// The text of a task's panic (or why it was cancelled).
pub(crate) fn panic_message(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return e.to_string();
    }
    let payload = e.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panicked".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_is_a_message() {
        let e = tokio::spawn(async { panic!("boom {}", 7) }).await.unwrap_err();
        assert_eq!(panic_message(e), "boom 7");
        let e = tokio::spawn(async { std::panic::panic_any(5u8) }).await.unwrap_err();
        assert_eq!(panic_message(e), "panicked");
    }
}
