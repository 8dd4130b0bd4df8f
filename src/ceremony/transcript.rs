//! The ceremony transcript: an append-only JSON-lines file, one event per line, each line carrying
//! the SHA-256 of the line before it, so an auditor can check nothing was removed, reordered or
//! edited (`strongroom ceremony transcript FILE`). The same events are printed for the witnesses
//! as they happen. No event ever holds a PIN: PINs are not in scope of any code that writes here.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::time::now_rfc3339;

/// The SHA-256 the first line of a transcript chains to.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

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
    pub fn open(path: &Path) -> Result<Transcript, String> {
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
            .map_err(|e| format!("cannot open transcript {}: {e}", path.display()))?;
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
    pub fn record(&mut self, event: &str, fields: Value) -> Result<(), String> {
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
            .map_err(|e| format!("cannot write transcript {}: {e}", self.path.display()))?;
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
pub fn verify(path: &Path) -> Result<Summary, String> {
    let file =
        File::open(path).map_err(|e| format!("cannot read transcript {}: {e}", path.display()))?;
    let mut prev = GENESIS.to_string();
    let mut lines = 0u64;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("{}: line {}: {e}", path.display(), i + 1))?;
        let value: Value = serde_json::from_str(&line)
            .map_err(|e| format!("{}: line {}: not JSON: {e}", path.display(), i + 1))?;
        if value["seq"] != json!(i as u64 + 1) {
            return Err(format!(
                "{}: line {}: sequence number {} out of order",
                path.display(),
                i + 1,
                value["seq"]
            ));
        }
        if value["prev_sha256"] != json!(prev) {
            return Err(format!(
                "{}: line {}: prev_sha256 does not match the previous line: the transcript was edited, reordered or truncated",
                path.display(),
                i + 1
            ));
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
        assert!(verify(&path).unwrap_err().contains("line 3"));

        let deleted = [lines[0], lines[2], lines[3]].join("\n");
        std::fs::write(&path, deleted).unwrap();
        assert!(verify(&path).unwrap_err().contains("line 2"));

        let swapped = [lines[0], lines[2], lines[1], lines[3]].join("\n");
        std::fs::write(&path, swapped).unwrap();
        assert!(verify(&path).is_err());
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
