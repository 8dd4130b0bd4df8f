//! The service refuses a dNSName whose A-label is not valid under IDNA2008 (RFC 5891 5.4,
//! RFC 5892) with the wire code `policy.dns_name.idna`, naming the field and the code point, and
//! signs nothing; a valid A-label is issued. The rules themselves are unit-tested in
//! `policy::names`.
#![allow(clippy::unwrap_used)]

mod common;

use common::daemon::{self, Daemon, Rt};
use serde_json::{Value, json};

fn issue_body(name: &str) -> Value {
    json!({"profile": "tls-server", "public_key": daemon::subscriber_key(), "dns_names": ["ok.example.com", name]})
}

#[test]
fn an_a_label_idna2008_disallows_is_refused_on_the_wire_as_policy_dns_name_idna() {
    let dir = daemon::copy_demo(|c| c);
    let d = Daemon::start(dir.path(), &[]);
    let rt = Rt::new();
    for (name, cp) in [
        // "i♥ny": U+2665 is DISALLOWED in IDNA2008, though UTS #46 admits it.
        ("xn--iny-zx5a.example.com", "U+2665"),
        // "a" ZWJ "b": CONTEXTJ, not after a virama (RFC 5892 A.2).
        ("xn--ab-m1t.example.com", "U+200D"),
    ] {
        let (status, reply) = rt
            .post(&d.socket(), "/v1/certificates", &issue_body(name))
            .unwrap();
        assert_eq!(status, 400, "{name}: {reply}");
        assert_eq!(
            reply["error"]["code"].as_str(),
            Some("policy.dns_name.idna"),
            "{name}: {reply}"
        );
        assert_eq!(
            reply["error"]["field"].as_str(),
            Some("dns_names[1]"),
            "{reply}"
        );
        let message = reply["error"]["message"].as_str().unwrap();
        assert!(message.contains(cp), "{name}: {message}");
        assert!(message.contains("RFC 5892"), "{name}: {message}");
    }
    // "bücher": PVALID throughout, issued.
    let (status, reply) = rt
        .post(
            &d.socket(),
            "/v1/certificates",
            &issue_body("xn--bcher-kva.example.com"),
        )
        .unwrap();
    assert_eq!(status, 201, "{reply}");
}
