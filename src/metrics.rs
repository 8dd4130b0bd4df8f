//! Prometheus metrics: issued, rejected by rule, HSM errors, HSM health and outages, request
//! latency.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IssuedLabels {
    issuer: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignatureLabels {
    kind: &'static str,
}

/// What the HSM is asked to sign, as counted by `strongroom_hsm_signatures_total{kind}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureKind {
    /// A certificate, including the final certificate of a precertificate.
    Certificate,
    /// A precertificate (RFC 6962 3.1).
    Precertificate,
    /// A CRL.
    Crl,
    /// One OCSP response (a batch counts each of its responses).
    Ocsp,
}

impl SignatureKind {
    fn label(self) -> &'static str {
        match self {
            SignatureKind::Certificate => "certificate",
            SignatureKind::Precertificate => "precertificate",
            SignatureKind::Crl => "crl",
            SignatureKind::Ocsp => "ocsp",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectedLabels {
    code: String,
}

/// The service's metrics, cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    issued: Family<IssuedLabels, Counter>,
    rejected: Family<RejectedLabels, Counter>,
    hsm_signatures: Family<SignatureLabels, Counter>,
    /// HSM failures.
    pub hsm_errors: Counter,
    /// Signatures from the HSM that failed software verification (`hsm.bad_signature`).
    pub hsm_bad_signatures: Counter,
    /// HSM signing operations started for certificates and precertificates, released or not.
    pub certificate_signatures: Counter,
    /// 1 while the HSM is healthy, 0 while it is unavailable.
    pub hsm_up: Gauge,
    /// Times the HSM became unavailable.
    pub hsm_outages: Counter,
    /// Audit store commits (each one fsync, shared by every record in its batch).
    pub audit_commits: Counter,
    /// Request latency in seconds.
    pub latency: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let issued = Family::<IssuedLabels, Counter>::default();
        let rejected = Family::<RejectedLabels, Counter>::default();
        let hsm_signatures = Family::<SignatureLabels, Counter>::default();
        let hsm_errors = Counter::default();
        let hsm_bad_signatures = Counter::default();
        let certificate_signatures = Counter::default();
        let hsm_up = Gauge::default();
        let _ = hsm_up.set(1);
        let hsm_outages = Counter::default();
        let audit_commits = Counter::default();
        let latency = Histogram::new([
            0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ]);
        registry.register(
            "strongroom_issued",
            "Certificates and precertificates issued",
            issued.clone(),
        );
        registry.register(
            "strongroom_rejected",
            "Requests refused, by error code",
            rejected.clone(),
        );
        registry.register("strongroom_hsm_errors", "HSM failures", hsm_errors.clone());
        registry.register(
            "strongroom_hsm_bad_signatures",
            "Signatures from the HSM that did not verify under the key's public key (none released)",
            hsm_bad_signatures.clone(),
        );
        registry.register(
            "strongroom_certificate_signatures",
            "HSM signing operations for certificates and precertificates, released or not",
            certificate_signatures.clone(),
        );
        registry.register(
            "strongroom_hsm_signatures",
            "HSM signing operations requested, by kind of object signed (the final certificate \
             of a precertificate counts as certificate; each OCSP response of a batch counts \
             once), released or not",
            hsm_signatures.clone(),
        );
        registry.register(
            "strongroom_hsm_up",
            "1 while the HSM is healthy, 0 while it is unavailable",
            hsm_up.clone(),
        );
        registry.register(
            "strongroom_hsm_outages",
            "Times the HSM became unavailable",
            hsm_outages.clone(),
        );
        registry.register(
            "strongroom_audit_commits",
            "Audit store commits (one fsync each, shared by the records of a batch)",
            audit_commits.clone(),
        );
        registry.register(
            "strongroom_request_seconds",
            "Request latency",
            latency.clone(),
        );
        Metrics {
            registry: Arc::new(registry),
            issued,
            rejected,
            hsm_signatures,
            hsm_errors,
            hsm_bad_signatures,
            certificate_signatures,
            hsm_up,
            hsm_outages,
            audit_commits,
            latency,
        }
    }
}

impl Metrics {
    /// Counts an issued certificate.
    pub fn issued(&self, issuer: &str, precertificate: bool) {
        let kind = if precertificate {
            "precertificate"
        } else {
            "certificate"
        };
        let _ = self
            .issued
            .get_or_create(&IssuedLabels {
                issuer: issuer.to_string(),
                kind: kind.to_string(),
            })
            .inc();
    }

    /// Counts one HSM signing operation, at the moment the HSM is asked to sign.
    pub fn hsm_signature(&self, kind: SignatureKind) {
        let _ = self
            .hsm_signatures
            .get_or_create(&SignatureLabels { kind: kind.label() })
            .inc();
    }

    /// The HSM signing operations counted so far, by kind: `certificate=N precertificate=N
    /// crl=N ocsp=N`.
    pub fn hsm_signatures_summary(&self) -> String {
        let kinds = [
            SignatureKind::Certificate,
            SignatureKind::Precertificate,
            SignatureKind::Crl,
            SignatureKind::Ocsp,
        ];
        kinds
            .map(|k| {
                let n = self
                    .hsm_signatures
                    .get_or_create(&SignatureLabels { kind: k.label() })
                    .get();
                format!("{}={n}", k.label())
            })
            .join(" ")
    }

    /// Counts a refusal by its code. Every signing path's error passes here, so this is also
    /// where a signature that failed verification (`hsm.bad_signature`) is counted.
    pub fn rejected(&self, code: &str) {
        if code == crate::issue::BAD_SIGNATURE {
            let _ = self.hsm_bad_signatures.inc();
        }
        let _ = self
            .rejected
            .get_or_create(&RejectedLabels {
                code: code.to_string(),
            })
            .inc();
    }

    /// The Prometheus text exposition, with the audit store's commit count as of now.
    pub fn render(&self, audit_commits: u64) -> String {
        // The store counts its commits itself; the counter shows its latest value.
        self.audit_commits
            .inner()
            .store(audit_commits, std::sync::atomic::Ordering::Relaxed);
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
