//! Checks on the fixed fields of `tbsCertificate`: version, serial, names, validity, unique IDs.

use der::Encode;
use der::asn1::UtcTime;
use x509_cert::time::Time;
use x509_cert::{TbsCertificate, Version};

use super::{CertKind, Report};

/// Shortest serial we issue, in DER content octets: 64 CSPRNG bits need 8 octets, plus a prefix
/// or sign octet (BR 7.1). Our generator actually supplies at least 128 random bits.
const MIN_SERIAL_OCTETS: usize = 9;

/// Longest serial RFC 5280 allows, in DER content octets (RFC 5280 4.1.2.2).
const MAX_SERIAL_OCTETS: usize = 20;

/// BR 7.1.2.1.1: a root's validity period is at least 2922 days ...
const ROOT_MIN_DAYS: u64 = 2922;
/// ... and at most 9132 days.
const ROOT_MAX_DAYS: u64 = 9132;

const SECONDS_PER_DAY: u64 = 86_400;

/// BR 6.3.2: the longest validity period of a subscriber certificate, in days, by the date it is
/// issued: `(first day, as Unix seconds at 00:00:00 UTC, maximum days)`, in date order.
const SUBSCRIBER_MAX_DAYS: [(u64, &str, u64); 4] = [
    (0, "before 2026-03-15", 398),
    (1_773_532_800, "from 2026-03-15", 200),
    (1_805_068_800, "from 2027-03-15", 100),
    (1_868_227_200, "from 2029-03-15", 47),
];

/// One row of the BR 6.3.2 schedule for subscriber certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubscriberLimit {
    /// When the row applies, as the BR say it ("from 2026-03-15").
    pub period: &'static str,
    /// The longest validity period, in days.
    pub max_days: u64,
}

impl SubscriberLimit {
    /// The limit for a certificate whose notBefore is `not_before` (Unix seconds).
    pub fn for_not_before(not_before: u64) -> SubscriberLimit {
        let row = SUBSCRIBER_MAX_DAYS
            .iter()
            .rev()
            .find(|(from, _, _)| *from <= not_before)
            .unwrap_or(&SUBSCRIBER_MAX_DAYS[0]); // the first row starts at the epoch
        SubscriberLimit::from_row(row)
    }

    /// The first limit that takes effect after `now` (Unix seconds), if any.
    pub fn next_after(now: u64) -> Option<SubscriberLimit> {
        SUBSCRIBER_MAX_DAYS
            .iter()
            .find(|(from, _, _)| *from > now)
            .map(SubscriberLimit::from_row)
    }

    fn from_row(&(_, period, max_days): &(u64, &'static str, u64)) -> SubscriberLimit {
        SubscriberLimit { period, max_days }
    }

    /// Whether a validity period of `seconds` (notBefore to notAfter inclusive) is within it.
    pub fn allows(self, seconds: u64) -> bool {
        seconds <= self.max_days * SECONDS_PER_DAY
    }
}

/// Runs every check on the non-extension fields of `tbs`.
pub(super) fn lint_fields(tbs: &TbsCertificate, kind: CertKind, report: &mut Report) {
    lint_version(tbs, report);
    lint_serial(tbs.serial_number().as_bytes(), report);
    lint_names_present(tbs, kind, report);
    lint_validity(tbs, report);
    lint_unique_ids(tbs, report);
    if kind == CertKind::Root {
        lint_root_self_issued(tbs, report);
        lint_root_validity(tbs, report);
    }
    if kind.is_subscriber() {
        lint_subscriber_validity(tbs, report);
    }
}

/// BR 7.1.1 / RFC 5280 4.1.2.1: certificates MUST be X.509 v3 (extensions require v3).
fn lint_version(tbs: &TbsCertificate, report: &mut Report) {
    if tbs.version() != Version::V3 {
        report.error(
            "cert.version.not_v3",
            "BR 7.1.1",
            format!("version is {:?}, must be v3", tbs.version()),
        );
    }
}

/// RFC 5280 4.1.2.2: the serial is a positive integer of at most 20 octets; BR 7.1: greater than
/// zero with at least 64 bits of CSPRNG output (we require at least 9 octets).
///
/// `content` is the DER content octets of the INTEGER, sign octet included.
pub(super) fn lint_serial(content: &[u8], report: &mut Report) {
    let negative = content.first().is_some_and(|b| b & 0x80 != 0);
    if negative {
        report.error(
            "cert.serial.negative",
            "RFC 5280 4.1.2.2",
            "serialNumber is negative".to_string(),
        );
    } else if content.iter().all(|&b| b == 0) {
        report.error(
            "cert.serial.zero",
            "RFC 5280 4.1.2.2",
            "serialNumber is zero".to_string(),
        );
    }
    if content.len() > MAX_SERIAL_OCTETS {
        report.error(
            "cert.serial.too_long",
            "RFC 5280 4.1.2.2",
            format!(
                "serialNumber has {} octets, at most {MAX_SERIAL_OCTETS} are allowed",
                content.len()
            ),
        );
    }
    if content.len() < MIN_SERIAL_OCTETS {
        report.error(
            "cert.serial.too_short",
            "BR 7.1",
            format!(
                "serialNumber has {} octets, cannot hold 64 random bits; we issue at least \
                 {MIN_SERIAL_OCTETS}",
                content.len()
            ),
        );
    }
}

/// RFC 5280 4.1.2.4 (issuer MUST be non-empty) and BR 7.1.2.10.2 (a CA subject is non-empty; a
/// subscriber's may be empty, BR 7.1.2.7.12).
fn lint_names_present(tbs: &TbsCertificate, kind: CertKind, report: &mut Report) {
    if tbs.issuer().is_empty() {
        report.error(
            "cert.issuer.empty",
            "RFC 5280 4.1.2.4",
            "issuer is an empty Name".to_string(),
        );
    }
    if tbs.subject().is_empty() && !kind.is_subscriber() {
        report.error(
            "cert.subject.empty",
            "BR 7.1.2.10.2",
            "subject is an empty Name".to_string(),
        );
    }
}

/// RFC 5280 4.1.2.5: notBefore precedes notAfter, and both use the mandated time encoding.
fn lint_validity(tbs: &TbsCertificate, report: &mut Report) {
    let validity = tbs.validity();
    lint_time_encoding(
        &validity.not_before,
        "validity.notBefore",
        "cert.validity.encoding",
        "RFC 5280 4.1.2.5",
        report,
    );
    lint_time_encoding(
        &validity.not_after,
        "validity.notAfter",
        "cert.validity.encoding",
        "RFC 5280 4.1.2.5",
        report,
    );
    if validity.not_before.to_unix_duration() >= validity.not_after.to_unix_duration() {
        report.error(
            "cert.validity.not_before_after_not_after",
            "RFC 5280 4.1.2.5",
            format!(
                "notBefore {} is not before notAfter {}",
                validity.not_before, validity.not_after
            ),
        );
    }
}

/// RFC 5280 4.1.2.5 (certificates) and 5.1.2.4-5.1.2.6 (CRLs): dates through 2049 MUST be UTCTime,
/// dates in 2050 or later MUST be GeneralizedTime.
///
/// A UTCTime cannot hold a year after 2049, so only the first half can be violated.
pub(super) fn lint_time_encoding(
    time: &Time,
    field: &str,
    code: &'static str,
    rule: &'static str,
    report: &mut Report,
) {
    if let Time::GeneralTime(t) = time {
        let year = t.to_date_time().year();
        if year <= UtcTime::MAX_YEAR {
            report.error(
                code,
                rule,
                format!("{field} ({time}) is a GeneralizedTime but must be a UTCTime before 2050"),
            );
        }
    }
}

/// RFC 5280 4.1.2.8: CAs conforming to the profile MUST NOT generate unique identifiers.
fn lint_unique_ids(tbs: &TbsCertificate, report: &mut Report) {
    if tbs.issuer_unique_id().is_some() {
        report.error(
            "cert.unique_id.present",
            "RFC 5280 4.1.2.8",
            "issuerUniqueID is present".to_string(),
        );
    }
    if tbs.subject_unique_id().is_some() {
        report.error(
            "cert.unique_id.present",
            "RFC 5280 4.1.2.8",
            "subjectUniqueID is present".to_string(),
        );
    }
}

/// BR 7.1.2.1: a root's `issuer` MUST be byte-for-byte identical to its `subject`.
fn lint_root_self_issued(tbs: &TbsCertificate, report: &mut Report) {
    let same = match (tbs.issuer().to_der(), tbs.subject().to_der()) {
        (Ok(issuer), Ok(subject)) => issuer == subject,
        _ => false,
    };
    if !same {
        report.error(
            "root.issuer.not_subject",
            "BR 7.1.2.1",
            format!(
                "issuer \"{}\" is not byte-for-byte the subject \"{}\"",
                tbs.issuer(),
                tbs.subject()
            ),
        );
    }
}

/// The validity period in seconds, notBefore through notAfter inclusive (BR 1.6.1), or `None`
/// when notAfter precedes notBefore (reported as `cert.validity.not_before_after_not_after`).
fn validity_seconds(tbs: &TbsCertificate) -> Option<u64> {
    let validity = tbs.validity();
    let not_before = validity.not_before.to_unix_duration().as_secs();
    let not_after = validity.not_after.to_unix_duration().as_secs();
    not_after.checked_sub(not_before).map(|s| s + 1)
}

/// BR 7.1.2.1.1: a root's validity period (notBefore through notAfter inclusive, BR 1.6.1) is
/// between 2922 and 9132 days.
fn lint_root_validity(tbs: &TbsCertificate, report: &mut Report) {
    let Some(seconds) = validity_seconds(tbs) else {
        return;
    };
    if !(ROOT_MIN_DAYS * SECONDS_PER_DAY..=ROOT_MAX_DAYS * SECONDS_PER_DAY).contains(&seconds) {
        report.error(
            "root.validity.length",
            "BR 7.1.2.1.1",
            format!(
                "validity period is {:.2} days, must be between {ROOT_MIN_DAYS} and \
                 {ROOT_MAX_DAYS} days",
                seconds as f64 / SECONDS_PER_DAY as f64
            ),
        );
    }
}

/// BR 6.3.2: a subscriber certificate's validity period (inclusive, BR 1.6.1; a day is 86,400
/// seconds and any part of one counts as a whole) is at most 398 days, 200 days when issued from
/// 2026-03-15, 100 days from 2027-03-15 and 47 days from 2029-03-15.
///
/// The linter cannot see the signing time, so the schedule is keyed on notBefore, which our
/// profiles set to the time of issuance.
fn lint_subscriber_validity(tbs: &TbsCertificate, report: &mut Report) {
    let Some(seconds) = validity_seconds(tbs) else {
        return;
    };
    let not_before = tbs.validity().not_before.to_unix_duration().as_secs();
    let limit = SubscriberLimit::for_not_before(not_before);
    if !limit.allows(seconds) {
        report.error(
            "leaf.validity.too_long",
            "BR 6.3.2",
            format!(
                "validity period is {} days, a subscriber certificate issued {} may have at \
                 most {}",
                seconds.div_ceil(SECONDS_PER_DAY),
                limit.period,
                limit.max_days
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use const_oid::db::rfc4519::{COMMON_NAME, COUNTRY_NAME, ORGANIZATION_NAME};
    use der::Tag;
    use der::asn1::{BitString, Int};
    use x509_cert::Version;

    use crate::lint::test_support::*;
    use crate::lint::*;

    #[test]
    fn version_must_be_v3() {
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            |t| t.version = Version::V2,
            &["cert.version.not_v3"],
        );
    }

    #[test]
    fn serial_rules() {
        let cases: [(&[u8], &str); 4] = [
            (&[0x00], "cert.serial.zero"),
            (&[0x80, 1, 2, 3, 4, 5, 6, 7, 8], "cert.serial.negative"),
            (&[0x01, 2, 3, 4, 5, 6, 7, 8], "cert.serial.too_short"),
            (&[0x7f; 21], "cert.serial.too_long"),
        ];
        for (bytes, code) in cases {
            let expected: &[&str] = if code == "cert.serial.zero" {
                &["cert.serial.zero", "cert.serial.too_short"]
            } else {
                &[code]
            };
            assert_mutation(
                R10,
                CertKind::SubordinateCa,
                |t| t.serial = Int::new(bytes).unwrap(),
                expected,
            );
        }
        // Nine octets is the shortest we accept.
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            |t| t.serial = Int::new(&[0x01, 2, 3, 4, 5, 6, 7, 8, 9]).unwrap(),
            &[],
        );
    }

    #[test]
    fn issuer_must_not_be_empty() {
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            |t| t.issuer = name(vec![]),
            &["cert.issuer.empty"],
        );
    }

    #[test]
    fn root_issuer_must_be_its_subject() {
        let other = |t: &mut RawTbs| {
            t.issuer = name(vec![
                vec![printable(COUNTRY_NAME, "US")],
                vec![printable(
                    ORGANIZATION_NAME,
                    "Internet Security Research Group",
                )],
                vec![printable(COMMON_NAME, "ISRG Root X9")],
            ]);
        };
        assert_mutation(X1, CertKind::Root, other, &["root.issuer.not_subject"]);
        // Same text, other string type: not byte-for-byte equal.
        let utf8 = |t: &mut RawTbs| {
            t.issuer = name(vec![
                vec![printable(COUNTRY_NAME, "US")],
                vec![atv(
                    ORGANIZATION_NAME,
                    Tag::Utf8String,
                    "Internet Security Research Group",
                )],
                vec![printable(COMMON_NAME, "ISRG Root X1")],
            ]);
        };
        assert_mutation(X1, CertKind::Root, utf8, &["root.issuer.not_subject"]);
    }

    #[test]
    fn validity_rules() {
        let inverted = |t: &mut RawTbs| {
            t.validity = RawValidity {
                not_before: utc(Y2030),
                not_after: utc(Y2030 - DAY),
            };
        };
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            inverted,
            &["cert.validity.not_before_after_not_after"],
        );
        let generalized_before_2050 = |t: &mut RawTbs| {
            t.validity = RawValidity {
                not_before: utc(Y2030),
                not_after: generalized(Y2030 + 365 * DAY),
            };
        };
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            generalized_before_2050,
            &["cert.validity.encoding"],
        );
        // 2050 and later in GeneralizedTime is right.
        let generalized_after_2050 = |t: &mut RawTbs| {
            t.validity = RawValidity {
                not_before: utc(Y2030),
                not_after: generalized(Y2030 + 21 * 365 * DAY),
            };
        };
        assert_mutation(R10, CertKind::SubordinateCa, generalized_after_2050, &[]);
    }

    #[test]
    fn root_validity_between_2922_and_9132_days() {
        let with_days = |days: u64| {
            move |t: &mut RawTbs| {
                // Inclusive period: notAfter = notBefore + days - 1 second.
                t.validity = RawValidity {
                    not_before: utc(Y2030 - 10 * 365 * DAY),
                    not_after: utc(Y2030 - 10 * 365 * DAY + days * DAY - 1),
                };
            }
        };
        assert_mutation(
            X1,
            CertKind::Root,
            with_days(9133),
            &["root.validity.length"],
        );
        assert_mutation(
            X1,
            CertKind::Root,
            with_days(2921),
            &["root.validity.length"],
        );
        assert_mutation(X1, CertKind::Root, with_days(9132), &[]);
        assert_mutation(X1, CertKind::Root, with_days(2922), &[]);
    }

    #[test]
    fn unique_ids_are_refused() {
        let uid =
            |t: &mut RawTbs| t.subject_unique_id = Some(BitString::from_bytes(&[1, 2]).unwrap());
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            uid,
            &["cert.unique_id.present"],
        );
    }

    #[test]
    fn subscriber_validity_follows_the_br_schedule() {
        let days_from = |start: u64, days: u64| {
            move |t: &mut RawTbs| {
                // Inclusive period: notAfter = notBefore + days - 1 second.
                t.validity = RawValidity {
                    not_before: utc(start),
                    not_after: utc(start + days * DAY - 1),
                };
            }
        };
        assert_leaf(days_from(SEPT_2025, 400), &["leaf.validity.too_long"]);
        let schedule = [
            (SEPT_2025, 398),
            (MAR_2026 - 1, 398),
            (MAR_2026, 200),
            (MAR_2027 - 1, 200),
            (MAR_2027, 100),
            (MAR_2029 - 1, 100),
            (MAR_2029, 47),
            (Y2030, 47),
        ];
        for (start, max) in schedule {
            assert_leaf(days_from(start, max), &[]);
            assert_mutated(
                &leaf(),
                CertKind::Subscriber,
                days_from(start, max + 1),
                &["leaf.validity.too_long"],
            );
        }
        // One second over the limit is a day too long (BR 6.3.2).
        let one_second_over = |t: &mut RawTbs| {
            t.validity = RawValidity {
                not_before: utc(MAR_2029),
                not_after: utc(MAR_2029 + 47 * DAY),
            };
        };
        assert_leaf(one_second_over, &["leaf.validity.too_long"]);
        let inverted = |t: &mut RawTbs| {
            t.validity = RawValidity {
                not_before: utc(SEPT_2025),
                not_after: utc(SEPT_2025 - 1),
            };
        };
        assert_leaf(inverted, &["cert.validity.not_before_after_not_after"]);
    }

    #[test]
    fn subscriber_schedule_dates_are_midnight_utc() {
        for (unix, (y, m, d)) in [
            (SEPT_2025, (2025, 9, 1)),
            (MAR_2026, (2026, 3, 15)),
            (MAR_2027, (2027, 3, 15)),
            (MAR_2029, (2029, 3, 15)),
        ] {
            let date = der::DateTime::new(y, m, d, 0, 0, 0).unwrap();
            assert_eq!(date.unix_duration().as_secs(), unix);
        }
    }
}
