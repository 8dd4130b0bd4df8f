//! Stopping child processes (the demo's and the benchmarks' `strongroom serve`): signals are sent
//! with `rustix` (no external `kill` binary, which a minimal system may lack), and every wait is
//! bounded; a child that does not stop is reported, never waited for forever.

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

pub use rustix::process::Signal;
use rustix::process::{Pid, kill_process};

/// How often a bounded wait looks at the child.
const POLL: Duration = Duration::from_millis(5);

/// Sends `signal` to `child`.
///
/// # Errors
/// The signal could not be sent (for example because the process is gone and reaped).
pub fn signal(child: &Child, signal: Signal) -> Result<(), String> {
    kill_process(Pid::from_child(child), signal)
        .map_err(|e| format!("cannot send {signal:?} to process {}: {e}", child.id()))
}

/// Waits at most `within` for `child` to exit.
///
/// # Errors
/// Waiting failed.
pub fn wait_for(child: &mut Child, within: Duration) -> Result<Option<ExitStatus>, String> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| format!("cannot wait for process {}: {e}", child.id()))?
        {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(POLL);
    }
}

/// SIGTERM, then waits at most `within` for the child to exit. A child still running then is
/// killed (SIGKILL, waited for at most 5 s more) and the failure reported.
///
/// # Errors
/// The signal could not be sent, or the child did not exit within `within`.
pub fn terminate(child: &mut Child, within: Duration) -> Result<ExitStatus, String> {
    if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
        return Ok(status);
    }
    signal(child, Signal::TERM)?;
    if let Some(status) = wait_for(child, within)? {
        return Ok(status);
    }
    Err(format!(
        "process {} did not exit within {} s of SIGTERM; {}",
        child.id(),
        within.as_secs(),
        kill(child)?
    ))
}

/// SIGKILL, then waits at most 5 s for the child to be gone; says how that went.
///
/// # Errors
/// Waiting failed.
pub fn kill(child: &mut Child) -> Result<String, String> {
    let killed = child.kill();
    let gone = wait_for(child, Duration::from_secs(5))?;
    Ok(match (killed, gone) {
        (Ok(()), Some(_)) => "killed it (SIGKILL)".to_string(),
        (Ok(()), None) => "it survived SIGKILL for 5 s".to_string(),
        (Err(e), _) => format!("SIGKILL failed: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn terminate_stops_a_child_with_sigterm() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let status = terminate(&mut child, Duration::from_secs(5)).unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(15)
        );
    }

    #[test]
    fn terminate_reports_a_child_that_ignores_sigterm() {
        // A shell that ignores SIGTERM and whose `sleep` is replaced by the shell itself (exec).
        let mut child = Command::new("sh")
            .args(["-c", "trap '' TERM; exec sleep 30"])
            .spawn()
            .unwrap();
        // Let the shell install its trap before it is signalled.
        std::thread::sleep(Duration::from_millis(200));
        let err = terminate(&mut child, Duration::from_millis(300)).unwrap_err();
        assert!(err.contains("did not exit within"), "{err}");
        assert!(err.contains("killed it (SIGKILL)"), "{err}");
        assert!(child.try_wait().unwrap().is_some());
    }

    #[test]
    fn wait_for_is_bounded() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let t0 = Instant::now();
        assert!(
            wait_for(&mut child, Duration::from_millis(100))
                .unwrap()
                .is_none()
        );
        assert!(t0.elapsed() < Duration::from_secs(5));
        child.kill().unwrap();
        assert!(
            wait_for(&mut child, Duration::from_secs(5))
                .unwrap()
                .is_some()
        );
    }
}
