//! The ceremony transcript: an append-only JSON-lines file, one event per line, each line carrying
//! the SHA-256 of the line before it, so an auditor can check nothing was removed, reordered or
//! edited (`strongroom ceremony transcript FILE`). The same events are printed for the witnesses
//! as they happen. No event ever holds a PIN: PINs are not in scope of any code that writes here.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::time::now_rfc3339;

/// The SHA-256 the first line of a transcript chains to.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Why a transcript could not be opened, written or verified. Each message names the file (and
/// the line, for a broken chain).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The directory the transcript goes in could not be created.
    #[error("cannot create {}: {source}", .dir.display())]
    CreateDir {
        /// The directory.
        dir: PathBuf,
        /// The system's error.
        source: io::Error,
    },
    /// The transcript could not be opened for appending.
    #[error("cannot open transcript {}: {source}", .path.display())]
    Open {
        /// The transcript.
        path: PathBuf,
        /// The system's error.
        source: io::Error,
    },
    /// An event could not be written or synced to disk.
    #[error("cannot write transcript {}: {source}", .path.display())]
    Write {
        /// The transcript.
        path: PathBuf,
        /// The system's error.
        source: io::Error,
    },
    /// The transcript could not be opened for reading.
    #[error("cannot read transcript {}: {source}", .path.display())]
    Read {
        /// The transcript.
        path: PathBuf,
        /// The system's error.
        source: io::Error,
    },
    /// A line could not be read (I/O error or not UTF-8).
    #[error("{}: line {line}: {source}", .path.display())]
    ReadLine {
        /// The transcript.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The system's error.
        source: io::Error,
    },
    /// A line is not JSON.
    #[error("{}: line {line}: not JSON: {source}", .path.display())]
    NotJson {
        /// The transcript.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// A line's `seq` is not its line number.
    #[error("{}: line {line}: sequence number {seq} out of order", .path.display())]
    Sequence {
        /// The transcript.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The line's `seq` value as found (`null` when absent).
        seq: Value,
    },
    /// A line's `prev_sha256` is not the SHA-256 of the line before it.
    #[error(
        "{}: line {line}: prev_sha256 does not match the previous line: the transcript was edited, reordered or truncated",
        .path.display()
    )]
    Chain {
        /// The transcript.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
}

/// An open transcript.
pub struct Transcript {
    path: PathBuf,
    file: File,
    prev: String,
    seq: u64,
}

impl Transcript {
    /// Opens (creating if needed) the transcript at `path` for appending, after checking the
    /// chain of what is already there.
    pub fn open(path: &Path) -> Result<Transcript, Error> {
        let (prev, seq) = if path.exists() {
            let summary = verify(path)?;
            (summary.last_sha256, summary.lines)
        } else {
            (GENESIS.to_string(), 0)
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| Error::Open {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Transcript {
            path: path.to_path_buf(),
            file,
            prev,
            seq,
        })
    }

    /// The transcript's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event, flushes it to disk (fsync) and prints its readable form.
    pub fn record(&mut self, event: &str, fields: Value) -> Result<(), Error> {
        let mut line = Map::new();
        let _ = line.insert("seq".into(), json!(self.seq + 1));
        let _ = line.insert("time".into(), json!(now_rfc3339()));
        let _ = line.insert("event".into(), json!(event));
        if let Value::Object(map) = fields {
            line.extend(map);
        }
        let _ = line.insert("prev_sha256".into(), json!(self.prev));
        let text = Value::Object(line).to_string();
        writeln!(self.file, "{text}")
            .and_then(|()| self.file.sync_data())
            .map_err(|source| Error::Write {
                path: self.path.clone(),
                source,
            })?;
        self.prev = hex::encode(Sha256::digest(text.as_bytes()));
        self.seq += 1;
        println!("{}", render_line(&text));
        Ok(())
    }
}

/// What [`verify`] found.
#[derive(Debug)]
pub struct Summary {
    /// Number of events.
    pub lines: u64,
    /// SHA-256 of the last line.
    pub last_sha256: String,
}

/// Checks a transcript's chain: every line is JSON, numbered in sequence, and carries the
/// SHA-256 of the previous line. Reports the first broken link.
pub fn verify(path: &Path) -> Result<Summary, Error> {
    let file = File::open(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut prev = GENESIS.to_string();
    let mut lines = 0u64;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| Error::ReadLine {
            path: path.to_path_buf(),
            line: i + 1,
            source,
        })?;
        let value: Value = serde_json::from_str(&line).map_err(|source| Error::NotJson {
            path: path.to_path_buf(),
            line: i + 1,
            source,
        })?;
        if value["seq"] != json!(i as u64 + 1) {
            return Err(Error::Sequence {
                path: path.to_path_buf(),
                line: i + 1,
                seq: value["seq"].clone(),
            });
        }
        if value["prev_sha256"] != json!(prev) {
            return Err(Error::Chain {
                path: path.to_path_buf(),
                line: i + 1,
            });
        }
        prev = hex::encode(Sha256::digest(line.as_bytes()));
        lines += 1;
    }
    Ok(Summary {
        lines,
        last_sha256: prev,
    })
}

/// The readable form of one transcript line.
pub fn render_line(line: &str) -> String {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(line) else {
        return line.to_string();
    };
    let mut out = format!(
        "[{}] {} {}",
        map.get("seq").map(Value::to_string).unwrap_or_default(),
        map.get("time").and_then(Value::as_str).unwrap_or(""),
        map.get("event").and_then(Value::as_str).unwrap_or("")
    );
    for (k, v) in &map {
        if matches!(k.as_str(), "seq" | "time" | "event" | "prev_sha256") {
            continue;
        }
        render_value(&mut out, 1, k, v);
    }
    out
}

fn render_value(out: &mut String, depth: usize, key: &str, value: &Value) {
    let indent = "    ".repeat(depth);
    match value {
        Value::Object(map) => {
            out.push_str(&format!("\n{indent}{key}:"));
            for (k, v) in map {
                render_value(out, depth + 1, k, v);
            }
        }
        Value::Array(items) if items.iter().any(|v| v.is_object()) => {
            out.push_str(&format!("\n{indent}{key}:"));
            for (i, v) in items.iter().enumerate() {
                render_value(out, depth + 1, &format!("[{i}]"), v);
            }
        }
        Value::String(s) => out.push_str(&format!("\n{indent}{key}: {s}")),
        other => out.push_str(&format!("\n{indent}{key}: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_detects_edits_deletions_and_reordering() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        {
            let mut t = Transcript::open(&path).unwrap();
            for i in 0..3 {
                t.record("step", json!({"n": i})).unwrap();
            }
        }
        assert_eq!(verify(&path).unwrap().lines, 3);
        // Reopening continues the chain.
        Transcript::open(&path)
            .unwrap()
            .record("again", json!({}))
            .unwrap();
        assert_eq!(verify(&path).unwrap().lines, 4);

        let original = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = original.lines().collect();
        let edited = original.replace("\"n\":1", "\"n\":7");
        std::fs::write(&path, edited).unwrap();
        assert_eq!(
            verify(&path).unwrap_err().to_string(),
            format!(
                "{}: line 3: prev_sha256 does not match the previous line: the transcript was edited, reordered or truncated",
                path.display()
            )
        );

        let deleted = [lines[0], lines[2], lines[3]].join("\n");
        std::fs::write(&path, deleted).unwrap();
        assert_eq!(
            verify(&path).unwrap_err().to_string(),
            format!("{}: line 2: sequence number 3 out of order", path.display())
        );

        let swapped = [lines[0], lines[2], lines[1], lines[3]].join("\n");
        std::fs::write(&path, swapped).unwrap();
        assert!(verify(&path).is_err());

        std::fs::write(&path, format!("{}\nnot json\n", lines[0])).unwrap();
        let err = verify(&path).unwrap_err().to_string();
        let prefix = format!("{}: line 2: not JSON: ", path.display());
        assert!(err.starts_with(&prefix), "{err}");

        let missing = dir.path().join("missing.jsonl");
        let err = verify(&missing).unwrap_err().to_string();
        let prefix = format!("cannot read transcript {}: ", missing.display());
        assert!(err.starts_with(&prefix), "{err}");
    }

    #[test]
    fn renders_nested_fields() {
        let line = r#"{"seq":1,"time":"t","event":"step","key":{"label":"root","id":"01"},"prev_sha256":"0"}"#;
        let text = render_line(line);
        assert!(
            text.contains("key:") && text.contains("label: root"),
            "{text}"
        );
        assert!(!text.contains("prev_sha256"));
    }
}
