//! HSM access through PKCS#11: the only module that touches `cryptoki`.
//!
//! One PKCS#11 library context per process (`C_Initialize` with OS locking), replaceable: when a
//! remote module's connection is gone it is finalised and initialised again. A token is chosen by
//! label or serial number, never by slot id (SoftHSM, for one, renumbers slots when a token is
//! initialised). Keys are named by RFC 7512 PKCS#11 URIs ([`KeyUri`]).
//!
//! What this module promises:
//! - keys it generates are token objects, private, sensitive, non-extractable and sign-only, and
//!   that is read back from the token and checked after generation ([`Hsm::generate_key`]);
//! - every signature it returns has been verified in software against the key's public key
//!   ([`Hsm::sign`]); a signature that does not verify is an error, never returned;
//! - a wrong PIN is reported once and never retried, not even by the background recovery;
//! - every call has a deadline ([`Options::call_timeout`]), kept by the pool whether or not its
//!   caller still waits: a call that runs longer than that marks the HSM unavailable, a call that
//!   waits in the queue longer than that fails without being started, and an HSM marked
//!   unavailable refuses calls at once.
//!
//! # Sessions, deadlines and faults
//!
//! ```text
//!   caller (any thread)                       worker threads, one per session
//!   ───────────────────                       ───────────────────────────────
//!   healthy? ──no──▶ Error::Down (at once)    loop: take a job from the queue
//!      │yes                                         (exit when the generation moved on;
//!   push job ──────────── queue ────────────▶        fail it, unstarted, if queued too long)
//!      │                                      write start + deadline in the worker's slot
//!      │                                      run it on its own Session, clear the slot
//!   wait for the reply ◀───── reply channel ── send the result (dropped if the
//!      │ (or leave: nothing depends on it)         generation moved on meanwhile)
//!      ▼ generation moved on: Error::Timeout if as old as the deadline, else Error::Down
//!
//!   watchdog thread (one per pool), every 20 ms at most:
//!     a slot past its deadline ──▶ mark unavailable (Error::Timeout)
//!     a queued job past its own deadline ──▶ its caller gets Error::Busy; never started
//! ```
//!
//! Each logged-in `Session` is owned by one worker thread for its whole life (a cryptoki
//! `Session` is `Send` but not `Sync`), and callers hand it work over a queue: a thread that blocks
//! on the reply, or an async task that awaits it ([`Hsm::sign_async`], the signing service's
//! path, so that no thread is handed the request just to wait). The pool, not the caller, keeps
//! the deadlines: a caller may give up and leave (a client that disconnects drops its request's
//! task) and its call is still timed. Each worker has a slot where it writes when its call's
//! deadline passes ([`Options::call_timeout`] after it started the call) and clears it when the
//! call returns: a few atomic stores per call, no lock and no wake-up. The pool's watchdog thread
//! reads the slots on a timer (a quarter of the call deadline, at most 20 ms); a call still in
//! its slot past its deadline marks the HSM unavailable, and the stuck worker is left behind: it
//! holds nothing anyone else needs (no lock, no other session), and whatever it returns later is
//! discarded, because the *generation* counter has moved on. A caller whose call belongs to a
//! generation that has ended is answered at once (it looks every 20 ms while it waits), without
//! waiting for its own deadline.
//!
//! A queued job has a deadline too, the same length counted from when it was queued: the
//! watchdog takes a job out of the queue once that has passed and its caller gets
//! [`Error::Busy`] at once, and a worker that takes a job whose deadline has passed fails it the
//! same way instead of starting it. A job that waited too long says the pool is overloaded or its
//! sessions are held by long calls (a key generation), not that the HSM is gone: it does not mark
//! the HSM unavailable. When the HSM hangs, the calls it holds reach their deadlines first, since
//! they started before anything queued behind them.
//!
//! PKCS#11 return values are classified ([`classify`], PKCS#11 v2.40 section 5.1): device,
//! token, session, login and library failures mean "HSM unavailable"; a refused or locked PIN is
//! fatal; the rest (bad arguments, unsupported mechanisms) are errors of that one call. On the
//! first "unavailable" error or timeout the HSM is marked unavailable once (one line on stderr,
//! not one per request): the generation moves on, the queue is emptied (each waiting caller gets
//! [`Error::Down`]), new calls fail at once, and a background thread recovers:
//!
//! 1. wait 50 ms, doubling to at most 1 s between attempts, while the old workers finish;
//! 2. find the token again (same label or serial, and the same serial as before), open the
//!    sessions and log in, on the current library context;
//! 3. if that fails, `C_Finalize` and `C_Initialize` the library and try step 2 again, once no
//!    old call is inside the library any more (PKCS#11 v2.40 5.4.2: C_Finalize must not run
//!    while other threads are in calls). An old call still there after the call deadline is
//!    taken as lost and no longer waited for (p11-kit-client leaves such a call behind now and
//!    then when its server dies); sessions of an earlier initialisation are then forgotten, not
//!    closed, since their handle numbers may name new sessions;
//! 4. find every key used so far again (object handles do not survive a new session or a new
//!    library initialisation), check each one's public key is still the one it had when it was
//!    first found (for issuers, the public key of the issuer certificate, checked by
//!    `Issuer::load`), and only then start new workers and report healthy.
//!
//! Each attempt has the call deadline too; an attempt that does not return is abandoned like a
//! stuck call and no new attempt starts until it has returned. A refused or locked PIN ends the
//! recovery for good (state "failed", a loud line on stderr) so the token never locks itself out.
//!
//! # Layout
//!
//! The public types are re-exported here; the files, in the order a call meets them:
//!
//! - `error`: [`Error`] and [`classify`], the one place a PKCS#11 return value becomes an error;
//! - `context`: the process-wide library context (`C_Initialize`, `C_Finalize`);
//! - `token`: [`TokenSelector`], [`TokenDescription`], finding the token and logging in;
//! - `uri`: [`KeyUri`], RFC 7512 PKCS#11 URIs, and [`UriError`];
//! - `pool`: [`Hsm`], [`Options`] and [`Status`]: the workers, their sessions, the queue and the
//!   HSM's health;
//! - `watchdog`: the thread that keeps the deadlines;
//! - `recover`: the recovery thread (steps 1-4 above);
//! - `key`: [`KeyHandle`] and [`KeyAttributes`]: finding a key by URI, checking it, reading its
//!   public key, and the keys recovery finds again;
//! - `keygen`: [`Hsm::generate_key`] and [`GeneratedKey`];
//! - `sign`: [`Hsm::sign`]: hash, sign the digest on the token, verify;
//! - `raw`: the token's raw signing rate, for the benchmark only.

mod error;

mod context;
mod token;
mod uri;

mod pool;
mod recover;
mod watchdog;

mod key;
mod keygen;
mod sign;

pub mod raw;

pub use self::error::{Class, Error, classify};
pub use self::key::{KeyAttributes, KeyHandle};
pub use self::keygen::GeneratedKey;
pub use self::pool::{Hsm, Options, Status};
pub use self::token::{TokenDescription, TokenSelector};
pub use self::uri::{KeyUri, UriError};
