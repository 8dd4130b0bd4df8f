//! `POST /v1/crls` at any size: the body is parsed as it arrives into compact entries, the
//! entries are checked against the audit store, the TBSCertList is encoded into one buffer,
//! and the response is produced from the signed DER as it is sent.
//!
//! ```text
//!   body frames ─(limit: max-crl-body-bytes, else 413)─▶ channel ─▶ parser thread:
//!       serde_json, one entry at a time ─▶ CompactRevocation (32 bytes; the text is never kept)
//!   ─▶ header checks (issuer, shard, thisUpdate, nextUpdate)
//!   ─▶ entry checks: repeats found by sorting indices (4 bytes an entry), shard, times, and one
//!      prepared look-up per entry that reads notBefore from the stored DER without decoding it
//!   ─▶ CRL number (per-issuer lock) ─▶ x509::sign_large_crl ─▶ audit (number, shard, entries,
//!      SHA-256; not the DER, see audit::Entry::crl)
//!   ─▶ JSON {number, crl}, base64-encoded 48 KiB at a time while it is sent, or raw DER
//!      (Accept: application/pkix-crl)
//! ```
//!
//! So the service holds, at its peak, about the larger of the entries (32 bytes each) and the
//! CRL's DER (about 48 bytes an entry), since the encoder gives the entries up as it writes them:
//! memory in proportion to the output. `strongroom-bench crl` measures it.

use std::cell::RefCell;
use std::convert::Infallible;
use std::fmt;
use std::io::Read;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64ct::{Base64, Encoding};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Frame, SizeHint};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::json;

use super::{DEFAULT_CRL_VALIDITY, MAX_CRL_VALIDITY, MAX_THIS_UPDATE_BACKDATE, reason};
use crate::audit::{Caller, Entry, Recorded};
use crate::issue::{Error, Pipeline, internal, read_audit, shard_of};
use crate::metrics::SignatureKind;
use crate::time::parse_time;
use crate::x509::{self, CompactRevocation};

/// The media type of a DER CRL (RFC 2585 4.2).
pub const PKIX_CRL: &str = "application/pkix-crl";

/// A parsed `POST /v1/crls` body: the fields of [`super::CrlRequest`], with the entries already
/// in their compact form.
#[derive(Debug)]
pub struct CrlSubmission {
    /// Issuer name.
    pub issuer: String,
    /// Shard number.
    pub shard: u32,
    /// thisUpdate, RFC 3339.
    pub this_update: String,
    /// nextUpdate, RFC 3339.
    pub next_update: Option<String>,
    /// The entries, in request order.
    pub entries: Vec<CompactRevocation>,
}

fn too_large() -> Error {
    Error::TooLarge {
        message: "the request body is over the configured limit (max-crl-body-bytes)",
    }
}

fn malformed(message: impl Into<String>) -> Error {
    Error::invalid("request.malformed", "", message)
}

/// Reads a CRL request body of at most `limit` bytes as it arrives, parsing it on a blocking
/// thread while the rest is still being received; only the compact entries are kept.
///
/// # Errors
///
/// 413 `request.too_large` over the limit (from Content-Length before anything is read, or
/// while reading); 400 `request.malformed` for JSON that is not a CRL request; the entry codes
/// of [`super::CrlEntry`]'s fields (`crl.entry.serial.malformed`, `crl.entry.revoked_at.malformed`,
/// `revocation.reason`) naming `entries[i]`.
pub async fn read_request(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<CrlSubmission, Error> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let parser = tokio::task::spawn_blocking(move || {
        parse(ChunkReader {
            chunks: rx,
            current: Bytes::new(),
            at: 0,
        })
    });
    let mut body = Limited::new(body, limit);
    let mut received = Ok(());
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data()
                    && tx.send(data).await.is_err()
                {
                    // The parser stopped early; its result says why.
                    break;
                }
            }
            Err(e) => {
                received = Err(if e.downcast_ref::<LengthLimitError>().is_some() {
                    too_large()
                } else {
                    malformed(format!("cannot read the request body: {e}"))
                });
                break;
            }
        }
    }
    drop(tx);
    let parsed = parser.await.map_err(internal)?;
    received?;
    parsed
}

/// The body's chunks as a [`Read`] for serde_json, on the parser thread.
struct ChunkReader {
    chunks: tokio::sync::mpsc::Receiver<Bytes>,
    current: Bytes,
    at: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.current.len() {
            match self.chunks.blocking_recv() {
                Some(chunk) => {
                    self.current = chunk;
                    self.at = 0;
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Parses a whole request from `reader`. An entry that breaks a rule stops the parse with that
/// entry's error (kept aside, since serde's errors carry only text).
fn parse(reader: impl Read) -> Result<CrlSubmission, Error> {
    let refused = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_reader(reader);
    let parsed = RequestSeed { refused: &refused }
        .deserialize(&mut de)
        .and_then(|request| de.end().map(|()| request));
    parsed.map_err(|e| {
        refused
            .take()
            .unwrap_or_else(|| malformed(format!("invalid JSON request: {e}")))
    })
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum RequestField {
    Issuer,
    Shard,
    ThisUpdate,
    NextUpdate,
    Entries,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum EntryField {
    Serial,
    RevokedAt,
    Reason,
}

/// Refuses a field given twice, as serde's derived code does.
fn once<T, E: de::Error>(slot: &Option<T>, name: &'static str) -> Result<(), E> {
    match slot {
        Some(_) => Err(E::duplicate_field(name)),
        None => Ok(()),
    }
}

struct RequestSeed<'a> {
    refused: &'a RefCell<Option<Error>>,
}

impl<'de> DeserializeSeed<'de> for RequestSeed<'_> {
    type Value = CrlSubmission;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<CrlSubmission, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RequestSeed<'_> {
    type Value = CrlSubmission;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a CRL request object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CrlSubmission, A::Error> {
        let (mut issuer, mut shard, mut this_update, mut next_update, mut entries) =
            (None, None, None, None, None);
        while let Some(key) = map.next_key::<RequestField>()? {
            match key {
                RequestField::Issuer => {
                    once(&issuer, "issuer")?;
                    issuer = Some(map.next_value::<String>()?);
                }
                RequestField::Shard => {
                    once(&shard, "shard")?;
                    shard = Some(map.next_value::<u32>()?);
                }
                RequestField::ThisUpdate => {
                    once(&this_update, "this_update")?;
                    this_update = Some(map.next_value::<String>()?);
                }
                RequestField::NextUpdate => {
                    once(&next_update, "next_update")?;
                    next_update = Some(map.next_value::<Option<String>>()?);
                }
                RequestField::Entries => {
                    once(&entries, "entries")?;
                    entries = Some(map.next_value_seed(EntriesSeed {
                        refused: self.refused,
                    })?);
                }
            }
        }
        Ok(CrlSubmission {
            issuer: issuer.ok_or_else(|| de::Error::missing_field("issuer"))?,
            shard: shard.unwrap_or(0),
            this_update: this_update.ok_or_else(|| de::Error::missing_field("this_update"))?,
            next_update: next_update.flatten(),
            entries: entries.unwrap_or_default(),
        })
    }
}

struct EntriesSeed<'a> {
    refused: &'a RefCell<Option<Error>>,
}

impl<'de> DeserializeSeed<'de> for EntriesSeed<'_> {
    type Value = Vec<CompactRevocation>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for EntriesSeed<'_> {
    type Value = Vec<CompactRevocation>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of CRL entries")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(entry) = seq.next_element_seed(EntrySeed {
            refused: self.refused,
            index: out.len(),
        })? {
            out.push(entry);
        }
        out.shrink_to_fit();
        Ok(out)
    }
}

struct EntrySeed<'a> {
    refused: &'a RefCell<Option<Error>>,
    index: usize,
}

impl<'de> DeserializeSeed<'de> for EntrySeed<'_> {
    type Value = CompactRevocation;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

/// A string value handed to a function without being kept (no allocation for the serial).
struct WithStr<F>(F);

impl<'de, T, F: FnOnce(&str) -> T> DeserializeSeed<'de> for WithStr<F> {
    type Value = T;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, T, F: FnOnce(&str) -> T> Visitor<'de> for WithStr<F> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        Ok((self.0)(v))
    }
}

/// Hex serial text into its bytes: 1 to 20 of them.
fn hex_serial(s: &str) -> Option<([u8; 20], usize)> {
    let n = s.len() / 2;
    if s.len() % 2 != 0 || n == 0 || n > 20 {
        return None;
    }
    let mut out = [0u8; 20];
    hex::decode_to_slice(s, &mut out[..n]).ok()?;
    Some((out, n))
}

fn seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

impl<'de> Visitor<'de> for EntrySeed<'_> {
    type Value = CompactRevocation;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a CRL entry {serial, revoked_at, reason}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CompactRevocation, A::Error> {
        let (mut serial, mut revoked_at, mut reason_name) = (None, None, None);
        while let Some(key) = map.next_key::<EntryField>()? {
            match key {
                EntryField::Serial => {
                    once(&serial, "serial")?;
                    serial = Some(map.next_value_seed(WithStr(hex_serial))?);
                }
                EntryField::RevokedAt => {
                    once(&revoked_at, "revoked_at")?;
                    revoked_at =
                        Some(map.next_value_seed(WithStr(|s: &str| parse_time(s).map(seconds)))?);
                }
                EntryField::Reason => {
                    once(&reason_name, "reason")?;
                    reason_name = Some(map.next_value::<Option<String>>()?);
                }
            }
        }
        let serial = serial.ok_or_else(|| de::Error::missing_field("serial"))?;
        let revoked_at = revoked_at.ok_or_else(|| de::Error::missing_field("revoked_at"))?;
        let i = self.index;
        let field = |f: &str| format!("entries[{i}].{f}");
        let checked = (|| {
            let (bytes, n) = serial.ok_or_else(|| {
                Error::invalid(
                    "crl.entry.serial.malformed",
                    field("serial"),
                    "a serial is 1 to 20 bytes of hex",
                )
            })?;
            let revoked_at = revoked_at.map_err(|m| {
                Error::invalid("crl.entry.revoked_at.malformed", field("revoked_at"), m)
            })?;
            let reason = reason(&reason_name.flatten(), &field("reason"))?;
            CompactRevocation::new(&bytes[..n], revoked_at, reason).ok_or_else(|| {
                Error::invalid(
                    "crl.entry.serial.malformed",
                    field("serial"),
                    "not a valid serial number",
                )
            })
        })();
        checked.map_err(|e| {
            let _ = self.refused.replace(Some(e));
            de::Error::custom("CRL entry refused")
        })
    }
}

/// The first index whose serial repeats an earlier entry's (RFC 5280 5.1.2.6: each revoked
/// certificate is listed once). Sorts indices rather than keeping a set of serials, so it costs
/// four bytes an entry.
fn first_repeat(entries: &[CompactRevocation]) -> Option<usize> {
    let mut order: Vec<u32> = (0..u32::try_from(entries.len()).ok()?).collect();
    order.sort_unstable_by(|a, b| {
        entries[*a as usize]
            .serial()
            .cmp(entries[*b as usize].serial())
            .then(a.cmp(b))
    });
    order
        .windows(2)
        .filter(|w| entries[w[0] as usize].serial() == entries[w[1] as usize].serial())
        .map(|w| w[1] as usize)
        .min()
}

/// Checks every entry, in order, with the rules and codes [`super::CrlEntry`] documents: listed
/// once, in this shard, revoked not after thisUpdate, and issued by this issuer (unless the
/// issuer allows unknown serials) no later than the revocation.
fn check_entries(
    p: &Pipeline,
    issuer: &str,
    shards: u32,
    shard: u32,
    allow_unknown: bool,
    entries: &[CompactRevocation],
    this_update: u64,
) -> Result<(), Error> {
    if u32::try_from(entries.len()).is_err() {
        return Err(Error::invalid(
            "crl.entries.too_many",
            "entries",
            "at most 2^32 - 1 entries",
        ));
    }
    let repeat = first_repeat(entries);
    let field = |i: usize, f: &str| format!("entries[{i}].{f}");
    p.audit
        .each_certificate(
            issuer,
            entries,
            |e| e.serial(),
            |i, e, issued| {
                if repeat == Some(i) {
                    return Err(Error::invalid(
                        "crl.entry.serial.duplicate",
                        field(i, "serial"),
                        "listed twice (RFC 5280 5.1.2.6)",
                    ));
                }
                let belongs = shard_of(e.serial(), shards);
                if belongs != shard {
                    return Err(Error::invalid(
                        "crl.entry.shard",
                        field(i, "serial"),
                        format!(
                            "this serial belongs to shard {belongs}, whose URL its certificate names"
                        ),
                    ));
                }
                if e.revoked_at() > this_update {
                    return Err(Error::invalid(
                        "crl.entry.revoked_at.future",
                        field(i, "revoked_at"),
                        "after thisUpdate",
                    ));
                }
                match issued {
                    Some(der) => {
                        if e.revoked_at() < x509::certificate_not_before(der).map_err(internal)? {
                            return Err(Error::invalid(
                                "crl.entry.revoked_at.before_issuance",
                                field(i, "revoked_at"),
                                "before the certificate's notBefore",
                            ));
                        }
                    }
                    None if allow_unknown => {}
                    None => {
                        return Err(Error::invalid(
                            "crl.entry.serial.unknown",
                            field(i, "serial"),
                            format!("issuer {issuer:?} issued no certificate with this serial"),
                        ));
                    }
                }
                Ok(())
            },
        )
        .map_err(Error::Audit)?
}

/// A CRL signed and durably recorded: only [`sign_crl`] makes one, after the audit append
/// returned, and its DER is the one whose SHA-256 the record holds.
#[derive(Debug)]
pub struct RecordedCrl {
    number: u64,
    der: Vec<u8>,
    recorded: Recorded,
}

impl RecordedCrl {
    /// The CRL number assigned.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The CRL's DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The audit record.
    pub fn recorded(&self) -> &Recorded {
        &self.recorded
    }

    /// The response body and headers (the service sends them with 201): `{"number", "crl"}`
    /// JSON with the DER base64-encoded piece by piece as the body is sent, or, when `der`, the
    /// DER itself (`application/pkix-crl`) with the number in a `CRL-Number` header.
    pub fn into_response(self, der: bool) -> Response {
        let number = HeaderValue::from(self.number);
        if der {
            return (
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static(PKIX_CRL)),
                    (header::HeaderName::from_static("crl-number"), number),
                ],
                Body::from(self.der),
            )
                .into_response();
        }
        (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ),
                (header::HeaderName::from_static("crl-number"), number),
            ],
            Body::new(JsonCrlBody::new(self.number, self.der)),
        )
            .into_response()
    }
}

/// Whether the request asks for the DER (`Accept: application/pkix-crl`).
pub fn wants_der(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim().starts_with(PKIX_CRL)))
}

/// DER bytes base64-encoded per frame: a multiple of 3, so the pieces concatenate to the
/// base64 of the whole.
const BASE64_PIECE: usize = 48 * 1024;

/// `{"number":N,"crl":"BASE64"}`, the base64 made one piece at a time while the body is sent.
struct JsonCrlBody {
    head: Option<Bytes>,
    der: Vec<u8>,
    at: usize,
    tail: bool,
    remaining: u64,
}

impl JsonCrlBody {
    fn new(number: u64, der: Vec<u8>) -> Self {
        let head = Bytes::from(format!("{{\"number\":{number},\"crl\":\""));
        let remaining = (head.len() + der.len().div_ceil(3) * 4 + 2) as u64;
        JsonCrlBody {
            head: Some(head),
            der,
            at: 0,
            tail: false,
            remaining,
        }
    }

    fn next_piece(&mut self) -> Option<Bytes> {
        if let Some(head) = self.head.take() {
            return Some(head);
        }
        if self.at < self.der.len() {
            let end = (self.at + BASE64_PIECE).min(self.der.len());
            let piece = Base64::encode_string(&self.der[self.at..end]);
            self.at = end;
            if self.at == self.der.len() {
                // Nothing more to encode: let the DER go before the last pieces are sent.
                self.der = Vec::new();
                self.at = 0;
            }
            return Some(Bytes::from(piece));
        }
        if !self.tail {
            self.tail = true;
            return Some(Bytes::from_static(b"\"}"));
        }
        None
    }
}

impl hyper::body::Body for JsonCrlBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let piece = this.next_piece();
        if let Some(p) = &piece {
            this.remaining -= p.len() as u64;
        }
        Poll::Ready(piece.map(|p| Ok(Frame::data(p))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// Checks, numbers, signs and records a CRL shard.
///
/// # Errors
///
/// The refusals [`super::CrlRequest`] lists, each naming its field; 503 when the HSM or the
/// audit store cannot be used.
///
/// Runs detached from the caller ([`Pipeline::detach`]): dropping the returned future does not
/// cancel a signing or its record.
pub async fn sign_crl(
    p: Arc<Pipeline>,
    caller: Caller,
    req: CrlSubmission,
) -> Result<RecordedCrl, Error> {
    p.clone().detach(sign_crl_attached(p, caller, req)).await
}

async fn sign_crl_attached(
    p: Arc<Pipeline>,
    caller: Caller,
    req: CrlSubmission,
) -> Result<RecordedCrl, Error> {
    let issuer = p.issuer(&Some(req.issuer.clone()))?;
    let shards = issuer.config.crl_shards;
    if req.shard >= shards {
        return Err(Error::invalid(
            "crl.shard.unknown",
            "shard",
            format!("issuer {:?} has shards 0..{shards}", issuer.config.name),
        ));
    }
    let now = SystemTime::now();
    let this_update = parse_time(&req.this_update)
        .map_err(|e| Error::invalid("crl.this_update.malformed", "this_update", e))?;
    if this_update > now + Duration::from_secs(60) {
        return Err(Error::invalid(
            "crl.this_update.future",
            "this_update",
            "thisUpdate is in the future",
        ));
    }
    if now.duration_since(this_update).unwrap_or_default() > MAX_THIS_UPDATE_BACKDATE {
        return Err(Error::invalid(
            "crl.this_update.backdate",
            "this_update",
            "thisUpdate may lie at most one hour in the past",
        ));
    }
    let next_update = match &req.next_update {
        None => this_update + DEFAULT_CRL_VALIDITY,
        Some(t) => parse_time(t)
            .map_err(|e| Error::invalid("crl.next_update.malformed", "next_update", e))?,
    };
    // BR 4.9.7: nextUpdate at most ten days after thisUpdate.
    if next_update <= this_update
        || next_update.duration_since(this_update).unwrap_or_default() > MAX_CRL_VALIDITY
    {
        return Err(Error::invalid(
            "crl.next_update.range",
            "next_update",
            "nextUpdate must be after thisUpdate and at most ten days later (BR 4.9.7)",
        ));
    }
    let name = issuer.config.name.clone();
    let allow_unknown = issuer.config.crl_allow_unknown_serials;
    let shard = req.shard;
    let entries = {
        let (p, name) = (p.clone(), name.clone());
        let entries = req.entries;
        tokio::task::spawn_blocking(move || {
            check_entries(
                &p,
                &name,
                shards,
                shard,
                allow_unknown,
                &entries,
                seconds(this_update),
            )
            .map(|()| entries)
        })
        .await
        .map_err(internal)??
    };
    p.audit.check_writable().await.map_err(Error::Audit)?;

    // One number sequence per issuer: take the lock, read the last number, sign, record.
    let _guard = p.crl_lock(&name).lock().await;
    let number = read_audit(&p, {
        let name = name.clone();
        move |audit| audit.last_crl_number(&name)
    })
    .await?
    .unwrap_or(0)
        + 1;
    let shard_url = (shards > 1).then(|| issuer.crl_url_for_shard(shard));
    let hsm = p.hsm.clone();
    let metrics = p.metrics.clone();
    let signer_issuer = issuer.clone();
    let signed = tokio::task::spawn_blocking(move || {
        let contents = x509::CrlContents {
            number: &number.to_be_bytes(),
            this_update,
            next_update,
            revoked: &[],
            kind: crate::lint::CrlKind::SubscriberCertificates,
            shard_url,
        };
        x509::sign_large_crl(
            &signer_issuer.config.certificate,
            &contents,
            entries,
            &signer_issuer.signer,
            |tbs| {
                metrics.hsm_signature(SignatureKind::Crl);
                hsm.sign(&signer_issuer.key, signer_issuer.signer.alg, tbs)
            },
        )
    })
    .await
    .map_err(internal)?
    .map_err(|e| match e {
        x509::Error::Hsm(e) => Error::Hsm(e),
        other => Error::Internal {
            code: "internal.crl",
            message: other.to_string(),
        },
    })?;
    let summary = json!({
        "number": number,
        "shard": shard,
        "entries": signed.entries,
        "sha256": signed.sha256,
        "bytes": signed.der.len(),
        "this_update": crate::time::rfc3339(this_update),
        "next_update": crate::time::rfc3339(next_update),
    });
    let recorded = p
        .audit
        .append(Entry::crl(name.as_str(), number, caller, &summary))
        .await
        .map_err(Error::Audit)?;
    Ok(RecordedCrl {
        number,
        der: signed.der,
        recorded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<CrlSubmission, Error> {
        parse(s.as_bytes())
    }

    #[test]
    fn parses_the_request_shape_into_compact_entries() {
        let r = parse_str(
            r#"{"entries": [{"serial": "0102", "revoked_at": "2026-01-01T00:00:00Z", "reason": "keyCompromise"},
                {"reason": null, "serial": "00ff", "revoked_at": "2026-01-02T00:00:00Z"},
                {"serial": "03", "revoked_at": "2026-01-03T00:00:00Z", "reason": "unspecified"}],
              "issuer": "r10", "shard": 3, "this_update": "2026-01-04T00:00:00Z", "next_update": null}"#,
        )
        .unwrap();
        assert_eq!((r.issuer.as_str(), r.shard), ("r10", 3));
        assert_eq!(r.next_update, None);
        assert_eq!(r.entries.len(), 3);
        assert_eq!(r.entries[0].serial(), &[1, 2]);
        assert_eq!(r.entries[0].reason_code(), Some(1));
        assert_eq!(r.entries[1].serial(), &[0xff]);
        assert_eq!(r.entries[1].revoked_at(), 1_767_312_000);
        assert_eq!(r.entries[2].reason_code(), None);
    }

    #[test]
    fn refusals_name_the_entry_and_the_rule() {
        let entry = |e: &str| {
            format!(
                r#"{{"issuer": "r10", "this_update": "2026-01-04T00:00:00Z", "entries": [{{"serial": "01", "revoked_at": "2026-01-01T00:00:00Z"}}, {e}]}}"#
            )
        };
        for (body, code, field) in [
            (
                entry(r#"{"serial": "0g", "revoked_at": "2026-01-01T00:00:00Z"}"#),
                "crl.entry.serial.malformed",
                "entries[1].serial",
            ),
            (
                entry(r#"{"serial": "", "revoked_at": "2026-01-01T00:00:00Z"}"#),
                "crl.entry.serial.malformed",
                "entries[1].serial",
            ),
            (
                entry(&format!(
                    r#"{{"serial": "{}", "revoked_at": "2026-01-01T00:00:00Z"}}"#,
                    "ab".repeat(21)
                )),
                "crl.entry.serial.malformed",
                "entries[1].serial",
            ),
            (
                entry(&format!(
                    r#"{{"serial": "{}", "revoked_at": "2026-01-01T00:00:00Z"}}"#,
                    "80".repeat(20)
                )),
                "crl.entry.serial.malformed",
                "entries[1].serial",
            ),
            (
                entry(r#"{"serial": "02", "revoked_at": "yesterday"}"#),
                "crl.entry.revoked_at.malformed",
                "entries[1].revoked_at",
            ),
            (
                entry(
                    r#"{"serial": "02", "revoked_at": "2026-01-01T00:00:00Z", "reason": "certificateHold"}"#,
                ),
                "revocation.reason",
                "entries[1].reason",
            ),
            (
                entry(r#"{"serial": "02", "revoked_at": "2026-01-01T00:00:00Z", "why": 1}"#),
                "request.malformed",
                "",
            ),
            (entry(r#"{"serial": "02"}"#), "request.malformed", ""),
            (
                entry(r#"{"serial": "02", "serial": "03", "revoked_at": "2026-01-01T00:00:00Z"}"#),
                "request.malformed",
                "",
            ),
            (
                r#"{"issuer": "r10", "this_update": "x", "entries": [], "extra": 1}"#.to_string(),
                "request.malformed",
                "",
            ),
            (
                r#"{"issuer": "r10", "entries": []}"#.to_string(),
                "request.malformed",
                "",
            ),
            (
                r#"{"issuer": "r10", "this_update": "x", "entries": []} trailing"#.to_string(),
                "request.malformed",
                "",
            ),
        ] {
            let e = parse_str(&body).unwrap_err();
            assert_eq!((e.code(), e.field()), (code, field), "{body}: {e:?}");
        }
    }

    #[test]
    fn the_first_repeat_is_found_by_sorting() {
        let e = |s: &[u8]| CompactRevocation::new(s, 0, None).unwrap();
        assert_eq!(first_repeat(&[]), None);
        assert_eq!(first_repeat(&[e(&[1]), e(&[2]), e(&[3])]), None);
        assert_eq!(
            first_repeat(&[e(&[3]), e(&[1]), e(&[2]), e(&[1]), e(&[3])]),
            Some(3)
        );
        // Leading zeros do not make a different serial.
        assert_eq!(first_repeat(&[e(&[0, 7]), e(&[7])]), Some(1));
    }

    #[test]
    fn the_json_body_is_the_base64_of_the_der() {
        for len in [
            0,
            1,
            2,
            3,
            BASE64_PIECE - 1,
            BASE64_PIECE,
            3 * BASE64_PIECE + 2,
        ] {
            let der: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut body = JsonCrlBody::new(42, der.clone());
            let exact = hyper::body::Body::size_hint(&body).exact();
            let mut out = Vec::new();
            while let Some(piece) = body.next_piece() {
                out.extend_from_slice(&piece);
            }
            assert_eq!(exact, Some(out.len() as u64));
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(v["number"], 42);
            assert_eq!(Base64::decode_vec(v["crl"].as_str().unwrap()).unwrap(), der);
        }
    }

    #[test]
    fn accept_selects_der() {
        let mut h = HeaderMap::new();
        assert!(!wants_der(&h));
        let _ = h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!wants_der(&h));
        let _ = h.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/plain, application/pkix-crl;q=0.9"),
        );
        assert!(wants_der(&h));
    }
}
