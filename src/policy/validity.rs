//! The validity window of a certificate (BR 6.3.2, 7.1.2.7; RFC 5280 4.1.2.5, 6.1.3) and its DER.

use std::time::{Duration, SystemTime};

use super::Error;

/// The validity window of a certificate (BR 7.1.2.7, 6.3.2): notBefore is `now`, or the
/// `requested` time when that is not in the future and at most `max_backdate` before `now`;
/// notAfter is notBefore + `validity` − 1 s, since both ends are inclusive (RFC 5280 4.1.2.5),
/// and never after the issuer's notAfter (RFC 5280 6.1.3).
///
/// # Errors
/// `policy.validity.future` / `policy.validity.backdate` (field `not_before`) or
/// `policy.validity.issuer_expiry` (field `profile`).
pub fn validity_window(
    now: SystemTime,
    requested: Option<SystemTime>,
    validity: Duration,
    max_backdate: Duration,
    issuer_not_after: SystemTime,
) -> Result<(SystemTime, SystemTime), Error> {
    let not_before = match requested {
        None => now,
        Some(t) if t > now => {
            return Err(Error::new(
                "policy.validity.future",
                "not_before",
                "notBefore must not be in the future",
            ));
        }
        Some(t) if now.duration_since(t).unwrap_or_default() > max_backdate => {
            return Err(Error::new(
                "policy.validity.backdate",
                "not_before",
                format!(
                    "notBefore may be backdated by at most {} seconds",
                    max_backdate.as_secs()
                ),
            ));
        }
        Some(t) => t,
    };
    let not_after = not_before
        .checked_add(validity)
        .and_then(|t| t.checked_sub(Duration::from_secs(1)))
        .filter(|t| *t <= issuer_not_after)
        .ok_or_else(|| {
            Error::new(
                "policy.validity.issuer_expiry",
                "profile",
                "the certificate would outlive its issuer's certificate (RFC 5280 6.1.3)",
            )
        })?;
    Ok((not_before, not_after))
}

/// The DER `Validity` of a window: UTCTime through 2049, GeneralizedTime from 2050 on
/// (RFC 5280 4.1.2.5), whole seconds.
///
/// # Errors
/// The DER error for a time DER cannot encode (before 1970 or after 9999).
pub fn encode_validity(
    not_before: SystemTime,
    not_after: SystemTime,
) -> der::Result<x509_cert::time::Validity> {
    let time = |t| der::DateTime::from_system_time(t).map(x509_cert::time::Time::from);
    Ok(x509_cert::time::Validity::new(
        time(not_before)?,
        time(not_after)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    use der::{Decode as _, Encode as _};
    use proptest::prelude::*;
    use std::time::UNIX_EPOCH;

    fn secs(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s)
    }

    /// 1970 .. 9999-12-31, whole seconds: what DER times can carry.
    const LAST_DER_SECOND: u64 = 253_402_300_799;

    proptest! {
        // BR 7.1.2.7, 6.3.2, RFC 5280 4.1.2.5 and 6.1.3.
        #[test]
        fn validity_window_rules(
            now in 86_400u64..4_000_000_000,
            back in proptest::option::of(-100_000i64..100_000),
            validity_s in 1u64..=398 * 86_400,
            max_backdate_s in 0u64..=86_400,
            issuer_slack in -1_000_000i64..100_000_000,
        ) {
            let now_t = secs(now);
            let requested = back.map(|b| secs(now.saturating_add_signed(-b)));
            let (validity, max_backdate) =
                (Duration::from_secs(validity_s), Duration::from_secs(max_backdate_s));
            let issuer_not_after = secs(now.saturating_add_signed(issuer_slack));
            let got = validity_window(now_t, requested, validity, max_backdate, issuer_not_after);
            let not_before = requested.unwrap_or(now_t);
            let not_after = not_before + validity - Duration::from_secs(1);
            match got {
                Ok((nb, na)) => {
                    prop_assert_eq!(nb, not_before);
                    prop_assert_eq!(na, not_after);
                    prop_assert!(nb <= now_t);
                    prop_assert!(now_t.duration_since(nb).unwrap() <= max_backdate);
                    prop_assert!(na <= issuer_not_after);
                    prop_assert_eq!(na.duration_since(nb).unwrap() + Duration::from_secs(1), validity);
                }
                Err(e) => {
                    let expected = if not_before > now_t {
                        "policy.validity.future"
                    } else if now_t.duration_since(not_before).unwrap() > max_backdate {
                        "policy.validity.backdate"
                    } else {
                        prop_assert!(not_after > issuer_not_after);
                        "policy.validity.issuer_expiry"
                    };
                    prop_assert_eq!(e.code, expected);
                    prop_assert!(!e.field.is_empty());
                }
            }
        }

        // Whole seconds survive DER both ways; UTCTime through 2049, GeneralizedTime after.
        #[test]
        fn validity_round_trips_through_der(
            nb in 0u64..LAST_DER_SECOND,
            len in 0u64..400 * 86_400,
        ) {
            let (not_before, not_after) = (secs(nb), secs((nb + len).min(LAST_DER_SECOND)));
            let validity = encode_validity(not_before, not_after).unwrap();
            let der = validity.to_der().unwrap();
            let back: x509_cert::time::Validity = x509_cert::time::Validity::from_der(&der).unwrap();
            prop_assert_eq!(back.not_before.to_system_time(), not_before);
            prop_assert_eq!(back.not_after.to_system_time(), not_after);
            // 2050-01-01T00:00:00Z
            let utc = |t: &x509_cert::time::Time, s: u64| {
                matches!(t, x509_cert::time::Time::UtcTime(_)) == (s < 2_524_608_000)
            };
            prop_assert!(utc(&back.not_before, nb));
            prop_assert!(utc(&back.not_after, (nb + len).min(LAST_DER_SECOND)));
        }
    }

    #[test]
    fn validity_edges() {
        let day = Duration::from_secs(86_400);
        let now = secs(1_800_000_000);
        // The issuer's last second is allowed; one second more is not.
        let (_, na) =
            validity_window(now, None, day, day, now + day - Duration::from_secs(1)).unwrap();
        assert_eq!(na, now + day - Duration::from_secs(1));
        let err =
            validity_window(now, None, day, day, now + day - Duration::from_secs(2)).unwrap_err();
        assert_eq!(err.code, "policy.validity.issuer_expiry");
        // Backdating exactly the limit is allowed; one second more is not.
        assert!(validity_window(now, Some(now - day), day, day, now + day).is_ok());
        let err = validity_window(
            now,
            Some(now - day - Duration::from_secs(1)),
            day,
            day,
            now + day,
        )
        .unwrap_err();
        assert_eq!(
            (err.code, err.field.as_str()),
            ("policy.validity.backdate", "not_before")
        );
        let err = validity_window(
            now,
            Some(now + Duration::from_secs(1)),
            day,
            day,
            now + day * 2,
        )
        .unwrap_err();
        assert_eq!(err.code, "policy.validity.future");
        // No overflow panic at the end of time.
        let far = UNIX_EPOCH + Duration::from_secs(u64::MAX / 2);
        assert!(validity_window(far, None, Duration::from_secs(u64::MAX / 2), day, far).is_err());
        assert!(encode_validity(far, far).is_err());
    }
}
