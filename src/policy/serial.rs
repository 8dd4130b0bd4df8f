//! Serial numbers: an instance prefix and CSPRNG output (RFC 5280 4.1.2.2, BR 7.1).

use x509_cert::serial_number::SerialNumber;

/// Octets of CSPRNG output in a serial, after the instance prefix: 128 bits, twice BR 7.1's
/// minimum of 64.
pub const SERIAL_RANDOM_OCTETS: usize = 16;

/// Why a serial number could not be made: only a bug or a configuration that escaped its checks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SerialError {
    /// The instance prefix is outside 1..=127 (the configuration refuses those).
    #[error("instance prefix {0} is outside 1..=127 (RFC 5280 4.1.2.2)")]
    Prefix(u8),
    /// DER refused the octets.
    #[error(transparent)]
    Der(der::Error),
}

/// A serial number: the instance prefix (1..=127) followed by [`SERIAL_RANDOM_OCTETS`] octets
/// from the CSPRNG, 17 octets in all. The prefix keeps the first bit clear, so the INTEGER is
/// positive and needs no leading zero octet; it is never zero-led, so the encoding is minimal
/// (RFC 5280 4.1.2.2: positive, at most 20 octets; BR 7.1: at least 64 bits of CSPRNG output).
///
/// # Errors
/// [`SerialError::Prefix`] for a prefix outside 1..=127 (the configuration refuses those).
pub fn serial_number(
    prefix: u8,
    random: &[u8; SERIAL_RANDOM_OCTETS],
) -> Result<SerialNumber, SerialError> {
    if !(1..=127).contains(&prefix) {
        return Err(SerialError::Prefix(prefix));
    }
    let mut octets = [prefix; 1 + SERIAL_RANDOM_OCTETS];
    octets[1..].copy_from_slice(random);
    SerialNumber::new(&octets).map_err(SerialError::Der)
}

#[cfg(test)]
mod tests {
    use super::*;

    use der::{Decode as _, Encode as _};
    use proptest::prelude::*;

    proptest! {
        // RFC 5280 4.1.2.2, BR 7.1: positive, 17 octets, the prefix first, minimal DER INTEGER.
        #[test]
        fn serials_are_positive_17_octets_prefix_first(
            prefix in 1u8..=127,
            random in any::<[u8; SERIAL_RANDOM_OCTETS]>(),
        ) {
            let serial = serial_number(prefix, &random).unwrap();
            let octets = serial.as_bytes();
            prop_assert_eq!(octets.len(), 17);
            prop_assert_eq!(octets[0], prefix);
            prop_assert_eq!(&octets[1..], &random[..]);
            let der = serial.to_der().unwrap();
            // INTEGER, short length, 17 content octets, first bit clear (positive), not zero-led.
            prop_assert_eq!(&der[..2], &[0x02, 17][..]);
            prop_assert!(der[2] & 0x80 == 0 && der[2] != 0);
            let back: SerialNumber = SerialNumber::from_der(&der).unwrap();
            prop_assert_eq!(back.as_bytes(), octets);
            prop_assert!(octets.len() <= 20);
        }

        #[test]
        fn serial_prefixes_outside_1_to_127_are_refused(
            prefix in prop_oneof![Just(0u8), 128u8..=255],
            random in any::<[u8; SERIAL_RANDOM_OCTETS]>(),
        ) {
            prop_assert!(matches!(serial_number(prefix, &random), Err(SerialError::Prefix(p)) if p == prefix));
        }
    }
}
