//! PINs: where they come from and how they are held.
//!
//! A PIN lives in a [`Pin`], which wraps a [`secrecy::SecretString`]: the bytes are zeroed when it
//! is dropped, and the type has no `Debug`, `Display` or `Serialize`, so it cannot reach a log, an
//! error message or a transcript by accident. A PIN comes from a file, an environment variable or a
//! no-echo prompt ([`PinSource`]); never from a command-line argument or a literal in a script.

use std::fmt;
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use zeroize::Zeroizing;

/// A PIN for a PKCS#11 token (user or security officer), zeroed on drop.
pub struct Pin(SecretString);

impl Pin {
    /// Wraps a PIN already held in a zeroizing string. Trailing newlines (from a PIN file) are
    /// removed.
    pub fn new(mut value: Zeroizing<String>) -> Result<Self, PinError> {
        while value.ends_with('\n') || value.ends_with('\r') {
            let _ = value.pop();
        }
        if value.is_empty() {
            return Err(PinError::Empty);
        }
        Ok(Pin(SecretString::from(value.as_str())))
    }

    /// The PIN in the form cryptoki takes (`AuthPin` is a `SecretString`).
    pub fn to_auth_pin(&self) -> SecretString {
        SecretString::from(self.0.expose_secret())
    }
}

/// Where a PIN is read from. In a ceremony script this is written as
/// `pin = { file = "..." }`, `pin = { env = "NAME" }` or `pin = { prompt = true }`; a plain string
/// is refused, so that no PIN is ever written into a script.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub enum PinSource {
    /// Read the PIN from this file (its first line).
    File(PathBuf),
    /// Read the PIN from this environment variable.
    Env(String),
    /// Ask the operator at the terminal, without echo.
    Prompt(bool),
}

impl fmt::Display for PinSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PinSource::File(p) => write!(f, "file {}", p.display()),
            PinSource::Env(name) => write!(f, "environment variable {name}"),
            PinSource::Prompt(_) => write!(f, "prompt"),
        }
    }
}

impl PinSource {
    /// Reads the PIN. `what` names the PIN in the prompt (for example "user PIN for token
    /// strongroom-demo").
    pub fn read(&self, what: &str) -> Result<Pin, PinError> {
        match self {
            PinSource::File(path) => {
                let text =
                    Zeroizing::new(std::fs::read_to_string(path).map_err(|e| PinError::File {
                        path: path.clone(),
                        reason: e.kind().to_string(),
                    })?);
                let first = Zeroizing::new(text.lines().next().unwrap_or("").to_string());
                Pin::new(first)
            }
            PinSource::Env(name) => {
                let value = std::env::var(name).map_err(|_| PinError::Env(name.clone()))?;
                Pin::new(Zeroizing::new(value))
            }
            PinSource::Prompt(true) => {
                let value = rpassword::prompt_password(format!("{what}: "))
                    .map_err(|e| PinError::Prompt(e.kind().to_string()))?;
                Pin::new(Zeroizing::new(value))
            }
            PinSource::Prompt(false) => Err(PinError::NoSource),
        }
    }
}

/// Why a PIN could not be read. No variant carries the PIN or any part of it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PinError {
    /// The PIN file could not be read.
    #[error("cannot read PIN file {path}: {reason}", path = .path.display())]
    File {
        /// The file named as the PIN source.
        path: PathBuf,
        /// The I/O error kind.
        reason: String,
    },
    /// The environment variable is not set (or not valid UTF-8).
    #[error("PIN environment variable {0} is not set")]
    Env(String),
    /// The terminal prompt failed (no terminal, for example).
    #[error("cannot prompt for the PIN: {0}")]
    Prompt(String),
    /// The PIN read was empty.
    #[error("the PIN is empty")]
    Empty,
    /// `prompt = false` with no other source.
    #[error("no PIN source: use {{ file = ... }}, {{ env = ... }} or {{ prompt = true }}")]
    NoSource,
}
