//! `strongroom log verify|prove|consistency`: the outsider's commands.

use std::path::PathBuf;

use base64ct::{Base64, Encoding};
use clap::Subcommand;

use super::Error;
use super::note::VerifierKey;
use super::tiles::Source;
use super::verify;

/// The `strongroom log` subcommands. LOG is a directory or an `http://` URL.
#[derive(Subcommand, Debug)]
pub enum LogCommand {
    /// Check the checkpoint's signature, every entry, every tile and the root hash.
    Verify {
        /// The published log: a directory or an http:// URL.
        log: String,
        /// The log's verifier key, `<name>+<hex id>+<base64 key>`.
        #[arg(long)]
        key: String,
    },
    /// Prove an entry is in the log (by index or by certificate file) and print the proof.
    Prove {
        /// The published log: a directory or an http:// URL.
        log: String,
        /// The log's verifier key.
        #[arg(long)]
        key: String,
        /// The entry's index.
        #[arg(long, conflicts_with = "cert", required_unless_present = "cert")]
        index: Option<u64>,
        /// A certificate file (PEM or DER) to find in the log.
        #[arg(long)]
        cert: Option<PathBuf>,
    },
    /// Prove checkpoint NEW extends checkpoint OLD and print the proof.
    Consistency {
        /// The older checkpoint file.
        old: PathBuf,
        /// The newer checkpoint file.
        new: PathBuf,
        /// The published log the hashes come from.
        #[arg(long)]
        log: String,
        /// The log's verifier key.
        #[arg(long)]
        key: String,
    },
}

fn read(p: &PathBuf) -> Result<Vec<u8>, Error> {
    std::fs::read(p).map_err(|e| Error::Io {
        path: p.display().to_string(),
        source: e,
    })
}

/// Runs one subcommand, printing its result on stdout.
///
/// # Errors
/// Any verification failure, as text for the user.
pub fn run(cmd: LogCommand) -> Result<(), String> {
    run_inner(cmd).map_err(|e| e.to_string())
}

fn run_inner(cmd: LogCommand) -> Result<(), Error> {
    match cmd {
        LogCommand::Verify { log, key } => {
            let key = VerifierKey::parse(&key)?;
            let r = verify::verify(&Source::parse(&log), &key)?;
            println!("log verified: origin {}", r.checkpoint.origin);
            println!("tree_size {}", r.checkpoint.size);
            println!("root_hash {}", Base64::encode_string(&r.checkpoint.root));
            for (t, n) in &r.by_type {
                println!("entries {t} {n}");
            }
        }
        LogCommand::Prove {
            log,
            key,
            index,
            cert,
        } => {
            let key = VerifierKey::parse(&key)?;
            let src = Source::parse(&log);
            let inc = match (index, cert) {
                (Some(i), _) => verify::prove_index(&src, &key, i)?,
                (None, Some(c)) => {
                    let data = read(&c)?;
                    let der = match pem_rfc7468::decode_vec(&data) {
                        Ok((_, der)) => der,
                        Err(_) => data,
                    };
                    verify::prove_certificate(&src, &key, &der)?
                }
                (None, None) => return Err(Error::Usage("give --index N or --cert FILE".into())),
            };
            println!("index {}", inc.index);
            println!("tree_size {}", inc.checkpoint.size);
            println!("root_hash {}", Base64::encode_string(&inc.checkpoint.root));
            println!("entry {}", Base64::encode_string(&inc.entry));
            for h in &inc.proof {
                println!("proof {}", Base64::encode_string(h));
            }
        }
        LogCommand::Consistency { old, new, log, key } => {
            let key = VerifierKey::parse(&key)?;
            let c = verify::consistency(&Source::parse(&log), &key, &read(&old)?, &read(&new)?)?;
            println!("old_size {}", c.old.size);
            println!("new_size {}", c.new.size);
            for h in &c.proof {
                println!("proof {}", Base64::encode_string(h));
            }
        }
    }
    Ok(())
}
