//! Recovery after an outage: reconnect, initialise the library again if need be, find every key
//! again and check its public key, then start a new generation of workers (steps 1-4 of the
//! [`crate::hsm`] doc).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use cryptoki::context::Pkcs11;
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use spki::SubjectPublicKeyInfoOwned;

use super::KeyUri;
use super::context::{context, context_epoch, lock, reinitialize};
use super::error::Error;
use super::pool::{Health, Inner, Ops, spawn, start_workers};
use super::token::connect;

/// Recovery waits 50 ms before its first attempt, doubling to this at most.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Sessions and key handles found again by a recovery attempt.
struct Fresh {
    sessions: Vec<Session>,
    handles: Vec<ObjectHandle>,
    reinitialised: bool,
    /// The library initialisation the sessions belong to.
    epoch: u64,
}

impl Inner {
    /// Opens sessions, logs in and finds every registered key again, checking its public key.
    fn connect_and_find(&self, ctx: &Pkcs11) -> Result<(Vec<Session>, Vec<ObjectHandle>), Error> {
        let (info, sessions) =
            connect(ctx, &self.selector, &self.pin, self.size).inspect_err(|e| {
                if e.is_fatal() {
                    let _ = self.pin_refusals.fetch_add(1, Ordering::SeqCst);
                }
            })?;
        let serial = info.serial_number().trim_end();
        if serial != self.description.serial {
            return Err(Error::Token {
                selector: self.selector.to_string(),
                problem: format!(
                    "now has serial {serial:?}, not {:?} as before; not using it",
                    self.description.serial
                ),
            });
        }
        let expected: Vec<(KeyUri, SubjectPublicKeyInfoOwned)> = lock(&self.keys)
            .iter()
            .map(|r| (r.uri.clone(), r.spki.clone()))
            .collect();
        let session = sessions.first().ok_or_else(|| Error::Unavailable {
            op: "C_OpenSession".to_string(),
            rv: "no session".to_string(),
        })?;
        let ops = Ops {
            session,
            description: &self.description,
            inner: self,
            generation: 0,
        };
        let mut handles = Vec::with_capacity(expected.len());
        for (uri, spki) in expected {
            let key = ops.find_key(&uri)?;
            if key.spki != spki {
                return Err(Error::Key {
                    uri: uri.to_string(),
                    problem: "after reconnecting, its public key is not the one it had when first found (the issuer certificate's); not using it".to_string(),
                });
            }
            handles.push(key.private);
        }
        Ok((sessions, handles))
    }

    /// One recovery attempt: reconnect on the current library context; if that fails and no
    /// call of ours is inside the library (`quiet`), finalise and initialise it and try again.
    fn reconnect(&self, quiet: bool) -> Result<Fresh, Error> {
        let (ctx, epoch) = context(&self.module)?;
        match self.connect_and_find(&ctx) {
            Ok((sessions, handles)) => {
                return Ok(Fresh {
                    sessions,
                    handles,
                    reinitialised: false,
                    epoch,
                });
            }
            Err(e) if e.is_fatal() || !quiet => return Err(e),
            Err(_) => {}
        }
        let (ctx, epoch) = reinitialize(&self.module, epoch)?;
        let (sessions, handles) = self.connect_and_find(&ctx)?;
        Ok(Fresh {
            sessions,
            handles,
            reinitialised: true,
            epoch,
        })
    }

    /// Puts a successful attempt's sessions to work: a new generation, healthy again.
    fn install(self: &Arc<Self>, fresh: Fresh, attempts: u32) -> Result<(), Error> {
        let mut st = lock(&self.state);
        if self.shutdown.load(Ordering::SeqCst) {
            return Ok(());
        }
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let found = fresh.handles.len();
        {
            let mut keys = lock(&self.keys);
            for (r, handle) in keys.iter_mut().zip(fresh.handles) {
                r.handle = handle;
                r.generation = generation;
            }
        }
        let (workers, slots) = match start_workers(self, generation, fresh.epoch, fresh.sessions) {
            Ok(w) => w,
            Err(e) => {
                // The workers that did start exit at once.
                let _ = self.generation.fetch_add(1, Ordering::SeqCst);
                self.work.notify_all();
                return Err(e);
            }
        };
        let outage = match &st.health {
            Health::Unavailable { since, .. } => since.elapsed(),
            _ => Duration::ZERO,
        };
        st.workers = workers;
        st.slots = slots;
        st.health = Health::Healthy;
        st.recovering = false;
        st.recoveries += 1;
        st.last_outage = Some(outage);
        if fresh.reinitialised {
            st.reinitialisations += 1;
        }
        self.healthy.store(true, Ordering::SeqCst);
        eprintln!(
            "strongroom: HSM available again after {} ms ({attempts} recovery attempts{}); {found} keys found again and checked against their certificates",
            outage.as_millis(),
            if fresh.reinitialised {
                ", library finalised and initialised again"
            } else {
                ""
            }
        );
        self.notify(true);
        Ok(())
    }

    /// Stops recovery for good.
    fn fail(&self, e: &Error) {
        let mut st = lock(&self.state);
        st.health = Health::Failed {
            error: e.to_string(),
        };
        st.recovering = false;
        eprintln!(
            "strongroom: HSM RECOVERY STOPPED: {e}. Not retrying, so the token does not lock; \
             requests keep getting 503 hsm.unavailable. Fix the PIN and restart strongroom."
        );
    }
}

/// The recovery thread: attempts with backoff until healthy or a fatal error (module doc).
pub(super) fn recover(inner: Arc<Inner>) {
    let mut delay = FIRST_BACKOFF;
    let mut pending: Option<JoinHandle<()>> = None;
    let mut attempts = 0u32;
    let mut logged: Option<String> = None;
    loop {
        std::thread::sleep(delay);
        delay = (delay * 2).min(MAX_BACKOFF);
        if inner.shutdown.load(Ordering::SeqCst) {
            return;
        }
        // An abandoned attempt may still be inside the library: no second one beside it.
        if pending.as_ref().is_some_and(|h| !h.is_finished()) {
            continue;
        }
        if let Some(h) = pending.take() {
            let _ = h.join();
        }
        // Old calls get the call deadline to come back; one still inside the library after
        // that is lost (seen with p11-kit-client after its server was killed) and no longer
        // holds up re-initialising: never recovering would be worse.
        let (quiet, lost) = {
            let mut st = lock(&inner.state);
            st.stale.retain(|(h, _)| !h.is_finished());
            let lost = st
                .stale
                .iter()
                .filter(|(_, since)| since.elapsed() >= inner.options.call_timeout)
                .count();
            (lost == st.stale.len(), lost)
        };
        attempts += 1;
        let (tx, rx) = mpsc::channel();
        let attempt_inner = inner.clone();
        let Ok(handle) = spawn("hsm-reconnect".to_string(), move || {
            if let Err(mpsc::SendError(Ok(late))) = tx.send(attempt_inner.reconnect(quiet)) {
                // Abandoned: its sessions are not closed if the library was initialised again
                // meanwhile (the handles could now name someone else's sessions).
                if context_epoch() != Some(late.epoch) {
                    std::mem::forget(late.sessions);
                }
            }
        }) else {
            continue;
        };
        let failed = match rx.recv_timeout(inner.options.call_timeout) {
            Ok(Ok(fresh)) => {
                let _ = handle.join();
                match inner.install(fresh, attempts) {
                    Ok(()) => return,
                    Err(e) => e,
                }
            }
            Ok(Err(e)) => {
                let _ = handle.join();
                if e.is_fatal() {
                    inner.fail(&e);
                    return;
                }
                e
            }
            Err(_) => {
                pending = Some(handle);
                Error::Timeout {
                    op: "a recovery attempt",
                    after: inner.options.call_timeout,
                }
            }
        };
        // Logged when the reason changes, not on every attempt.
        let reason = match (quiet, lost) {
            (true, 0) => format!("{failed} (no call in flight)"),
            (true, n) => format!("{failed} ({n} calls never returned from the library)"),
            (false, _) => {
                format!("{failed} (old calls still in flight: library not re-initialised yet)")
            }
        };
        if logged.as_deref() != Some(reason.as_str()) {
            eprintln!(
                "strongroom: HSM recovery attempt {attempts} failed: {reason}; retrying with backoff up to {} ms",
                MAX_BACKOFF.as_millis()
            );
            logged = Some(reason);
        }
        inner
            .recovery_attempts
            .store(u64::from(attempts), Ordering::SeqCst);
    }
}
