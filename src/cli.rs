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
    /// Run the signing service on its Unix socket.
    Serve {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Start even if the audit store's chain does not verify, recording the break accepted
        /// as an event in the store (and on stderr). Needed on every start until the store is
        /// replaced.
        #[arg(long)]
        accept_broken_audit_chain: bool,
    },
    /// Ask a running service for a certificate (a small client for operators and tests).
    Issue {
        /// The service's socket.
        #[arg(long)]
        socket: PathBuf,
        /// A dNSName (repeat for more).
        #[arg(long = "dns-name")]
        dns_names: Vec<String>,
        /// An IP address (repeat for more).
        #[arg(long = "ip-address")]
        ip_addresses: Vec<String>,
        /// The subscriber's public key (PEM SubjectPublicKeyInfo).
        #[arg(long, conflicts_with = "csr")]
        public_key: Option<PathBuf>,
        /// Or a PKCS#10 request (PEM).
        #[arg(long)]
        csr: Option<PathBuf>,
        /// The profile.
        #[arg(long, default_value = "tls-server")]
        profile: String,
        /// The issuer (default: the service's first).
        #[arg(long)]
        issuer: Option<String>,
        /// Ask for a CT precertificate.
        #[arg(long)]
        precertificate: bool,
    },
    /// The audit store.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Check a published transparency log: verify, prove inclusion, prove consistency.
    #[command(subcommand)]
    Log(crate::tlog::cli::LogCommand),
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
enum AuditCommand {
    /// Check the store's hash chain offline; report the first broken link.
    Verify {
        /// The audit store (SQLite file).
        #[arg(long)]
        store: PathBuf,
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
        Command::Serve {
            config,
            accept_broken_audit_chain,
        } => serve(
            &config,
            crate::service::StartOptions {
                accept_broken_audit_chain,
            },
        ),
        Command::Issue {
            socket,
            dns_names,
            ip_addresses,
            public_key,
            csr,
            profile,
            issuer,
            precertificate,
        } => issue(IssueArgs {
            socket,
            dns_names,
            ip_addresses,
            public_key,
            csr,
            profile,
            issuer,
            precertificate,
        }),
        Command::Audit(AuditCommand::Verify { store }) => crate::audit::verify(&store)
            .map(|s| println!("audit chain verified: {s}"))
            .map_err(|e| e.to_string()),
        Command::Log(cmd) => crate::tlog::cli::run(cmd),
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
    let summary = crate::ceremony::transcript::verify(file).map_err(|e| e.to_string())?;
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

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// The service's runtime: its threads (workers and blocking pool) run at nice `nice`, below
/// the HSM session workers and the audit writer, which keep the process's priority
/// (`service.request-threads-nice`). On Linux a nice value belongs to a thread (setpriority(2),
/// "BUGS"); raising it needs no privilege.
fn request_runtime(nice: i32) -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(move || {
            if nice != 0 {
                if let Err(e) = rustix::process::setpriority_process(None, nice) {
                    eprintln!(
                        "strongroom: cannot set a request thread's nice value to {nice}: {e}"
                    );
                }
            }
        })
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// Whether this process runs as root (the owner of /proc/self is the effective uid).
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

fn serve(
    config_path: &std::path::Path,
    options: crate::service::StartOptions,
) -> Result<(), String> {
    let config = crate::config::Config::load(config_path).map_err(|e| e.to_string())?;
    if let Some(conf) = &config.softhsm2_conf {
        if std::env::var_os("SOFTHSM2_CONF").as_deref() != Some(conf.as_os_str()) {
            // SoftHSM reads SOFTHSM2_CONF once, when the library initialises: start again with it.
            use std::os::unix::process::CommandExt;
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            let err = std::process::Command::new(exe)
                .args(std::env::args_os().skip(1))
                .env("SOFTHSM2_CONF", conf)
                .exec();
            return Err(format!(
                "cannot restart with SOFTHSM2_CONF={}: {err}",
                conf.display()
            ));
        }
    }
    if running_as_root() && !config.allow_root {
        return Err("refusing to run as root; set service.allow-root = true to override".into());
    }
    // Before touching the token or the store: another live service owns this socket.
    crate::service::check_socket_free(&config.socket).map_err(|e| e.to_string())?;
    let pipeline = crate::service::start(config, options).map_err(|e| e.to_string())?;
    let listener_config = pipeline.config.clone();
    let rt = request_runtime(listener_config.request_threads_nice)?;
    rt.block_on(async move {
        let listener = crate::service::bind(&listener_config).map_err(|e| e.to_string())?;
        eprintln!(
            "strongroom: serving on {} ({} issuers, {} HSM sessions)",
            listener_config.socket.display(),
            pipeline.issuers.len(),
            pipeline.hsm.pool_size()
        );
        // A file-size limit (RLIMIT_FSIZE) reached while the audit store grows must fail that
        // write (EFBIG: the store reports itself unavailable and recovers when the limit is
        // raised), not kill the signer with SIGXFSZ (25 on Linux). Handling the signal does that.
        #[cfg(target_os = "linux")]
        let _file_size_signal =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(25));
        let shutdown = async {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => return std::future::pending().await,
                };
            tokio::select! {
                _ = term.recv() => {},
                _ = tokio::signal::ctrl_c() => {},
            }
            eprintln!("strongroom: shutting down; finishing requests in flight");
        };
        crate::service::serve(listener, pipeline, shutdown)
            .await
            .map_err(|e| format!("serve: {e}"))?;
        let _ = std::fs::remove_file(&listener_config.socket);
        Ok(())
    })
}

struct IssueArgs {
    socket: PathBuf,
    dns_names: Vec<String>,
    ip_addresses: Vec<String>,
    public_key: Option<PathBuf>,
    csr: Option<PathBuf>,
    profile: String,
    issuer: Option<String>,
    precertificate: bool,
}

fn issue(a: IssueArgs) -> Result<(), String> {
    use base64ct::Encoding;
    let mut body = serde_json::json!({
        "profile": a.profile,
        "dns_names": a.dns_names,
        "ip_addresses": a.ip_addresses,
        "precertificate": a.precertificate,
    });
    if let Some(issuer) = a.issuer {
        body["issuer"] = serde_json::json!(issuer);
    }
    match (a.public_key, a.csr) {
        (Some(p), None) => {
            let (_, der) =
                crate::x509::read_pem::<spki::SubjectPublicKeyInfoOwned>(&p, "PUBLIC KEY")
                    .map_err(|e| e.to_string())?;
            body["public_key"] = serde_json::json!(base64ct::Base64::encode_string(&der));
        }
        (None, Some(p)) => {
            body["csr"] = serde_json::json!(
                std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?
            );
        }
        _ => return Err("give --public-key FILE or --csr FILE".into()),
    }
    runtime()?.block_on(async {
        let mut client = crate::client::Client::connect(&a.socket).await?;
        let reply = client
            .request("POST", "/v1/certificates", Some(&body))
            .await?;
        let json = reply.json()?;
        if reply.status == 201 {
            print!("{}", json["pem"].as_str().unwrap_or_default());
            eprintln!(
                "serial {} valid {} to {}",
                json["serial"], json["not_before"], json["not_after"]
            );
            Ok(())
        } else {
            Err(format!("HTTP {}: {}", reply.status, json["error"]))
        }
    })
}
