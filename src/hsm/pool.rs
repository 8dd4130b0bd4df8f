//! The session pool: one worker thread per logged-in session, a queue of calls with deadlines,
//! and the HSM's health (see "Sessions, deadlines and faults" in the [`crate::hsm`] doc).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cryptoki::object::{Attribute, AttributeType};
use cryptoki::session::{Session, SessionState};
use secrecy::SecretString;
use serde::Serialize;

use super::context::{context, context_epoch, lock};
use super::error::{Error, ck};
use super::key::Registered;
use super::recover::recover;
use super::token::{TokenDescription, TokenSelector, connect};
use super::watchdog::{InFlight, op_index, watchdog};
use crate::secret::Pin;

/// Deadlines and recovery behaviour of an [`Hsm`].
#[derive(Clone, Debug)]
pub struct Options {
    /// A call's deadline (default 2 s): a call that runs longer than this once a worker started
    /// it marks the HSM unavailable, whether or not its caller still waits, and a call that waits
    /// longer than this in the queue fails without being started.
    pub call_timeout: Duration,
    /// The deadline for `C_GenerateKeyPair`, in the queue and running (default 300 s: RSA-4096
    /// generation varies widely).
    pub keygen_timeout: Duration,
    /// Recover in the background after a fault (default true; ceremonies turn it off and stop).
    pub recover: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            call_timeout: Duration::from_secs(2),
            keygen_timeout: Duration::from_secs(300),
            recover: true,
        }
    }
}

/// The HSM's health, as [`Hsm::status`] reports it (for `/v1/health` and `/metrics`).
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// "healthy", "unavailable" (recovering) or "failed" (recovery stopped).
    pub state: &'static str,
    /// Whether calls are accepted.
    pub healthy: bool,
    /// The error that made it unavailable or failed.
    pub error: Option<String>,
    /// How long it has been unavailable, in milliseconds.
    pub unavailable_ms: Option<u64>,
    /// Outages so far.
    pub outages: u64,
    /// Recoveries so far.
    pub recoveries: u64,
    /// The last outage's length, from the first error to healthy again, in milliseconds.
    pub last_outage_ms: Option<u64>,
    /// How often recovery finalised and initialised the library again.
    pub reinitialisations: u64,
    /// Logins the token refused (a refused PIN is never retried, so this stays at most 1).
    pub pin_refusals: u64,
    /// Recovery attempts in the current (or last) outage.
    pub recovery_attempts: u64,
    /// Threads of earlier generations still inside a PKCS#11 call (stuck calls).
    pub calls_in_flight_abandoned: usize,
}

pub(super) enum Health {
    Healthy,
    Unavailable { since: Instant, error: String },
    Failed { error: String },
}

pub(super) struct State {
    pub(super) health: Health,
    pub(super) outages: u64,
    pub(super) recoveries: u64,
    pub(super) last_outage: Option<Duration>,
    pub(super) reinitialisations: u64,
    /// The worker threads of the current generation.
    pub(super) workers: Vec<JoinHandle<()>>,
    /// Their slots, which the watchdog reads.
    pub(super) slots: Vec<Arc<InFlight>>,
    /// Threads of earlier generations that may still be inside a PKCS#11 call, and since when.
    pub(super) stale: Vec<(JoinHandle<()>, Instant)>,
    pub(super) recovering: bool,
}

type Observer = Box<dyn Fn(bool) + Send + Sync>;

/// A job's call and reply: run on a worker's session, or told why it will not run.
type Run = Box<dyn for<'a, 'b> FnOnce(Result<&'a Ops<'b>, Error>) + Send>;

/// One call for a worker: it sends its own result, or the error it is given instead of running.
pub(super) struct Job {
    pub(super) run: Run,
    /// The call, for errors.
    pub(super) op: &'static str,
    /// Its deadline, counted from when it was queued and again from when a worker starts it.
    pub(super) timeout: Duration,
    /// When it must have been started ([`Inner::now_ms`] scale); a worker never starts it later.
    pub(super) start_by: u64,
}

impl Job {
    /// Answers the caller with `Error::Busy` instead of running the call.
    pub(super) fn expire(self) {
        let e = Error::Busy {
            op: self.op,
            after: self.timeout,
        };
        (self.run)(Err(e));
    }
}

/// A queued call, as its caller sees it while waiting.
pub(super) struct Pending {
    /// The generation it was queued in.
    pub(super) generation: u64,
    /// Its job's `start_by`: once that has passed, the call is at least its deadline old.
    pub(super) start_by: u64,
}

pub(super) struct Inner {
    pub(super) module: PathBuf,
    pub(super) selector: TokenSelector,
    /// Kept for logging in again after a reconnection; zeroed on drop (secrecy).
    pub(super) pin: SecretString,
    pub(super) size: usize,
    pub(super) options: Options,
    pub(super) description: TokenDescription,
    pub(super) epoch: Instant,
    /// Moves on when the HSM is marked unavailable and again when it is back; workers and
    /// results of an earlier generation are discarded.
    pub(super) generation: AtomicU64,
    pub(super) healthy: AtomicBool,
    pub(super) shutdown: AtomicBool,
    pub(super) pin_refusals: AtomicU64,
    pub(super) recovery_attempts: AtomicU64,
    pub(super) queue: Mutex<Queue>,
    pub(super) work: Condvar,
    pub(super) state: Mutex<State>,
    pub(super) keys: Mutex<Vec<Registered>>,
    pub(super) observer: Mutex<Option<Observer>>,
    /// Asks the supervisor thread to recover (see [`Inner::mark_unavailable`]).
    pub(super) supervisor: Mutex<mpsc::Sender<()>>,
}

/// The jobs no worker has taken yet, and how many workers wait on [`Inner::work`] for one: kept
/// under one lock, so that `submit` wakes a worker only when one waits (a worker that is not
/// waiting looks at the jobs before it waits, so no job is left behind).
#[derive(Default)]
pub(super) struct Queue {
    pub(super) jobs: VecDeque<Job>,
    pub(super) waiting: usize,
}

/// How often a waiting caller looks whether its generation has ended, and the longest time
/// between two scans of the watchdog.
const TICK: Duration = Duration::from_millis(20);

/// Logged-in sessions on one token, each owned by its own worker thread (see the module doc).
/// Calls are queued to the workers and have deadlines; faults make the HSM unavailable and a
/// background thread brings it back.
pub struct Hsm {
    pub(super) inner: Arc<Inner>,
    /// The watchdog thread: ends when `inner.shutdown` is set and it is unparked.
    pub(super) watchdog: Option<JoinHandle<()>>,
}

/// One worker's session and the token it is on: the operations themselves.
pub(super) struct Ops<'a> {
    pub(super) session: &'a Session,
    pub(super) description: &'a TokenDescription,
    pub(super) inner: &'a Inner,
    /// The worker's generation (0 while recovery checks the keys on new sessions).
    pub(super) generation: u64,
}

pub(super) fn spawn(
    name: String,
    f: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>, Error> {
    std::thread::Builder::new()
        .name(name)
        .spawn(f)
        .map_err(|e| Error::Unavailable {
            op: "starting a thread".to_string(),
            rv: e.to_string(),
        })
}

fn worker(inner: Arc<Inner>, generation: u64, epoch: u64, session: Session, slot: Arc<InFlight>) {
    loop {
        let job = {
            let mut queue = lock(&inner.queue);
            loop {
                if inner.generation.load(Ordering::SeqCst) != generation {
                    drop(queue);
                    if context_epoch() == Some(epoch) {
                        // Dropping the session closes it (C_CloseSession).
                        drop(session);
                    } else {
                        // The library was initialised again: the old handle may now name a
                        // new session, so it is not closed (it died with the old connection).
                        std::mem::forget(session);
                    }
                    return;
                }
                if let Some(job) = queue.jobs.pop_front() {
                    break job;
                }
                queue.waiting += 1;
                queue = inner
                    .work
                    .wait(queue)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                queue.waiting -= 1;
            }
        };
        let now = inner.now_ms();
        if now >= job.start_by {
            // Queued past its deadline: never started (the watchdog had not got to it yet).
            job.expire();
            continue;
        }
        slot.op.store(op_index(job.op), Ordering::Relaxed);
        slot.timeout_ms
            .store(duration_ms(job.timeout), Ordering::Relaxed);
        slot.deadline.store(
            now.saturating_add(duration_ms(job.timeout)),
            Ordering::Release,
        );
        let ops = Ops {
            session: &session,
            description: &inner.description,
            inner: &inner,
            generation,
        };
        // A panic in one call drops its reply sender (the caller gets an error); the worker stays.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (job.run)(Ok(&ops))));
        slot.deadline.store(0, Ordering::Release);
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A generation's worker threads and their slots.
type Workers = (Vec<JoinHandle<()>>, Vec<Arc<InFlight>>);

pub(super) fn start_workers(
    inner: &Arc<Inner>,
    generation: u64,
    epoch: u64,
    sessions: Vec<Session>,
) -> Result<Workers, Error> {
    let mut workers = Vec::with_capacity(sessions.len());
    let mut slots = Vec::with_capacity(sessions.len());
    for (i, session) in sessions.into_iter().enumerate() {
        let inner = inner.clone();
        let slot = Arc::new(InFlight::default());
        slots.push(slot.clone());
        workers.push(spawn(format!("hsm-{generation}-{i}"), move || {
            worker(inner, generation, epoch, session, slot)
        })?);
    }
    Ok((workers, slots))
}

impl Inner {
    /// How long a caller waits for `pending`'s reply before looking again. Fails at once when
    /// the generation has ended (the watchdog or another call declared an outage: this result
    /// would be discarded anyway): with [`Error::Timeout`] if the call is as old as its deadline
    /// (it is the call that hung, or as late as it), else with the outage's error. The deadlines
    /// themselves are the watchdog's ([`Inner::watch`]).
    fn next_wait(
        &self,
        pending: &Pending,
        op: &'static str,
        timeout: Duration,
    ) -> Result<Duration, Error> {
        if self.generation.load(Ordering::SeqCst) != pending.generation {
            if self.now_ms() >= pending.start_by {
                return Err(Error::Timeout { op, after: timeout });
            }
            return Err(self.down_error());
        }
        Ok(TICK)
    }

    /// A worker's reply, as its caller returns it: an "unavailable" error marks the HSM so (not
    /// [`Error::Busy`]: a call that never reached the HSM says nothing about it).
    fn finish<R>(self: &Arc<Self>, result: Result<R, Error>) -> Result<R, Error> {
        if let Err(e) = &result {
            if e.is_unavailable() && !matches!(e, Error::Busy { .. }) {
                self.mark_unavailable(e);
            }
        }
        result
    }

    pub(super) fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    /// The error for a call refused because the HSM is not healthy.
    pub(super) fn down_error(&self) -> Error {
        match &lock(&self.state).health {
            Health::Unavailable { since, error } => Error::Down {
                first: error.clone(),
                since_ms: since.elapsed().as_millis(),
            },
            Health::Failed { error } => Error::Failed(error.clone()),
            Health::Healthy => Error::Down {
                first: "the call was abandoned".to_string(),
                since_ms: 0,
            },
        }
    }

    pub(super) fn notify(&self, up: bool) {
        if let Some(f) = lock(&self.observer).as_ref() {
            f(up);
        }
    }

    /// Marks the HSM unavailable (once per outage), fails every queued call and starts the
    /// recovery thread.
    pub(super) fn mark_unavailable(self: &Arc<Self>, error: &Error) {
        let mut st = lock(&self.state);
        if !matches!(st.health, Health::Healthy) || self.shutdown.load(Ordering::SeqCst) {
            return;
        }
        st.health = Health::Unavailable {
            since: Instant::now(),
            error: error.to_string(),
        };
        st.outages += 1;
        self.healthy.store(false, Ordering::SeqCst);
        let _ = self.generation.fetch_add(1, Ordering::SeqCst);
        let old = std::mem::take(&mut st.workers);
        // The stuck calls are the outage's now; the watchdog looks at the next generation's.
        st.slots.clear();
        let now = Instant::now();
        st.stale.extend(old.into_iter().map(|h| (h, now)));
        // Dropping the queued jobs drops their reply senders: each waiting caller gets Down.
        lock(&self.queue).jobs.clear();
        self.work.notify_all();
        eprintln!(
            "strongroom: HSM outage: {error}; requests that need a signature get 503 hsm.unavailable{}",
            if self.options.recover {
                " while it recovers in the background"
            } else {
                ""
            }
        );
        self.notify(false);
        if self.options.recover && !st.recovering {
            // The supervisor thread runs the recovery: it was started with the pool, so the
            // recovery and the workers it starts have the scheduling priority the pool was
            // opened with, not that of whichever thread found the fault (the service runs its
            // request threads at a lower priority: `service.request-threads-nice`).
            match lock(&self.supervisor).send(()) {
                Ok(()) => st.recovering = true,
                Err(_) => {
                    eprintln!("strongroom: cannot start HSM recovery: the supervisor is gone")
                }
            }
        }
    }
}

impl Hsm {
    /// Opens one read-write session on the token chosen by `selector` and logs the user in. A
    /// wrong PIN gives [`Error::WrongPin`] after one attempt. No background recovery (for
    /// ceremonies: a fault stops the ceremony), and a call deadline of 30 s: a ceremony waits
    /// on its operator anyway, and some hardware HSMs take seconds for one RSA-4096 signature.
    pub fn open(module: &Path, selector: &TokenSelector, pin: &Pin) -> Result<Hsm, Error> {
        let options = Options {
            recover: false,
            call_timeout: Duration::from_secs(30),
            ..Options::default()
        };
        Hsm::open_with(module, selector, pin, 1, options)
    }

    /// Opens `size` sessions (at least one) with the default [`Options`].
    pub fn open_pool(
        module: &Path,
        selector: &TokenSelector,
        pin: &Pin,
        size: usize,
    ) -> Result<Hsm, Error> {
        Hsm::open_with(module, selector, pin, size, Options::default())
    }

    /// Opens `size` sessions (at least one) on the token, logs the user in once and starts one
    /// worker thread per session. Opening has the call deadline too. The PIN is kept (zeroed on
    /// drop) to log in again after a reconnection.
    pub fn open_with(
        module: &Path,
        selector: &TokenSelector,
        pin: &Pin,
        size: usize,
        options: Options,
    ) -> Result<Hsm, Error> {
        let size = size.max(1);
        let pin = pin.to_auth_pin();
        let (tx, rx) = mpsc::channel();
        let (m, s, p) = (module.to_path_buf(), selector.clone(), pin.clone());
        let _opener = spawn("hsm-open".to_string(), move || {
            let opened = context(&m).and_then(|(ctx, epoch)| {
                let lib = ctx.get_library_info().map_err(ck("C_GetInfo"))?;
                Ok((lib, connect(&ctx, &s, &p, size)?, epoch))
            });
            let _ = tx.send(opened);
        })?;
        let (lib, (info, sessions), epoch) = match rx.recv_timeout(options.call_timeout) {
            Ok(opened) => opened?,
            Err(_) => {
                return Err(Error::Timeout {
                    op: "opening the sessions",
                    after: options.call_timeout,
                });
            }
        };
        let description = TokenDescription {
            module: module.to_path_buf(),
            library_description: lib.library_description().trim_end().to_string(),
            library_manufacturer: lib.manufacturer_id().trim_end().to_string(),
            library_version: lib.library_version().to_string(),
            cryptoki_version: lib.cryptoki_version().to_string(),
            label: info.label().trim_end().to_string(),
            serial: info.serial_number().trim_end().to_string(),
            manufacturer: info.manufacturer_id().trim_end().to_string(),
            model: info.model().trim_end().to_string(),
        };
        let (supervisor, requests) = mpsc::channel::<()>();
        let inner = Arc::new(Inner {
            module: module.to_path_buf(),
            selector: selector.clone(),
            pin,
            size,
            options,
            description,
            epoch: Instant::now(),
            generation: AtomicU64::new(1),
            healthy: AtomicBool::new(true),
            shutdown: AtomicBool::new(false),
            pin_refusals: AtomicU64::new(0),
            recovery_attempts: AtomicU64::new(0),
            queue: Mutex::new(Queue::default()),
            work: Condvar::new(),
            state: Mutex::new(State {
                health: Health::Healthy,
                outages: 0,
                recoveries: 0,
                last_outage: None,
                reinitialisations: 0,
                workers: Vec::new(),
                slots: Vec::new(),
                stale: Vec::new(),
                recovering: false,
            }),
            keys: Mutex::new(Vec::new()),
            observer: Mutex::new(None),
            supervisor: Mutex::new(supervisor),
        });
        let weak = Arc::downgrade(&inner);
        let _detached = spawn("hsm-supervisor".to_string(), move || {
            // Ends when the pool is gone (its sender with it).
            while requests.recv().is_ok() {
                match weak.upgrade() {
                    Some(inner) => recover(inner),
                    None => return,
                }
            }
        })?;
        let period = (inner.options.call_timeout / 4).clamp(Duration::from_millis(1), TICK);
        let weak = Arc::downgrade(&inner);
        let watchdog = spawn("hsm-watchdog".to_string(), move || watchdog(weak, period))?;
        let hsm = Hsm {
            inner,
            watchdog: Some(watchdog),
        };
        let (workers, slots) = start_workers(&hsm.inner, 1, epoch, sessions)?;
        let mut st = lock(&hsm.inner.state);
        st.workers = workers;
        st.slots = slots;
        drop(st);
        Ok(hsm)
    }

    /// The library and token the sessions are on.
    pub fn description(&self) -> &TokenDescription {
        &self.inner.description
    }

    /// The number of sessions (and worker threads) in the pool.
    pub fn pool_size(&self) -> usize {
        self.inner.size
    }

    /// The deadlines in use.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// Calls `f(true)` when the HSM becomes healthy again and `f(false)` when it becomes
    /// unavailable (for metrics). Replaces an earlier observer.
    pub fn on_health_change(&self, f: impl Fn(bool) + Send + Sync + 'static) {
        *lock(&self.inner.observer) = Some(Box::new(f));
    }

    /// Health, outages and recoveries so far.
    pub fn status(&self) -> Status {
        let st = lock(&self.inner.state);
        let (state, error, unavailable_ms) = match &st.health {
            Health::Healthy => ("healthy", None, None),
            Health::Unavailable { since, error } => (
                "unavailable",
                Some(error.clone()),
                Some(u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)),
            ),
            Health::Failed { error } => ("failed", Some(error.clone()), None),
        };
        Status {
            state,
            healthy: matches!(st.health, Health::Healthy),
            error,
            unavailable_ms,
            outages: st.outages,
            recoveries: st.recoveries,
            last_outage_ms: st
                .last_outage
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            reinitialisations: st.reinitialisations,
            pin_refusals: self.inner.pin_refusals.load(Ordering::SeqCst),
            recovery_attempts: self.inner.recovery_attempts.load(Ordering::SeqCst),
            calls_in_flight_abandoned: st.stale.iter().filter(|(h, _)| !h.is_finished()).count(),
        }
    }

    /// Fails at once with [`Error::Down`] (or [`Error::Failed`]) while the HSM is unavailable.
    pub fn available(&self) -> Result<(), Error> {
        if self.inner.healthy.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(self.inner.down_error())
        }
    }

    /// Checks the HSM answers: a session is still logged in and every key found so far is still
    /// on the token under its handle. A fault marks the HSM unavailable, like any call's.
    pub fn probe(&self) -> Result<(), Error> {
        let keys = lock(&self.inner.keys).len();
        self.call(
            "C_GetSessionInfo",
            self.inner.options.call_timeout,
            probe_job(keys),
        )
    }

    /// [`Hsm::probe`] for async callers (`/v1/health`). A caller that stops waiting (a health
    /// check with a bound of its own) leaves the probe to the pool, which still holds it to the
    /// call deadline.
    pub async fn probe_async(&self) -> Result<(), Error> {
        let keys = lock(&self.inner.keys).len();
        self.call_async(
            "C_GetSessionInfo",
            self.inner.options.call_timeout,
            probe_job(keys),
        )
        .await
    }

    /// Runs `f` on a worker's session, with `timeout` from the moment a worker starts it (see the
    /// module doc). Fails at once while the HSM is unavailable. Blocks the calling thread.
    pub(super) fn call<R: Send + 'static>(
        &self,
        op: &'static str,
        timeout: Duration,
        f: impl FnOnce(&Ops<'_>) -> Result<R, Error> + Send + 'static,
    ) -> Result<R, Error> {
        let (tx, rx) = mpsc::sync_channel(1);
        let pending = self.submit(op, timeout, f, move |result| {
            let _ = tx.send(result);
        })?;
        loop {
            match rx.recv_timeout(self.inner.next_wait(&pending, op, timeout)?) {
                Ok(result) => return self.inner.finish(result),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(self.inner.down_error()),
            }
        }
    }

    /// [`Hsm::call`] for async callers: the task waits for the worker's reply without holding a
    /// thread, under the same deadline. The session stays with its worker thread; nothing is held
    /// across the await but the reply channel.
    pub(super) async fn call_async<R: Send + 'static>(
        &self,
        op: &'static str,
        timeout: Duration,
        f: impl FnOnce(&Ops<'_>) -> Result<R, Error> + Send + 'static,
    ) -> Result<R, Error> {
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let pending = self.submit(op, timeout, f, move |result| {
            let _ = tx.send(result);
        })?;
        loop {
            let wait = self.inner.next_wait(&pending, op, timeout)?;
            match tokio::time::timeout(wait, &mut rx).await {
                Ok(Ok(result)) => return self.inner.finish(result),
                Ok(Err(_closed)) => return Err(self.inner.down_error()),
                Err(_elapsed) => {}
            }
        }
    }

    /// Queues `f` for a worker, with `timeout` as its deadline in the queue and once started;
    /// the worker hands its result to `reply`, unless the generation has moved on meanwhile (a
    /// late result of an abandoned generation is discarded, never used). A job whose deadline
    /// passes in the queue gets [`Error::Busy`] instead.
    fn submit<R: Send + 'static>(
        &self,
        op: &'static str,
        timeout: Duration,
        f: impl FnOnce(&Ops<'_>) -> Result<R, Error> + Send + 'static,
        reply: impl FnOnce(Result<R, Error>) + Send + 'static,
    ) -> Result<Pending, Error> {
        let inner = &self.inner;
        let start_by = inner.now_ms().saturating_add(duration_ms(timeout));
        let job = Job {
            op,
            timeout,
            start_by,
            run: Box::new(move |ops: Result<&Ops<'_>, Error>| match ops {
                Ok(ops) => {
                    let result = f(ops);
                    if ops.inner.generation.load(Ordering::SeqCst) == ops.generation {
                        reply(result);
                    }
                }
                Err(e) => reply(Err(e)),
            }),
        };
        let (generation, wake) = {
            let mut queue = lock(&inner.queue);
            if !inner.healthy.load(Ordering::SeqCst) {
                drop(queue);
                return Err(inner.down_error());
            }
            queue.jobs.push_back(job);
            (inner.generation.load(Ordering::SeqCst), queue.waiting > 0)
        };
        // Waking costs a system call; a worker that is not waiting finds the job itself.
        if wake {
            inner.work.notify_one();
        }
        Ok(Pending {
            generation,
            start_by,
        })
    }

    /// `n` bytes from the token's random number generator (C_GenerateRandom).
    pub fn random(&self, n: usize) -> Result<Vec<u8>, Error> {
        self.call(
            "C_GenerateRandom",
            self.inner.options.call_timeout,
            move |o| o.random(n),
        )
    }

    /// Whether any object (of any class) on the token has this label.
    pub fn label_in_use(&self, label: &str) -> Result<bool, Error> {
        let label = label.to_string();
        self.call("C_FindObjects", self.inner.options.call_timeout, move |o| {
            o.label_in_use(&label)
        })
    }
}

impl Drop for Hsm {
    /// Stops the workers, the watchdog and the recovery thread; waits (up to the call deadline)
    /// for the workers to close their sessions.
    fn drop(&mut self) {
        let inner = &self.inner;
        inner.shutdown.store(true, Ordering::SeqCst);
        if let Some(watchdog) = self.watchdog.take() {
            // It never waits on the HSM: it ends within one scan of being woken.
            watchdog.thread().unpark();
            let _ = watchdog.join();
        }
        inner.healthy.store(false, Ordering::SeqCst);
        let _ = inner.generation.fetch_add(1, Ordering::SeqCst);
        lock(&inner.queue).jobs.clear();
        inner.work.notify_all();
        let workers = std::mem::take(&mut lock(&inner.state).workers);
        let deadline = Instant::now() + inner.options.call_timeout;
        while Instant::now() < deadline && !workers.iter().all(|w| w.is_finished()) {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// The worker's half of [`Hsm::probe`]: the session is logged in and the first `keys` registered
/// keys are still on the token under their handles.
fn probe_job(keys: usize) -> impl FnOnce(&Ops<'_>) -> Result<(), Error> + Send + 'static {
    move |o: &Ops<'_>| {
        let info = o
            .session
            .get_session_info()
            .map_err(ck("C_GetSessionInfo"))?;
        if !matches!(
            info.session_state(),
            SessionState::RwUser | SessionState::RoUser
        ) {
            return Err(Error::Unavailable {
                op: "C_GetSessionInfo".to_string(),
                rv: format!("session state {:?}: not logged in", info.session_state()),
            });
        }
        for i in 0..keys {
            let handle = o.registered_handle(i)?;
            let _ = o
                .session
                .get_attributes(handle, &[AttributeType::Id])
                .map_err(ck("C_GetAttributeValue"))?;
        }
        Ok(())
    }
}

impl Ops<'_> {
    /// `n` bytes from the token's random number generator (C_GenerateRandom).
    pub(super) fn random(&self, n: usize) -> Result<Vec<u8>, Error> {
        let mut buf = vec![0u8; n];
        self.session
            .generate_random_slice(&mut buf)
            .map_err(ck("C_GenerateRandom"))?;
        Ok(buf)
    }

    /// Whether any object (of any class) on the token has this label.
    pub(super) fn label_in_use(&self, label: &str) -> Result<bool, Error> {
        let found = self
            .session
            .find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
            .map_err(ck("C_FindObjects"))?;
        Ok(!found.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alg::KeyType;

    /// Runs this module's test `name` in a child process of the test binary, with its own
    /// SoftHSM store: SoftHSM reads `SOFTHSM2_CONF` once, at `C_Initialize`, and a process has
    /// one library context. Returns true in the child (run the body), false in the parent once
    /// the child passed. Without SoftHSM it prints `SKIPPED` and returns false, or fails under
    /// `CI=true`.
    fn in_own_softhsm(name: &str) -> bool {
        const CHILD: &str = "STRONGROOM_HSM_UNIT_CHILD";
        if std::env::var(CHILD).as_deref() == Ok(name) {
            return true;
        }
        if crate::demo::softhsm_module().is_none() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "SoftHSM is not installed (softhsm-setup/install)"
            );
            println!("SKIPPED: SoftHSM is not installed (softhsm-setup/install)");
            return false;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tokens")).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.path().join("tokens").display()
            ),
        )
        .unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                &format!("hsm::pool::tests::{name}"),
                "--nocapture",
            ])
            .env(CHILD, name)
            .env("SOFTHSM2_CONF", &conf)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{name}: the child test did not finish within 120 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        println!("{text}");
        assert!(out.status.success(), "{name} in its child process: {text}");
        assert!(text.contains("1 passed"), "{name} did not run: {text}");
        false
    }

    /// A pool of one session on a new token `label`, no recovery, call deadline 2 s.
    fn one_session(label: &str) -> Hsm {
        let module = crate::demo::softhsm_module().unwrap();
        let pin = |p: &str| Pin::new(zeroize::Zeroizing::new(p.to_string())).unwrap();
        let (so, user) = (pin("so-8d61e0"), pin("user-4b2c97"));
        Hsm::init_token(&module, label, &so, &user).unwrap();
        let options = Options {
            call_timeout: Duration::from_secs(2),
            keygen_timeout: Duration::from_secs(120),
            recover: false,
        };
        let selector = TokenSelector::Label(label.to_string());
        Hsm::open_with(&module, &selector, &user, 1, options).unwrap()
    }

    /// RSA-4096 key generation: a call that takes long (about 1 s on SoftHSM, never under
    /// 100 ms), without hanging anything.
    fn slow_keygen(label: &'static str) -> impl FnOnce(&Ops<'_>) -> Result<bool, Error> + Send {
        move |o: &Ops<'_>| o.generate_key(label, KeyType::Rsa4096).map(|_| true)
    }

    /// Waits until no call abandoned by an outage is still inside the library: a test process
    /// that exits while a thread is still in C_GenerateKeyPair can crash in the library's
    /// teardown, after the test itself passed.
    fn settle(hsm: &Hsm) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while hsm.status().calls_in_flight_abandoned > 0 {
            assert!(
                Instant::now() < deadline,
                "an abandoned call still runs after 60 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_call_past_its_deadline_marks_the_hsm_unavailable_with_nobody_waiting() {
        if !in_own_softhsm("a_call_past_its_deadline_marks_the_hsm_unavailable_with_nobody_waiting")
        {
            return;
        }
        let hsm = one_session("deadlines");
        hsm.random(8).unwrap();
        let deadline = Duration::from_millis(50);
        let submitted = Instant::now();
        // Queued with a 50 ms deadline, and nobody waits for the reply.
        let _pending = hsm
            .submit("C_GenerateKeyPair", deadline, slow_keygen("slow"), |_| {})
            .unwrap();
        let status = loop {
            let status = hsm.status();
            if status.state != "healthy" {
                break status;
            }
            assert!(
                submitted.elapsed() < Duration::from_secs(5),
                "still healthy 5 s after a 50 ms deadline"
            );
            std::thread::sleep(Duration::from_millis(2));
        };
        let seen = submitted.elapsed();
        println!(
            "outage declared {} ms after a 50 ms call was queued",
            seen.as_millis()
        );
        assert_eq!(status.state, "unavailable");
        let error = status.error.unwrap_or_default();
        assert!(
            error.contains("C_GenerateKeyPair did not return within 50 ms"),
            "{error}"
        );
        // The watchdog scans every 20 ms at most; the rest is slack for a loaded machine.
        assert!(seen < deadline + Duration::from_millis(500), "{seen:?}");
        // Refused at once now.
        let t = Instant::now();
        let refused = hsm.random(8).unwrap_err();
        assert!(matches!(refused, Error::Down { .. }), "{refused}");
        assert!(t.elapsed() < Duration::from_millis(100));
        settle(&hsm);

        // A caller that does wait for its call gets Error::Timeout once the outage is declared.
        let hsm = one_session("deadlines-waited");
        let t = Instant::now();
        let e = hsm
            .call("C_GenerateKeyPair", deadline, slow_keygen("waited"))
            .unwrap_err();
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
        assert!(e.to_string().contains("did not return within 50 ms"), "{e}");
        assert!(t.elapsed() < deadline + Duration::from_millis(500));
        settle(&hsm);
    }

    #[test]
    fn a_queued_call_past_its_deadline_fails_at_once_and_is_never_started() {
        if !in_own_softhsm("a_queued_call_past_its_deadline_fails_at_once_and_is_never_started") {
            return;
        }
        let hsm = one_session("deadlines");
        // The only session is busy with a long call (its own deadline is long).
        let (done_tx, done) = mpsc::channel();
        let _busy = hsm
            .submit(
                "C_GenerateKeyPair",
                Duration::from_secs(120),
                slow_keygen("busy"),
                move |r| {
                    let _ = done_tx.send(r.is_ok());
                },
            )
            .unwrap();
        std::thread::sleep(Duration::from_millis(10));
        let ran = Arc::new(AtomicBool::new(false));
        let r = ran.clone();
        let deadline = Duration::from_millis(100);
        let t = Instant::now();
        let queued = hsm.call("C_GenerateRandom", deadline, move |o| {
            r.store(true, Ordering::SeqCst);
            o.random(8)
        });
        let waited = t.elapsed();
        println!(
            "a queued call with a 100 ms deadline failed after {} ms",
            waited.as_millis()
        );
        let e = queued.unwrap_err();
        assert!(matches!(e, Error::Busy { .. }), "{e}");
        assert!(
            e.to_string().contains("C_GenerateRandom waited 100 ms"),
            "{e}"
        );
        assert!(waited >= deadline && waited < deadline + Duration::from_millis(500));
        assert!(
            done.try_recv().is_err(),
            "the long call was still running when the queued one failed"
        );
        // Not an HSM fault: still healthy, and the long call completes.
        assert!(hsm.status().healthy);
        assert_eq!(done.recv_timeout(Duration::from_secs(60)), Ok(true));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!ran.load(Ordering::SeqCst), "the expired call was started");

        // A job whose deadline has passed when an idle worker takes it is not started either.
        let ran = Arc::new(AtomicBool::new(false));
        let r = ran.clone();
        let late = hsm.call("C_GenerateRandom", Duration::ZERO, move |o| {
            r.store(true, Ordering::SeqCst);
            o.random(8)
        });
        assert!(matches!(late, Err(Error::Busy { .. })), "{late:?}");
        assert!(!ran.load(Ordering::SeqCst), "the expired call was started");
        // And the pool goes on.
        assert_eq!(hsm.random(8).unwrap().len(), 8);
    }
}
