//! The transparency log: everything a CA key signs, as C2SP tlog-tiles with signed checkpoints.
//!
//! ```text
//! Entry ──encode──▶ leaf ──writer::append──▶ tile/entries/…, tile/<L>/…  ──▶ checkpoint (signed note)
//!                                                    │
//!                         outsiders: verify::{verify, prove_index, consistency} (dir or http URL)
//! ```
//!
//! Formats: entries are ours ([`entry`], docs/TRANSPARENCY-LOG.md); Merkle hashing is
//! RFC 6962 / RFC 9162 §2.1 ([`merkle`]); files are C2SP tlog-tiles ([`tiles`]); checkpoints are
//! C2SP tlog-checkpoint in C2SP signed-note with Ed25519 ([`note`]).
//!
//! Crates: SHA-256 is `sha2`, Ed25519 verification is `aws-lc-rs`. Cloudflare's `tlog_tiles`
//! and `signed_note` (0.2) were evaluated and not used: `tlog_tiles` 0.2's `Tile::path` writes
//! Go sumdb paths (`tile/<H>/<L>/…`, `tile/<H>/data/…`), not C2SP tlog-tiles paths
//! (`tile/<L>/…`, `tile/entries/…`), and its tile constructors panic on bad input; the pair pulls
//! second copies of `sha2` (0.10), `signature` (2), `thiserror` (1) and `base64`, plus
//! `ed25519-dalek` beside our `aws-lc-rs`. The remaining logic (tree arithmetic and proofs) is
//! small, follows the RFC text line by line, and is checked against Go's `sumdb/tlog` and
//! `sumdb/note` in tests/tlog.rs.
//!
//! The writer signs through `FnOnce(&[u8]) -> Result<[u8; 64], E>`, so an HSM key plugs in.
//! It assumes one writer per directory at a time.

pub mod cli;
pub mod entry;
pub mod merkle;
pub mod note;
pub mod tiles;
pub mod verify;
pub mod writer;

pub use entry::{Body, Entry, EntryError, EntryType};
pub use note::{Checkpoint, VerifierKey};
pub use tiles::Source;

/// Everything that can go wrong writing or checking the log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An entry breaks the entry format.
    #[error("entry {index}: {source}")]
    EntryAt {
        /// The entry's log index.
        index: u64,
        /// The rule it breaks.
        source: EntryError,
    },
    /// A file that does not follow C2SP tlog-tiles.
    #[error("{path}: {reason}")]
    Malformed {
        /// The file, relative to the log.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A file the checkpoint's tree size needs is not published.
    #[error("{path}: missing, but the checkpoint's tree size {size} needs it")]
    Missing {
        /// The file, relative to the log.
        path: String,
        /// The tree size being read.
        size: u64,
    },
    /// A hash tile differs from the hashes recomputed from the entries.
    #[error("{path}: hash tile does not match the hashes recomputed from the entry bundles")]
    TileMismatch {
        /// The tile, relative to the log.
        path: String,
    },
    /// A full tile or bundle exists with other content (C2SP tlog-tiles: full tiles are immutable).
    #[error("{path}: full tile already published with different content; full tiles never change")]
    FullTileChanged {
        /// The tile, relative to the log.
        path: String,
    },
    /// The checkpoint's root hash is not the tree hash of the tiles.
    #[error("checkpoint: root hash does not match the tree hash recomputed at size {size}")]
    RootMismatch {
        /// The checkpoint's tree size.
        size: u64,
    },
    /// A malformed checkpoint or note.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// No valid signature by the verifier key.
    #[error("checkpoint signature: {0}")]
    Signature(String),
    /// A malformed verifier key or key name.
    #[error("{0}")]
    Key(String),
    /// Two trees that do not extend one another.
    #[error(
        "tree of size {new_size} is not consistent with the checkpoint of size {old_size}: {reason}"
    )]
    Inconsistent {
        /// The older tree size.
        old_size: u64,
        /// The newer tree size.
        new_size: u64,
        /// Why.
        reason: String,
    },
    /// A proof that cannot be made or does not verify.
    #[error("proof: {0}")]
    Proof(String),
    /// The checkpoint signer failed or returned a wrong signature.
    #[error("checkpoint signer: {0}")]
    Sign(String),
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An HTTP fetch failed.
    #[error("{url}: {reason}")]
    Http {
        /// The URL.
        url: String,
        /// The failure.
        reason: String,
    },
    /// A bad argument.
    #[error("{0}")]
    Usage(String),
}
