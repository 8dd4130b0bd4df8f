//! The command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::secret::PinSource;

/// strongroom: HSM-backed key ceremonies and signing for a public certificate authority.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Key ceremonies.
    #[command(subcommand)]
    Ceremony(CeremonyCommand),
    /// Token administration.
    #[command(subcommand)]
    Hsm(HsmCommand),
    /// Run the whole demo ceremony on throwaway SoftHSM tokens in a new directory.
    Demo {
        /// The directory to create (must not exist or be empty).
        #[arg(long)]
        out: PathBuf,
        /// The SoftHSM PKCS#11 module (default: found in the usual Debian places).
        #[arg(long)]
        module: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum CeremonyCommand {
    /// Validate a script and run it step by step, recording a transcript.
    Run {
        /// The ceremony script (TOML).
        script: PathBuf,
        /// The ceremony directory: inputs and outputs are relative to it; the transcript goes in it.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Do not ask before each signing step (rehearsals and CI only).
        #[arg(long)]
        yes: bool,
        /// Use this PKCS#11 module instead of the script's hsm.module.
        #[arg(long)]
        module: Option<PathBuf>,
    },
    /// Validate a script without touching the HSM or writing anything.
    Check {
        /// The ceremony script (TOML).
        script: PathBuf,
        /// The ceremony directory.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Check a transcript's hash chain and print it readably.
    Transcript {
        /// The transcript (JSON lines).
        file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum HsmCommand {
    /// Initialise a free token slot and set its user PIN (SoftHSM; development and rehearsals).
    InitToken {
        /// The PKCS#11 module.
        #[arg(long)]
        module: PathBuf,
        /// The new token's label.
        #[arg(long)]
        label: String,
        /// File holding the security officer PIN.
        #[arg(long)]
        so_pin_file: PathBuf,
        /// File holding the user PIN.
        #[arg(long)]
        pin_file: PathBuf,
    },
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Ceremony(CeremonyCommand::Run {
            script,
            dir,
            yes,
            module,
        }) => crate::ceremony::run(&script, &crate::ceremony::RunOptions { dir, yes, module })
            .map_err(|e| e.to_string()),
        Command::Ceremony(CeremonyCommand::Check { script, dir }) => {
            crate::ceremony::check(&script, &dir)
                .map(|s| println!("{}: valid ({} steps)", script.display(), s.steps.len()))
                .map_err(|e| e.to_string())
        }
        Command::Ceremony(CeremonyCommand::Transcript { file }) => render_transcript(&file),
        Command::Hsm(HsmCommand::InitToken {
            module,
            label,
            so_pin_file,
            pin_file,
        }) => init_token(&module, &label, so_pin_file, pin_file),
        Command::Demo { out, module } => crate::demo::run(&out, module),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_token(
    module: &std::path::Path,
    label: &str,
    so_pin_file: PathBuf,
    pin_file: PathBuf,
) -> Result<(), String> {
    let so = PinSource::File(so_pin_file)
        .read("SO PIN")
        .map_err(|e| e.to_string())?;
    let user = PinSource::File(pin_file)
        .read("user PIN")
        .map_err(|e| e.to_string())?;
    crate::hsm::Hsm::init_token(module, label, &so, &user).map_err(|e| e.to_string())?;
    println!("token {label:?} initialised");
    Ok(())
}

fn render_transcript(file: &std::path::Path) -> Result<(), String> {
    let summary = crate::ceremony::transcript::verify(file)?;
    let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    for line in text.lines() {
        println!("{}", crate::ceremony::transcript::render_line(line));
    }
    println!(
        "\ntranscript chain verified: {} events, last line SHA-256 {}",
        summary.lines, summary.last_sha256
    );
    Ok(())
}
