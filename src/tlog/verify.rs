//! What outsiders run: verify a whole published log, prove inclusion, prove consistency.

use std::collections::BTreeMap;

use super::Error;
use super::entry::{Body, Entry};
use super::merkle::{self, Hash, complete_root, leaf_hash};
use super::note::{Checkpoint, VerifierKey, open_checkpoint};
use super::tiles::{Source, TileHashes, WIDTH, bundle_path, split_bundle, tile_path, tile_width};
use super::writer::CHECKPOINT;

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
    let note = source.get(CHECKPOINT)?.ok_or_else(|| Error::Missing {
        path: CHECKPOINT.into(),
        size: 0,
    })?;
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

/// Verifies a whole published log: the checkpoint's signature, every entry parsed, every
/// hash tile recomputed from the entries, and the root hash recomputed from the tiles.
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
    let bundles = cp.size.div_ceil(WIDTH);
    for b in 0..bundles {
        let width = tile_width(0, b, cp.size);
        let path = bundle_path(b, width);
        let data = source.need(&path, cp.size)?;
        for (i, e) in split_bundle(&path, &data, width)?.into_iter().enumerate() {
            let index = b * WIDTH + i as u64;
            let entry = Entry::parse(e).map_err(|source| Error::EntryAt { index, source })?;
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
