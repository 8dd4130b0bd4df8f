//! `strongroom-bench`: benchmarks of the strongroom appliance, on throwaway SoftHSM tokens.
//!
//! A program of its own, so that the appliance (`strongroom`) offers no benchmark and no way
//! to sign without verification or record. It starts the appliance (`strongroom serve`, the
//! `strongroom` binary beside this one) as a child and measures it over its socket; its raw
//! phases sign with a session key pair they generate and destroy, never with an issuer key.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use strongroom::alg::KeyType;
use strongroom::bench;

/// strongroom-bench: the appliance's throughput as a ratio of the HSM's raw signing rate.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Raw C_Sign rate against full issuance over the socket, on a throwaway token.
    Issue {
        /// A new directory for the token, certificates and audit store.
        #[arg(long)]
        out: PathBuf,
        /// The issuing CA's key type: ec-p256, ec-p384, rsa-2048, ...
        #[arg(long, default_value = "ec-p256")]
        issuer: KeyType,
        /// Concurrent clients.
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// HSM sessions in the service's pool (the raw phases sign from one thread per session).
        #[arg(long, default_value_t = 2)]
        sessions: usize,
        /// Seconds per measurement.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Measure OCSP pre-signing instead: this many responses per /v1/ocsp/batch request.
        #[arg(long)]
        ocsp_batch: Option<usize>,
        /// Service phases, each between two raw phases; the report gives the median round.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=99))]
        rounds: u64,
        /// The service's `service.request-threads-nice` (default: the configuration default).
        #[arg(long, value_parser = clap::value_parser!(i32).range(0..=19))]
        request_threads_nice: Option<i32>,
        /// The service's `service.audit-commit-delay-us` (default: the configuration default).
        #[arg(long, value_parser = clap::value_parser!(u64).range(0..=10_000))]
        audit_commit_delay_us: Option<u64>,
        /// The clients' nice value (default: the service's request threads' value).
        #[arg(long, value_parser = clap::value_parser!(i32).range(0..=19))]
        clients_nice: Option<i32>,
    },
    /// One large CRL (a million entries by default) signed over the socket: wall time, CRL
    /// size, the service's peak RSS and their ratio, on a throwaway token.
    Crl {
        /// A new directory for the token, certificates and audit store.
        #[arg(long)]
        out: PathBuf,
        /// Entries in the CRL.
        #[arg(long, default_value_t = 1_000_000)]
        entries: usize,
        /// The issuing CA's key type: ec-p256, ec-p384, rsa-2048, ...
        #[arg(long, default_value = "ec-p256")]
        issuer: KeyType,
        /// The shard (of 128) every entry falls in.
        #[arg(long, default_value_t = 5)]
        shard: u32,
    },
    /// The service at saturation for a long time, its RSS sampled: is memory flat?
    Soak {
        /// A new directory for the token, certificates and audit store.
        #[arg(long)]
        out: PathBuf,
        /// The issuing CA's key type: ec-p256, ec-p384, rsa-2048, ...
        #[arg(long, default_value = "ec-p256")]
        issuer: KeyType,
        /// Concurrent clients.
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// HSM sessions.
        #[arg(long, default_value_t = 2)]
        sessions: usize,
        /// Minutes of load (at least 3).
        #[arg(long, default_value_t = 10)]
        minutes: u64,
        /// Seconds between RSS samples.
        #[arg(long, default_value_t = 5)]
        sample_seconds: u64,
    },
    /// The token's raw C_Sign rate with a session key pair of its own, generated for the run and
    /// destroyed after it (never an existing key); used by `issue` between its service phases.
    Raw {
        /// The PKCS#11 module (default: SoftHSM's, found in the usual Debian places).
        #[arg(long)]
        module: Option<PathBuf>,
        /// The token's label.
        #[arg(long)]
        token: String,
        /// File holding the user PIN (its first line).
        #[arg(long)]
        pin_file: PathBuf,
        /// The throwaway key pair's type: ec-p256, ec-p384, rsa-2048, ...
        #[arg(long, default_value = "ec-p256")]
        key_type: KeyType,
        /// Sessions, each signing from its own thread.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=64))]
        sessions: u64,
        /// Seconds of signing.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Generate the key pair as token objects (as an issuer key is) instead of session
        /// objects, for a rate comparable with a token key's; destroyed afterwards all the same.
        #[arg(long)]
        token_object: bool,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Issue {
            out,
            issuer,
            clients,
            sessions,
            seconds,
            ocsp_batch,
            rounds,
            request_threads_nice,
            audit_commit_delay_us,
            clients_nice,
        } => bench::run(&bench::Options {
            out,
            issuer,
            clients,
            sessions,
            seconds,
            rounds: usize::try_from(rounds).unwrap_or(1),
            tuning: bench::Tuning {
                request_threads_nice,
                audit_commit_delay_us,
            },
            workload: match ocsp_batch {
                Some(n) => bench::Workload::OcspBatch(n.max(1)),
                None => bench::Workload::Issue,
            },
            clients_nice,
        }),
        Command::Crl {
            out,
            entries,
            issuer,
            shard,
        } => bench::run_crl(&bench::CrlOptions {
            out,
            issuer,
            entries,
            shard,
        }),
        Command::Soak {
            out,
            issuer,
            clients,
            sessions,
            minutes,
            sample_seconds,
        } => bench::soak::run(&bench::soak::SoakOptions {
            load: bench::Options {
                out,
                issuer,
                clients,
                sessions,
                seconds: minutes.saturating_mul(60),
                rounds: 1,
                tuning: bench::Tuning::default(),
                workload: bench::Workload::Issue,
                clients_nice: None,
            },
            sample_seconds,
        }),
        Command::Raw {
            module,
            token,
            pin_file,
            key_type,
            sessions,
            seconds,
            token_object,
        } => match module.or_else(strongroom::demo::softhsm_module) {
            None => Err("SoftHSM's libsofthsm2.so was not found; pass --module".to_string()),
            Some(module) => bench::raw(&bench::RawOptions {
                module,
                token: strongroom::hsm::TokenSelector::Label(token),
                pin: strongroom::secret::PinSource::File(pin_file),
                key_type,
                sessions: usize::try_from(sessions).unwrap_or(1),
                seconds,
                storage: if token_object {
                    strongroom::hsm::raw::Storage::Token
                } else {
                    strongroom::hsm::raw::Storage::Session
                },
            }),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
