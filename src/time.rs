//! Time as strongroom reads and writes it: RFC 3339 UTC text with whole seconds, and the current
//! time truncated to the seconds certificates, CRLs and OCSP responses can carry.
//!
//! Used by the ceremony (scripts, transcripts), the signing service (request fields, responses)
//! and the benchmarks.

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses an RFC 3339 UTC time such as `2026-11-28T00:00:00Z` (RFC 3339 section 5.6, with the
/// `Z` offset only: X.509 times are UTC, RFC 5280 4.1.2.5).
pub fn parse_time(s: &str) -> Result<SystemTime, String> {
    der::DateTime::from_str(s)
        .map(|dt| dt.to_system_time())
        .map_err(|_| format!("{s:?} is not an RFC 3339 UTC time like 2026-11-28T00:00:00Z"))
}

/// A time as RFC 3339 UTC with seconds (RFC 3339 section 5.6), e.g. `2026-11-28T00:00:00Z`.
pub fn rfc3339(t: SystemTime) -> String {
    match der::DateTime::from_system_time(t) {
        Ok(dt) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            dt.year(),
            dt.month(),
            dt.day(),
            dt.hour(),
            dt.minutes(),
            dt.seconds()
        ),
        Err(_) => "out-of-range".to_string(),
    }
}

/// The current time as RFC 3339 UTC with seconds.
pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// The current time, truncated to whole seconds (what certificates and CRLs can carry: RFC 5280
/// 4.1.2.5.1 and 4.1.2.5.2 times have no fractional seconds).
pub fn now_seconds() -> SystemTime {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_whole_seconds() {
        let t = parse_time("2026-11-28T01:02:03Z").unwrap();
        assert_eq!(rfc3339(t), "2026-11-28T01:02:03Z");
        assert!(
            parse_time("2026-11-28 01:02:03")
                .unwrap_err()
                .contains("is not an RFC 3339 UTC time")
        );
        let now = now_seconds();
        assert_eq!(parse_time(&rfc3339(now)).unwrap(), now);
    }
}
