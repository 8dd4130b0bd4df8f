//! ECDSA verification on P-256 for one public key that verifies many signatures (an issuer's),
//! with a precomputed table for the key as well as for the base point.
//!
//! ECDSA verification (FIPS 186-5 §6.4.2) computes `R = u1·G + u2·Q` and compares `x(R) mod n`
//! with `r`. A general verifier has a table for `G` only and pays for a variable-base
//! multiplication of `Q` (about 256 doublings); with a table for `Q` too, both are fixed-base:
//! the scalars are written in 22 signed 12-bit digits dᵢ in [−2047, 2048], and
//! `u·P = Σ dᵢ·2¹²ⁱ·P` is at most 22 additions of table entries `±b·2¹²ⁱ·P` (affine, so each
//! is a mixed addition; a negative digit negates the entry's y). That is at most 44 additions
//! and no doubling. Each table is 22 × 2048 affine points, 2.75 MiB (signed digits halve it),
//! built once (about 30 ms); the base point's is built on first use and shared. The tables do
//! not fit in a core's cache, so the entries a verification needs are copied out of them
//! together before the additions start, and their cache misses overlap.
//!
//! The window is a trade of memory for additions. In `tests::timing` (release build, one run
//! after another, best of five passes of 2000 verifications each), 8-bit digits (33 × 128
//! entries, 264 KiB a table, 66 additions) took 28.3–29.9 µs a verification and 12-bit digits
//! 21.0–23.9 µs; 13-bit digits (5 MiB a table) were not clearly faster than 12. What it saves
//! per certificate is measured by `strongroom bench issue` (README, "What made it cheaper").
//!
//! The field arithmetic modulo p is fiat-crypto's (generated from a machine-checked proof,
//! `fiat_crypto::p256_64`); the scalar arithmetic modulo n is the RustCrypto `p256` crate's.
//! What is written here is the group law in Jacobian coordinates and the table. Nothing here is
//! secret (a public key, a signature and a digest), so the code is not constant-time: special
//! cases of the group law are branched on.
//!
//! Checked against AWS-LC's verification of the same signatures (valid, and with bits flipped
//! in the digest, `r` and `s`) in the tests below.

use fiat_crypto::p256_64::{
    fiat_p256_add, fiat_p256_from_bytes, fiat_p256_montgomery_domain_field_element as Mont,
    fiat_p256_mul, fiat_p256_non_montgomery_domain_field_element as Plain, fiat_p256_set_one,
    fiat_p256_square, fiat_p256_sub, fiat_p256_to_montgomery,
};
use p256::elliptic_curve::ops::Reduce;
use p256::{FieldBytes, NonZeroScalar, Scalar};

/// p, big-endian (FIPS 186-5 / SP 800-186 §3.2.1.3).
const P: [u8; 32] = hex32("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff");
/// n, the order of G, big-endian.
const N: [u8; 32] = hex32("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
/// b, the curve's constant (y² = x³ − 3x + b), big-endian.
const B: [u8; 32] = hex32("5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b");
/// The base point G, big-endian coordinates.
const GX: [u8; 32] = hex32("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296");
const GY: [u8; 32] = hex32("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5");

/// 32 hex-encoded bytes, at compile time.
const fn hex32(s: &str) -> [u8; 32] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not a lower-case hex digit"),
        }
    }
    let s = s.as_bytes();
    assert!(s.len() == 64);
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(s[2 * i]) << 4) | nibble(s[2 * i + 1]);
        i += 1;
    }
    out
}

/// An element of GF(p) in Montgomery form. fiat-crypto keeps every result fully reduced
/// (below p), so equal elements have equal limbs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Fe([u64; 4]);

impl Fe {
    const ZERO: Fe = Fe([0; 4]);

    fn one() -> Fe {
        let mut out = Mont([0; 4]);
        fiat_p256_set_one(&mut out);
        Fe(out.0)
    }

    /// A big-endian integer below p; `None` if it is not.
    fn from_be_bytes(bytes: &[u8; 32]) -> Option<Fe> {
        if *bytes >= P {
            return None;
        }
        let mut le = *bytes;
        le.reverse();
        let mut plain = [0u64; 4];
        fiat_p256_from_bytes(&mut plain, &le);
        let mut out = Mont([0; 4]);
        fiat_p256_to_montgomery(&mut out, &Plain(plain));
        Some(Fe(out.0))
    }

    fn mul(&self, other: &Fe) -> Fe {
        let mut out = Mont([0; 4]);
        fiat_p256_mul(&mut out, &Mont(self.0), &Mont(other.0));
        Fe(out.0)
    }

    fn square(&self) -> Fe {
        let mut out = Mont([0; 4]);
        fiat_p256_square(&mut out, &Mont(self.0));
        Fe(out.0)
    }

    fn add(&self, other: &Fe) -> Fe {
        let mut out = Mont([0; 4]);
        fiat_p256_add(&mut out, &Mont(self.0), &Mont(other.0));
        Fe(out.0)
    }

    fn sub(&self, other: &Fe) -> Fe {
        let mut out = Mont([0; 4]);
        fiat_p256_sub(&mut out, &Mont(self.0), &Mont(other.0));
        Fe(out.0)
    }

    fn double(&self) -> Fe {
        self.add(self)
    }

    fn is_zero(&self) -> bool {
        *self == Fe::ZERO
    }

    /// self^exponent (big-endian), square and multiply.
    fn pow(&self, exponent: &[u8; 32]) -> Fe {
        let mut acc = Fe::one();
        for byte in exponent {
            for bit in (0..8).rev() {
                acc = acc.square();
                if (byte >> bit) & 1 == 1 {
                    acc = acc.mul(self);
                }
            }
        }
        acc
    }

    /// a^(p−2) = a⁻¹ for a ≠ 0 (Fermat); 0 for 0. Only used while building tables.
    fn invert(&self) -> Fe {
        let mut exponent = P;
        exponent[31] -= 2; // p ends in ...ff, so no borrow
        self.pow(&exponent)
    }
}

/// A point other than the identity, in affine coordinates. 64 bytes, aligned so that a table
/// entry is one cache line.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Affine {
    x: Fe,
    y: Fe,
}

/// A point in Jacobian coordinates (x = X/Z², y = Y/Z³); Z = 0 is the identity.
#[derive(Clone, Copy, Debug)]
struct Jacobian {
    x: Fe,
    y: Fe,
    z: Fe,
}

impl Affine {
    /// The point (x, y) if it is on the curve: y² = x³ − 3x + b (SEC 1 §3.2.2.1).
    fn new(x: &[u8; 32], y: &[u8; 32]) -> Option<Affine> {
        let (x, y) = (Fe::from_be_bytes(x)?, Fe::from_be_bytes(y)?);
        let b = Fe::from_be_bytes(&B)?;
        let three_x = x.double().add(&x);
        let rhs = x.square().mul(&x).sub(&three_x).add(&b);
        (y.square() == rhs).then_some(Affine { x, y })
    }
}

impl Affine {
    /// −self: (x, −y).
    fn negated(&self) -> Affine {
        Affine {
            x: self.x,
            y: Fe::ZERO.sub(&self.y),
        }
    }
}

impl Jacobian {
    const IDENTITY: Jacobian = Jacobian {
        x: Fe::ZERO,
        y: Fe::ZERO,
        z: Fe::ZERO,
    };

    fn from_affine(p: &Affine) -> Jacobian {
        Jacobian {
            x: p.x,
            y: p.y,
            z: Fe::one(),
        }
    }

    fn is_identity(&self) -> bool {
        self.z.is_zero()
    }

    /// 2·self, for a = −3 ("dbl-2001-b", Bernstein–Lange Explicit-Formulas Database). The
    /// identity and points with y = 0 come out with Z = 0 by the formulas themselves.
    fn double(&self) -> Jacobian {
        let delta = self.z.square();
        let gamma = self.y.square();
        let beta = self.x.mul(&gamma);
        let t = self.x.sub(&delta).mul(&self.x.add(&delta));
        let alpha = t.double().add(&t);
        let beta4 = beta.double().double();
        let x = alpha.square().sub(&beta4.double());
        let z = self.y.add(&self.z).square().sub(&gamma).sub(&delta);
        let gamma2_8 = gamma.square().double().double().double();
        let y = alpha.mul(&beta4.sub(&x)).sub(&gamma2_8);
        Jacobian { x, y, z }
    }

    /// self + q ("madd-2007-bl"), with the cases the formulas do not cover: self the
    /// identity, q = self (a doubling) and q = −self (the identity).
    fn add_affine(&self, q: &Affine) -> Jacobian {
        if self.is_identity() {
            return Jacobian::from_affine(q);
        }
        let z1z1 = self.z.square();
        let u2 = q.x.mul(&z1z1);
        let s2 = q.y.mul(&self.z).mul(&z1z1);
        let h = u2.sub(&self.x);
        let r_half = s2.sub(&self.y);
        if h.is_zero() {
            return if r_half.is_zero() {
                self.double()
            } else {
                Jacobian::IDENTITY
            };
        }
        let hh = h.square();
        let i = hh.double().double();
        let j = h.mul(&i);
        let r = r_half.double();
        let v = self.x.mul(&i);
        let x = r.square().sub(&j).sub(&v.double());
        let y = r.mul(&v.sub(&x)).sub(&self.y.mul(&j).double());
        let z = self.z.add(&h).square().sub(&z1z1).sub(&hh);
        Jacobian { x, y, z }
    }
}

/// Affine forms of points none of which is the identity, with one inversion (Montgomery's
/// trick); `None` if one is the identity.
fn to_affine(points: &[Jacobian]) -> Option<Vec<Affine>> {
    let mut prefix = Vec::with_capacity(points.len());
    let mut acc = Fe::one();
    for p in points {
        if p.is_identity() {
            return None;
        }
        acc = acc.mul(&p.z);
        prefix.push(acc);
    }
    let mut inverse = acc.invert();
    let mut out = vec![
        Affine {
            x: Fe::ZERO,
            y: Fe::ZERO
        };
        points.len()
    ];
    for k in (0..points.len()).rev() {
        let z_inv = if k == 0 {
            inverse
        } else {
            inverse.mul(&prefix[k - 1])
        };
        inverse = inverse.mul(&points[k].z);
        let z_inv2 = z_inv.square();
        out[k] = Affine {
            x: points[k].x.mul(&z_inv2),
            y: points[k].y.mul(&z_inv2.mul(&z_inv)),
        };
    }
    Some(out)
}

/// Bits per signed digit. A scalar u < 2²⁵⁶ is written u = Σ dᵢ·2^(W·i) with each dᵢ in
/// [−2^(W−1) + 1, 2^(W−1)]; a table row holds b·2^(W·i)·P for b in 1..=2^(W−1).
const W: usize = 12;
/// Digits of a 256-bit scalar: ⌊256/W⌋ + 1. The top one holds the 256 mod W bits left and a
/// carry; 256 mod W is at most W − 2 (257 is prime), so it is at most 2^(W−2) and carries no
/// further.
const ROWS: usize = 256 / W + 1;
/// Entries per row: the digits' magnitudes, 1 to 2^(W−1).
const PER_ROW: usize = 1 << (W - 1);

/// b·2^(W·i)·P for i in 0..ROWS and b in 1..=PER_ROW, at `i·PER_ROW + b − 1`.
struct Table(Vec<Affine>);

impl Table {
    fn new(point: Affine) -> Option<Table> {
        let mut entries = Vec::with_capacity(ROWS * PER_ROW);
        let mut base = point;
        for _ in 0..ROWS {
            let mut row = Vec::with_capacity(PER_ROW + 1);
            let mut acc = Jacobian::from_affine(&base);
            row.push(acc);
            for _ in 1..PER_ROW {
                acc = acc.add_affine(&base);
                row.push(acc);
            }
            // 2^W·base, the next row's base, is twice 2^(W−1)·base.
            row.push(row[PER_ROW - 1].double());
            let row = to_affine(&row)?;
            entries.extend_from_slice(&row[..PER_ROW]);
            base = row[PER_ROW];
        }
        Some(Table(entries))
    }

    /// The signed digits of u (big-endian): u = Σ dᵢ·2^(W·i) with each dᵢ in
    /// [−2^(W−1) + 1, 2^(W−1)] (W bits above 2^(W−1) become that minus 2^W and carry one into
    /// the next digit).
    fn digits(u: &FieldBytes) -> [i32; ROWS] {
        let mut limbs = [0u64; 4]; // little-endian
        for (k, chunk) in u.chunks_exact(8).rev().enumerate() {
            limbs[k] = u64::from_be_bytes(chunk.try_into().expect("8 bytes"));
        }
        let bits = |at: usize| -> i32 {
            if at >= 256 {
                return 0;
            }
            let (limb, shift) = (at / 64, at % 64);
            let mut v = limbs[limb] >> shift;
            if shift + W > 64 && limb + 1 < 4 {
                v |= limbs[limb + 1] << (64 - shift);
            }
            (v & ((1 << W) - 1)) as i32
        };
        let half = 1i32 << (W - 1);
        let mut out = [0; ROWS];
        let mut carry = 0;
        for (i, digit) in out.iter_mut().enumerate() {
            *digit = bits(i * W) + carry;
            carry = 0;
            if *digit > half {
                *digit -= 1 << W;
                carry = 1;
            }
        }
        out
    }
}

/// The table entries a sum of multiples is made of, each with its sign. They are copied out of
/// the tables all at once, before any arithmetic, so that the cache misses on them (two tables
/// are larger than a core's cache) overlap instead of each one stalling an addition.
struct Terms {
    points: [Affine; 2 * ROWS],
    negative: [bool; 2 * ROWS],
    len: usize,
}

impl Terms {
    fn new() -> Terms {
        let zero = Affine {
            x: Fe::ZERO,
            y: Fe::ZERO,
        };
        Terms {
            points: [zero; 2 * ROWS],
            negative: [false; 2 * ROWS],
            len: 0,
        }
    }

    /// Adds the terms of u·P, P being the table's point. At most twice per `Terms`.
    fn push(&mut self, table: &Table, u: &FieldBytes) {
        for (i, digit) in Table::digits(u).into_iter().enumerate() {
            if digit != 0 {
                self.points[self.len] = table.0[i * PER_ROW + digit.unsigned_abs() as usize - 1];
                self.negative[self.len] = digit < 0;
                self.len += 1;
            }
        }
    }

    /// The sum of the terms.
    fn sum(&self) -> Jacobian {
        let mut acc = Jacobian::IDENTITY;
        for (point, &negative) in self.points[..self.len].iter().zip(&self.negative) {
            acc = if negative {
                acc.add_affine(&point.negated())
            } else {
                acc.add_affine(point)
            };
        }
        acc
    }
}

/// The base point's table, built on first use.
fn generator_table() -> &'static Table {
    static TABLE: std::sync::OnceLock<Table> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        Affine::new(&GX, &GY)
            .and_then(Table::new)
            .expect("the P-256 base point is on the curve and of order n")
    })
}

/// A P-256 public key with its table.
pub(super) struct KeyTable {
    table: Table,
}

impl KeyTable {
    /// The table of a public key (already checked by the `p256` crate; `None` only if its point
    /// were somehow not on the curve).
    pub(super) fn new(key: &p256::ecdsa::VerifyingKey) -> Option<KeyTable> {
        let point = key.to_sec1_point(false);
        let coordinate =
            |c: Option<&FieldBytes>| -> Option<[u8; 32]> { c?.as_slice().try_into().ok() };
        KeyTable::from_coordinates(&coordinate(point.x())?, &coordinate(point.y())?)
    }

    /// The table of the point with affine coordinates `x`, `y` (big-endian); `None` if it is not
    /// on the curve.
    fn from_coordinates(x: &[u8; 32], y: &[u8; 32]) -> Option<KeyTable> {
        let _ = generator_table();
        Some(KeyTable {
            table: Table::new(Affine::new(x, y)?)?,
        })
    }

    /// Whether (r, s) is a valid ECDSA signature of `digest` under this key (FIPS 186-5
    /// §6.4.2). `digest` is the hash output; its leftmost 256 bits are used (step 3), so it
    /// must be at least 32 bytes long. r and s are already in [1, n − 1] (their type says so).
    pub(super) fn verify(&self, digest: &[u8], r: &NonZeroScalar, s: &NonZeroScalar) -> bool {
        let Some(leftmost) = digest.get(..32).and_then(|b| FieldBytes::try_from(b).ok()) else {
            return false;
        };
        let e = <Scalar as Reduce<FieldBytes>>::reduce(&leftmost);
        let Some(w) = Option::<Scalar>::from(s.invert_vartime()) else {
            return false;
        };
        let u1 = (e * w).to_bytes();
        let u2 = (**r * w).to_bytes();
        let mut terms = Terms::new();
        terms.push(generator_table(), &u1);
        terms.push(&self.table, &u2);
        let sum = terms.sum();
        if sum.is_identity() {
            return false;
        }
        x_mod_n_is(&sum, &r.to_bytes().into())
    }
}

/// Whether x(point) mod n = r, for r in [1, n − 1], without an inversion: x = X/Z², and x is
/// below p < 2n, so x mod n = r means x = r or x = r + n (the second only if r + n < p).
fn x_mod_n_is(point: &Jacobian, r: &[u8; 32]) -> bool {
    let z2 = point.z.square();
    let matches =
        |candidate: &[u8; 32]| Fe::from_be_bytes(candidate).is_some_and(|c| c.mul(&z2) == point.x);
    if matches(r) {
        return true;
    }
    // r + n, big-endian, with its carry out.
    let mut sum = [0u8; 32];
    let mut carry = 0u16;
    for k in (0..32).rev() {
        let t = u16::from(r[k]) + u16::from(N[k]) + carry;
        sum[k] = (t & 0xff) as u8;
        carry = t >> 8;
    }
    carry == 0 && matches(&sum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    use p256::elliptic_curve::sec1::ToSec1Point;

    fn random_bytes<const L: usize>() -> [u8; L] {
        let mut b = [0u8; L];
        getrandom::fill(&mut b).unwrap();
        b
    }

    fn key() -> (p256::ecdsa::SigningKey, KeyTable, Vec<u8>) {
        let signing = loop {
            if let Ok(k) = p256::ecdsa::SigningKey::from_bytes(&random_bytes::<32>().into()) {
                break k;
            }
        };
        let point = signing.verifying_key().to_sec1_point(false);
        let table = KeyTable::new(signing.verifying_key()).unwrap();
        (signing, table, point.as_bytes().to_vec())
    }

    /// AWS-LC's answer for the same digest and signature.
    fn aws_lc(public: &[u8], digest: &[u8], sig: &p256::ecdsa::Signature) -> bool {
        use aws_lc_rs::signature as v;
        let key = v::ParsedPublicKey::new(&v::ECDSA_P256_SHA256_FIXED, public).unwrap();
        let digest =
            aws_lc_rs::digest::Digest::import_less_safe(digest, &aws_lc_rs::digest::SHA256)
                .unwrap();
        key.verify_digest_sig(&digest, &sig.to_bytes()).is_ok()
    }

    fn ours(table: &KeyTable, digest: &[u8], sig: &p256::ecdsa::Signature) -> bool {
        table.verify(digest, &sig.r(), &sig.s())
    }

    #[test]
    fn agrees_with_aws_lc_on_valid_and_altered_signatures() {
        for _ in 0..3 {
            let (signing, table, public) = key();
            for round in 0..150 {
                let digest: [u8; 32] = random_bytes();
                let sig: p256::ecdsa::Signature = signing.sign_prehash(&digest).unwrap();
                assert!(ours(&table, &digest, &sig), "round {round}");
                assert!(aws_lc(&public, &digest, &sig));

                let bit = usize::from(random_bytes::<1>()[0]);
                let mut altered = digest;
                altered[bit / 8] ^= 1 << (bit % 8);
                assert!(!ours(&table, &altered, &sig));
                assert!(!aws_lc(&public, &altered, &sig));

                let mut bytes = sig.to_bytes();
                bytes[bit / 8 + if round % 2 == 0 { 0 } else { 32 }] ^= 1 << (bit % 8);
                // A flip may take r or s out of range: then it is not a signature at all.
                if let Ok(altered) = p256::ecdsa::Signature::from_slice(&bytes) {
                    assert!(!ours(&table, &digest, &altered));
                    assert!(!aws_lc(&public, &digest, &altered));
                }
            }
        }
    }

    #[test]
    fn another_keys_signature_does_not_verify() {
        let (signing, _, _) = key();
        let (_, other, _) = key();
        let digest: [u8; 32] = random_bytes();
        let sig: p256::ecdsa::Signature = signing.sign_prehash(&digest).unwrap();
        assert!(!ours(&other, &digest, &sig));
    }

    #[test]
    fn digests_that_reduce_to_zero_and_longer_digests_follow_fips_186_5() {
        let (signing, table, public) = key();
        // e = 0 (u1 = 0: only the key's table is used) and e = n (reduces to 0).
        for digest in [[0u8; 32], N] {
            let sig: p256::ecdsa::Signature = signing.sign_prehash(&digest).unwrap();
            assert!(ours(&table, &digest, &sig));
            assert!(aws_lc(&public, &digest, &sig));
        }
        // A SHA-384 digest: its leftmost 256 bits are e (§6.4.2 step 3).
        let long: [u8; 48] = random_bytes();
        let sig: p256::ecdsa::Signature = signing.sign_prehash(&long).unwrap();
        assert!(ours(&table, &long, &sig));
        assert!(
            !ours(&table, &long[..31], &sig),
            "a digest under 32 bytes is refused"
        );
    }

    #[test]
    fn points_off_the_curve_have_no_table() {
        let mut y = GY;
        y[31] ^= 1;
        assert!(KeyTable::from_coordinates(&GX, &y).is_none());
        assert!(
            KeyTable::from_coordinates(&P, &GY).is_none(),
            "a coordinate of p or more"
        );
    }

    #[test]
    fn the_tables_hold_the_multiples_they_say() {
        let g = Affine::new(&GX, &GY).unwrap();
        let table = generator_table();
        // b·2^(W·i)·G against p256's own scalar multiplication, for a spread of entries.
        // The largest entry of the last full row is 2^(W·(ROWS−1) − 1) < n.
        for (i, b) in [
            (0, 1),
            (0, 2),
            (0, PER_ROW),
            (1, 1),
            (7, 100),
            (ROWS - 2, PER_ROW),
        ] {
            // b·2^(W·i), big-endian: b shifted left by W·i bits.
            let mut scalar = [0u8; 32];
            let shift = W * i;
            let wide = (b as u128) << (shift % 8);
            for k in 0..16 {
                let byte = shift / 8 + k;
                if byte < 32 {
                    scalar[31 - byte] = (wide >> (8 * k)) as u8;
                }
            }
            let expected = (p256::ProjectivePoint::GENERATOR
                * Option::<Scalar>::from(p256::elliptic_curve::PrimeField::from_repr(
                    scalar.into(),
                ))
                .unwrap())
            .to_affine()
            .to_sec1_point(false);
            let entry = table.0[i * PER_ROW + b - 1];
            let want = Affine::new(
                expected.x().unwrap().as_slice().try_into().unwrap(),
                expected.y().unwrap().as_slice().try_into().unwrap(),
            )
            .unwrap();
            assert_eq!((entry.x, entry.y), (want.x, want.y), "entry ({i}, {b})");
        }
        // The group law's special cases: P + P doubles, P + (−P) is the identity.
        let p = Jacobian::from_affine(&g);
        let doubled = p.add_affine(&g);
        let twice = to_affine(&[doubled]).unwrap()[0];
        assert_eq!((twice.x, twice.y), (table.0[1].x, table.0[1].y));
        assert!(p.add_affine(&g.negated()).is_identity());
        assert!(Jacobian::IDENTITY.double().is_identity());
    }

    /// 0x800 repeated (big-endian): with 12-bit digits, every digit is exactly half the radix.
    fn half_digits() -> [u8; 32] {
        let mut bytes = [0u8; 32];
        for (k, byte) in bytes.iter_mut().rev().enumerate() {
            *byte = [0x00, 0x08, 0x80][k % 3];
        }
        bytes
    }

    #[test]
    fn digits_are_in_range_and_sum_to_the_scalar() {
        let radix = Scalar::from(1u64 << W);
        let half = 1i32 << (W - 1);
        // Every digit above half (all ones), digits of exactly half, n − 1, zero, and random
        // scalars.
        let halves = Table::digits(&half_digits().into());
        assert!(halves[..ROWS - 1].iter().all(|&d| d == half), "{halves:?}");
        let mut n_minus_1 = N;
        n_minus_1[31] -= 1;
        let mut cases = vec![[0xff; 32], half_digits(), n_minus_1, [0; 32]];
        cases.extend((0..500).map(|_| random_bytes::<32>()));
        for bytes in cases {
            let u = <Scalar as Reduce<FieldBytes>>::reduce(&bytes.into());
            let digits = Table::digits(&u.to_bytes());
            assert!(digits.iter().all(|&d| -half < d && d <= half), "{digits:?}");
            // Σ dᵢ·2^(W·i), by Horner's rule from the top digit.
            let sum = digits.iter().rev().fold(Scalar::ZERO, |acc, &d| {
                let magnitude = Scalar::from(u64::from(d.unsigned_abs()));
                acc * radix + if d < 0 { -magnitude } else { magnitude }
            });
            assert_eq!(sum, u, "{bytes:02x?}");
        }
    }

    #[test]
    fn signed_digits_give_the_scalar_multiple() {
        let table = generator_table();
        // All ones (every digit carries, into the top one too), digits of exactly half the
        // radix, other bit patterns, one, n (which reduces to zero) and a random scalar.
        let mut scalars = vec![
            [0xff; 32],
            half_digits(),
            [0x80; 32],
            [0x81; 32],
            [0x7f; 32],
        ];
        let mut one = [0u8; 32];
        one[31] = 1;
        scalars.push(one);
        scalars.push(N);
        scalars.push(random_bytes());
        for bytes in &mut scalars {
            // Reduced mod n, as the verifier's u1 and u2 are.
            let scalar = <Scalar as Reduce<FieldBytes>>::reduce(&(*bytes).into());
            *bytes = scalar.to_bytes().into();
            let mut terms = Terms::new();
            terms.push(table, &scalar.to_bytes());
            let sum = terms.sum();
            let expected = (p256::ProjectivePoint::GENERATOR * scalar).to_affine();
            if bool::from(expected.is_identity()) {
                assert!(sum.is_identity(), "{bytes:02x?}");
                continue;
            }
            let expected = expected.to_sec1_point(false);
            let want = Affine::new(
                expected.x().unwrap().as_slice().try_into().unwrap(),
                expected.y().unwrap().as_slice().try_into().unwrap(),
            )
            .unwrap();
            let got = to_affine(&[sum]).unwrap()[0];
            assert_eq!((got.x, got.y), (want.x, want.y), "{bytes:02x?}");
        }
        // Each row starts at twice the last entry of the row before (2^W times its base).
        for i in 1..ROWS {
            let first = table.0[i * PER_ROW];
            let doubled = Jacobian::from_affine(&table.0[i * PER_ROW - 1]).double();
            let doubled = to_affine(&[doubled]).unwrap()[0];
            assert_eq!((first.x, first.y), (doubled.x, doubled.y), "row {i}");
        }
    }

    /// Verifications per second, to compare window sizes:
    /// `cargo test --release --lib p256_table::tests::timing -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn timing() {
        let _ = generator_table();
        let start = std::time::Instant::now();
        let (signing, table, _) = key();
        println!("W = {W}: a key's table in {:?}", start.elapsed());
        let digests: Vec<[u8; 32]> = (0..2000).map(|_| random_bytes()).collect();
        let sigs: Vec<p256::ecdsa::Signature> = digests
            .iter()
            .map(|d| signing.sign_prehash(d).unwrap())
            .collect();
        for _ in 0..5 {
            let start = std::time::Instant::now();
            for (d, s) in digests.iter().zip(&sigs) {
                assert!(ours(&table, d, s));
            }
            let us = start.elapsed().as_secs_f64() * 1e6 / digests.len() as f64;
            println!("W = {W}: {us:.1} µs per verification");
        }
    }

    #[test]
    fn x_coordinates_of_n_or_more_compare_as_x_minus_n() {
        // A point whose x lies in [n, p): x = n + k for the first small k with x³ − 3x + b a
        // square (p ≡ 3 mod 4, so the root is rhs^((p+1)/4)).
        let b = Fe::from_be_bytes(&B).unwrap();
        let mut quarter = [0u8; 32]; // (p + 1) / 4, big-endian
        let mut carry = 1u16;
        let mut plus_one = [0u8; 32];
        for k in (0..32).rev() {
            let t = u16::from(P[k]) + carry;
            plus_one[k] = (t & 0xff) as u8;
            carry = t >> 8;
        }
        let mut rem = u16::from(carry as u8);
        for k in 0..32 {
            let t = (rem << 8) | u16::from(plus_one[k]);
            quarter[k] = (t / 4) as u8;
            rem = t % 4;
        }
        for k in 1u8..100 {
            let mut x_bytes = N;
            x_bytes[31] += k; // N ends in 0x51: no carry for k < 100
            let x = Fe::from_be_bytes(&x_bytes).unwrap();
            let rhs = x.square().mul(&x).sub(&x.double().add(&x)).add(&b);
            let y = rhs.pow(&quarter);
            if y.square() != rhs {
                continue;
            }
            let point = Jacobian::from_affine(&Affine { x, y });
            // Scaled by a Z, as a sum would come out.
            let z = Fe::from_be_bytes(&GX).unwrap();
            let scaled = Jacobian {
                x: point.x.mul(&z.square()),
                y: point.y.mul(&z.square().mul(&z)),
                z,
            };
            let mut r = [0u8; 32];
            r[31] = k;
            assert!(x_mod_n_is(&scaled, &r), "x = n + {k} is r = {k}");
            r[31] = k + 1;
            assert!(!x_mod_n_is(&scaled, &r));
            return;
        }
        panic!("no point with a small x above n");
    }
}
