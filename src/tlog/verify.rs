//! What outsiders run: verify a whole published log, prove inclusion, prove consistency.

use std::collections::{BTreeMap, HashMap};

use der::{Decode, Encode};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;

use super::Error;
use super::entry::{Body, Entry, EntryError, EntryType};
use super::merkle::{self, Hash, complete_root, leaf_hash};
use super::note::{Checkpoint, VerifierKey, open_checkpoint};
use super::tiles::{Source, TileHashes, WIDTH, bundle_path, split_bundle, tile_path, tile_width};
use super::writer::CHECKPOINT;
use crate::verify::VerifyingKey;

/// What `verify` found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The verified checkpoint.
    pub checkpoint: Checkpoint,
    /// Entries per type.
    pub by_type: BTreeMap<String, u64>,
}

/// Fetches the checkpoint at `source` and checks its signature with `key`.
///
/// # Errors
/// Missing, malformed or unsigned checkpoint.
pub fn checkpoint(source: &Source, key: &VerifierKey) -> Result<Checkpoint, Error> {
    let note = source
        .get(CHECKPOINT)?
        .ok_or_else(|| Error::Checkpoint("no checkpoint file is published there".into()))?;
    open_checkpoint(&note, key)
}

/// Recomputed tiles, compared with the published ones level by level as they fill.
struct Check<'a> {
    source: &'a Source,
    size: u64,
    levels: Vec<Vec<Hash>>,
    counts: Vec<u64>,
}

impl Check<'_> {
    fn compare(&self, level: usize, n: u64, hashes: &[Hash]) -> Result<(), Error> {
        let width = hashes.len() as u64;
        let path = tile_path(level as u32, n, width);
        let data = self.source.need(&path, self.size)?;
        if data != hashes.concat() {
            return Err(Error::TileMismatch { path });
        }
        Ok(())
    }

    fn push(&mut self, level: usize, h: Hash) -> Result<(), Error> {
        if self.levels.len() <= level {
            self.levels.push(Vec::with_capacity(WIDTH as usize));
            self.counts.push(0);
        }
        self.levels[level].push(h);
        self.counts[level] += 1;
        if self.levels[level].len() as u64 == WIDTH {
            self.compare(level, self.counts[level] / WIDTH - 1, &self.levels[level])?;
            let parent = complete_root(&self.levels[level])?;
            self.levels[level].clear();
            self.push(level + 1, parent)?;
        }
        Ok(())
    }

    fn finish(&self) -> Result<(), Error> {
        for (level, hashes) in self.levels.iter().enumerate() {
            if !hashes.is_empty() {
                self.compare(level, self.counts[level] / WIDTH, hashes)?;
            }
        }
        Ok(())
    }
}

/// The keys of the logged issuer, root and cross certificates, by SHA-256 of their SPKI DER
/// (the entry format's key identifier).
#[derive(Default)]
struct Signers(HashMap<[u8; 32], VerifyingKey>);

impl Signers {
    /// Checks a certificate or CRL entry's signature under the logged key its `key_id` names,
    /// and remembers the key of an issuer, root or cross certificate for the entries after it.
    fn check(&mut self, entry: &Entry) -> Result<(), EntryError> {
        let Body::Der(der) = &entry.body else {
            return Ok(()); // OCSP batches hold digests only.
        };
        let bad = |field: &'static str, rule: String| EntryError { field, rule };
        let unknown = || {
            bad(
                "key_id",
                format!(
                    "signing key {} is not the key of an earlier issuer, root or cross certificate entry",
                    hex::encode(entry.key_id)
                ),
            )
        };
        if entry.entry_type == EntryType::Crl {
            let crl = CertificateList::from_der(der).map_err(|e| bad("body", e.to_string()))?;
            return self
                .0
                .get(&entry.key_id)
                .ok_or_else(unknown)?
                .verify_crl(&crl)
                .map_err(|e| bad("body", format!("CRL signature: {e}")));
        }
        let cert = Certificate::from_der(der).map_err(|e| bad("body", e.to_string()))?;
        let spki = cert.tbs_certificate().subject_public_key_info();
        let own: [u8; 32] =
            Sha256::digest(spki.to_der().map_err(|e| bad("body", e.to_string()))?).into();
        if entry.entry_type == EntryType::RootCertificate {
            // A root is a trust anchor: given, not verified (RFC 5280 §6.1.1 (d)); its entry
            // must name its own key as the signer.
            if entry.key_id != own {
                return Err(bad(
                    "key_id",
                    "a root certificate entry must name the root's own key".into(),
                ));
            }
        } else {
            self.0
                .get(&entry.key_id)
                .ok_or_else(unknown)?
                .verify_certificate(&cert)
                .map_err(|e| bad("body", format!("certificate signature: {e}")))?;
        }
        if matches!(
            entry.entry_type,
            EntryType::IssuerCertificate | EntryType::RootCertificate | EntryType::CrossCertificate
        ) {
            let key = VerifyingKey::from_spki(spki)
                .map_err(|e| bad("body", format!("issuer key: {e}")))?;
            let _ = self.0.insert(own, key);
        }
        Ok(())
    }
}

/// Verifies a whole published log: the checkpoint's signature, every entry parsed, every
/// certificate and CRL signed by the key of an earlier issuer, root or cross certificate entry,
/// every hash tile recomputed from the entries, and the root hash recomputed from the tiles.
/// Memory stays bounded: one bundle and the right edge of the tree at a time.
///
/// # Errors
/// The first fault found, naming the file or entry.
pub fn verify(source: &Source, key: &VerifierKey) -> Result<Report, Error> {
    let cp = checkpoint(source, key)?;
    let mut check = Check {
        source,
        size: cp.size,
        levels: Vec::new(),
        counts: Vec::new(),
    };
    let mut by_type = BTreeMap::new();
    let mut signers = Signers::default();
    let bundles = cp.size.div_ceil(WIDTH);
    for b in 0..bundles {
        let width = tile_width(0, b, cp.size);
        let path = bundle_path(b, width);
        let data = source.need(&path, cp.size)?;
        for (i, e) in split_bundle(&path, &data, width)?.into_iter().enumerate() {
            let index = b * WIDTH + i as u64;
            let entry = Entry::parse(e).map_err(|source| Error::EntryAt { index, source })?;
            signers
                .check(&entry)
                .map_err(|source| Error::EntryAt { index, source })?;
            *by_type
                .entry(format!("{:?}", entry.entry_type))
                .or_insert(0) += 1;
            check.push(0, leaf_hash(e))?;
        }
    }
    check.finish()?;
    let mut reader = TileHashes::new(source, cp.size);
    let root = merkle::tree_hash(&mut reader, cp.size)?;
    if root != cp.root {
        return Err(Error::RootMismatch { size: cp.size });
    }
    Ok(Report {
        checkpoint: cp,
        by_type,
    })
}

/// An inclusion proof against a verified checkpoint.
#[derive(Debug, Clone)]
pub struct Inclusion {
    /// The entry's index.
    pub index: u64,
    /// The checkpoint the proof leads to.
    pub checkpoint: Checkpoint,
    /// The entry's bytes.
    pub entry: Vec<u8>,
    /// RFC 6962 audit path, leaf to root.
    pub proof: Vec<Hash>,
}

/// Proves entry `index` is in the log, against its signed checkpoint; the proof is checked
/// before it is returned.
///
/// # Errors
/// Bad checkpoint, index out of range, missing tiles, a proof that does not verify.
pub fn prove_index(source: &Source, key: &VerifierKey, index: u64) -> Result<Inclusion, Error> {
    let cp = checkpoint(source, key)?;
    if index >= cp.size {
        return Err(Error::Proof(format!(
            "index {index} is not below the checkpoint's size {}",
            cp.size
        )));
    }
    let b = index / WIDTH;
    let width = tile_width(0, b, cp.size);
    let path = bundle_path(b, width);
    let data = source.need(&path, cp.size)?;
    let entry = split_bundle(&path, &data, width)?[(index % WIDTH) as usize].to_vec();
    let mut reader = TileHashes::new(source, cp.size);
    let proof = merkle::inclusion_proof(&mut reader, index, cp.size)?;
    merkle::verify_inclusion(index, cp.size, &leaf_hash(&entry), &proof, &cp.root)?;
    Ok(Inclusion {
        index,
        checkpoint: cp,
        entry,
        proof,
    })
}

/// Finds the certificate `der` among the log's certificate entries and proves it.
///
/// # Errors
/// Not found, or any error of [`prove_index`].
pub fn prove_certificate(
    source: &Source,
    key: &VerifierKey,
    der: &[u8],
) -> Result<Inclusion, Error> {
    let cp = checkpoint(source, key)?;
    for b in 0..cp.size.div_ceil(WIDTH) {
        let width = tile_width(0, b, cp.size);
        let path = bundle_path(b, width);
        let data = source.need(&path, cp.size)?;
        for (i, e) in split_bundle(&path, &data, width)?.into_iter().enumerate() {
            let index = b * WIDTH + i as u64;
            let entry = Entry::parse(e).map_err(|source| Error::EntryAt { index, source })?;
            if entry.entry_type.is_certificate() && entry.body == Body::Der(der.to_vec()) {
                return prove_index(source, key, index);
            }
        }
    }
    Err(Error::Proof(format!(
        "the certificate is not among the {} entries of the log",
        cp.size
    )))
}

/// A consistency proof between two signed checkpoints of the log.
#[derive(Debug, Clone)]
pub struct Consistency {
    /// The older checkpoint.
    pub old: Checkpoint,
    /// The newer checkpoint.
    pub new: Checkpoint,
    /// RFC 6962 §2.1.2 consistency proof.
    pub proof: Vec<Hash>,
}

/// Proves the checkpoint note `new` extends `old`, with hashes from the log at `source`
/// (tiles at the new size); both notes must verify under `key`.
///
/// # Errors
/// Bad notes, old larger than new, or a proof that does not verify.
pub fn consistency(
    source: &Source,
    key: &VerifierKey,
    old: &[u8],
    new: &[u8],
) -> Result<Consistency, Error> {
    let old = open_checkpoint(old, key)?;
    let new = open_checkpoint(new, key)?;
    if old.size > new.size {
        return Err(Error::Inconsistent {
            old_size: old.size,
            new_size: new.size,
            reason: "the old checkpoint is larger than the new one".into(),
        });
    }
    let mut reader = TileHashes::new(source, new.size);
    let proof = merkle::consistency_proof(&mut reader, old.size, new.size)?;
    merkle::verify_consistency(old.size, new.size, &old.root, &new.root, &proof).map_err(|e| {
        Error::Inconsistent {
            old_size: old.size,
            new_size: new.size,
            reason: e.to_string(),
        }
    })?;
    Ok(Consistency { old, new, proof })
}
