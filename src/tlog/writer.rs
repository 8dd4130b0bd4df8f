//! Appends a batch of entries to a tiled log directory, then signs and writes the checkpoint.
//!
//! Files are written atomically (a temporary file in the same directory, fsync, rename, fsync
//! of the directory). Full tiles and bundles are immutable: one that exists is compared, never
//! rewritten. Partial ones are replaced whole. Memory holds only the right edge of the tree
//! (at most 255 hashes per level and one partial bundle), whatever the log's size.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use super::Error;
use super::entry::Entry;
use super::merkle::{self, Hash, complete_root, leaf_hash};
use super::note::{Checkpoint, VerifierKey, open_checkpoint, sign_checkpoint};
use super::tiles::{HEIGHT, Source, TileHashes, WIDTH, bundle_path, split_bundle, tile_path};

/// The checkpoint's file name in the log directory.
pub const CHECKPOINT: &str = "checkpoint";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Io {
        path: path.display().to_string(),
        source: e,
    }
}

/// Writes `data` to `dir/rel` atomically. The temporary file has a fixed name, so one left
/// by a killed writer is truncated and reused, never read.
fn write_atomic(dir: &Path, rel: &str, data: &[u8]) -> Result<(), Error> {
    let path = dir.join(rel);
    let parent = path.parent().unwrap_or(dir);
    fs::create_dir_all(parent).map_err(io(parent))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{name}.tmp"));
    let mut f = File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(data).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    drop(f);
    fs::rename(&tmp, &path).map_err(io(&path))?;
    File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(io(parent))
}

/// Writes a full tile or bundle: if it exists it must hold exactly `data` (C2SP tlog-tiles:
/// full tiles never change).
fn write_full(dir: &Path, rel: &str, data: &[u8]) -> Result<(), Error> {
    let path = dir.join(rel);
    match fs::read(&path) {
        Ok(old) if old == data => Ok(()),
        Ok(_) => Err(Error::FullTileChanged {
            path: rel.to_owned(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => write_atomic(dir, rel, data),
        Err(e) => Err(Error::Io {
            path: path.display().to_string(),
            source: e,
        }),
    }
}

/// The right edge of the tree while appending.
struct Edge<'d> {
    dir: &'d Path,
    /// Per level: the hashes of its last, incomplete tile.
    levels: Vec<Vec<Hash>>,
    /// Per level: how many hashes it holds in all.
    counts: Vec<u64>,
    /// The last, incomplete entry bundle, length-prefixed, and how many entries it holds.
    bundle: Vec<u8>,
    bundle_count: u64,
    size: u64,
}

impl Edge<'_> {
    fn push_hash(&mut self, level: usize, h: Hash) -> Result<(), Error> {
        if self.levels.len() <= level {
            self.levels.push(Vec::new());
            self.counts.push(0);
        }
        self.levels[level].push(h);
        self.counts[level] += 1;
        if self.levels[level].len() as u64 == WIDTH {
            let n = self.counts[level] / WIDTH - 1;
            let data = self.levels[level].concat();
            write_full(self.dir, &tile_path(level as u32, n, WIDTH), &data)?;
            let parent = complete_root(&self.levels[level])?;
            self.levels[level].clear();
            self.push_hash(level + 1, parent)?;
        }
        Ok(())
    }

    fn push_entry(&mut self, e: &[u8]) -> Result<(), Error> {
        let len =
            u16::try_from(e.len()).map_err(|_| Error::Usage("entry over 65535 bytes".into()))?;
        self.bundle.extend_from_slice(&len.to_be_bytes());
        self.bundle.extend_from_slice(e);
        self.bundle_count += 1;
        self.size += 1;
        if self.bundle_count == WIDTH {
            write_full(
                self.dir,
                &bundle_path(self.size / WIDTH - 1, WIDTH),
                &self.bundle,
            )?;
            self.bundle.clear();
            self.bundle_count = 0;
        }
        self.push_hash(0, leaf_hash(e))
    }

    /// Writes every partial tile and the partial bundle, replaced whole.
    fn flush(&self) -> Result<(), Error> {
        if self.bundle_count > 0 {
            write_atomic(
                self.dir,
                &bundle_path(self.size / WIDTH, self.bundle_count),
                &self.bundle,
            )?;
        }
        for (level, hashes) in self.levels.iter().enumerate() {
            if !hashes.is_empty() {
                let n = self.counts[level] / WIDTH;
                write_atomic(
                    self.dir,
                    &tile_path(level as u32, n, hashes.len() as u64),
                    &hashes.concat(),
                )?;
            }
        }
        Ok(())
    }
}

/// Loads the right edge of the published tree of `size` leaves: its partial tiles and partial
/// bundle. The partial bundle's entries are re-hashed and must match the level-0 tile.
fn load_edge<'d>(dir: &'d Path, size: u64) -> Result<Edge<'d>, Error> {
    let src = Source::Dir(dir.to_path_buf());
    let mut edge = Edge {
        dir,
        levels: Vec::new(),
        counts: Vec::new(),
        bundle: Vec::new(),
        bundle_count: 0,
        size,
    };
    let mut level = 0u32;
    while size >> (HEIGHT * level) > 0 {
        let count = size >> (HEIGHT * level);
        let width = count % WIDTH;
        let mut hashes = Vec::new();
        if width > 0 {
            let path = tile_path(level, count / WIDTH, width);
            let data = src.need(&path, size)?;
            if data.len() as u64 != width * 32 {
                return Err(Error::Malformed {
                    path,
                    reason: format!("expected {width} hashes"),
                });
            }
            hashes = data
                .chunks_exact(32)
                .map(|c| {
                    let mut h = [0u8; 32];
                    h.copy_from_slice(c);
                    h
                })
                .collect();
        }
        edge.levels.push(hashes);
        edge.counts.push(count);
        level += 1;
    }
    let width = size % WIDTH;
    if width > 0 {
        let path = bundle_path(size / WIDTH, width);
        let data = src.need(&path, size)?;
        let leaves: Vec<Hash> = split_bundle(&path, &data, width)?
            .iter()
            .map(|e| leaf_hash(e))
            .collect();
        if edge.levels.first() != Some(&leaves) {
            return Err(Error::TileMismatch {
                path: tile_path(0, size / WIDTH, width),
            });
        }
        edge.bundle = data;
        edge.bundle_count = width;
    }
    Ok(edge)
}

/// Appends `entries` to the log in `dir` and publishes a checkpoint signed by `sign`.
///
/// The previous checkpoint, if any, must verify under `key` and the new tree must be
/// consistent with it (a consistency proof read back from the tiles is checked); otherwise
/// nothing is signed and the old checkpoint stays. The checkpoint is written last.
///
/// # Errors
/// Any [`Error`]: a bad entry, a changed full tile, an inconsistent tree, a failed signer.
pub fn append<E: std::fmt::Display>(
    dir: &Path,
    key: &VerifierKey,
    entries: impl IntoIterator<Item = Entry>,
    sign: impl FnOnce(&[u8]) -> Result<[u8; 64], E>,
) -> Result<Checkpoint, Error> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    let cp_path = dir.join(CHECKPOINT);
    let old = match fs::read(&cp_path) {
        Ok(note) => Some(open_checkpoint(&note, key)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(Error::Io {
                path: cp_path.display().to_string(),
                source: e,
            });
        }
    };
    let old_size = old.as_ref().map_or(0, |c| c.size);
    let mut edge = load_edge(dir, old_size)?;
    for (i, e) in entries.into_iter().enumerate() {
        let bytes = e.encode().map_err(|source| Error::EntryAt {
            index: old_size + i as u64,
            source,
        })?;
        edge.push_entry(&bytes)?;
    }
    edge.flush()?;
    let size = edge.size;
    drop(edge);

    let src = Source::Dir(dir.to_path_buf());
    let mut reader = TileHashes::new(&src, size);
    let root = merkle::tree_hash(&mut reader, size)?;
    if let Some(old) = &old {
        // Never sign a tree that does not extend the last signed one (RFC 9162 §2.1.4).
        let proof = merkle::consistency_proof(&mut reader, old.size, size)?;
        merkle::verify_consistency(old.size, size, &old.root, &root, &proof).map_err(|e| {
            Error::Inconsistent {
                old_size: old.size,
                new_size: size,
                reason: e.to_string(),
            }
        })?;
    }
    let cp = Checkpoint {
        origin: key.name.clone(),
        size,
        root,
    };
    let note = sign_checkpoint(&cp, key, sign)?;
    write_atomic(dir, CHECKPOINT, note.as_bytes())?;
    Ok(cp)
}
