//! `action = "check-cross-signed"`: checks the cross-signed certificate another CA returned
//! against our intermediate (same subject bytes, key, SKI, EKUs, path length) and against the
//! cross-signer's root (issuer, AKI, signature, validity). Signs nothing.

use const_oid::db::rfc5280::ID_CE_EXT_KEY_USAGE;
use der::Encode;
use serde::Deserialize;
use serde_json::json;
use x509_cert::Certificate;
use x509_cert::ext::pkix::AuthorityKeyIdentifier;

use super::{Ctx, Error, Input, Output, StepResult, ekus_of, path_len_of};
use crate::ceremony::script::{InputRef, Plan, ScriptError};
use crate::x509;

/// The action name in scripts.
pub(crate) const ACTION: &str = "check-cross-signed";

/// The step as written in the script.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct Raw {
    /// Step id.
    pub(crate) id: String,
    /// Our intermediate.
    intermediate: InputRef,
    /// The cross-signed certificate that came back.
    cross_signed: InputRef,
    /// The cross-signer's root.
    cross_signer_root: InputRef,
}

/// The step, resolved.
#[derive(Debug)]
pub struct CheckCrossSigned {
    pub(crate) id: String,
    intermediate: Input<Certificate>,
    cross_signed: Input<Certificate>,
    cross_signer_root: Input<Certificate>,
}

impl CheckCrossSigned {
    /// Resolves the three certificates.
    pub(crate) fn parse(raw: Raw, plan: &mut Plan<'_>) -> Result<Self, ScriptError> {
        let (intermediate, _) = plan.cert_ref("intermediate", &raw.intermediate)?;
        let (cross_signed, _) = plan.cert_ref("cross-signed", &raw.cross_signed)?;
        let (cross_signer_root, _) = plan.cert_ref("cross-signer-root", &raw.cross_signer_root)?;
        Ok(CheckCrossSigned {
            id: raw.id,
            intermediate,
            cross_signed,
            cross_signer_root,
        })
    }

    /// Compares the certificates; any difference fails the step, with the full report.
    pub(crate) fn run(&self, ctx: &mut Ctx<'_>) -> StepResult {
        let ours = ctx.certificate(&self.intermediate)?;
        let cross = ctx.certificate(&self.cross_signed)?;
        let root = ctx.certificate(&self.cross_signer_root)?;
        let (checks, differences) = compare_cross(&ours, &cross, &root)?;
        let details = json!({
            "intermediate": ours.tbs_certificate().subject().to_string(),
            "cross_signed_serial": hex::encode(cross.tbs_certificate().serial_number().as_bytes()),
            "cross_signer": root.tbs_certificate().subject().to_string(),
            "checks": checks,
            "differences": differences,
        });
        if !differences.is_empty() {
            return Err(Error::CrossSignedMismatch {
                differences: differences.join("; "),
                report: crate::ceremony::transcript::render_line(
                    &json!({"event": "check-cross-signed", "report": details}).to_string(),
                ),
            });
        }
        Ok((Output::Nothing, details))
    }
}

/// Compares our intermediate with the cross-signed certificate that came back, and checks the
/// latter chains to the cross-signer's root. Returns the checks made and every difference.
fn compare_cross(
    ours: &Certificate,
    cross: &Certificate,
    root: &Certificate,
) -> Result<(Vec<String>, Vec<String>), Error> {
    let der = |n: &x509_cert::name::Name| n.to_der();
    let (o, c, r) = (
        ours.tbs_certificate(),
        cross.tbs_certificate(),
        root.tbs_certificate(),
    );
    let mut checks = Vec::new();
    let mut diffs = Vec::new();
    let mut check = |name: &str, ok: bool, diff: String| {
        checks.push(format!(
            "{name}: {}",
            if ok { "equal/ok" } else { "DIFFERENT" }
        ));
        if !ok {
            diffs.push(diff);
        }
    };
    check(
        "subject bytes",
        der(o.subject())? == der(c.subject())?,
        format!(
            "subject: ours {} / cross-signed {}",
            o.subject(),
            c.subject()
        ),
    );
    check(
        "subjectPublicKeyInfo",
        o.subject_public_key_info() == c.subject_public_key_info(),
        "subjectPublicKeyInfo differs: the cross-signed certificate certifies another key".into(),
    );
    let (os, cs) = (x509::subject_key_id(ours)?, x509::subject_key_id(cross)?);
    check(
        "subjectKeyIdentifier",
        os == cs,
        format!(
            "subjectKeyIdentifier: ours {:?} / cross-signed {:?}",
            os.map(hex::encode),
            cs.map(hex::encode)
        ),
    );
    let (oe, ce) = (ekus_of(ours)?, ekus_of(cross)?);
    check(
        "extKeyUsage",
        oe == ce,
        format!(
            "extKeyUsage: ours {oe:?} / cross-signed {ce:?} (BR 7.1.2.2.5: a third-party cross-sign must be EKU-restricted)"
        ),
    );
    let has_eku = c
        .extensions()
        .into_iter()
        .flatten()
        .any(|e| e.extn_id == ID_CE_EXT_KEY_USAGE);
    check(
        "extKeyUsage present in the cross-signed certificate",
        has_eku,
        "extKeyUsage missing from the cross-signed certificate (BR 7.1.2.2.5; the 2020-09-30 R3 cross-sign had to be re-issued for this)".into(),
    );
    let (op, cp) = (path_len_of(ours)?, path_len_of(cross)?);
    check(
        "pathLenConstraint",
        op == cp,
        format!("pathLenConstraint: ours {op:?} / cross-signed {cp:?}"),
    );
    check(
        "issuer name equals the cross-signer root's subject",
        der(c.issuer())? == der(r.subject())?,
        format!(
            "issuer {} is not the cross-signer root {}",
            c.issuer(),
            r.subject()
        ),
    );
    let aki = cross
        .tbs_certificate()
        .get_extension::<AuthorityKeyIdentifier>()?
        .and_then(|(_, a)| a.key_identifier.map(|k| k.as_bytes().to_vec()));
    let root_ski = x509::subject_key_id(root)?;
    check(
        "authorityKeyIdentifier equals the cross-signer root's subjectKeyIdentifier",
        aki.is_some() && aki == root_ski,
        "authorityKeyIdentifier does not match the cross-signer root's subjectKeyIdentifier".into(),
    );
    let sig = crate::verify::verify_certificate(cross, r.subject_public_key_info());
    check(
        "signature verifies under the cross-signer root's key",
        sig.is_ok(),
        format!(
            "signature: {}",
            sig.err().map(|e| e.to_string()).unwrap_or_default()
        ),
    );
    let (cv, rv) = (c.validity(), r.validity());
    check(
        "validity within the cross-signer root's",
        cv.not_before.to_system_time() >= rv.not_before.to_system_time()
            && cv.not_after.to_system_time() <= rv.not_after.to_system_time(),
        "validity: the cross-signed certificate outlives or predates the cross-signer root".into(),
    );
    Ok((checks, diffs))
}
