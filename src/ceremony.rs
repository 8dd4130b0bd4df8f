//! Key ceremonies: a declarative script, validated whole, then run step by step against the HSM
//! in front of witnesses, with every step recorded in a hash-chained transcript.
//!
//! ```text
//!   script.toml ──parse+validate──▶ Script ──login, pre-flight──▶ for each step:
//!                  (no HSM yet)                (labels free,        confirm (unless --yes)
//!                                               URI keys found)     run: HSM work + checks
//!                                                                    write outputs (create-new)
//!                                                                    append transcript event
//! ```
//!
//! A script that fails validation or pre-flight changes nothing: no HSM object, no file, no
//! transcript line.

pub mod script;
pub mod steps;
pub mod transcript;

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use serde_json::json;
use sha2::{Digest, Sha256};

use self::script::{KeyRef, Script};
use self::steps::Step;
use self::transcript::Transcript;
use crate::hsm::{Hsm, KeyUri};

/// Options for [`run`].
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The ceremony directory: relative paths in the script are relative to it, and the
    /// transcript (`transcript.jsonl`) is written in it.
    pub dir: PathBuf,
    /// Skip the per-step confirmation (rehearsals and CI).
    pub yes: bool,
    /// Use this PKCS#11 module instead of the script's `hsm.module` (recorded in the transcript).
    pub module: Option<PathBuf>,
}

/// A ceremony failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The script could not be read.
    #[error("cannot read script {path}: {reason}")]
    Read {
        /// The script path.
        path: String,
        /// Why.
        reason: String,
    },
    /// The script is invalid; nothing was done.
    #[error(
        "{path}: {source}\nnothing was done: no HSM object, file or transcript line was written"
    )]
    Script {
        /// The script path.
        path: String,
        /// The error, naming the step, field and rule.
        source: script::ScriptError,
    },
    /// Login or pre-flight failed; nothing was done.
    #[error("{0}\nnothing was done: no HSM object, file or transcript line was written")]
    Preflight(String),
    /// A step failed; the steps before it completed and are in the transcript.
    #[error("step {number} ({action} {id:?}) failed: {source}")]
    Step {
        /// 1-based step number.
        number: usize,
        /// The step's action.
        action: &'static str,
        /// The step's id.
        id: String,
        /// Why.
        source: Box<steps::Error>,
    },
    /// The transcript could not be written; the ceremony stopped.
    #[error("transcript: {0}")]
    Transcript(#[source] transcript::Error),
}

/// Reads and validates a script without touching the HSM or writing anything.
pub fn check(script_path: &Path, dir: &Path) -> Result<Script, Error> {
    let text = std::fs::read_to_string(script_path).map_err(|e| Error::Read {
        path: script_path.display().to_string(),
        reason: e.to_string(),
    })?;
    Script::parse(&text, dir, crate::time::now_seconds()).map_err(|source| Error::Script {
        path: script_path.display().to_string(),
        source,
    })
}

/// Runs a ceremony script.
pub fn run(script_path: &Path, opts: &RunOptions) -> Result<(), Error> {
    let text = std::fs::read(script_path).map_err(|e| Error::Read {
        path: script_path.display().to_string(),
        reason: e.to_string(),
    })?;
    let script_sha256 = hex::encode(Sha256::digest(&text));
    let script = check(script_path, &opts.dir)?;

    // Log in and check everything the steps will need from the token, before writing anything.
    let hsm = match &script.hsm {
        None => None,
        Some(cfg) => {
            let module = opts.module.clone().unwrap_or_else(|| cfg.module.clone());
            let what = format!("user PIN for {}", cfg.token);
            let pin = cfg
                .pin
                .read(&what)
                .map_err(|e| Error::Preflight(format!("hsm.pin: {e}")))?;
            let hsm = Hsm::open(&module, &cfg.token, &pin)
                .map_err(|e| Error::Preflight(format!("hsm: {e}")))?;
            Some(hsm)
        }
    };
    let mut uri_keys = HashMap::new();
    if let Some(hsm) = &hsm {
        for (i, step) in script.steps.iter().enumerate() {
            let fail = |field: &str, e: String| {
                Error::Preflight(format!(
                    "step {} ({} {:?}): {field}: {e}",
                    i + 1,
                    step.action(),
                    step.id()
                ))
            };
            if let Some(label) = step.new_label() {
                if hsm
                    .label_in_use(label)
                    .map_err(|e| fail("label", e.to_string()))?
                {
                    return Err(fail(
                        "label",
                        format!(
                            "an object labelled {label:?} already exists on the token; refusing to generate"
                        ),
                    ));
                }
            }
            for (field, key) in step.key_refs() {
                if let KeyRef::Uri(u) = key {
                    let uri = u
                        .parse::<KeyUri>()
                        .map_err(|e| fail(field, e.to_string()))?;
                    let handle = hsm.find_key(&uri).map_err(|e| fail(field, e.to_string()))?;
                    let _ = uri_keys.insert(u.clone(), handle);
                }
            }
        }
    }

    std::fs::create_dir_all(&opts.dir).map_err(|source| {
        Error::Transcript(transcript::Error::CreateDir {
            dir: opts.dir.clone(),
            source,
        })
    })?;
    let mut transcript =
        Transcript::open(&opts.dir.join("transcript.jsonl")).map_err(Error::Transcript)?;
    transcript
        .record(
            "ceremony-start",
            json!({
                "ceremony": script.header.name,
                "description": script.header.description,
                "tool": format!("strongroom {}", env!("CARGO_PKG_VERSION")),
                "script": script_path.display().to_string(),
                "script_sha256": script_sha256,
                "directory": opts.dir.display().to_string(),
                "started_at": crate::time::rfc3339(script.started_at),
                "confirmation": if opts.yes { "skipped (--yes: rehearsal)" } else { "operator confirms each signing step" },
                "hsm": hsm.as_ref().map(|h| serde_json::to_value(h.description()).unwrap_or_default()),
                "pin_source": script.hsm.as_ref().map(|h| h.pin.to_string()),
                "steps": script.steps.iter().map(|s| format!("{} {}", s.action(), s.id())).collect::<Vec<_>>(),
            }),
        )
        .map_err(Error::Transcript)?;

    let mut ctx = steps::Ctx {
        hsm: hsm.as_ref(),
        started_at: script.started_at,
        outputs: HashMap::new(),
        uri_keys,
        written: Vec::new(),
    };
    for (i, step) in script.steps.iter().enumerate() {
        let step_error = |source: steps::Error| Error::Step {
            number: i + 1,
            action: step.action(),
            id: step.id().to_string(),
            source: Box::new(source),
        };
        if step.signs() && !opts.yes {
            if let Err(reason) = confirm(i + 1, step) {
                transcript
                    .record("step-refused", json!({"step": i + 1, "id": step.id(), "action": step.action(), "reason": reason.to_string()}))
                    .map_err(Error::Transcript)?;
                return Err(step_error(reason));
            }
        }
        match step.run(&mut ctx) {
            Ok((output, details)) => {
                transcript
                    .record(
                        "step",
                        json!({"step": i + 1, "id": step.id(), "action": step.action(), "result": "ok", "details": details}),
                    )
                    .map_err(Error::Transcript)?;
                let _ = ctx.outputs.insert(step.id().to_string(), output);
            }
            Err(reason) => {
                transcript
                    .record(
                        "step-failed",
                        json!({"step": i + 1, "id": step.id(), "action": step.action(), "error": reason.to_string()}),
                    )
                    .map_err(Error::Transcript)?;
                return Err(step_error(reason));
            }
        }
    }
    let outputs: Vec<_> = ctx
        .written
        .iter()
        .map(|(p, sha)| json!({"path": p.display().to_string(), "sha256": sha}))
        .collect();
    transcript
        .record(
            "ceremony-end",
            json!({"result": "all steps completed", "outputs": outputs}),
        )
        .map_err(Error::Transcript)?;
    println!("transcript: {}", transcript.path().display());
    Ok(())
}

/// Asks the operator to confirm a signing step (BR 4.3.1.1: CA key use under multi-person
/// control; the witnesses see each signing before it happens).
fn confirm(number: usize, step: &Step) -> Result<(), steps::Error> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(steps::Error::NotConfirmed("confirmation needed but standard input is not a terminal; run interactively, or pass --yes for a rehearsal".into()));
    }
    print!(
        "step {number}: {} {:?} will sign with a CA key. Type 'yes' to proceed: ",
        step.action(),
        step.id()
    );
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|e| steps::Error::NotConfirmed(e.to_string()))?;
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(steps::Error::NotConfirmed(format!(
            "the operator did not confirm (answered {:?})",
            answer.trim()
        )))
    }
}
