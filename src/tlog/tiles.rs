//! Tile paths and reading (C2SP tlog-tiles): hash tiles `tile/<L>/<N>[.p/<W>]`, entry bundles
//! `tile/entries/<N>[.p/<W>]`, from a directory or over HTTP.

use std::collections::HashMap;
use std::path::PathBuf;

use super::Error;
use super::merkle::{Hash, SubtreeHashes, complete_root};

/// Tile height: 2^8 = 256 hashes or entries per full tile (C2SP tlog-tiles).
pub const HEIGHT: u32 = 8;
/// Hashes or entries in a full tile.
pub const WIDTH: u64 = 1 << HEIGHT;

/// `<N>` as 3-digit path elements, all but the last prefixed with `x` (C2SP tlog-tiles).
fn index_path(n: u64) -> String {
    let mut s = format!("{:03}", n % 1000);
    let mut n = n / 1000;
    while n > 0 {
        s = format!("x{:03}/{s}", n % 1000);
        n /= 1000;
    }
    s
}

fn with_width(base: String, width: u64) -> String {
    if width == WIDTH {
        base
    } else {
        format!("{base}.p/{width}")
    }
}

/// The path of hash tile `n` at `level` holding `width` hashes (1..=256).
pub fn tile_path(level: u32, n: u64, width: u64) -> String {
    with_width(format!("tile/{level}/{}", index_path(n)), width)
}

/// The path of entry bundle `n` holding `width` entries (1..=256).
pub fn bundle_path(n: u64, width: u64) -> String {
    with_width(format!("tile/entries/{}", index_path(n)), width)
}

/// Width of tile `n` at `level` in a tree of `size` leaves (0 when it does not exist).
pub fn tile_width(level: u32, n: u64, size: u64) -> u64 {
    let count = size >> (HEIGHT * level);
    count.saturating_sub(n * WIDTH).min(WIDTH)
}

/// Splits an entry bundle into its entries, each prefixed with a 2-byte big-endian length
/// (C2SP tlog-tiles); exactly `width` entries and nothing after them.
///
/// # Errors
/// [`Error::Malformed`] naming the path.
pub fn split_bundle<'a>(path: &str, data: &'a [u8], width: u64) -> Result<Vec<&'a [u8]>, Error> {
    let mut out = Vec::with_capacity(width as usize);
    let mut rest = data;
    while !rest.is_empty() {
        if rest.len() < 2 {
            return Err(Error::Malformed {
                path: path.into(),
                reason: "truncated entry length".into(),
            });
        }
        let n = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        if rest.len() < 2 + n {
            return Err(Error::Malformed {
                path: path.into(),
                reason: format!(
                    "entry {} announces {n} bytes but the bundle ends first",
                    out.len()
                ),
            });
        }
        out.push(&rest[2..2 + n]);
        rest = &rest[2 + n..];
    }
    if out.len() as u64 != width {
        return Err(Error::Malformed {
            path: path.into(),
            reason: format!("holds {} entries, expected {width}", out.len()),
        });
    }
    Ok(out)
}

/// Where a published log is read from: a directory or an `http://` URL.
#[derive(Clone, Debug)]
pub enum Source {
    /// A local directory.
    Dir(PathBuf),
    /// A base URL, served as static files.
    Http(String),
}

/// Largest file fetched: a full bundle of maximal entries.
const MAX_FILE: u64 = 256 * 65_537 + 1;

impl Source {
    /// A URL (`http://` or `https://`) or else a directory path.
    pub fn parse(s: &str) -> Self {
        if s.starts_with("http://") || s.starts_with("https://") {
            Self::Http(s.trim_end_matches('/').to_owned())
        } else {
            Self::Dir(PathBuf::from(s))
        }
    }

    /// The file at `rel`, or `None` when it does not exist.
    ///
    /// # Errors
    /// [`Error::Io`] / [`Error::Http`] for other failures.
    pub fn get(&self, rel: &str) -> Result<Option<Vec<u8>>, Error> {
        match self {
            Self::Dir(d) => {
                let p = d.join(rel);
                match std::fs::read(&p) {
                    Ok(v) => Ok(Some(v)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(Error::Io {
                        path: p.display().to_string(),
                        source: e,
                    }),
                }
            }
            Self::Http(base) => {
                let url = format!("{base}/{rel}");
                match ureq::get(&url).call() {
                    Ok(r) => r
                        .into_body()
                        .with_config()
                        .limit(MAX_FILE)
                        .read_to_vec()
                        .map(Some)
                        .map_err(|e| Error::Http {
                            url,
                            reason: e.to_string(),
                        }),
                    Err(ureq::Error::StatusCode(404)) => Ok(None),
                    Err(e) => Err(Error::Http {
                        url,
                        reason: e.to_string(),
                    }),
                }
            }
        }
    }

    /// The file at `rel`; missing is an error naming what needed it.
    ///
    /// # Errors
    /// [`Error::Missing`] and read errors.
    pub fn need(&self, rel: &str, size: u64) -> Result<Vec<u8>, Error> {
        self.get(rel)?.ok_or_else(|| Error::Missing {
            path: rel.to_owned(),
            size,
        })
    }
}

/// Reads subtree hashes from the hash tiles of a tree of `size` leaves, keeping a few tiles.
pub struct TileHashes<'a> {
    source: &'a Source,
    size: u64,
    cache: HashMap<(u32, u64), Vec<u8>>,
}

impl<'a> TileHashes<'a> {
    /// A reader of the tiles of the tree of `size` leaves published at `source`.
    pub fn new(source: &'a Source, size: u64) -> Self {
        Self {
            source,
            size,
            cache: HashMap::new(),
        }
    }

    /// The hashes of tile `n` at `level`, read whole at the width the tree size gives.
    ///
    /// # Errors
    /// Missing or malformed tile.
    pub fn tile(&mut self, level: u32, n: u64) -> Result<&[u8], Error> {
        if !self.cache.contains_key(&(level, n)) {
            let width = tile_width(level, n, self.size);
            if width == 0 {
                return Err(Error::Proof(format!(
                    "tile {level}/{n} is beyond a tree of size {}",
                    self.size
                )));
            }
            let path = tile_path(level, n, width);
            let data = self.source.need(&path, self.size)?;
            if data.len() as u64 != width * 32 {
                return Err(Error::Malformed {
                    path,
                    reason: format!(
                        "{} bytes, expected {} hashes of 32 bytes",
                        data.len(),
                        width
                    ),
                });
            }
            if self.cache.len() >= 64 {
                self.cache.clear();
            }
            let _ = self.cache.insert((level, n), data);
        }
        Ok(self
            .cache
            .get(&(level, n))
            .map(Vec::as_slice)
            .unwrap_or_default())
    }
}

impl SubtreeHashes for TileHashes<'_> {
    fn subtree(&mut self, height: u32, index: u64) -> Result<Hash, Error> {
        let level = height / HEIGHT;
        let count = 1u64 << (height % HEIGHT);
        let first = index * count;
        let (n, off) = (first / WIDTH, (first % WIDTH) as usize);
        let tile = self.tile(level, n)?;
        let end = off + count as usize;
        if tile.len() < end * 32 {
            return Err(Error::Proof(format!(
                "subtree {height}/{index} is not complete in a tree of size {}",
                self.size
            )));
        }
        let hashes: Vec<Hash> = tile[off * 32..end * 32]
            .chunks_exact(32)
            .map(|c| {
                let mut h = [0u8; 32];
                h.copy_from_slice(c);
                h
            })
            .collect();
        complete_root(&hashes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The examples of C2SP tlog-tiles.
    #[test]
    fn paths_follow_c2sp_tlog_tiles() {
        assert_eq!(tile_path(0, 1_234_067, 256), "tile/0/x001/x234/067");
        assert_eq!(tile_path(1, 1_234_067, 5), "tile/1/x001/x234/067.p/5");
        assert_eq!(tile_path(0, 0, 256), "tile/0/000");
        assert_eq!(tile_path(2, 1000, 256), "tile/2/x001/000");
        assert_eq!(bundle_path(1_234_067, 8), "tile/entries/x001/x234/067.p/8");
        assert_eq!(tile_width(0, 0, 70_000), 256);
        assert_eq!(tile_width(0, 273, 70_000), 70_000 - 273 * 256);
        assert_eq!(tile_width(1, 1, 70_000), 273 - 256);
        assert_eq!(tile_width(2, 0, 70_000), 1);
        assert_eq!(tile_width(2, 0, 65_535), 0);
    }

    #[test]
    fn bundle_split_is_strict() {
        let b = [0, 1, 7, 0, 0];
        assert_eq!(split_bundle("p", &b, 2).unwrap(), vec![&[7u8][..], &[][..]]);
        assert!(split_bundle("p", &b, 3).is_err());
        assert!(split_bundle("p", &b[..4], 2).is_err());
    }
}
