//! The SignedCertificateTimestampList a final certificate carries (RFC 6962 3.2, 3.3).

use super::Error;

/// Checks a TLS-encoded SignedCertificateTimestampList (RFC 6962 3.3): a 2-byte total length,
/// then one or more 2-byte-length-prefixed SCTs, each a v1 SignedCertificateTimestamp (3.2):
/// version 0, a 32-byte log id, an 8-byte timestamp, length-prefixed extensions and a
/// digitally-signed struct (hash and signature algorithm, length-prefixed signature), with
/// nothing left over anywhere.
///
/// # Errors
/// `request.sct_list.malformed`, field `sct_list`, naming what does not parse.
pub fn check_sct_list(list: &[u8]) -> Result<(), Error> {
    let bad = |why: &str| {
        Error::new(
            "request.sct_list.malformed",
            "sct_list",
            format!("{why} (RFC 6962 3.2, 3.3)"),
        )
    };
    fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (rest.get(..n)?, rest.get(n..)?);
        *rest = tail;
        Some(head)
    }
    fn vector<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
        let len = take(rest, 2)?;
        take(rest, usize::from(u16::from_be_bytes([len[0], len[1]])))
    }
    let mut rest = list;
    let mut scts = vector(&mut rest).ok_or_else(|| bad("truncated list"))?;
    if !rest.is_empty() || scts.is_empty() {
        return Err(bad("the list length does not match, or the list is empty"));
    }
    while !scts.is_empty() {
        let mut sct = vector(&mut scts).ok_or_else(|| bad("truncated SCT"))?;
        let version = take(&mut sct, 1).ok_or_else(|| bad("empty SCT"))?;
        if version != [0] {
            return Err(bad("only v1 SCTs are accepted"));
        }
        let parsed = take(&mut sct, 32)
            .and_then(|_log_id| take(&mut sct, 8))
            .and_then(|_timestamp| vector(&mut sct))
            .and_then(|_extensions| take(&mut sct, 2))
            .and_then(|_algorithms| vector(&mut sct));
        match parsed {
            Some(signature) if !signature.is_empty() && sct.is_empty() => {}
            _ => {
                return Err(bad(
                    "an SCT is truncated, has no signature, or has trailing bytes",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A v1 SCT with the given signature length, and the list around `n` of them.
    fn sct_list(n: usize, sig_len: usize) -> Vec<u8> {
        let mut sct = vec![0u8];
        sct.extend([7u8; 32]);
        sct.extend(1_700_000_000_000u64.to_be_bytes());
        sct.extend([0, 0, 4, 3]);
        sct.extend((sig_len as u16).to_be_bytes());
        sct.extend(vec![9u8; sig_len]);
        let mut body = Vec::new();
        for _ in 0..n {
            body.extend((sct.len() as u16).to_be_bytes());
            body.extend(&sct);
        }
        let mut list = (body.len() as u16).to_be_bytes().to_vec();
        list.extend(body);
        list
    }

    #[test]
    fn sct_list_structure() {
        assert!(check_sct_list(&sct_list(1, 70)).is_ok());
        assert!(check_sct_list(&sct_list(2, 71)).is_ok());
        assert!(check_sct_list(&sct_list(1, 0)).is_err(), "no signature");
        assert!(check_sct_list(&sct_list(0, 70)).is_err(), "empty list");
        let mut trailing = sct_list(1, 70);
        trailing.push(0);
        assert!(check_sct_list(&trailing).is_err());
        let mut v2 = sct_list(1, 70);
        v2[4] = 1;
        assert!(check_sct_list(&v2).is_err());
        assert!(
            check_sct_list(&[0, 4, 0, 2, 0xaa, 0xbb]).is_err(),
            "not an SCT"
        );
        assert!(check_sct_list(&[]).is_err());
    }
}
