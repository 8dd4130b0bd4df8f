//! Names a certificate may carry: dNSNames and iPAddresses (BR 7.1.2.7.12, RFC 5280 4.2.1.6).
//!
//! ```text
//! dNSName  empty? ─▶ upper case? ─▶ ≤ 253 octets ─▶ no trailing dot ─▶ wildcard only as "*."
//!          ─▶ each label: 1..=63 octets, LDH, hyphens, A-label: IDNA2008 code points, round trip
//!          ─▶ not an IP address ─▶ not special-use ─▶ under an ICANN suffix, not one ─▶ not blocked
//! iPAddress  parses ─▶ not in a special-purpose block (RFC 6890 registries)
//! both       at least one name, at most max_names, no duplicates
//! ```
//!
//! Public suffixes come from the `psl` crate, which compiles in a copy of the Public Suffix List.
//! Following BR 3.2.2.6 ("a CA SHOULD consult the ICANN DOMAINS section only"), only the ICANN
//! section counts: `github.io` (a PRIVATE entry) is a registrable name under `io`, as in Boulder.
//! A new TLD is refused as `not_under_suffix` until the `psl` crate is updated.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use icu_properties::CodePointMapData;
use icu_properties::props::{CanonicalCombiningClass, GeneralCategory, JoiningType, Script};
use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
use psl::{List, Psl as _, Type};

use super::{Error, PolicyConfig, idna2008};

/// Names that passed every check, in request order; ready to be put in a subjectAltName.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// dNSNames: lower-case LDH names in A-label form, possibly with a leading `*.`.
    pub dns: Vec<String>,
    /// iPAddresses, none of them a Reserved IP Address.
    pub ips: Vec<IpAddr>,
}

/// RFC 1035 2.3.4: 255 octets on the wire are 253 in text (no length octet, no root dot).
const MAX_NAME_LEN: usize = 253;
/// RFC 1035 2.3.4.
const MAX_LABEL_LEN: usize = 63;

/// The field name used for refusals about the name lists as a whole.
const NAMES_FIELD: &str = "dns_names, ip_addresses";

/// Checks the names requested for one certificate and returns them typed.
///
/// `dns_names` and `ip_addresses` are the request's lists as given; indexes in
/// [`Error::field`] refer to them.
///
/// # Errors
/// The first rule broken: a `policy.names.*`, `policy.dns_name.*` or `policy.ip_address.*` code
/// (see the [module table](super)).
pub fn check_names(
    dns_names: &[String],
    ip_addresses: &[String],
    cfg: &PolicyConfig,
) -> Result<Names, Error> {
    let total = dns_names.len() + ip_addresses.len();
    if total == 0 {
        // BR 7.1.2.7.12: the subjectAltName extension MUST contain at least one entry.
        return Err(Error::new(
            "policy.names.none",
            NAMES_FIELD,
            "a certificate names at least one dNSName or iPAddress (BR 7.1.2.7.12)",
        ));
    }
    if total > cfg.max_names {
        return Err(Error::new(
            "policy.names.too_many",
            NAMES_FIELD,
            format!(
                "{total} names requested; at most {} per certificate (strongroom policy max-names)",
                cfg.max_names
            ),
        ));
    }

    let mut dns = Vec::with_capacity(dns_names.len());
    for (i, name) in dns_names.iter().enumerate() {
        let field = format!("dns_names[{i}]");
        check_dns_name(name, cfg).map_err(|(code, rule)| Error::new(code, field.clone(), rule))?;
        if let Some(first) = dns.iter().position(|seen: &String| seen == name) {
            return Err(Error::new(
                "policy.dns_name.duplicate",
                field,
                format!("the same name as dns_names[{first}]; each name is listed once"),
            ));
        }
        dns.push(name.clone());
    }

    let mut ips = Vec::with_capacity(ip_addresses.len());
    for (i, text) in ip_addresses.iter().enumerate() {
        let field = format!("ip_addresses[{i}]");
        let ip =
            check_ip_address(text).map_err(|(code, rule)| Error::new(code, field.clone(), rule))?;
        if let Some(first) = ips.iter().position(|seen| *seen == ip) {
            return Err(Error::new(
                "policy.ip_address.duplicate",
                field,
                format!("the same address as ip_addresses[{first}]; each address is listed once"),
            ));
        }
        ips.push(ip);
    }

    Ok(Names { dns, ips })
}

/// A refusal before the field is known: (code, rule).
type Refusal = (&'static str, String);

fn refuse<T>(code: &'static str, rule: impl Into<String>) -> Result<T, Refusal> {
    Err((code, rule.into()))
}

/// The dNSName rules, in the order of the module diagram.
fn check_dns_name(name: &str, cfg: &PolicyConfig) -> Result<(), Refusal> {
    if name.is_empty() {
        // RFC 5280 4.2.1.6: "subjectAltName extensions with a dNSName of " " MUST NOT be used".
        return refuse(
            "policy.dns_name.empty",
            "a dNSName is not empty (RFC 5280 4.2.1.6)",
        );
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        // DNS is case-insensitive (RFC 4343), so accepting upper case would let the same name
        // appear twice under different spellings; we take the canonical form only.
        return refuse(
            "policy.dns_name.uppercase",
            "a dNSName is in lower case (strongroom policy; DNS names compare case-insensitively, RFC 4343)",
        );
    }
    if name.len() > MAX_NAME_LEN {
        return refuse(
            "policy.dns_name.too_long",
            format!(
                "a dNSName of {} octets; at most {MAX_NAME_LEN} (RFC 1035 2.3.4)",
                name.len()
            ),
        );
    }
    if name.ends_with('.') && name.len() > 1 {
        return refuse(
            "policy.dns_name.trailing_dot",
            "a dNSName has no trailing dot (RFC 5280 4.2.1.6: preferred name syntax, RFC 1034 3.5)",
        );
    }

    // BR 1.6.1 "Wildcard Domain Name": "*." followed by an FQDN; "*" is the whole leftmost label.
    let (wildcard, base) = match name.strip_prefix("*.") {
        Some(base) => (true, base),
        None => (false, name),
    };
    if base.contains('*') {
        return refuse(
            "policy.dns_name.wildcard",
            "a wildcard is only the whole leftmost label, \"*.\" followed by a domain name (BR 1.6.1 \"Wildcard Domain Name\", 3.2.2.6)",
        );
    }

    for (position, label) in base.split('.').enumerate() {
        check_label(position, label)?;
    }

    // BR 7.1.2.7.12: an IP address goes in an iPAddress entry, never in a dNSName. A dotted-quad
    // is the only form that can pass the LDH rules.
    if base.parse::<Ipv4Addr>().is_ok() {
        return refuse(
            "policy.dns_name.ip_address",
            "an IP address is not a domain name; request it as an iPAddress (BR 7.1.2.7.12)",
        );
    }

    check_not_internal(base)?;
    check_suffix(wildcard, base)?;

    if is_blocked(wildcard, base, &cfg.blocked_names) {
        return refuse(
            "policy.dns_name.blocked",
            "the name is on the operator's blocklist (strongroom policy blocked-names, BR 4.2.1 High Risk Certificate Requests)",
        );
    }
    Ok(())
}

/// The per-label rules. `position` counts from the left, from 0, after any wildcard label.
fn check_label(position: usize, label: &str) -> Result<(), Refusal> {
    if label.is_empty() || label.len() > MAX_LABEL_LEN {
        return refuse(
            "policy.dns_name.label_length",
            format!(
                "label {position} is {} octets; labels are 1 to {MAX_LABEL_LEN} octets (RFC 1035 2.3.4, RFC 5890 2.3.1)",
                label.len()
            ),
        );
    }
    let bytes = label.as_bytes();
    if !bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
    {
        return refuse(
            "policy.dns_name.ldh",
            format!(
                "label {position} has a character other than a letter, digit or hyphen; internationalised names are sent as A-labels (RFC 5890 2.3.1, BR 7.1.2.7.12)"
            ),
        );
    }
    if bytes.first() == Some(&b'-') || bytes.last() == Some(&b'-') {
        return refuse(
            "policy.dns_name.hyphen",
            format!(
                "label {position} starts or ends with a hyphen (RFC 5891 4.2.3.1, RFC 952 via RFC 1123 2.1)"
            ),
        );
    }
    if bytes.get(2..4) == Some(&b"--"[..]) {
        // RFC 5890 2.3.1: "??--" labels are Reserved LDH labels; only "xn--" is assigned.
        let Some(encoded) = label.strip_prefix("xn--") else {
            return refuse(
                "policy.dns_name.hyphen",
                format!(
                    "label {position} has \"--\" in positions 3 and 4 but is not an \"xn--\" A-label (RFC 5891 4.2.3.1, RFC 5890 2.3.1)"
                ),
            );
        };
        check_a_label(position, label, encoded)?;
    }
    Ok(())
}

/// RFC 5891 5.4 / RFC 5890 2.3.2.1: an A-label decodes (Punycode, RFC 3492) to a U-label with at
/// least one non-ASCII character, every code point of that U-label is valid under IDNA2008
/// ([`check_idna2008`]), and the U-label, validated and encoded again, gives back the same A-label.
///
/// The round trip is UTS #46 ToASCII with STD3 rules, CheckHyphens and VerifyDnsLength, as the
/// `idna` crate implements it; it includes NFC and the mapping step, so a label that is not in
/// canonical form does not round-trip. UTS #46 alone admits some code points IDNA2008 disallows
/// (symbols, emoji), hence the IDNA2008 code point check first.
fn check_a_label(position: usize, label: &str, encoded: &str) -> Result<(), Refusal> {
    let bad = || -> Result<(), Refusal> {
        refuse(
            "policy.dns_name.idna",
            format!(
                "label {position} starts with \"xn--\" but is not a valid A-label: it must decode to a U-label that encodes back to the same label (RFC 5890 2.3.2.1, RFC 5891 5.4, BR 1.6.1 \"P-Label\")"
            ),
        )
    };
    // Punycode only inserts code points from U+0080 up, so a label that decodes has at least one
    // non-ASCII character; the round trip below catches everything else.
    let Some(unicode) = idna::punycode::decode_to_string(encoded) else {
        return bad();
    };
    if let Err(rule) = check_idna2008(&unicode) {
        return refuse(
            "policy.dns_name.idna",
            format!("label {position} is not a valid A-label: its U-label {rule}"),
        );
    }
    match Uts46::new().to_ascii(
        unicode.as_bytes(),
        AsciiDenyList::STD3,
        Hyphens::Check,
        DnsLength::Verify,
    ) {
        Ok(again) if again == label => Ok(()),
        _ => bad(),
    }
}

/// Whether `cp` is in one of the generated tables (sorted, inclusive ranges).
fn in_table(table: &[(u32, u32)], cp: char) -> bool {
    let cp = u32::from(cp);
    table
        .binary_search_by(|&(lo, hi)| {
            if hi < cp {
                std::cmp::Ordering::Less
            } else if lo > cp {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Why a U-label fails IDNA2008 code point validity; the message completes "its U-label ...",
/// naming the code point, its position and the rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
enum Idna2008Error {
    /// A CONTEXTJ or CONTEXTO code point whose contextual rule does not hold (RFC 5892
    /// Appendix A).
    #[error(
        "has U+{cp:04X} at position {position}, which IDNA2008 allows only where {rule} (RFC 5892 {class}, Appendix A)"
    )]
    Context {
        /// The code point.
        cp: u32,
        /// Its index in the U-label, in code points.
        position: usize,
        /// `CONTEXTJ` or `CONTEXTO`.
        class: &'static str,
        /// The contextual rule, as a clause ("it follows a virama (A.2)").
        rule: &'static str,
    },
    /// A DISALLOWED or UNASSIGNED code point (RFC 5892 section 2, RFC 5891 5.4).
    #[error(
        "has U+{cp:04X} at position {position}, which is {class} in IDNA2008 (RFC 5892 section 2, Unicode {} tables; RFC 5891 5.4)",
        idna2008::UNICODE_VERSION
    )]
    NotValid {
        /// The code point.
        cp: u32,
        /// Its index in the U-label, in code points.
        position: usize,
        /// `DISALLOWED` or `UNASSIGNED`.
        class: &'static str,
    },
}

/// IDNA2008 code point validity of a U-label (RFC 5891 5.4, RFC 5892 section 2 and Appendix A,
/// tables for Unicode [`idna2008::UNICODE_VERSION`], RFC 8753): each code point is PVALID, or
/// CONTEXTJ / CONTEXTO with its contextual rule satisfied. DISALLOWED and UNASSIGNED code points
/// are refused. The error completes "its U-label ...", naming the code point and the rule.
fn check_idna2008(u_label: &str) -> Result<(), Idna2008Error> {
    let chars: Vec<char> = u_label.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let cp = u32::from(c);
        if in_table(idna2008::PVALID, c) {
            continue;
        }
        let context = if in_table(idna2008::CONTEXTJ, c) {
            Some(("CONTEXTJ", contextj(&chars, i)))
        } else if in_table(idna2008::CONTEXTO, c) {
            Some(("CONTEXTO", contexto(&chars, i)))
        } else {
            None
        };
        match context {
            Some((_, Ok(()))) => {}
            Some((class, Err(rule))) => {
                return Err(Idna2008Error::Context {
                    cp,
                    position: i,
                    class,
                    rule,
                });
            }
            None => {
                let class = if CodePointMapData::<GeneralCategory>::new().get(c)
                    == GeneralCategory::Unassigned
                {
                    "UNASSIGNED"
                } else {
                    "DISALLOWED"
                };
                return Err(Idna2008Error::NotValid {
                    cp,
                    position: i,
                    class,
                });
            }
        }
    }
    Ok(())
}

/// Whether the code point before position `i` has Canonical_Combining_Class Virama.
fn after_virama(chars: &[char], i: usize) -> bool {
    i.checked_sub(1)
        .and_then(|j| chars.get(j))
        .is_some_and(|&b| {
            CodePointMapData::<CanonicalCombiningClass>::new().get(b)
                == CanonicalCombiningClass::Virama
        })
}

/// RFC 5892 Appendix A.1 (ZERO WIDTH NON-JOINER) and A.2 (ZERO WIDTH JOINER).
fn contextj(chars: &[char], i: usize) -> Result<(), &'static str> {
    match chars[i] {
        '\u{200D}' if after_virama(chars, i) => Ok(()),
        '\u{200D}' => Err("it follows a virama (A.2)"),
        _ if after_virama(chars, i) => Ok(()),
        _ => {
            // (Joining_Type:{L,D})(Joining_Type:T)*\u200C(Joining_Type:T)*(Joining_Type:{R,D})
            let jt = |c: &char| CodePointMapData::<JoiningType>::new().get(*c);
            let not_t = |c: &&char| jt(c) != JoiningType::Transparent;
            let before = chars[..i].iter().rev().find(not_t).map(jt);
            let after = chars[i + 1..].iter().find(not_t).map(jt);
            let left = matches!(
                before,
                Some(JoiningType::LeftJoining | JoiningType::DualJoining)
            );
            let right = matches!(
                after,
                Some(JoiningType::RightJoining | JoiningType::DualJoining)
            );
            if left && right {
                Ok(())
            } else {
                Err(
                    "it follows a virama or joins a left- or dual-joining letter to a right- or dual-joining one (A.1)",
                )
            }
        }
    }
}

/// RFC 5892 Appendix A.3 to A.9.
fn contexto(chars: &[char], i: usize) -> Result<(), &'static str> {
    let script = |c: char| CodePointMapData::<Script>::new().get(c);
    let before = i.checked_sub(1).and_then(|j| chars.get(j)).copied();
    let after = chars.get(i + 1).copied();
    let (ok, rule) = match chars[i] {
        '\u{00B7}' => (
            before == Some('l') && after == Some('l'),
            "it stands between two \"l\" (MIDDLE DOT, A.3)",
        ),
        '\u{0375}' => (
            after.is_some_and(|c| script(c) == Script::Greek),
            "a Greek letter follows it (GREEK LOWER NUMERAL SIGN, A.4)",
        ),
        '\u{05F3}' | '\u{05F4}' => (
            before.is_some_and(|c| script(c) == Script::Hebrew),
            "it follows a Hebrew letter (HEBREW PUNCTUATION GERESH / GERSHAYIM, A.5, A.6)",
        ),
        '\u{30FB}' => (
            chars
                .iter()
                .any(|&c| matches!(script(c), Script::Hiragana | Script::Katakana | Script::Han)),
            "the label has a Hiragana, Katakana or Han character (KATAKANA MIDDLE DOT, A.7)",
        ),
        '\u{0660}'..='\u{0669}' => (
            !chars.iter().any(|c| ('\u{06F0}'..='\u{06F9}').contains(c)),
            "the label has no EXTENDED ARABIC-INDIC DIGIT (ARABIC-INDIC DIGITS, A.8)",
        ),
        '\u{06F0}'..='\u{06F9}' => (
            !chars.iter().any(|c| ('\u{0660}'..='\u{0669}').contains(c)),
            "the label has no ARABIC-INDIC DIGIT (EXTENDED ARABIC-INDIC DIGITS, A.9)",
        ),
        _ => (
            false,
            "a rule strongroom does not know holds (no rule for it)",
        ),
    };
    if ok { Ok(()) } else { Err(rule) }
}

/// Special-use and reserved top-level names: never in the public DNS, or not a host anyone can
/// validate. Each is matched as the rightmost label, so the name and all names under it are
/// refused.
const SPECIAL_USE_TLDS: &[(&str, &str)] = &[
    ("test", "RFC 6761 6.2"),
    ("localhost", "RFC 6761 6.3"),
    ("invalid", "RFC 6761 6.4"),
    ("example", "RFC 6761 6.5"),
    ("local", "RFC 6762 3"),
    ("onion", "RFC 7686"),
    ("alt", "RFC 9476"),
    (
        "internal",
        "reserved for private use by ICANN in 2024, SAC113",
    ),
    // The infrastructure domain: in-addr.arpa and ip6.arpa (reverse DNS), home.arpa (RFC 8375)
    // and the rest are not subscriber names. The PSL lists some of them as ICANN suffixes.
    ("arpa", "RFC 3172"),
];

/// BR 4.2.2: "CAs SHALL NOT issue Certificates containing Internal Names".
fn check_not_internal(base: &str) -> Result<(), Refusal> {
    let tld = base.rsplit('.').next().unwrap_or(base);
    match SPECIAL_USE_TLDS.iter().find(|(name, _)| *name == tld) {
        Some((name, source)) => refuse(
            "policy.dns_name.internal",
            format!(
                "\".{name}\" is a special-use name, not in the public DNS ({source}); certificates for Internal Names are forbidden (BR 4.2.2, 7.1.2.7.12)"
            ),
        ),
        None => Ok(()),
    }
}

/// The name must end in a suffix of the PSL's ICANN section and be more than that suffix; a
/// wildcard must not sit directly on one.
fn check_suffix(wildcard: bool, base: &str) -> Result<(), Refusal> {
    let Some(suffix) = icann_suffix(base) else {
        return refuse(
            "policy.dns_name.not_under_suffix",
            "the name does not end in a top-level domain of the Public Suffix List's ICANN section: an Internal Name (BR 1.6.1 \"Internal Name\", 4.2.2)",
        );
    };
    if suffix == base {
        return refuse(
            "policy.dns_name.public_suffix",
            if wildcard {
                format!(
                    "a wildcard directly under the public suffix \"{suffix}\" covers names no applicant controls (BR 3.2.2.6)"
                )
            } else {
                format!(
                    "\"{suffix}\" is a public suffix: registry-controlled, not a name an applicant controls (BR 3.2.2.6)"
                )
            },
        );
    }
    Ok(())
}

/// The longest suffix of `name` that is an ICANN-section rule of the Public Suffix List, or
/// `None` when `name`'s top-level domain is not in the list at all.
///
/// The `psl` crate returns the longest match from either section. When that is a PRIVATE entry
/// (`github.io`), the ICANN match is shorter still, so look again from the entry's parent: the
/// lookup only ever reads labels from the right, and no PRIVATE entry is a single label.
fn icann_suffix(name: &str) -> Option<&str> {
    let mut candidate = name;
    loop {
        let info = List.find(candidate.rsplit('.').map(str::as_bytes));
        let suffix = candidate.get(candidate.len().checked_sub(info.len)?..)?;
        match info.typ? {
            Type::Icann => return Some(suffix),
            Type::Private => candidate = suffix.split_once('.')?.1,
        }
    }
}

/// Whether the operator's blocklist refuses `base` (or the wildcard `*.base`).
///
/// An entry `"a.b"` matches exactly that name; `".a.b"` matches `a.b` and every name under it.
/// A wildcard `*.base` stands for every `x.base`, so it is refused when any name it covers is:
/// an exact entry one label under `base`, a domain entry one label under `base`, or a domain
/// entry at or above `base`. Entries are compared without regard to ASCII case.
fn is_blocked(wildcard: bool, base: &str, blocked: &[String]) -> bool {
    let base = base.as_bytes();
    blocked.iter().any(|entry| {
        let (domain_entry, entry) = match entry.strip_prefix('.') {
            Some(domain) => (true, domain.as_bytes()),
            None => (false, entry.as_bytes()),
        };
        let covers = domain_entry && is_at_or_under(base, entry);
        if !wildcard {
            return covers || base.eq_ignore_ascii_case(entry);
        }
        covers || parent(entry).is_some_and(|p| p.eq_ignore_ascii_case(base))
    })
}

/// Whether `name` is `domain` or a name under it.
fn is_at_or_under(name: &[u8], domain: &[u8]) -> bool {
    if name.eq_ignore_ascii_case(domain) {
        return true;
    }
    name.len() > domain.len()
        && name[name.len() - domain.len()..].eq_ignore_ascii_case(domain)
        && name[name.len() - domain.len() - 1] == b'.'
}

/// `name` without its leftmost label, if it has more than one.
fn parent(name: &[u8]) -> Option<&[u8]> {
    let dot = name.iter().position(|b| *b == b'.')?;
    name.get(dot + 1..)
}

/// Special-purpose IPv4 blocks: the IANA IPv4 Special-Purpose Address Registry (RFC 6890, updated
/// by RFC 8190), plus multicast (RFC 5771). BR 1.6.1 defines a "Reserved IP Address" as one in
/// any block of the IANA special-purpose registries, and BR 4.2.2 / 7.1.2.7.12 forbid them, even
/// the blocks the registry marks globally reachable (AS112, AMT). The broadcast address falls in
/// 240.0.0.0/4.
const RESERVED_V4: &[(Ipv4Addr, u8, &str)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8, "\"this network\", RFC 791"),
    (Ipv4Addr::new(10, 0, 0, 0), 8, "private use, RFC 1918"),
    (
        Ipv4Addr::new(100, 64, 0, 0),
        10,
        "shared address space (CGNAT), RFC 6598",
    ),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback, RFC 1122"),
    (Ipv4Addr::new(169, 254, 0, 0), 16, "link local, RFC 3927"),
    (Ipv4Addr::new(172, 16, 0, 0), 12, "private use, RFC 1918"),
    (
        Ipv4Addr::new(192, 0, 0, 0),
        24,
        "IETF protocol assignments, RFC 6890",
    ),
    (
        Ipv4Addr::new(192, 0, 2, 0),
        24,
        "documentation (TEST-NET-1), RFC 5737",
    ),
    (Ipv4Addr::new(192, 31, 196, 0), 24, "AS112-v4, RFC 7535"),
    (Ipv4Addr::new(192, 52, 193, 0), 24, "AMT, RFC 7450"),
    (
        Ipv4Addr::new(192, 88, 99, 0),
        24,
        "deprecated 6to4 relay anycast, RFC 7526",
    ),
    (Ipv4Addr::new(192, 168, 0, 0), 16, "private use, RFC 1918"),
    (
        Ipv4Addr::new(192, 175, 48, 0),
        24,
        "direct delegation AS112 service, RFC 7534",
    ),
    (Ipv4Addr::new(198, 18, 0, 0), 15, "benchmarking, RFC 2544"),
    (
        Ipv4Addr::new(198, 51, 100, 0),
        24,
        "documentation (TEST-NET-2), RFC 5737",
    ),
    (
        Ipv4Addr::new(203, 0, 113, 0),
        24,
        "documentation (TEST-NET-3), RFC 5737",
    ),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast, RFC 5771"),
    (
        Ipv4Addr::new(240, 0, 0, 0),
        4,
        "reserved, RFC 1112; includes limited broadcast, RFC 919",
    ),
];

/// Special-purpose IPv6 blocks: the IANA IPv6 Special-Purpose Address Registry (RFC 6890) inside
/// 2000::/3, and the blocks outside it worth naming. Everything outside 2000::/3 is refused
/// anyway (see [`check_ip_address`]).
const RESERVED_V6: &[(Ipv6Addr, u8, &str)] = &[
    (Ipv6Addr::UNSPECIFIED, 128, "unspecified, RFC 4291"),
    (Ipv6Addr::LOCALHOST, 128, "loopback, RFC 4291"),
    (
        Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0),
        96,
        "IPv4-mapped, RFC 4291",
    ),
    (
        Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0),
        96,
        "IPv4/IPv6 translation, RFC 6052",
    ),
    (
        Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),
        48,
        "local-use IPv4/IPv6 translation, RFC 8215",
    ),
    (
        Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),
        64,
        "discard-only, RFC 6666",
    ),
    // Covers Teredo (2001::/32), benchmarking, ORCHIDv2, AMT, AS112-v6 and the other entries
    // the registry lists under 2001::/23.
    (
        Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0),
        23,
        "IETF protocol assignments, RFC 2928",
    ),
    (
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
        32,
        "documentation, RFC 3849",
    ),
    (
        Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0),
        16,
        "6to4, RFC 3056",
    ),
    (
        Ipv6Addr::new(0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0),
        48,
        "direct delegation AS112 service, RFC 7534",
    ),
    (
        Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0),
        20,
        "documentation, RFC 9637",
    ),
    (
        Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0),
        16,
        "segment routing (SRv6) SIDs, RFC 9602",
    ),
    (
        Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
        7,
        "unique local, RFC 4193",
    ),
    (
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0),
        10,
        "link-local unicast, RFC 4291",
    ),
    (
        Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0),
        8,
        "multicast, RFC 4291",
    ),
];

/// Parses an iPAddress and refuses any Reserved IP Address.
fn check_ip_address(text: &str) -> Result<IpAddr, Refusal> {
    // std's parser takes only the plain forms: dotted-quad without leading zeros, RFC 4291 2.2
    // text for IPv6, no zone index, no prefix length.
    let Ok(ip) = text.parse::<IpAddr>() else {
        return refuse(
            "policy.ip_address.invalid",
            "not an IPv4 address in dotted-decimal form or an IPv6 address in RFC 4291 2.2 form",
        );
    };
    let reserved = match ip {
        IpAddr::V4(v4) => RESERVED_V4
            .iter()
            .find(|(net, len, _)| in_prefix(v4.to_bits().into(), net.to_bits().into(), *len, 32))
            .map(|(net, len, what)| format!("{net}/{len}, {what}")),
        IpAddr::V6(v6) => RESERVED_V6
            .iter()
            .find(|(net, len, _)| in_prefix(v6.to_bits(), net.to_bits(), *len, 128))
            .map(|(net, len, what)| format!("{net}/{len}, {what}"))
            // RFC 4291 2.4 and the IANA IPv6 Address Space registry: IANA assigns global unicast
            // only from 2000::/3; the rest is reserved by the IETF.
            .or_else(|| {
                (!in_prefix(v6.to_bits(), 0x2000 << 112, 3, 128)).then(|| {
                    "outside 2000::/3, the only global unicast space, RFC 4291 2.4".to_owned()
                })
            }),
    };
    match reserved {
        Some(block) => refuse(
            "policy.ip_address.not_public",
            format!(
                "{ip} is a Reserved IP Address ({block}; IANA special-purpose registries, RFC 6890); forbidden in certificates (BR 1.6.1, 4.2.2, 7.1.2.7.12)"
            ),
        ),
        None => Ok(ip),
    }
}

/// Whether the top `len` bits of `addr` and `net` agree, both `width` bits wide.
fn in_prefix(addr: u128, net: u128, len: u8, width: u32) -> bool {
    let shift = width - u32::from(len);
    shift >= width || addr >> shift == net >> shift
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> PolicyConfig {
        PolicyConfig::default()
    }

    fn dns(names: &[&str]) -> Result<Names, Error> {
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        check_names(&names, &[], &cfg())
    }

    fn ips(addrs: &[&str]) -> Result<Names, Error> {
        let addrs: Vec<String> = addrs.iter().map(|s| (*s).to_owned()).collect();
        check_names(&[], &addrs, &cfg())
    }

    /// The code a single dNSName is refused with.
    #[track_caller]
    fn dns_code(name: &str) -> &'static str {
        match dns(&[name]) {
            Ok(_) => panic!("{name:?} was accepted"),
            Err(err) => {
                assert_eq!(err.field, "dns_names[0]", "{name:?}");
                err.code
            }
        }
    }

    /// The code a single iPAddress is refused with.
    #[track_caller]
    fn ip_code(addr: &str) -> &'static str {
        match ips(&[addr]) {
            Ok(_) => panic!("{addr:?} was accepted"),
            Err(err) => {
                assert_eq!(err.field, "ip_addresses[0]", "{addr:?}");
                err.code
            }
        }
    }

    #[test]
    fn ordinary_names_are_accepted() {
        for name in [
            "example.com",
            "www.example.co.uk",
            "*.example.com",
            "xn--bcher-kva.de",
            "a.b-c.d9.example.org",
            "foo.github.io",
            "github.io",
            "*.github.io",
            "1.2.3.4.example.com",
            "123.com",
        ] {
            assert_eq!(
                dns(&[name]),
                Ok(Names {
                    dns: vec![name.to_owned()],
                    ips: vec![]
                }),
                "{name}"
            );
        }
    }

    #[test]
    fn public_addresses_are_accepted_and_typed() {
        let names = ips(&["8.8.8.8", "2606:4700::1111", "1.1.1.1"]).unwrap();
        assert_eq!(
            names.ips,
            [
                IpAddr::from([8, 8, 8, 8]),
                "2606:4700::1111".parse::<IpAddr>().unwrap(),
                IpAddr::from([1, 1, 1, 1]),
            ]
        );
    }

    #[test]
    fn names_and_addresses_together_keep_request_order() {
        let names = check_names(
            &["b.example.com".into(), "a.example.com".into()],
            &["9.9.9.9".into()],
            &cfg(),
        )
        .unwrap();
        assert_eq!(names.dns, ["b.example.com", "a.example.com"]);
        assert_eq!(names.ips, [IpAddr::from([9, 9, 9, 9])]);
    }

    #[test]
    fn no_names_is_refused() {
        let err = check_names(&[], &[], &cfg()).unwrap_err();
        assert_eq!(err.code, "policy.names.none");
        assert!(err.rule.contains("BR 7.1.2.7.12"), "{err}");
    }

    #[test]
    fn too_many_names_counts_both_kinds() {
        let cfg = PolicyConfig {
            max_names: 2,
            ..PolicyConfig::default()
        };
        let two = check_names(&["example.com".into()], &["8.8.8.8".into()], &cfg);
        assert!(two.is_ok());
        let err = check_names(
            &["example.com".into(), "www.example.com".into()],
            &["8.8.8.8".into()],
            &cfg,
        )
        .unwrap_err();
        assert_eq!(err.code, "policy.names.too_many");
        assert!(
            err.rule.contains("3 names") && err.rule.contains("at most 2"),
            "{err}"
        );
    }

    #[test]
    fn default_limit_is_100() {
        let names: Vec<String> = (0..100).map(|i| format!("n{i}.example.com")).collect();
        assert!(check_names(&names, &[], &cfg()).is_ok());
        let names: Vec<String> = (0..101).map(|i| format!("n{i}.example.com")).collect();
        assert_eq!(
            check_names(&names, &[], &cfg()).unwrap_err().code,
            "policy.names.too_many"
        );
    }

    #[test]
    fn empty_name_is_refused() {
        assert_eq!(dns_code(""), "policy.dns_name.empty");
    }

    #[test]
    fn uppercase_is_refused_not_folded() {
        assert_eq!(dns_code("Example.com"), "policy.dns_name.uppercase");
        assert_eq!(dns_code("XN--BCHER-KVA.DE"), "policy.dns_name.uppercase");
    }

    #[test]
    fn length_limits_are_exact() {
        // 63-octet label: fine; 64: refused.
        let l63 = "a".repeat(63);
        assert!(dns(&[&format!("{l63}.com")]).is_ok());
        assert_eq!(
            dns_code(&format!("{}.com", "a".repeat(64))),
            "policy.dns_name.label_length"
        );
        // 253 octets: fine; 254: refused.
        let name_253 = format!("{l63}.{l63}.{l63}.{}.com", "b".repeat(57));
        assert_eq!(name_253.len(), 253);
        assert!(dns(&[&name_253]).is_ok());
        let name_254 = format!("{l63}.{l63}.{l63}.{}.com", "b".repeat(58));
        assert_eq!(name_254.len(), 254);
        assert_eq!(dns_code(&name_254), "policy.dns_name.too_long");
    }

    #[test]
    fn empty_labels_are_refused() {
        assert_eq!(dns_code("a..b.com"), "policy.dns_name.label_length");
        assert_eq!(dns_code(".example.com"), "policy.dns_name.label_length");
        assert_eq!(dns_code("."), "policy.dns_name.label_length");
    }

    #[test]
    fn trailing_dot_is_refused() {
        assert_eq!(dns_code("example.com."), "policy.dns_name.trailing_dot");
    }

    #[test]
    fn non_ldh_characters_are_refused() {
        for name in [
            "foo_bar.example.com",
            "foo bar.example.com",
            "bücher.de",
            "foo@example.com",
            "example.com:443",
            "2001:db8::1",
        ] {
            assert_eq!(dns_code(name), "policy.dns_name.ldh", "{name}");
        }
    }

    #[test]
    fn hyphen_rules() {
        assert_eq!(dns_code("-a.com"), "policy.dns_name.hyphen");
        assert_eq!(dns_code("a-.com"), "policy.dns_name.hyphen");
        assert_eq!(dns_code("www.-a.example.com"), "policy.dns_name.hyphen");
        // Reserved LDH: "--" in positions 3 and 4, not "xn--".
        assert_eq!(dns_code("ab--c.com"), "policy.dns_name.hyphen");
        assert_eq!(dns_code("www.ab--c.example.com"), "policy.dns_name.hyphen");
        // "--" elsewhere is fine.
        assert!(dns(&["a--b.com"]).is_ok());
        assert!(dns(&["abc--d.com"]).is_ok());
    }

    #[test]
    fn a_labels_must_round_trip() {
        assert!(dns(&["xn--bcher-kva.de"]).is_ok());
        assert!(dns(&["www.xn--bcher-kva.de"]).is_ok());
        // IDN TLDs are in the PSL in A-label form.
        assert!(dns(&["example.xn--fiqs8s"]).is_ok());
        for name in [
            // Not Punycode.
            "xn--zzzzzzzzzzzzzzzzzzzz.de",
            // Decodes to U+0080, a control character.
            "xn--a.de",
            // Decodes to "ü-": the U-label ends with a hyphen.
            "xn----dha.de",
            // Decodes to "a" U+0308 "bc": not NFC; the NFC form "äbc" encodes differently.
            "xn--abc-dec.de",
            // Decodes to "ab" U+00AD "c": the soft hyphen is mapped away, giving plain "abc".
            "xn--abc-hfa.de",
            // Decodes to "a" U+200D "b": a zero-width joiner outside its allowed context.
            "xn--ab-m1t.de",
        ] {
            assert_eq!(dns_code(name), "policy.dns_name.idna", "{name}");
        }
    }

    /// The A-label of a U-label.
    fn a_label(u_label: &str) -> String {
        format!("xn--{}", idna::punycode::encode_str(u_label).unwrap())
    }

    /// The refusal of `{a_label(u_label)}.de`: (code, rule).
    fn idna_refusal(u_label: &str) -> (&'static str, String) {
        let name = format!("{}.de", a_label(u_label));
        let e = dns(&[&name]).expect_err(&name);
        (e.code, e.rule.clone())
    }

    #[test]
    fn idna2008_accepts_pvalid_labels() {
        for u in [
            "b\u{FC}cher",                                // ü
            "stra\u{DF}e", // ß: PVALID in IDNA2008 (mapped to "ss" only by IDNA2003)
            "\u{3C2}\u{3BF}\u{3C6}\u{3AF}\u{3B1}\u{3C2}", // final sigma ς
            "\u{D55C}\u{AD6D}", // Hangul 한국
            "\u{4E2D}\u{6587}", // Han
            "col\u{B7}lecci\u{F3}", // MIDDLE DOT between two "l" (RFC 5892 A.3)
            "\u{915}\u{94D}\u{200D}", // ZWJ after a virama (A.2)
        ] {
            assert_eq!(check_idna2008(u), Ok(()), "{u}");
            let name = format!("{}.de", a_label(u));
            assert!(dns(&[&name]).is_ok(), "{u}: {:?}", dns(&[&name]));
        }
        // ZWNJ between a dual-joining and a right-joining Arabic letter (A.1), and after a virama.
        assert_eq!(check_idna2008("\u{628}\u{200C}\u{627}"), Ok(()));
        assert_eq!(check_idna2008("\u{915}\u{94D}\u{200C}\u{937}"), Ok(()));
    }

    #[test]
    fn idna2008_refuses_disallowed_and_unassigned_code_points() {
        for (u, cp, class) in [
            ("i\u{2665}ny", "U+2665", "DISALLOWED"), // BLACK HEART SUIT (UTS #46 admits it)
            ("\u{1F4A9}", "U+1F4A9", "DISALLOWED"),  // an emoji (UTS #46 admits it)
            ("\u{DC}ber", "U+00DC", "DISALLOWED"),   // upper case Ü
            ("a\u{A0}b\u{E9}", "U+00A0", "DISALLOWED"), // NO-BREAK SPACE
            ("a\u{378}b", "U+0378", "UNASSIGNED"),
            ("a\u{E0080}b", "U+E0080", "UNASSIGNED"),
        ] {
            let (code, rule) = idna_refusal(u);
            assert_eq!(code, "policy.dns_name.idna", "{u}");
            assert!(rule.contains(&format!("{cp} at position")), "{u}: {rule}");
            assert!(rule.contains(class), "{u}: {rule}");
            assert!(rule.contains("RFC 5892"), "{u}: {rule}");
        }
    }

    #[test]
    fn idna2008_refuses_context_code_points_out_of_context() {
        for (u, cp, class) in [
            ("a\u{200D}b", "U+200D", "CONTEXTJ"), // ZWJ not after a virama
            ("a\u{200C}b", "U+200C", "CONTEXTJ"), // ZWNJ between Latin letters
            ("\u{627}\u{200C}\u{628}", "U+200C", "CONTEXTJ"), // right-joining before it
            ("a\u{B7}b\u{E9}", "U+00B7", "CONTEXTO"), // MIDDLE DOT not between "l"s
            ("\u{375}ab", "U+0375", "CONTEXTO"),  // keraia not before Greek
            ("a\u{5F3}", "U+05F3", "CONTEXTO"),   // geresh not after Hebrew
            ("a\u{30FB}b", "U+30FB", "CONTEXTO"), // no Hiragana/Katakana/Han
            ("\u{661}\u{6F1}", "U+0661", "CONTEXTO"), // mixed Arabic-Indic digits
        ] {
            let rule = check_idna2008(u).expect_err(u).to_string();
            assert!(rule.contains(&format!("{cp} at position")), "{u}: {rule}");
            assert!(rule.contains(class), "{u}: {rule}");
        }
        assert_eq!(
            check_idna2008("a\u{200D}b").unwrap_err().to_string(),
            "has U+200D at position 1, which IDNA2008 allows only where it follows a virama (A.2) (RFC 5892 CONTEXTJ, Appendix A)"
        );
        assert_eq!(
            check_idna2008("i\u{2665}ny").unwrap_err().to_string(),
            format!(
                "has U+2665 at position 1, which is DISALLOWED in IDNA2008 (RFC 5892 section 2, Unicode {} tables; RFC 5891 5.4)",
                idna2008::UNICODE_VERSION
            )
        );
        assert_eq!(check_idna2008("\u{30A2}\u{30FB}\u{30A4}"), Ok(()));
        assert_eq!(check_idna2008("\u{3B1}\u{375}\u{3B2}"), Ok(()));
        assert_eq!(check_idna2008("\u{5D0}\u{5F3}"), Ok(()));
        assert_eq!(check_idna2008("\u{661}\u{662}"), Ok(()));
        // Through the whole name check, the refusal has the wire code.
        let (code, rule) = idna_refusal("a\u{200C}b");
        assert_eq!(code, "policy.dns_name.idna");
        assert!(rule.starts_with("label 0 is not a valid A-label"), "{rule}");
    }

    #[test]
    fn wildcard_placement() {
        assert!(dns(&["*.example.com"]).is_ok());
        for name in [
            "foo.*.example.com",
            "*.*.example.com",
            "*foo.example.com",
            "f*o.example.com",
            "*",
            "**.example.com",
            "example.*",
        ] {
            assert_eq!(dns_code(name), "policy.dns_name.wildcard", "{name}");
        }
    }

    #[test]
    fn public_suffixes_and_wildcards_over_them_are_refused() {
        for name in ["com", "co.uk", "*.com", "*.co.uk", "io", "*.io"] {
            let err = dns(&[name]).unwrap_err();
            assert_eq!(err.code, "policy.dns_name.public_suffix", "{name}");
            assert!(err.rule.contains("BR 3.2.2.6"), "{err}");
        }
        // PSL wildcard rule "*.ck": any "x.ck" is itself a suffix.
        assert_eq!(dns_code("foo.ck"), "policy.dns_name.public_suffix");
        assert!(dns(&["bar.foo.ck"]).is_ok());
    }

    #[test]
    fn special_use_names_are_internal() {
        for name in [
            "foo.local",
            "localhost",
            "foo.localhost",
            "printer.internal",
            "foo.test",
            "xn--bcher-kva.example",
            "foo.invalid",
            "3g2upl4pq6kufc4m.onion",
            "foo.alt",
            "1.0.0.127.in-addr.arpa",
            "router.home.arpa",
            "*.local",
        ] {
            assert_eq!(dns_code(name), "policy.dns_name.internal", "{name}");
        }
        // RFC 2606 second-level example names are ordinary registered names.
        assert!(dns(&["example.net"]).is_ok());
    }

    #[test]
    fn unknown_tlds_are_not_under_a_suffix() {
        // ".bar" is a delegated gTLD, so foo.bar is an ordinary name.
        assert!(dns(&["foo.bar"]).is_ok());
        assert!(
            icann_suffix("foo.notatld").is_none(),
            "notatld became a TLD"
        );
        for name in [
            "foo.notatld",
            "intranet",
            "server.corp",
            "nas.lan",
            "*.foo.home",
        ] {
            assert_eq!(dns_code(name), "policy.dns_name.not_under_suffix", "{name}");
        }
    }

    #[test]
    fn dotted_quads_are_not_dns_names() {
        assert_eq!(dns_code("8.8.8.8"), "policy.dns_name.ip_address");
        assert_eq!(dns_code("*.8.8.8.8"), "policy.dns_name.ip_address");
    }

    #[test]
    fn icann_suffix_skips_private_entries() {
        assert_eq!(icann_suffix("foo.github.io"), Some("io"));
        assert_eq!(icann_suffix("github.io"), Some("io"));
        assert_eq!(icann_suffix("www.example.co.uk"), Some("co.uk"));
        assert_eq!(icann_suffix("co.uk"), Some("co.uk"));
        assert_eq!(icann_suffix("foo.notatld"), None);
    }

    #[test]
    fn blocklist_exact_and_domain_entries() {
        let cfg = PolicyConfig {
            blocked_names: vec!["exact.example.com".into(), ".bad.example.org".into()],
            ..PolicyConfig::default()
        };
        let code = |name: &str| {
            check_names(&[name.to_owned()], &[], &cfg)
                .err()
                .map(|e| e.code)
        };
        let blocked = Some("policy.dns_name.blocked");
        // Exact entry: only that name, and a wildcard that covers it.
        assert_eq!(code("exact.example.com"), blocked);
        assert_eq!(code("*.example.com"), blocked);
        assert_eq!(code("www.exact.example.com"), None);
        assert_eq!(code("example.com"), None);
        assert_eq!(code("*.exact.example.com"), None);
        // Domain entry: the domain, everything under it, and wildcards that cover any of it.
        assert_eq!(code("bad.example.org"), blocked);
        assert_eq!(code("a.b.bad.example.org"), blocked);
        assert_eq!(code("*.bad.example.org"), blocked);
        assert_eq!(code("*.x.bad.example.org"), blocked);
        assert_eq!(code("*.example.org"), blocked);
        assert_eq!(code("notbad.example.org"), None);
        assert_eq!(code("example.org"), None);
        assert_eq!(code("*.org.example.org"), None);
    }

    #[test]
    fn blocklist_ignores_entry_case() {
        let cfg = PolicyConfig {
            blocked_names: vec![".Example.COM".into()],
            ..PolicyConfig::default()
        };
        let err = check_names(&["www.example.com".into()], &[], &cfg).unwrap_err();
        assert_eq!(err.code, "policy.dns_name.blocked");
    }

    #[test]
    fn duplicates_are_refused_with_both_indexes() {
        let err = dns(&["a.example.com", "b.example.com", "a.example.com"]).unwrap_err();
        assert_eq!(err.code, "policy.dns_name.duplicate");
        assert_eq!(err.field, "dns_names[2]");
        assert!(err.rule.contains("dns_names[0]"), "{err}");

        // The same address written two ways.
        let err = ips(&["2606:4700::1111", "2606:4700:0:0::1111"]).unwrap_err();
        assert_eq!(err.code, "policy.ip_address.duplicate");
        assert_eq!(err.field, "ip_addresses[1]");
    }

    #[test]
    fn field_names_the_failing_index() {
        let err = dns(&["example.com", "www.example.com", "foo.local"]).unwrap_err();
        assert_eq!(err.field, "dns_names[2]");
        assert!(err.to_string().starts_with("dns_names[2]: "), "{err}");
        let err = check_names(
            &["example.com".into()],
            &["8.8.8.8".into(), "10.0.0.1".into()],
            &cfg(),
        )
        .unwrap_err();
        assert_eq!(err.field, "ip_addresses[1]");
    }

    #[test]
    fn malformed_addresses_are_invalid() {
        for addr in [
            "",
            "8.8.8",
            "8.8.8.256",
            "08.8.8.8",
            "8.8.8.8/32",
            " 8.8.8.8",
            "fe80::1%eth0",
            "[2606:4700::1111]",
            "2606:4700::1111::1",
            "example.com",
        ] {
            assert_eq!(ip_code(addr), "policy.ip_address.invalid", "{addr:?}");
        }
    }

    #[test]
    fn reserved_addresses_are_refused() {
        for addr in [
            "0.0.0.0",
            "0.1.2.3",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "192.0.0.9",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.200",
            "198.18.0.1",
            "198.19.255.255",
            "192.88.99.1",
            "192.31.196.1",
            "224.0.0.1",
            "239.255.255.255",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:8.8.8.8",
            "::8.8.8.8",
            "64:ff9b::808:808",
            "100::1",
            "2001::1",
            "2001:db8::1",
            "2002:808:808::1",
            "3fff::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "4000::1",
        ] {
            assert_eq!(ip_code(addr), "policy.ip_address.not_public", "{addr}");
        }
    }

    #[test]
    fn prefix_edges_are_exact() {
        // Just outside 172.16.0.0/12, 100.64.0.0/10, 198.18.0.0/15 and 2001::/23.
        for addr in [
            "172.15.255.255",
            "172.32.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2001:200::1",
        ] {
            assert!(ips(&[addr]).is_ok(), "{addr}");
        }
    }

    #[test]
    fn not_public_rule_names_the_block_and_the_br() {
        let err = ips(&["192.168.1.1"]).unwrap_err();
        assert!(
            err.rule.contains("192.168.0.0/16") && err.rule.contains("RFC 1918"),
            "{err}"
        );
        assert!(err.rule.contains("BR 1.6.1, 4.2.2, 7.1.2.7.12"), "{err}");
    }
}
