//! `strongroom-bench soak`: the service at saturation for a long time, its memory sampled.
//!
//! ```text
//!   setup:   throwaway token, root + issuing CA, service config (as `bench issue`)
//!   load:    child `strongroom serve`; N clients POST /v1/certificates until the time is up
//!   sample:  every few seconds the service's VmRSS (and its CPU share) from /proc/PID
//!   verdict: median RSS of the first minute, the middle minute and the last minute, and the max
//! ```
//!
//! A service that leaks grows with the number of requests served, so at saturation a leak shows
//! as RSS that keeps rising to the end. The first minutes also hold the warm-up (caches and
//! allocator arenas filling up to their working size), so the verdict compares the last minute
//! with the middle one: memory is flat when the last minute's median is within
//! [`FLAT_TOLERANCE`] of the middle minute's. The first minute is printed beside them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{Options, Workload, cpu_seconds, rss_kib};
use crate::demo::Throwaway;

/// How much the last minute's median RSS may exceed the middle minute's and still count as
/// flat: 5 %.
pub const FLAT_TOLERANCE: f64 = 0.05;

/// What to run.
#[derive(Clone, Debug)]
pub struct SoakOptions {
    /// The load: `seconds` is the soak's length; the workload is issuance.
    pub load: Options,
    /// Seconds between RSS samples.
    pub sample_seconds: u64,
}

/// One sample of the service process.
#[derive(Clone, Copy, Debug)]
struct Sample {
    /// Seconds since the load started.
    at: f64,
    /// VmRSS, KiB.
    rss_kib: u64,
    /// CPU used since the previous sample, as a share of one core.
    cpu: f64,
}

/// Sets up, runs the soak, prints the samples and the verdict.
///
/// # Errors
/// Setup, the service or the clients failing, any request refused, or too short a run to
/// compare a first, a middle and a last minute.
pub fn run(o: &SoakOptions) -> Result<(), String> {
    let o = SoakOptions {
        load: Options {
            workload: Workload::Issue,
            ..o.load.clone()
        },
        sample_seconds: o.sample_seconds.max(1),
    };
    if o.load.seconds < 180 {
        return Err(
            "bench soak: --minutes must be at least 3 (a first, a middle and a last minute)".into(),
        );
    }
    let t = Throwaway::create(&o.load.out, None, &["bench"])?;
    super::ceremony(&t, o.load.issuer)?;
    let config = super::write_config(&t, o.load.sessions, o.load.tuning)?;
    let (mut service, socket) = super::start_service(&t, &config)?;
    let pid = service.id();
    let public_key = super::subscriber_key(&t)?;

    println!(
        "== soak: {} clients, {} sessions, {} s, RSS every {} s",
        o.load.clients, o.load.sessions, o.load.seconds, o.sample_seconds
    );
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (stop, every) = (stop.clone(), Duration::from_secs(o.sample_seconds));
        std::thread::spawn(move || sample(pid, every, &stop))
    };
    let result = super::load(&socket, public_key, &o.load);
    stop.store(true, Ordering::Relaxed);
    let samples = sampler
        .join()
        .map_err(|_| "the sampling thread panicked".to_string())?;
    let stopped = super::stop_child(&mut service, "the service");
    let super::Load {
        ok: issued,
        failed: errors,
        elapsed,
        ..
    } = result?;
    let _ = stopped?;
    let verdict = verdict(&samples, elapsed)?;
    let report = json!({
        "issuer_key": o.load.issuer.to_string(),
        "clients": o.load.clients,
        "sessions": o.load.sessions,
        "seconds": super::round(elapsed),
        "signed": issued,
        "signed_per_second": super::round(issued as f64 / elapsed),
        "errors": errors,
        "samples": samples.len(),
        "rss_mib_first_minute_median": super::round(verdict.first / 1024.0),
        "rss_mib_middle_minute_median": super::round(verdict.middle / 1024.0),
        "rss_mib_last_minute_median": super::round(verdict.last / 1024.0),
        "rss_mib_max": super::round(verdict.max / 1024.0),
        "last_over_first": super::round3(verdict.last / verdict.first),
        "last_over_middle": super::round3(verdict.last / verdict.middle),
        "memory_flat": verdict.flat,
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
    );
    if errors > 0 {
        return Err(format!("{errors} requests failed"));
    }
    Ok(())
}

/// Samples `pid` every `every` until `stop`, printing each sample as it is taken.
fn sample(pid: u32, every: Duration, stop: &AtomicBool) -> Vec<Sample> {
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut last_cpu = cpu_seconds(pid).unwrap_or(0.0);
    let mut last_at = started;
    while !stop.load(Ordering::Relaxed) {
        // Sleep in short steps so the end of the load is noticed promptly.
        let next = last_at + every;
        while Instant::now() < next && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(
                Duration::from_millis(100).min(next.saturating_duration_since(Instant::now())),
            );
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let now = Instant::now();
        let (Some(rss_kib), Some(cpu)) = (rss_kib(pid), cpu_seconds(pid)) else {
            break;
        };
        let s = Sample {
            at: now.duration_since(started).as_secs_f64(),
            rss_kib,
            cpu: (cpu - last_cpu).max(0.0) / now.duration_since(last_at).as_secs_f64(),
        };
        println!(
            "t={:>6.1}s  rss={:>8.1} MiB  cpu={:>4.0}%",
            s.at,
            s.rss_kib as f64 / 1024.0,
            s.cpu * 100.0
        );
        samples.push(s);
        (last_cpu, last_at) = (cpu, now);
    }
    samples
}

/// First-, middle- and last-minute medians and the maximum, KiB.
struct Verdict {
    first: f64,
    middle: f64,
    last: f64,
    max: f64,
    flat: bool,
}

fn verdict(samples: &[Sample], elapsed: f64) -> Result<Verdict, String> {
    // The median RSS of the samples taken in the minute starting at `from` seconds.
    let minute = |from: f64| -> Option<f64> {
        let mut v: Vec<u64> = samples
            .iter()
            .filter(|s| s.at >= from && s.at <= from + 60.0)
            .map(|s| s.rss_kib)
            .collect();
        v.sort_unstable();
        v.get(v.len() / 2).map(|m| *m as f64)
    };
    let first = minute(0.0);
    let middle = minute(elapsed / 2.0 - 30.0);
    let last = minute(elapsed - 60.0);
    let max = samples.iter().map(|s| s.rss_kib).max();
    match (first, middle, last, max) {
        (Some(first), Some(middle), Some(last), Some(max)) => Ok(Verdict {
            first,
            middle,
            last,
            max: max as f64,
            flat: last <= middle * (1.0 + FLAT_TOLERANCE),
        }),
        _ => Err("bench soak: too few RSS samples for a first, a middle and a last minute".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(at: f64, rss_kib: u64) -> Sample {
        Sample {
            at,
            rss_kib,
            cpu: 1.0,
        }
    }

    #[test]
    fn verdict_compares_the_last_minute_with_the_middle_one() {
        let flat: Vec<_> = (0..120u32)
            .map(|i| s(f64::from(i) * 5.0, 50_000 + u64::from(i % 3)))
            .collect();
        let v = verdict(&flat, 600.0).unwrap();
        assert!(v.flat);
        assert_eq!(v.max, 50_002.0);

        // Warm-up growth in the first minutes, then level: flat.
        let warm: Vec<_> = (0..120u32)
            .map(|i| s(f64::from(i) * 5.0, 40_000 + 200 * u64::from(i.min(40))))
            .collect();
        let v = verdict(&warm, 600.0).unwrap();
        assert!(
            v.flat && v.first < v.last,
            "{} {} {}",
            v.first,
            v.middle,
            v.last
        );

        // Still growing at the end: not flat.
        let growing: Vec<_> = (0..120u32)
            .map(|i| s(f64::from(i) * 5.0, 50_000 + 200 * u64::from(i)))
            .collect();
        let v = verdict(&growing, 600.0).unwrap();
        assert!(!v.flat, "{} -> {}", v.middle, v.last);

        assert!(verdict(&[], 600.0).is_err());
    }

    #[test]
    fn proc_readers_read_this_process() {
        let me = std::process::id();
        assert!(rss_kib(me).unwrap() > 0);
        assert!(cpu_seconds(me).is_some());
    }
}
