//! Checkpoints (C2SP tlog-checkpoint) in signed notes (C2SP signed-note) with Ed25519.
//!
//! Ed25519 verification comes from aws-lc-rs; key IDs and hashes from sha2.

use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};
use base64ct::{Base64, Encoding};
use sha2::{Digest, Sha256};

use super::Error;
use super::merkle::Hash;

/// The signed-note signature type of Ed25519 (C2SP signed-note, "Signatures").
pub const ALG_ED25519: u8 = 0x01;

/// Notes larger than this are refused (C2SP signed-note allows verifiers a limit).
const MAX_NOTE: usize = 1 << 20;

/// A note verifier key: `<name>+<hex key ID>+<base64(0x01 || public key)>` (C2SP signed-note).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierKey {
    /// The key name; for our log, its origin.
    pub name: String,
    /// The 4-byte key ID.
    pub key_id: [u8; 4],
    /// The Ed25519 public key.
    pub public_key: [u8; 32],
}

/// The key ID: the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key)
/// (C2SP signed-note, "Signatures").
pub fn key_id(name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0x0A, ALG_ED25519]);
    h.update(public_key);
    let d: [u8; 32] = h.finalize().into();
    [d[0], d[1], d[2], d[3]]
}

/// A key name must be non-empty and hold no Unicode spaces or `+` (C2SP signed-note).
fn check_name(name: &str) -> Result<(), Error> {
    if name.is_empty() || name.contains('+') || name.chars().any(char::is_whitespace) {
        return Err(Error::Key(format!(
            "key name {name:?} must be non-empty, without spaces or '+' (C2SP signed-note)"
        )));
    }
    Ok(())
}

impl VerifierKey {
    /// The verifier key for `name` and an Ed25519 public key.
    ///
    /// # Errors
    /// [`Error::Key`] for a name the format does not allow.
    pub fn new(name: &str, public_key: [u8; 32]) -> Result<Self, Error> {
        check_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            key_id: key_id(name, &public_key),
            public_key,
        })
    }

    /// Parses `<name>+<hex key ID>+<base64 key>`, checking the key ID against the key.
    ///
    /// # Errors
    /// [`Error::Key`] naming what is wrong.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        // The name holds no '+', base64 may: split from the left.
        let mut parts = s.splitn(3, '+');
        let (Some(name), Some(hex_id), Some(b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::Key(
                "verifier key must be <name>+<hex key ID>+<base64 key>".into(),
            ));
        };
        check_name(name)?;
        let id = hex::decode(hex_id)
            .ok()
            .and_then(|v| <[u8; 4]>::try_from(v).ok())
            .ok_or_else(|| Error::Key(format!("key ID {hex_id:?} is not 8 hex digits")))?;
        let raw = Base64::decode_vec(b64)
            .map_err(|_| Error::Key("verifier key: key is not base64".into()))?;
        let Some((&alg, pk)) = raw.split_first() else {
            return Err(Error::Key("verifier key: empty key".into()));
        };
        if alg != ALG_ED25519 {
            return Err(Error::Key(format!(
                "verifier key: signature type {alg:#04x} is not Ed25519 (0x01)"
            )));
        }
        let public_key: [u8; 32] = pk.try_into().map_err(|_| {
            Error::Key(format!(
                "verifier key: Ed25519 key of {} bytes, not 32",
                pk.len()
            ))
        })?;
        let k = Self::new(name, public_key)?;
        if k.key_id != id {
            return Err(Error::Key(format!(
                "verifier key: key ID {hex_id} does not match the key (expected {})",
                hex::encode(k.key_id)
            )));
        }
        Ok(k)
    }

    /// Checks an Ed25519 signature over `msg` with this key.
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.public_key)
            .verify(msg, sig)
            .is_ok()
    }
}

impl std::fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(&self.public_key);
        write!(
            f,
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_id),
            Base64::encode_string(&raw)
        )
    }
}

/// A checkpoint body: origin, tree size, root hash (C2SP tlog-checkpoint).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line.
    pub origin: String,
    /// Number of entries.
    pub size: u64,
    /// RFC 6962 tree head of those entries.
    pub root: Hash,
}

impl Checkpoint {
    /// The note body: `<origin>\n<size>\n<base64 root>\n`.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            Base64::encode_string(&self.root)
        )
    }

    /// Parses a note body. Extension lines after the root are allowed and ignored
    /// (C2SP tlog-checkpoint).
    ///
    /// # Errors
    /// [`Error::Checkpoint`] naming the line at fault.
    pub fn parse_body(body: &str) -> Result<Self, Error> {
        let bad = |what: &str| Error::Checkpoint(what.to_owned());
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .filter(|l| !l.is_empty())
            .ok_or_else(|| bad("line 1: empty origin"))?;
        let size = lines
            .next()
            .ok_or_else(|| bad("line 2: missing tree size"))?;
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            return Err(bad(
                "line 2: tree size must be a decimal number without leading zeros",
            ));
        }
        let size: u64 = size
            .parse()
            .map_err(|_| bad("line 2: tree size out of range"))?;
        let root = lines
            .next()
            .ok_or_else(|| bad("line 3: missing root hash"))?;
        let root: Hash = Base64::decode_vec(root)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| bad("line 3: root hash must be 32 bytes in base64"))?;
        if !body.ends_with('\n') {
            return Err(bad("body must end with a newline"));
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

/// Signs a checkpoint into a note with one Ed25519 signature line, and checks the signature
/// with `key` before returning it: a signer that returns a wrong signature is an error.
///
/// # Errors
/// [`Error::Sign`] when the signer fails or its signature does not verify.
pub fn sign_checkpoint<E: std::fmt::Display>(
    cp: &Checkpoint,
    key: &VerifierKey,
    sign: impl FnOnce(&[u8]) -> Result<[u8; 64], E>,
) -> Result<String, Error> {
    let body = cp.body();
    let sig = sign(body.as_bytes()).map_err(|e| Error::Sign(e.to_string()))?;
    if !key.verify(body.as_bytes(), &sig) {
        return Err(Error::Sign(format!(
            "the signer's signature does not verify under {key}"
        )));
    }
    let mut raw = key.key_id.to_vec();
    raw.extend_from_slice(&sig);
    Ok(format!(
        "{body}\n\u{2014} {} {}\n",
        key.name,
        Base64::encode_string(&raw)
    ))
}

/// Opens a signed note: checks there is a valid signature by `key` over the body and parses
/// the body as a checkpoint whose origin is the key's name.
///
/// # Errors
/// [`Error::Checkpoint`] for a malformed note; [`Error::Signature`] when no signature by
/// `key` verifies.
pub fn open_checkpoint(note: &[u8], key: &VerifierKey) -> Result<Checkpoint, Error> {
    if note.len() > MAX_NOTE {
        return Err(Error::Checkpoint("note larger than 1 MiB".into()));
    }
    let text =
        std::str::from_utf8(note).map_err(|_| Error::Checkpoint("note is not UTF-8".into()))?;
    let split = text
        .rfind("\n\n")
        .ok_or_else(|| Error::Checkpoint("note has no blank line before its signatures".into()))?;
    let (body, sigs) = (&text[..=split], &text[split + 2..]);
    if !sigs.ends_with('\n') {
        return Err(Error::Checkpoint("note must end with a newline".into()));
    }
    let mut ok = false;
    let mut seen = Vec::new();
    for line in sigs.lines() {
        let rest = line.strip_prefix("\u{2014} ").ok_or_else(|| {
            Error::Checkpoint(format!(
                "signature line {line:?} must start with an em dash and a space"
            ))
        })?;
        let (name, b64) = rest.split_once(' ').ok_or_else(|| {
            Error::Checkpoint(format!("signature line {line:?} has no signature"))
        })?;
        let raw = Base64::decode_vec(b64)
            .map_err(|_| Error::Checkpoint(format!("signature line {line:?}: not base64")))?;
        if raw.len() < 5 {
            return Err(Error::Checkpoint(format!(
                "signature line {line:?}: too short"
            )));
        }
        seen.push(format!("{name}+{}", hex::encode(&raw[..4])));
        if name == key.name && raw[..4] == key.key_id {
            if !key.verify(body.as_bytes(), &raw[4..]) {
                return Err(Error::Signature(format!(
                    "the signature by {}+{} does not verify over the checkpoint",
                    key.name,
                    hex::encode(key.key_id)
                )));
            }
            ok = true;
        }
    }
    if !ok {
        return Err(Error::Signature(format!(
            "no signature by {}+{}; the note is signed by: {}",
            key.name,
            hex::encode(key.key_id),
            if seen.is_empty() {
                "nobody".to_owned()
            } else {
                seen.join(", ")
            }
        )));
    }
    let cp = Checkpoint::parse_body(body)?;
    if cp.origin != key.name {
        return Err(Error::Checkpoint(format!(
            "origin {:?} is not the verifier key's name {:?}",
            cp.origin, key.name
        )));
    }
    Ok(cp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_key_round_trip_and_key_id_check() {
        let k = VerifierKey::new("example.com/log", [3; 32]).unwrap();
        let s = k.to_string();
        assert_eq!(VerifierKey::parse(&s).unwrap(), k);
        let mut bad = s.clone();
        let i = k.name.len() + 1;
        bad.replace_range(i..i + 1, if &s[i..i + 1] == "0" { "1" } else { "0" });
        assert!(
            VerifierKey::parse(&bad)
                .unwrap_err()
                .to_string()
                .contains("does not match")
        );
        assert!(VerifierKey::new("a b", [0; 32]).is_err());
        // Base64 may hold '+', the separator: the key still parses.
        let plus = VerifierKey::new("example.com/log", [62; 32]).unwrap();
        assert!(
            plus.to_string()
                .ends_with("+AT4+Pj4+Pj4+Pj4+Pj4+Pj4+Pj4+Pj4+Pj4+Pj4+Pj4+")
        );
        assert_eq!(VerifierKey::parse(&plus.to_string()).unwrap(), plus);
    }

    #[test]
    fn checkpoint_body_parser_is_strict() {
        let cp = Checkpoint {
            origin: "o".into(),
            size: 5,
            root: [9; 32],
        };
        assert_eq!(Checkpoint::parse_body(&cp.body()).unwrap(), cp);
        assert!(Checkpoint::parse_body("o\n05\nAAAA\n").is_err());
        assert!(Checkpoint::parse_body("o\n5\nAAAA\n").is_err());
        assert!(Checkpoint::parse_body("\n5\n").is_err());
    }
}
