//! Crash injection for tests: when `MARINA_FAILPOINT` names a point
//! (`<operation type>:<step>:<before|after>`), the process kills itself with
//! SIGKILL there — the harshest crash, with no destructor or flush running.
//! When `MARINA_PANICPOINT` names a point (`task:<background task>`,
//! `monitor:evaluate`, `step:<operation type>:<step>`), the code there panics
//! instead: the driver and the worker must turn that into a recorded failure.
//! `MARINA_DELAYPOINT=<point>=<ms>` makes the code there wait (races made
//! wide enough to test).

/// Dies if the failpoint `name` is armed.
pub(crate) fn hit(name: &str) {
    if let Ok(armed) = std::env::var("MARINA_FAILPOINT")
        && armed.split(',').any(|p| p == name)
    {
        eprintln!("failpoint {name}: killing the control plane");
        // SAFETY: kill(2) on our own pid.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

/// Panics if the panic point `name` is armed.
pub(crate) fn panic_point(name: &str) {
    if let Ok(armed) = std::env::var("MARINA_PANICPOINT")
        && armed.split(',').any(|p| p == name)
    {
        panic!("panic point {name}");
    }
}

/// Waits if the delay point `name` is armed (`name=ms`).
pub(crate) async fn delay_point(name: &str) {
    let Ok(armed) = std::env::var("MARINA_DELAYPOINT") else {
        return;
    };
    let ms = armed
        .split(',')
        .filter_map(|p| p.split_once('='))
        .find(|(point, _)| *point == name)
        .and_then(|(_, ms)| ms.parse::<u64>().ok());
    if let Some(ms) = ms {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}
