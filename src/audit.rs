//! The audit log: a durable, hash-chained record of everything the signing service signs or
//! refuses, committed to disk before the caller may act on it.
//!
//! # Data flow
//!
//! ```text
//!  handler ──Entry──▶ AuditLog::append ──channel──▶ writer thread (owns the SQLite connection)
//!                                                    │  drain up to 256 queued entries
//!                                                    │  BEGIN IMMEDIATE
//!                                                    │  for each: seq = head + 1,
//!                                                    │            hash = SHA-256(prev_hash || canonical bytes)
//!                                                    │            INSERT
//!                                                    │  COMMIT  (WAL, synchronous=FULL: fsynced)
//!  handler ◀──Recorded── reply (oneshot) ◀───────────┘  one reply per entry
//! ```
//!
//! [`Recorded`] can only be built by the writer, after the commit that holds the entry has
//! returned, so code that must return a `Recorded` (the service's handlers) cannot release a
//! certificate that is not durably on disk. `Recorded` owns the entry that was recorded, and the
//! bytes a handler releases are taken out of it ([`Recorded::into_der`]), so what leaves the service
//! is exactly what was hashed and stored. (A generic `Recorded<T>` carrying an arbitrary caller value
//! was considered and rejected: nothing would tie that value to the record.)
//!
//! # Group commit
//!
//! One thread owns the only writing connection. Concurrent [`AuditLog::append`] calls queue on a
//! channel; the writer takes everything queued (at most [`MAX_BATCH`]), writes it in one transaction,
//! commits once (one fsync) and then answers every caller. Under load, many records share one fsync;
//! [`AuditLog::commits`] counts the commits.
//!
//! A caller that will append soon can say so first ([`AuditLog::announce`]: the service does when
//! it sends a certificate to the HSM). With a commit delay ([`AuditLog::open_with_commit_delay`]),
//! a writer that has a batch waits, while any announced entry has not yet been queued, up to the
//! delay from when it took the batch's first entry, so that those entries share the batch's fsync
//! rather than each paying for one (as PostgreSQL's `commit_delay` does). A batch is never held back
//! when nothing is announced, so a lone request is committed at once.
//!
//! Checkpoints (copying the WAL into the database file) run on a thread of their own with its
//! own connection, woken by the writer after a commit that leaves 1000 or more frames in the WAL,
//! so that no commit waits for one; the writer checkpoints itself only if the WAL reaches 16,000
//! frames.
//!
//! # Store
//!
//! A SQLite database (WAL journal, `synchronous=FULL`, `STRICT` table), one row per record:
//!
//! ```sql
//! CREATE TABLE records (
//!     seq       INTEGER PRIMARY KEY,  -- 1, 2, 3, … without gaps
//!     time_ms   INTEGER NOT NULL,     -- milliseconds since the Unix epoch, UTC
//!     kind      TEXT    NOT NULL,     -- certificate | precertificate | refusal | crl | ocsp | event
//!     issuer    TEXT,                 -- the issuer's name, as the service names it
//!     serial    BLOB,                 -- serial number bytes (certificates and precertificates)
//!     der       BLOB,                 -- what was signed (certificates and precertificates)
//!     uid       INTEGER NOT NULL,     -- the caller, from the socket's peer credentials
//!     gid       INTEGER NOT NULL,
//!     code      TEXT,                 -- refusals: stable error code
//!     field     TEXT,                 -- refusals: the request field at fault
//!     message   TEXT,                 -- refusals: the human-readable reason
//!     summary   TEXT    NOT NULL,     -- JSON summary of the request, hashed exactly as stored
//!     prev_hash BLOB    NOT NULL CHECK (length(prev_hash) = 32),
//!     hash      BLOB    NOT NULL CHECK (length(hash) = 32),
//!     UNIQUE (issuer, serial, kind)
//! ) STRICT;
//! ```
//!
//! Serial numbers are unique per issuer *and kind*: a precertificate and the final certificate made
//! from it share a serial (RFC 6962 §3.1), so each may be recorded once, but never a second
//! certificate or a second precertificate with the same serial. Rows without a serial (refusals)
//! are not constrained (SQL `NULL`s are distinct).
//!
//! # Hash chain
//!
//! The bytes hashed for a record (its *canonical bytes*, version 1) are the ASCII tag
//! `strongroom-audit-record-v1` (26 bytes, no length prefix) followed by twelve fields, always all
//! twelve, always in this order:
//!
//! | # | field     | column    | value bytes                                      |
//! |---|-----------|-----------|--------------------------------------------------|
//! | 1 | seq       | `seq`     | u64, 8 bytes big-endian                          |
//! | 2 | time      | `time_ms` | i64 milliseconds since the Unix epoch (UTC), 8 bytes big-endian two's complement |
//! | 3 | kind      | `kind`    | UTF-8 (`certificate`, `precertificate`, `refusal`, …) |
//! | 4 | issuer    | `issuer`  | UTF-8, or absent                                 |
//! | 5 | serial    | `serial`  | the serial number's bytes as stored, or absent   |
//! | 6 | der       | `der`     | the DER as stored, or absent                     |
//! | 7 | uid       | `uid`     | u32, 4 bytes big-endian                          |
//! | 8 | gid       | `gid`     | u32, 4 bytes big-endian                          |
//! | 9 | code      | `code`    | UTF-8, or absent                                 |
//! |10 | field     | `field`   | UTF-8, or absent                                 |
//! |11 | message   | `message` | UTF-8, or absent                                 |
//! |12 | summary   | `summary` | the JSON text exactly as stored (never re-serialised) |
//!
//! Each field is written as one marker byte, `0x00` for absent (SQL `NULL`) or `0x01` for present,
//! and, when present, the value's length as a u64 (8 bytes big-endian) followed by the value bytes.
//! Fixed-size integers go through the same framing, so every field is self-delimiting and the
//! encoding is injective: two different records never share an encoding (the tests decode it back).
//!
//! The link hash of record `n` is `SHA-256(prev_hash || canonical bytes)`, where `prev_hash` is the
//! 32-byte link hash of record `n - 1`, or 32 zero bytes for record 1. Because `seq` is inside the
//! hashed bytes, a record moved to another position no longer verifies there. JSON key order never
//! matters: the summary is hashed as the text stored, not re-encoded. A test vector (record 1, a
//! certificate) is pinned in `audit/chain.rs`, checked against an independent computation.
//!
//! `time_ms` is the time the writer began the batch the record was committed in; all records of a
//! batch share it.
//!
//! [`verify()`] checks all of this offline, from the file alone.
//!
//! # What it will not do
//!
//! * It does not decide policy: lookups ([`AuditLog::serial_exists`], [`AuditLog::has_final`], …)
//!   let the service refuse early, but the `UNIQUE` constraint is the final word, inside the commit.
//! * It never reports success for a record it has not committed. The converse is not absolute: if
//!   the disk fails *during* a commit, the caller gets [`Error::Unavailable`] and must not release
//!   anything, yet the record may still surface after a restart. Such a record marks a certificate
//!   that was signed but never released, which is the safe direction.
//! * It does not detect truncation of the newest records on its own: [`verify()`] reports the
//!   head hash so it can be compared with a copy kept elsewhere.

mod chain;
mod store;
mod verify;

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

pub use verify::{Break, Summary, VerifyError, verify};

/// The most entries the writer puts in one transaction.
pub const MAX_BATCH: usize = 256;

/// How many look-ups [`AuditLog::each_certificate`] makes per hold of the lookup connection.
pub const LOOKUP_CHUNK: usize = 4096;

/// How many requests may wait for the writer before `append` waits for room.
const QUEUE: usize = 4 * MAX_BATCH;

/// Who asked: the uid and gid the kernel reported for the peer of the service's socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Caller {
    /// The caller's user id.
    pub uid: u32,
    /// The caller's group id.
    pub gid: u32,
}

/// What a record is about. Stored as text in the `kind` column; new kinds (CRLs, OCSP responses)
/// are new variants, with no change to the schema or the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Kind {
    /// A final certificate.
    Certificate,
    /// A precertificate (RFC 6962 §3.1): same serial as its final certificate.
    Precertificate,
    /// A request the service refused.
    Refusal,
    /// A signed CRL; its `serial` column holds the CRL number (8 bytes, big-endian), unique
    /// per issuer, so numbers never repeat and, read back with [`AuditLog::last_crl_number`],
    /// never go backwards across restarts. Its `der` is absent and its summary holds the
    /// CRL's SHA-256 (see [`Entry::crl`]); records written before that may hold the DER.
    Crl,
    /// Something the service itself did that an auditor must see, such as starting on a store
    /// whose chain does not verify; `code` says what, `message` explains.
    Event,
    /// One request's signed OCSP responses (one, or a batch): no serial or DER columns; the
    /// summary lists each certificate's serial and status with the SHA-256 of its response, the
    /// validity window and the signer (issuer key or delegated responder).
    Ocsp,
}

impl Kind {
    /// The text stored in the `kind` column and hashed into the chain.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Certificate => "certificate",
            Kind::Precertificate => "precertificate",
            Kind::Refusal => "refusal",
            Kind::Crl => "crl",
            Kind::Event => "event",
            Kind::Ocsp => "ocsp",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing to record. Built with [`Entry::certificate`], [`Entry::precertificate`] or
/// [`Entry::refusal`]; handed to [`AuditLog::append`], and returned inside the [`Recorded`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    kind: Kind,
    issuer: Option<String>,
    serial: Option<Vec<u8>>,
    der: Option<Vec<u8>>,
    caller: Caller,
    code: Option<String>,
    field: Option<String>,
    message: Option<String>,
    summary: String,
}

impl Entry {
    /// A signed final certificate: its issuer's name, the certificate (whose serial number
    /// bytes, the DER INTEGER's contents, are recorded with its DER: they cannot disagree), the
    /// caller, and a JSON summary of the request. The certificate is taken by value: its DER
    /// moves into the record without a copy.
    pub fn certificate(
        issuer: impl Into<String>,
        cert: crate::x509::SignedCert,
        caller: Caller,
        summary: &serde_json::Value,
    ) -> Entry {
        let (der, serial) = cert.into_parts();
        Entry::signed(Kind::Certificate, issuer, serial, der, caller, summary)
    }

    /// A signed precertificate; arguments as for [`Entry::certificate`].
    pub fn precertificate(
        issuer: impl Into<String>,
        cert: crate::x509::SignedCert,
        caller: Caller,
        summary: &serde_json::Value,
    ) -> Entry {
        let (der, serial) = cert.into_parts();
        Entry::signed(Kind::Precertificate, issuer, serial, der, caller, summary)
    }

    /// A signed CRL of `issuer` with CRL number `number` (RFC 5280 5.2.3). The record holds no
    /// DER: `summary` carries the CRL's SHA-256 with its number, shard, entry count and validity
    /// window. A sharded CRL with a million entries is some 50 MB, published anyway, and
    /// replaced every few days; storing it would make every record after it, and every
    /// `strongroom audit verify`, carry and hash that blob, while its digest in the chain binds
    /// the exact bytes just as well.
    pub fn crl(
        issuer: impl Into<String>,
        number: u64,
        caller: Caller,
        summary: &serde_json::Value,
    ) -> Entry {
        Entry {
            kind: Kind::Crl,
            issuer: Some(issuer.into()),
            serial: Some(number.to_be_bytes().to_vec()),
            der: None,
            caller,
            code: None,
            field: None,
            message: None,
            summary: summary.to_string(),
        }
    }

    /// Signed OCSP responses of `issuer` (RFC 6960), one record per request however many
    /// responses it signed; `summary` says what was signed (see [`Kind::Ocsp`]).
    pub fn ocsp(issuer: impl Into<String>, caller: Caller, summary: &serde_json::Value) -> Entry {
        Entry {
            kind: Kind::Ocsp,
            issuer: Some(issuer.into()),
            serial: None,
            der: None,
            caller,
            code: None,
            field: None,
            message: None,
            summary: summary.to_string(),
        }
    }

    /// A refused request: the issuer it asked for (if it got that far), the stable error code,
    /// the request field at fault (if any), the message, the caller and a summary of the request.
    pub fn refusal(
        issuer: Option<&str>,
        code: &str,
        field: Option<&str>,
        message: &str,
        caller: Caller,
        summary: &serde_json::Value,
    ) -> Entry {
        Entry {
            kind: Kind::Refusal,
            issuer: issuer.map(str::to_owned),
            serial: None,
            der: None,
            caller,
            code: Some(code.to_owned()),
            field: field.map(str::to_owned),
            message: Some(message.to_owned()),
            summary: summary.to_string(),
        }
    }

    /// An event of the service itself (no issuer, serial or DER): a stable `code`, a message for
    /// the auditor, the service's own uid/gid and a JSON summary of the details.
    pub fn event(code: &str, message: &str, caller: Caller, summary: &serde_json::Value) -> Entry {
        Entry {
            kind: Kind::Event,
            issuer: None,
            serial: None,
            der: None,
            caller,
            code: Some(code.to_owned()),
            field: None,
            message: Some(message.to_owned()),
            summary: summary.to_string(),
        }
    }

    fn signed(
        kind: Kind,
        issuer: impl Into<String>,
        serial: impl Into<Vec<u8>>,
        der: impl Into<Vec<u8>>,
        caller: Caller,
        summary: &serde_json::Value,
    ) -> Entry {
        Entry {
            kind,
            issuer: Some(issuer.into()),
            serial: Some(serial.into()),
            der: Some(der.into()),
            caller,
            code: None,
            field: None,
            message: None,
            summary: summary.to_string(),
        }
    }

    /// What the record is about.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The issuer's name, if the entry has one.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// The serial number bytes, for certificates and precertificates.
    pub fn serial(&self) -> Option<&[u8]> {
        self.serial.as_deref()
    }

    /// The signed DER, for certificates and precertificates.
    pub fn der(&self) -> Option<&[u8]> {
        self.der.as_deref()
    }

    /// Who asked.
    pub fn caller(&self) -> Caller {
        self.caller
    }

    /// A refusal's error code.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// A refusal's field at fault.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// A refusal's message.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// The request summary, as the JSON text that is stored and hashed.
    pub fn summary(&self) -> &str {
        &self.summary
    }

    /// The hashed columns of this entry at position `seq`, recorded at `time_ms`.
    fn fields(&self, seq: u64, time_ms: i64) -> chain::Fields<'_> {
        chain::Fields {
            seq,
            time_ms,
            kind: self.kind.as_str(),
            issuer: self.issuer.as_deref(),
            serial: self.serial.as_deref(),
            der: self.der.as_deref(),
            uid: self.caller.uid,
            gid: self.caller.gid,
            code: self.code.as_deref(),
            field: self.field.as_deref(),
            message: self.message.as_deref(),
            summary: &self.summary,
        }
    }
}

/// Proof that an entry is durably in the audit log: built only by the log's writer, after the
/// commit holding the entry returned (fsynced). Carries the entry, so what the service releases
/// is what was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    seq: u64,
    hash: [u8; 32],
    time_ms: i64,
    entry: Entry,
}

impl Recorded {
    /// The record's position in the chain (1, 2, 3, …).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The record's link hash.
    pub fn hash(&self) -> &[u8; 32] {
        &self.hash
    }

    /// When it was recorded (millisecond precision).
    pub fn time(&self) -> SystemTime {
        let ms = Duration::from_millis(self.time_ms.unsigned_abs());
        if self.time_ms >= 0 {
            UNIX_EPOCH + ms
        } else {
            UNIX_EPOCH - ms
        }
    }

    /// The recorded entry.
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// What the record is about.
    pub fn kind(&self) -> Kind {
        self.entry.kind
    }

    /// The serial number bytes, for certificates and precertificates.
    pub fn serial(&self) -> Option<&[u8]> {
        self.entry.serial()
    }

    /// The recorded DER, for certificates and precertificates.
    pub fn der(&self) -> Option<&[u8]> {
        self.entry.der()
    }

    /// Takes the recorded DER out, to release it.
    pub fn into_der(self) -> Option<Vec<u8>> {
        self.entry.der
    }
}

/// A store failure, with the operation that failed. The underlying error (SQLite's, mostly) is its
/// `source()`.
#[derive(Debug, Clone)]
pub struct StoreError {
    op: &'static str,
    source: Arc<dyn std::error::Error + Send + Sync>,
}

impl StoreError {
    fn new(op: &'static str, source: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError {
            op,
            source: Arc::new(source),
        }
    }

    /// The operation that failed ("commit", "insert record", …).
    pub fn op(&self) -> &'static str {
        self.op
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed", self.op)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// Why an entry was not recorded.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store could not be written (disk full, read-only, I/O error, locked). The whole batch
    /// the entry was in was rolled back; nothing of it is recorded. The next `append` tries again.
    #[error("audit store unavailable")]
    Unavailable(#[source] StoreError),
    /// The issuer already has a record of this kind with this serial number.
    #[error("duplicate serial: {issuer} already has a {kind} with serial {serial_hex}")]
    DuplicateSerial {
        /// The issuer's name.
        issuer: String,
        /// The serial number, hex.
        serial_hex: String,
        /// The kind of record that already exists.
        kind: Kind,
    },
    /// The store could not be opened or created.
    #[error("cannot open audit store {path}")]
    Open {
        /// The store's path.
        path: String,
        /// What failed.
        #[source]
        source: StoreError,
    },
    /// The file is not an audit store this version can write (wrong application id or schema).
    #[error("{path} is not a strongroom audit store: {reason}")]
    NotAStore {
        /// The store's path.
        path: String,
        /// What did not match.
        reason: String,
    },
    /// The writer thread has stopped (it panicked or the log is shutting down).
    #[error("audit writer stopped")]
    Stopped,
}

/// An entry the writer has been told to expect ([`AuditLog::announce`]); it stops counting as
/// announced once it is queued, or when this is dropped.
#[derive(Debug)]
#[must_use = "an announced entry is appended with `Announced::append`"]
pub struct Announced<'a> {
    log: &'a AuditLog,
}

impl Announced<'_> {
    /// [`AuditLog::append`] for the announced entry.
    ///
    /// # Errors
    ///
    /// As [`AuditLog::append`].
    pub async fn append(self, entry: Entry) -> Result<Recorded, Error> {
        let answer = self.log.queue(entry).await?;
        // Queued: the writer no longer needs to wait for it.
        drop(self);
        answer.await.map_err(|_| Error::Stopped)?
    }
}

impl Drop for Announced<'_> {
    fn drop(&mut self) {
        let shared = &self.log.shared;
        // The last announced entry wakes a writer holding its batch open, which then takes the
        // queue and commits. Earlier ones do not: the writer takes them with the last, or at the
        // end of the delay, and waking it for each would cost a context switch per entry.
        if shared.announced.fetch_sub(1, Ordering::AcqRel) == 1 {
            if let Some(writer) = shared.writer.get() {
                writer.unpark();
            }
        }
    }
}

/// State shared by the handles and the writer thread.
#[derive(Debug)]
struct Shared {
    /// Whether the last transaction (batch or probe) committed.
    writable: AtomicBool,
    /// Transactions that committed records.
    commits: AtomicU64,
    /// Entries announced ([`AuditLog::announce`]) and not yet queued.
    announced: AtomicUsize,
    /// How long the writer may hold a batch open for announced entries.
    commit_delay: Duration,
    /// The writer thread, which waits for announced entries parked (`park_timeout`).
    writer: std::sync::OnceLock<std::thread::Thread>,
}

/// The open audit log. One per store; share it with `Arc`. Dropping it stops the writer after it
/// has recorded everything already queued.
pub struct AuditLog {
    requests: Option<mpsc::Sender<store::Request>>,
    writer: Option<JoinHandle<()>>,
    reader: std::sync::Mutex<rusqlite::Connection>,
    shared: Arc<Shared>,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens the store at `path`, creating it if it does not exist, and starts its writer thread.
    /// An existing store's chain continues where it ended.
    ///
    /// # Errors
    ///
    /// [`Error::Open`] if SQLite cannot open, configure or create it; [`Error::NotAStore`] if the
    /// file is some other database.
    pub fn open(path: &Path) -> Result<AuditLog, Error> {
        AuditLog::open_with_commit_delay(path, Duration::ZERO)
    }

    /// [`AuditLog::open`], with a writer that holds a batch open for up to `commit_delay` while
    /// announced entries are on their way (see [Group commit](self#group-commit)).
    ///
    /// # Errors
    ///
    /// As [`AuditLog::open`].
    pub fn open_with_commit_delay(path: &Path, commit_delay: Duration) -> Result<AuditLog, Error> {
        let open_err = |source| Error::Open {
            path: path.display().to_string(),
            source,
        };
        let conn = store::open_writer(path).map_err(|e| match e {
            store::OpenError::Sqlite(source) => open_err(source),
            store::OpenError::NotAStore(reason) => Error::NotAStore {
                path: path.display().to_string(),
                reason,
            },
        })?;
        let reader = store::open_reader(path).map_err(open_err)?;
        let checkpoint = store::open_checkpointer(path).map_err(open_err)?;
        let shared = Arc::new(Shared {
            writable: AtomicBool::new(true),
            commits: AtomicU64::new(0),
            announced: AtomicUsize::new(0),
            commit_delay,
            writer: std::sync::OnceLock::new(),
        });
        let (requests, queue) = mpsc::channel(QUEUE);
        let writer = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || store::run_writer(conn, checkpoint, queue, &shared)
            })
            .map_err(|e| open_err(StoreError::new("start writer thread", e)))?;
        let _ = shared.writer.set(writer.thread().clone());
        Ok(AuditLog {
            requests: Some(requests),
            writer: Some(writer),
            reader: std::sync::Mutex::new(reader),
            shared,
        })
    }

    /// Records `entry` and returns once it is committed and fsynced, sharing the commit with any
    /// other entries queued at the same time.
    ///
    /// If the future is dropped after the entry was queued, the entry may still be recorded; its
    /// `Recorded` is then lost, so nothing is released for it.
    ///
    /// # Errors
    ///
    /// [`Error::DuplicateSerial`] for a serial the issuer already has a record of this kind for;
    /// [`Error::Unavailable`] if the store could not be written; [`Error::Stopped`] if the writer
    /// is gone.
    pub async fn append(&self, entry: Entry) -> Result<Recorded, Error> {
        self.queue(entry).await?.await.map_err(|_| Error::Stopped)?
    }

    /// Queues `entry` for the writer (waiting for room if the queue is full); the receiver
    /// answers once the entry's batch has committed or failed.
    async fn queue(
        &self,
        entry: Entry,
    ) -> Result<oneshot::Receiver<Result<Recorded, Error>>, Error> {
        let (reply, answer) = oneshot::channel();
        self.sender()?
            .send(store::Request::Append { entry, reply })
            .await
            .map_err(|_| Error::Stopped)?;
        Ok(answer)
    }

    /// Says that an entry will be appended soon, so that a writer with a commit delay waits for it
    /// (up to the delay) and commits it with the batch it is writing. The entry is appended with
    /// [`Announced::append`]; dropping the `Announced` withdraws it.
    pub fn announce(&self) -> Announced<'_> {
        let _ = self.shared.announced.fetch_add(1, Ordering::AcqRel);
        Announced { log: self }
    }

    /// [`AuditLog::append`] for callers outside async code: blocks the thread until committed.
    ///
    /// # Errors
    ///
    /// As [`AuditLog::append`].
    ///
    /// # Panics
    ///
    /// If called from within an async runtime (use [`AuditLog::append`] there).
    pub fn append_blocking(&self, entry: Entry) -> Result<Recorded, Error> {
        let (reply, answer) = oneshot::channel();
        self.sender()?
            .blocking_send(store::Request::Append { entry, reply })
            .map_err(|_| Error::Stopped)?;
        answer.blocking_recv().map_err(|_| Error::Stopped)?
    }

    /// Whether the last transaction the writer tried committed. Cheap; use
    /// [`AuditLog::check_writable`] to find out whether a store that failed has recovered.
    pub fn writable(&self) -> bool {
        self.shared.writable.load(Ordering::Acquire)
    }

    /// Succeeds if the store can be written, so the service can refuse a request before it asks the
    /// HSM to sign. While the last commit succeeded this returns at once; after a failure it makes
    /// the writer commit a probe transaction (write and remove a 16 KiB row, one fsync) and reports
    /// the outcome, so the service resumes as soon as the store is writable again.
    ///
    /// This is a pre-check, not a promise: [`AuditLog::append`] is the authority.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] if the probe failed; [`Error::Stopped`] if the writer is gone.
    pub async fn check_writable(&self) -> Result<(), Error> {
        if self.writable() {
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        self.sender()?
            .send(store::Request::Probe { reply })
            .await
            .map_err(|_| Error::Stopped)?;
        answer.await.map_err(|_| Error::Stopped)?
    }

    /// [`AuditLog::check_writable`] for callers outside async code.
    ///
    /// # Errors
    ///
    /// As [`AuditLog::check_writable`].
    ///
    /// # Panics
    ///
    /// If called from within an async runtime.
    pub fn check_writable_blocking(&self) -> Result<(), Error> {
        if self.writable() {
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        self.sender()?
            .blocking_send(store::Request::Probe { reply })
            .map_err(|_| Error::Stopped)?;
        answer.blocking_recv().map_err(|_| Error::Stopped)?
    }

    /// How many transactions holding records have committed since the store was opened. With
    /// concurrent callers this is lower than the number of records: that is group commit.
    pub fn commits(&self) -> u64 {
        self.shared.commits.load(Ordering::Relaxed)
    }

    /// The DER of the precertificate `issuer` issued with `serial`, if there is one.
    ///
    /// Lookups read a separate connection (WAL lets it run beside the writer) and see every record
    /// whose `append` has returned. They are single index look-ups, but they block while another
    /// look-up holds the connection, so async code runs them on the blocking pool.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] if the store cannot be read.
    pub fn find_precertificate(
        &self,
        issuer: &str,
        serial: &[u8],
    ) -> Result<Option<Vec<u8>>, Error> {
        store::find_der(&self.reader(), issuer, serial, Kind::Precertificate)
            .map_err(Error::Unavailable)
    }

    /// The certificate (final, or else the precertificate) `issuer` issued with `serial`.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] if the store cannot be read.
    pub fn find_certificate(&self, issuer: &str, serial: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let reader = self.reader();
        match store::find_der(&reader, issuer, serial, Kind::Certificate)
            .map_err(Error::Unavailable)?
        {
            Some(der) => Ok(Some(der)),
            None => store::find_der(&reader, issuer, serial, Kind::Precertificate)
                .map_err(Error::Unavailable),
        }
    }

    /// For each of `items`, calls `each` with the item's index, the item and the DER of the
    /// certificate (final, or else the precertificate) `issuer` issued with `serial(item)`, if
    /// any: one prepared statement for all the look-ups, and no copy of the DER. The lookup
    /// connection is taken for [`LOOKUP_CHUNK`] items at a time, so other look-ups interleave
    /// with a long run (a CRL with a million entries).
    ///
    /// Stops at the first error `each` returns and gives it back inside the `Ok`.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] if the store cannot be read.
    pub fn each_certificate<T, E>(
        &self,
        issuer: &str,
        items: &[T],
        serial: impl Fn(&T) -> &[u8],
        mut each: impl FnMut(usize, &T, Option<&[u8]>) -> Result<(), E>,
    ) -> Result<Result<(), E>, Error> {
        for (c, chunk) in items.chunks(LOOKUP_CHUNK).enumerate() {
            let reader = self.reader();
            // One read transaction per chunk: one snapshot and one set of file locks for all its
            // look-ups instead of one per look-up. Read-only; dropping it ends it.
            let snapshot = reader
                .unchecked_transaction()
                .map_err(|e| Error::Unavailable(StoreError::new("begin read", e)))?;
            let mut lookup = store::IssuedLookup::new(&snapshot).map_err(Error::Unavailable)?;
            for (k, item) in chunk.iter().enumerate() {
                let outcome = lookup
                    .with_der(issuer, serial(item), |der| {
                        each(c * LOOKUP_CHUNK + k, item, der)
                    })
                    .map_err(Error::Unavailable)?;
                if outcome.is_err() {
                    return Ok(outcome);
                }
            }
            drop(lookup);
        }
        Ok(Ok(()))
    }

    /// Whether `issuer` already has a final certificate with `serial` (a precertificate gets at most
    /// one).
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] if the store cannot be read.
    pub fn has_final(&self, issuer: &str, serial: &[u8]) -> Result<bool, Error> {
        store::exists(&self.reader(), issuer, serial, Some(Kind::Certificate))
            .map_err(Error::Unavailable)
    }

    /// Whether `issuer` has a certificate or precertificate with `serial`.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] if the store cannot be read.
    pub fn serial_exists(&self, issuer: &str, serial: &[u8]) -> Result<bool, Error> {
        let reader = self.reader();
        Ok(
            store::exists(&reader, issuer, serial, Some(Kind::Certificate))
                .map_err(Error::Unavailable)?
                || store::exists(&reader, issuer, serial, Some(Kind::Precertificate))
                    .map_err(Error::Unavailable)?,
        )
    }

    /// The highest CRL number recorded for `issuer`, if any.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] if the store cannot be read.
    pub fn last_crl_number(&self, issuer: &str) -> Result<Option<u64>, Error> {
        let max =
            store::max_serial(&self.reader(), issuer, Kind::Crl).map_err(Error::Unavailable)?;
        Ok(max
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map(u64::from_be_bytes))
    }

    fn sender(&self) -> Result<&mpsc::Sender<store::Request>, Error> {
        self.requests.as_ref().ok_or(Error::Stopped)
    }

    fn reader(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        // A panic while holding the lock leaves the connection usable: every lookup is one
        // self-contained statement.
        self.reader
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        // Closing the channel lets the writer finish what is queued and exit.
        drop(self.requests.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// Milliseconds since the Unix epoch, now.
fn now_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::PathBuf;
    use std::time::Instant;

    const ISSUER: &str = "CN=Strongroom Test Intermediate";
    const CALLER: Caller = Caller {
        uid: 1000,
        gid: 1000,
    };

    fn store() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.sqlite");
        (dir, path)
    }

    fn cert(serial: u32) -> Entry {
        let der = [&[0x30, 0x82][..], &serial.to_be_bytes()].concat();
        Entry::signed(
            Kind::Certificate,
            ISSUER,
            serial.to_be_bytes(),
            der,
            CALLER,
            &json!({"n": serial}),
        )
    }

    fn refusal(n: u32) -> Entry {
        Entry::refusal(
            Some(ISSUER),
            "policy",
            Some("subject_alt_names[0]"),
            "not a DNS name",
            CALLER,
            &json!({"n": n}),
        )
    }

    /// Runs `sql` on the store through a separate connection, as someone editing the file would.
    fn tamper(path: &Path, sql: &str) {
        rusqlite::Connection::open(path)
            .unwrap()
            .execute_batch(sql)
            .unwrap();
    }

    fn broken_at(path: &Path) -> (u64, Break) {
        match verify(path) {
            Err(VerifyError::Broken { seq, reason }) => (seq, reason),
            other => panic!("expected a broken chain, got {other:?}"),
        }
    }

    /// Five records: certificate, refusal, precertificate, certificate, refusal.
    fn five(path: &Path) -> Vec<Recorded> {
        let log = AuditLog::open(path).unwrap();
        let entries = [
            cert(1),
            refusal(2),
            Entry::signed(
                Kind::Precertificate,
                ISSUER,
                [3],
                [0x30, 3],
                CALLER,
                &json!({}),
            ),
            cert(4),
            refusal(5),
        ];
        entries
            .into_iter()
            .map(|e| log.append_blocking(e).unwrap())
            .collect()
    }

    /// Sends a closure to run on the writer's own connection, from a non-async test.
    fn on_writer(log: &AuditLog, f: impl FnOnce(&rusqlite::Connection) + Send + 'static) {
        log.sender()
            .unwrap()
            .blocking_send(store::Request::Run(Box::new(f)))
            .map_err(|_| "writer gone")
            .unwrap();
    }

    #[test]
    fn append_and_verify_round_trip() {
        let (_dir, path) = store();
        let recorded = five(&path);
        let seqs: Vec<u64> = recorded.iter().map(Recorded::seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5]);
        assert_eq!(recorded[0].der(), Some(&[0x30, 0x82, 0, 0, 0, 1][..]));
        assert_eq!(recorded[0].serial(), Some(&[0, 0, 0, 1][..]));
        assert_eq!(recorded[1].kind(), Kind::Refusal);
        assert_eq!(recorded[1].entry().field(), Some("subject_alt_names[0]"));
        assert!(recorded[0].time() <= SystemTime::now());

        let summary = verify(&path).unwrap();
        assert_eq!(summary.records, 5);
        assert_eq!(&summary.head, recorded[4].hash());
        assert_eq!(summary.kinds["certificate"], 2);
        assert_eq!(summary.kinds["refusal"], 2);
        assert_eq!(summary.kinds["precertificate"], 1);

        // What is on disk is what `Recorded` says: same hash, same bytes.
        let conn = rusqlite::Connection::open(&path).unwrap();
        let (der, hash): (Vec<u8>, Vec<u8>) = conn
            .query_row("SELECT der, hash FROM records WHERE seq = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(Some(&der[..]), recorded[0].der());
        assert_eq!(&hash[..], recorded[0].hash());
        assert_eq!(recorded[0].clone().into_der(), Some(der));
    }

    #[test]
    fn store_is_wal_and_synchronous_full() {
        let (_dir, path) = store();
        let log = AuditLog::open(&path).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        on_writer(&log, move |conn| {
            let mode: String = conn
                .pragma_query_value(None, "journal_mode", |r| r.get(0))
                .unwrap();
            let sync: i64 = conn
                .pragma_query_value(None, "synchronous", |r| r.get(0))
                .unwrap();
            tx.send((mode, sync)).unwrap();
        });
        // synchronous: 2 is FULL.
        assert_eq!(rx.recv().unwrap(), ("wal".to_owned(), 2));
    }

    #[test]
    fn reopening_continues_the_chain() {
        let (_dir, path) = store();
        let first = five(&path);
        let log = AuditLog::open(&path).unwrap();
        let next = log.append_blocking(cert(6)).unwrap();
        assert_eq!(next.seq(), 6);
        drop(log);
        let summary = verify(&path).unwrap();
        assert_eq!(summary.records, 6);
        assert_eq!(&summary.head, next.hash());
        assert_ne!(next.hash(), first[4].hash());
    }

    #[test]
    fn verify_reads_a_live_store() {
        let (_dir, path) = store();
        let log = AuditLog::open(&path).unwrap();
        let _ = log.append_blocking(cert(1)).unwrap();
        assert_eq!(verify(&path).unwrap().records, 1);
        let _ = log.append_blocking(cert(2)).unwrap();
        assert_eq!(verify(&path).unwrap().records, 2);
    }

    #[test]
    fn an_edited_record_is_detected_at_its_seq() {
        let (_dir, path) = store();
        let _ = five(&path);
        tamper(&path, "UPDATE records SET message = 'fine' WHERE seq = 2");
        assert_eq!(broken_at(&path), (2, Break::Hash));
    }

    #[test]
    fn an_edited_der_is_detected() {
        let (_dir, path) = store();
        let _ = five(&path);
        tamper(&path, "UPDATE records SET der = x'3083' WHERE seq = 4");
        assert_eq!(broken_at(&path), (4, Break::Hash));
    }

    #[test]
    fn an_edit_with_a_recomputed_hash_breaks_the_next_link() {
        let (_dir, path) = store();
        let recorded = five(&path);
        let mut edited = recorded[2].entry().clone();
        edited.der = Some(vec![0x30, 0x99]);
        let hash = edited
            .fields(3, recorded[2].time_ms)
            .link_hash(recorded[1].hash());
        let conn = rusqlite::Connection::open(&path).unwrap();
        let _ = conn
            .execute(
                "UPDATE records SET der = x'3099', hash = ?1 WHERE seq = 3",
                [&hash[..]],
            )
            .unwrap();
        assert_eq!(broken_at(&path), (4, Break::PrevHash));
    }

    #[test]
    fn a_deleted_record_is_detected() {
        let (_dir, path) = store();
        let _ = five(&path);
        tamper(&path, "DELETE FROM records WHERE seq = 3");
        assert_eq!(broken_at(&path), (4, Break::Gap { expected: 3 }));
    }

    #[test]
    fn a_deleted_and_renumbered_record_is_detected() {
        let (_dir, path) = store();
        let _ = five(&path);
        tamper(
            &path,
            "DELETE FROM records WHERE seq = 3; UPDATE records SET seq = seq - 1 WHERE seq > 3",
        );
        assert_eq!(broken_at(&path), (3, Break::PrevHash));
    }

    #[test]
    fn a_deleted_first_record_is_detected() {
        let (_dir, path) = store();
        let _ = five(&path);
        tamper(&path, "DELETE FROM records WHERE seq = 1");
        assert_eq!(broken_at(&path), (2, Break::Gap { expected: 1 }));
    }

    #[test]
    fn reordered_records_are_detected() {
        let (_dir, path) = store();
        let _ = five(&path);
        // Swap records 2 and 3: each now sits at the other's seq.
        tamper(
            &path,
            "UPDATE records SET seq = 100 WHERE seq = 2;
             UPDATE records SET seq = 2 WHERE seq = 3;
             UPDATE records SET seq = 3 WHERE seq = 100;",
        );
        assert_eq!(broken_at(&path), (2, Break::PrevHash));
    }

    #[test]
    fn a_malformed_column_is_reported() {
        let (_dir, path) = store();
        let _ = five(&path);
        // STRICT stops a type change; an attacker can still drop the table's rules by rewriting it,
        // but a short hash is enough to show the check.
        tamper(
            &path,
            "PRAGMA ignore_check_constraints = ON; UPDATE records SET hash = x'00' WHERE seq = 5",
        );
        assert_eq!(broken_at(&path), (5, Break::Malformed { column: "hash" }));
    }

    #[test]
    fn other_databases_are_refused() {
        let (_dir, path) = store();
        tamper(&path, "CREATE TABLE t (x INTEGER)");
        assert!(matches!(
            AuditLog::open(&path),
            Err(Error::NotAStore { .. })
        ));
        assert!(matches!(verify(&path), Err(VerifyError::NotAStore(_))));
        assert!(matches!(
            verify(&path.with_extension("missing")),
            Err(VerifyError::Read(_))
        ));
    }

    #[test]
    fn duplicate_serials_are_refused_per_issuer_and_kind() {
        let (_dir, path) = store();
        let log = AuditLog::open(&path).unwrap();
        assert_eq!(log.append_blocking(cert(7)).unwrap().seq(), 1);
        match log.append_blocking(cert(7)) {
            Err(Error::DuplicateSerial {
                issuer,
                serial_hex,
                kind,
            }) => {
                assert_eq!(issuer, ISSUER);
                assert_eq!(serial_hex, "00000007");
                assert_eq!(kind, Kind::Certificate);
            }
            other => panic!("expected DuplicateSerial, got {other:?}"),
        }
        // The same serial from another issuer is another certificate.
        let other = Entry::signed(
            Kind::Certificate,
            "CN=Other",
            7u32.to_be_bytes(),
            [0x30],
            CALLER,
            &json!({}),
        );
        assert_eq!(log.append_blocking(other).unwrap().seq(), 2);
        // The refused entry took no seq: the chain has no gap.
        drop(log);
        assert_eq!(verify(&path).unwrap().records, 2);
    }

    #[test]
    fn duplicates_in_one_batch_refuse_only_the_duplicate() {
        let (_dir, path) = store();
        let log = Arc::new(AuditLog::open(&path).unwrap());
        let (release, gate) = std::sync::mpsc::channel::<()>();
        on_writer(&log, move |_| {
            let _ = gate.recv();
        });
        let threads: Vec<_> = [cert(1), cert(1), cert(2)]
            .into_iter()
            .map(|entry| {
                let log = Arc::clone(&log);
                std::thread::spawn(move || log.append_blocking(entry))
            })
            .collect();
        wait_for_queue(&log, 3);
        release.send(()).unwrap();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(log.commits(), 1);
        let ok = results.iter().filter(|r| r.is_ok()).count();
        let dup = results
            .iter()
            .filter(|r| matches!(r, Err(Error::DuplicateSerial { .. })))
            .count();
        assert_eq!((ok, dup), (2, 1));
        drop(log);
        assert_eq!(verify(&path).unwrap().records, 2);
    }

    #[test]
    fn precertificate_lookup_and_final() {
        let (_dir, path) = store();
        let log = AuditLog::open(&path).unwrap();
        let serial = [0x42, 0x01];
        assert!(!log.serial_exists(ISSUER, &serial).unwrap());
        assert_eq!(log.find_precertificate(ISSUER, &serial).unwrap(), None);

        let pre = Entry::signed(
            Kind::Precertificate,
            ISSUER,
            serial,
            [0x30, 0x01],
            CALLER,
            &json!({}),
        );
        let _ = log.append_blocking(pre).unwrap();
        assert!(log.serial_exists(ISSUER, &serial).unwrap());
        assert!(!log.serial_exists("CN=Other", &serial).unwrap());
        assert!(!log.serial_exists(ISSUER, &[0x42]).unwrap());
        assert_eq!(
            log.find_precertificate(ISSUER, &serial).unwrap(),
            Some(vec![0x30, 0x01])
        );
        assert!(!log.has_final(ISSUER, &serial).unwrap());

        let last = Entry::signed(
            Kind::Certificate,
            ISSUER,
            serial,
            [0x30, 0x02],
            CALLER,
            &json!({}),
        );
        let _ = log.append_blocking(last.clone()).unwrap();
        assert!(log.has_final(ISSUER, &serial).unwrap());
        // The precertificate is still the precertificate.
        assert_eq!(
            log.find_precertificate(ISSUER, &serial).unwrap(),
            Some(vec![0x30, 0x01])
        );
        // A second final certificate for the same precertificate is refused.
        assert!(matches!(
            log.append_blocking(last),
            Err(Error::DuplicateSerial {
                kind: Kind::Certificate,
                ..
            })
        ));
    }

    /// Waits until `n` requests are queued for the writer.
    fn wait_for_queue(log: &AuditLog, n: usize) {
        let sender = log.sender().unwrap();
        let start = Instant::now();
        while sender.max_capacity() - sender.capacity() < n {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "requests never queued"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn count(path: &Path) -> i64 {
        rusqlite::Connection::open(path)
            .unwrap()
            .query_row("SELECT count(*) FROM records", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_full_store_refuses_the_whole_batch_then_recovers() {
        let (_dir, path) = store();
        let log = Arc::new(AuditLog::open(&path).unwrap());
        let first = log.append_blocking(cert(1)).unwrap();
        assert!(log.writable());

        // The disk is "full": SQLite may not grow the file by a single page (SQLITE_FULL, exactly
        // what a full disk gives). Hold the writer while three entries queue, so they are one batch.
        let (release, gate) = std::sync::mpsc::channel::<()>();
        on_writer(&log, move |conn| {
            let pages: i64 = conn
                .pragma_query_value(None, "page_count", |r| r.get(0))
                .unwrap();
            conn.pragma_update(None, "max_page_count", pages).unwrap();
            let _ = gate.recv();
        });
        let big = Entry::signed(
            Kind::Certificate,
            ISSUER,
            [9],
            vec![0x30; 20_000],
            CALLER,
            &json!({}),
        );
        let threads: Vec<_> = [refusal(2), big, refusal(3)]
            .into_iter()
            .map(|entry| {
                let log = Arc::clone(&log);
                std::thread::spawn(move || log.append_blocking(entry))
            })
            .collect();
        wait_for_queue(&log, 3);
        release.send(()).unwrap();
        for thread in threads {
            match thread.join().unwrap() {
                Err(Error::Unavailable(e)) => {
                    let source = std::error::Error::source(&e).unwrap().to_string();
                    assert!(source.contains("full"), "{source}");
                }
                other => panic!("expected Unavailable, got {other:?}"),
            }
        }
        // Nothing of the batch was written, not even the small refusal that fit.
        assert!(!log.writable());
        assert!(matches!(
            log.check_writable_blocking(),
            Err(Error::Unavailable(_))
        ));
        assert_eq!(count(&path), 1);
        assert_eq!(verify(&path).unwrap().head, *first.hash());
        assert_eq!(log.commits(), 1);

        // Space comes back: the probe succeeds and the chain continues without a gap.
        on_writer(&log, |conn| {
            conn.pragma_update(None, "max_page_count", 1_000_000_i64)
                .unwrap();
        });
        log.check_writable_blocking().unwrap();
        assert!(log.writable());
        let next = log.append_blocking(refusal(4)).unwrap();
        assert_eq!(next.seq(), 2);
        drop(log);
        assert_eq!(verify(&path).unwrap().records, 2);
    }

    #[test]
    fn a_locked_store_is_unavailable_until_released() {
        let (_dir, path) = store();
        let log = AuditLog::open(&path).unwrap();
        let _ = log.append_blocking(cert(1)).unwrap();
        on_writer(&log, |conn| {
            conn.busy_timeout(Duration::from_millis(50)).unwrap()
        });
        // Another process holds the write lock (a stuck backup job, say).
        let other = rusqlite::Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        assert!(matches!(
            log.append_blocking(cert(2)),
            Err(Error::Unavailable(_))
        ));
        assert!(!log.writable());
        other.execute_batch("ROLLBACK").unwrap();
        assert_eq!(log.append_blocking(cert(2)).unwrap().seq(), 2);
        assert!(log.writable());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_appends_share_commits() {
        let (_dir, path) = store();
        let log = Arc::new(AuditLog::open(&path).unwrap());
        let n: u32 = 200;
        let start = Instant::now();
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let entry = if i % 4 == 0 { refusal(i) } else { cert(i) };
                    log.append(entry).await
                })
            })
            .collect();
        let mut seqs = Vec::new();
        for task in tasks {
            seqs.push(task.await.unwrap().unwrap().seq());
        }
        let elapsed = start.elapsed();
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=u64::from(n)).collect::<Vec<_>>());
        let commits = log.commits();
        eprintln!("{n} concurrent appends: {commits} commits in {elapsed:?}");
        assert!(
            commits >= 1 && commits <= u64::from(n) / 4,
            "{commits} commits"
        );

        // One at a time, each append is its own commit.
        let start = Instant::now();
        for i in n..n + 20 {
            let _ = log.append(cert(i)).await.unwrap();
        }
        eprintln!(
            "20 sequential appends: {} commits in {:?}",
            log.commits() - commits,
            start.elapsed()
        );
        assert_eq!(log.commits(), commits + 20);

        drop(log);
        assert_eq!(verify(&path).unwrap().records, u64::from(n) + 20);
    }

    /// Long enough that a test which waited for it would stand out; the tests below never do.
    const LONG_DELAY: Duration = Duration::from_secs(30);
    /// A guard against a writer that hangs: far longer than a commit takes, far shorter than
    /// `LONG_DELAY`.
    const NO_HANG: Duration = Duration::from_secs(10);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn announced_entries_share_the_batch_that_waits_for_them() {
        let (_dir, path) = store();
        let log = Arc::new(AuditLog::open_with_commit_delay(&path, LONG_DELAY).unwrap());
        let first = {
            let (a, b) = (log.announce(), log.announce());
            // The unannounced entry opens a batch; the writer holds it for the two announced.
            let early = {
                let log = Arc::clone(&log);
                tokio::spawn(async move { log.append(refusal(0)).await })
            };
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(!early.is_finished(), "the batch did not wait");
            assert_eq!(log.commits(), 0);
            let (ra, rb) = tokio::time::timeout(NO_HANG, async {
                tokio::join!(a.append(cert(1)), b.append(cert(2)))
            })
            .await
            .expect("the batch should commit once nothing more is announced");
            let early = early.await.unwrap().unwrap();
            let (ra, rb) = (ra.unwrap(), rb.unwrap());
            assert_eq!(early.seq(), 1);
            assert_eq!([early.time(), ra.time()], [rb.time(), rb.time()]);
            early
        };
        assert_eq!(log.commits(), 1, "three records, one commit");
        assert_eq!(first.seq(), 1);

        // Nothing announced: a lone append is committed at once, not after the delay.
        let lone = tokio::time::timeout(NO_HANG, log.append(cert(3)))
            .await
            .expect("a lone append must not wait for the commit delay");
        assert_eq!(lone.unwrap().seq(), 4);
        assert_eq!(log.commits(), 2);
        drop(log);
        assert_eq!(verify(&path).unwrap().records, 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_withdrawn_announcement_releases_the_batch() {
        let (_dir, path) = store();
        let log = Arc::new(AuditLog::open_with_commit_delay(&path, LONG_DELAY).unwrap());
        let announced = log.announce();
        let waiting = {
            let log = Arc::clone(&log);
            tokio::spawn(async move { log.append(cert(1)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "the batch did not wait");
        // The announced request failed before it had anything to record (an HSM error, say).
        drop(announced);
        let recorded = tokio::time::timeout(NO_HANG, waiting)
            .await
            .expect("withdrawing the announcement should release the batch")
            .unwrap()
            .unwrap();
        assert_eq!(recorded.seq(), 1);
        assert_eq!(log.commits(), 1);
    }

    #[test]
    fn blocking_appends_from_threads_share_commits() {
        let (_dir, path) = store();
        let log = Arc::new(AuditLog::open(&path).unwrap());
        let threads: Vec<_> = (0..8u32)
            .map(|t| {
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    for i in 0..25 {
                        let _ = log.append_blocking(cert(t * 100 + i)).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        eprintln!("8 threads x 25 blocking appends: {} commits", log.commits());
        assert!(log.commits() < 200, "{} commits", log.commits());
        drop(log);
        assert_eq!(verify(&path).unwrap().records, 200);
    }

    #[test]
    fn dropping_the_log_records_what_is_queued() {
        let (_dir, path) = store();
        let log = AuditLog::open(&path).unwrap();
        let (release, gate) = std::sync::mpsc::channel::<()>();
        on_writer(&log, move |_| {
            let _ = gate.recv();
        });
        let (reply, answer) = oneshot::channel();
        log.sender()
            .unwrap()
            .blocking_send(store::Request::Append {
                entry: cert(1),
                reply,
            })
            .map_err(|_| "writer gone")
            .unwrap();
        release.send(()).unwrap();
        drop(log);
        assert_eq!(answer.blocking_recv().unwrap().unwrap().seq(), 1);
        assert_eq!(verify(&path).unwrap().records, 1);
    }

    #[test]
    fn the_checkpointer_copies_the_wal_while_the_writer_commits() {
        let (_dir, path) = store();
        let log = AuditLog::open(&path).unwrap();
        // The writer's connection has the checkpointer's hook instead of SQLite's
        // auto-checkpoint (which reads as 0 once another WAL hook replaces it).
        let (tell, told) = std::sync::mpsc::channel();
        on_writer(&log, move |conn| {
            let _ = tell
                .send(conn.pragma_query_value(None, "wal_autocheckpoint", |r| r.get::<_, i64>(0)));
        });
        assert_eq!(told.recv().unwrap().unwrap(), 0);
        // Linux keeps 15 bytes of a thread's name; the bench groups threads by it. A new thread
        // names itself once it runs (until then it has its parent's name), so wait for it.
        let thread_names = || -> Vec<String> {
            std::fs::read_dir("/proc/self/task")
                .unwrap()
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .map(|name| name.trim_end().to_string())
                .collect()
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut names = thread_names();
        while !names.iter().any(|n| n == "audit-checkpt") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            names = thread_names();
        }
        assert!(names.iter().any(|n| n == "audit-checkpt"), "{names:?}");
        let initial = std::fs::metadata(&path).unwrap().len();
        // 100 records of 64 KiB: about 1,600 WAL frames, past the checkpointer's 1,000 and far
        // below the 16,000 at which the writer would checkpoint itself.
        for n in 0..100u32 {
            let der = [&n.to_be_bytes()[..], &[0x5a; 64 * 1024]].concat();
            let entry = Entry::signed(
                Kind::Certificate,
                ISSUER,
                n.to_be_bytes(),
                der,
                CALLER,
                &json!({}),
            );
            log.append_blocking(entry).unwrap();
        }
        // Only a checkpoint writes pages into the database file; the log is still open, so it
        // is not the checkpoint SQLite makes when the last connection closes. The first one,
        // woken at 1,000 frames, copies about 1,000 pages (most of them distinct overflow
        // pages, about 3.9 MiB); how much of the rest is copied while the log is open depends on
        // timing (up to 999 frames may stay in the WAL), so the bound is half the first one.
        let bound = initial + 2 * 1024 * 1024;
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut size = std::fs::metadata(&path).unwrap().len();
        while size < bound && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            size = std::fs::metadata(&path).unwrap().len();
        }
        assert!(size >= bound, "database file {initial} -> {size} bytes");
        drop(log);
        assert_eq!(verify(&path).unwrap().records, 100);
    }
}
