//! The pool's watchdog: the one thread that keeps every call's deadline, whether or not its
//! caller still waits, from slots the workers write with a few atomic stores per call.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use super::context::lock;
use super::error::Error;
use super::pool::{Inner, Job};

/// A worker's call in flight, as the watchdog sees it. Only the worker writes it (when it starts
/// and ends a call), only the watchdog reads it: atomics, no lock on the call's path.
#[derive(Default)]
pub(super) struct InFlight {
    /// When the running call's deadline passes ([`Inner::now_ms`] scale); 0 while idle.
    pub(super) deadline: AtomicU64,
    /// The running call's deadline in ms, for the error (may belong to the next call by the
    /// time the watchdog reads it; only the message would be off).
    pub(super) timeout_ms: AtomicU64,
    /// The running call's name, as an index into [`OPS`].
    pub(super) op: AtomicUsize,
}

/// The calls a slot can name (the `op` of [`Hsm::call`](super::Hsm::call)'s callers).
const OPS: [&str; 5] = [
    "C_Sign",
    "C_GetSessionInfo",
    "C_FindObjects",
    "C_GenerateRandom",
    "C_GenerateKeyPair",
];

/// The index of `op` in [`OPS`] ([`OPS`]'s length for any other).
pub(super) fn op_index(op: &'static str) -> usize {
    OPS.iter().position(|o| *o == op).unwrap_or(OPS.len())
}

/// The watchdog thread: scans the pool's deadlines every `period` until the pool is dropped.
pub(super) fn watchdog(inner: std::sync::Weak<Inner>, period: Duration) {
    loop {
        std::thread::park_timeout(period);
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if inner.shutdown.load(Ordering::SeqCst) {
            return;
        }
        inner.watch();
    }
}

impl Inner {
    /// One scan of the watchdog: a running call past its deadline marks the HSM unavailable;
    /// queued jobs past theirs are taken out and their callers answered with [`Error::Busy`].
    fn watch(self: &Arc<Self>) {
        let now = self.now_ms();
        let late = {
            let st = lock(&self.state);
            st.slots.iter().find_map(|slot| {
                let deadline = slot.deadline.load(Ordering::Acquire);
                (deadline != 0 && now >= deadline).then(|| Error::Timeout {
                    op: OPS
                        .get(slot.op.load(Ordering::Relaxed))
                        .copied()
                        .unwrap_or("a call"),
                    after: Duration::from_millis(slot.timeout_ms.load(Ordering::Relaxed)),
                })
            })
        };
        if let Some(e) = late {
            self.mark_unavailable(&e);
        }
        let expired: Vec<Job> = {
            let mut queue = lock(&self.queue);
            if !queue.jobs.iter().any(|j| now >= j.start_by) {
                return;
            }
            let mut expired = Vec::new();
            for job in std::mem::take(&mut queue.jobs) {
                if now >= job.start_by {
                    expired.push(job);
                } else {
                    queue.jobs.push_back(job);
                }
            }
            expired
        };
        // Answered outside the lock: a reply runs the caller's code (a channel send).
        for job in expired {
            job.expire();
        }
    }
}
