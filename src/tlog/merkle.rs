//! Merkle tree hashing, inclusion and consistency proofs (RFC 6962 §2.1, RFC 9162 §2.1).
//!
//! Hashes come from `sha2`; this module only arranges them into a tree.

use sha2::{Digest, Sha256};

use super::Error;

/// A SHA-256 hash: a leaf, an interior node or a tree head.
pub type Hash = [u8; 32];

/// The hash of a leaf: SHA-256(0x00 || entry) (RFC 6962 §2.1, RFC 9162 §2.1.1).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(entry);
    h.finalize().into()
}

/// The hash of an interior node: SHA-256(0x01 || left || right) (RFC 6962 §2.1, RFC 9162 §2.1.1).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The tree head of the empty tree: SHA-256 of the empty string (RFC 6962 §2.1).
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The root of a complete subtree given its 2^k bottom hashes (k ≥ 0), reduced pairwise in place.
///
/// # Errors
/// [`Error::Proof`] when the number of hashes is zero or not a power of two.
pub fn complete_root(hashes: &[Hash]) -> Result<Hash, Error> {
    if hashes.is_empty() || !hashes.len().is_power_of_two() {
        return Err(Error::Proof(format!(
            "a complete subtree needs a power of two of hashes, not {}",
            hashes.len()
        )));
    }
    let mut level: Vec<Hash> = hashes.to_vec();
    while level.len() > 1 {
        level = level.chunks(2).map(|p| node_hash(&p[0], &p[1])).collect();
    }
    Ok(level[0])
}

/// A reader of complete, aligned subtree hashes: the tree over leaves
/// `[index << height, (index + 1) << height)`.
pub trait SubtreeHashes {
    /// The hash of the complete subtree of 2^`height` leaves numbered `index` at that height.
    ///
    /// # Errors
    /// When the hash cannot be read (missing or malformed tile, I/O).
    fn subtree(&mut self, height: u32, index: u64) -> Result<Hash, Error>;
}

/// The largest power of two strictly less than `n` (n ≥ 2), the `k` of RFC 6962 §2.1.
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// MTH(D[lo:hi]) (RFC 6962 §2.1), for a range met in the RFC's recursion.
fn range_hash(r: &mut dyn SubtreeHashes, lo: u64, hi: u64) -> Result<Hash, Error> {
    let n = hi - lo;
    if n.is_power_of_two() && lo % n == 0 {
        return r.subtree(n.trailing_zeros(), lo >> n.trailing_zeros());
    }
    let k = split(n);
    let left = range_hash(r, lo, lo + k)?;
    let right = range_hash(r, lo + k, hi)?;
    Ok(node_hash(&left, &right))
}

/// The tree head of the first `size` leaves (RFC 6962 §2.1 MTH).
///
/// # Errors
/// When a hash cannot be read.
pub fn tree_hash(r: &mut dyn SubtreeHashes, size: u64) -> Result<Hash, Error> {
    if size == 0 {
        return Ok(empty_root());
    }
    range_hash(r, 0, size)
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves (RFC 6962 §2.1.1 PATH),
/// from the leaf's sibling up to the root's child.
///
/// # Errors
/// [`Error::Proof`] when `index >= size`; read errors.
pub fn inclusion_proof(
    r: &mut dyn SubtreeHashes,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, Error> {
    if index >= size {
        return Err(Error::Proof(format!(
            "index {index} is not in a tree of size {size}"
        )));
    }
    let mut out = Vec::new();
    path(r, index, 0, size, &mut out)?;
    Ok(out)
}

fn path(
    r: &mut dyn SubtreeHashes,
    m: u64,
    lo: u64,
    hi: u64,
    out: &mut Vec<Hash>,
) -> Result<(), Error> {
    let n = hi - lo;
    if n <= 1 {
        return Ok(());
    }
    let k = split(n);
    if m - lo < k {
        path(r, m, lo, lo + k, out)?;
        out.push(range_hash(r, lo + k, hi)?);
    } else {
        path(r, m, lo + k, hi, out)?;
        out.push(range_hash(r, lo, lo + k)?);
    }
    Ok(())
}

/// The consistency proof from the tree of `old` leaves to the tree of `new` leaves
/// (RFC 6962 §2.1.2 PROOF). Empty when `old` is 0 or equals `new`.
///
/// # Errors
/// [`Error::Proof`] when `old > new`; read errors.
pub fn consistency_proof(
    r: &mut dyn SubtreeHashes,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, Error> {
    if old > new {
        return Err(Error::Proof(format!(
            "old size {old} is larger than new size {new}"
        )));
    }
    let mut out = Vec::new();
    if old > 0 && old < new {
        subproof(r, old, 0, new, true, &mut out)?;
    }
    Ok(out)
}

fn subproof(
    r: &mut dyn SubtreeHashes,
    m: u64,
    lo: u64,
    hi: u64,
    whole: bool,
    out: &mut Vec<Hash>,
) -> Result<(), Error> {
    let n = hi - lo;
    if m == n {
        if !whole {
            out.push(range_hash(r, lo, hi)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(r, m, lo, lo + k, whole, out)?;
        out.push(range_hash(r, lo + k, hi)?);
    } else {
        subproof(r, m - k, lo + k, hi, false, out)?;
        out.push(range_hash(r, lo, lo + k)?);
    }
    Ok(())
}

/// Checks an inclusion proof (RFC 9162 §2.1.3.2).
///
/// # Errors
/// [`Error::Proof`] naming what failed.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), Error> {
    if index >= size {
        return Err(Error::Proof(format!(
            "index {index} is not in a tree of size {size}"
        )));
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(Error::Proof("inclusion proof is too long".into()));
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(Error::Proof("inclusion proof is too short".into()));
    }
    if &r != root {
        return Err(Error::Proof(format!(
            "inclusion proof of index {index} does not lead to the root hash of size {size}"
        )));
    }
    Ok(())
}

/// Checks a consistency proof between two tree heads (RFC 9162 §2.1.4.2).
///
/// # Errors
/// [`Error::Proof`] naming what failed.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), Error> {
    if old > new {
        return Err(Error::Proof(format!(
            "old size {old} is larger than new size {new}"
        )));
    }
    if old == new {
        if !proof.is_empty() || old_root != new_root {
            return Err(Error::Proof(format!(
                "two different root hashes for the same size {old}"
            )));
        }
        return Ok(());
    }
    if old == 0 {
        // Every tree extends the empty tree; the proof is empty (RFC 9162 §2.1.4.1).
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(Error::Proof("non-empty proof from the empty tree".into()))
        };
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return Err(Error::Proof("empty consistency proof".into()));
    };
    let (mut f, mut s) = (old - 1, new - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s == 0 {
            return Err(Error::Proof("consistency proof is too long".into()));
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(Error::Proof("consistency proof is too short".into()));
    }
    if &fr != old_root {
        return Err(Error::Proof(format!(
            "consistency proof does not lead to the root hash of old size {old}"
        )));
    }
    if &sr != new_root {
        return Err(Error::Proof(format!(
            "consistency proof does not lead to the root hash of new size {new}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// All leaves in memory: the reference the proofs are checked against.
    struct Mem(Vec<Hash>);
    impl SubtreeHashes for Mem {
        fn subtree(&mut self, height: u32, index: u64) -> Result<Hash, Error> {
            let lo = (index << height) as usize;
            complete_root(&self.0[lo..lo + (1 << height)])
        }
    }

    /// Naive MTH straight from RFC 6962 §2.1.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    fn h(s: &str) -> Hash {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    /// Tree heads of the RFC 6962 test inputs used by certificate-transparency and Go's
    /// sumdb/tlog tests.
    #[test]
    fn known_answer_tree_heads() {
        let inputs: [&[u8]; 8] = [
            b"",
            b"\x00",
            b"\x10",
            b"\x20\x21",
            b"\x30\x31",
            b"\x40\x41\x42\x43",
            b"\x50\x51\x52\x53\x54\x55\x56\x57",
            b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
        ];
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let leaves: Vec<Hash> = inputs.iter().map(|d| leaf_hash(d)).collect();
        let mut mem = Mem(leaves.clone());
        for (n, root) in roots.iter().enumerate() {
            assert_eq!(
                tree_hash(&mut mem, n as u64 + 1).unwrap(),
                h(root),
                "size {}",
                n + 1
            );
        }
        assert_eq!(
            tree_hash(&mut mem, 0).unwrap(),
            h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
    }

    /// RFC 6962 §2.1.3's worked example tree of 7 leaves: the proof for d0 is [b, h, i].
    #[test]
    fn inclusion_proof_shape_from_rfc_example() {
        let leaves: Vec<Hash> = (0u8..7).map(|i| leaf_hash(&[i])).collect();
        let mut mem = Mem(leaves.clone());
        let p = inclusion_proof(&mut mem, 0, 7).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[0], leaves[1]);
        assert_eq!(p[1], node_hash(&leaves[2], &leaves[3]));
        assert_eq!(p[2], mth(&leaves[4..7]));
    }

    #[test]
    fn every_proof_up_to_70_leaves_verifies_and_tampering_fails() {
        let leaves: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut mem = Mem(leaves.clone());
        for size in 1..=70u64 {
            let root = tree_hash(&mut mem, size).unwrap();
            assert_eq!(root, mth(&leaves[..size as usize]));
            for i in 0..size {
                let p = inclusion_proof(&mut mem, i, size).unwrap();
                verify_inclusion(i, size, &leaves[i as usize], &p, &root).unwrap();
                assert!(verify_inclusion(i, size, &leaf_hash(b"x"), &p, &root).is_err());
                if let Some((_, short)) = p.split_last() {
                    assert!(verify_inclusion(i, size, &leaves[i as usize], short, &root).is_err());
                }
            }
            for old in 0..=size {
                let old_root = tree_hash(&mut mem, old).unwrap();
                let p = consistency_proof(&mut mem, old, size).unwrap();
                verify_consistency(old, size, &old_root, &root, &p).unwrap();
                if old > 0 && old < size {
                    let bad = leaf_hash(b"forked");
                    assert!(verify_consistency(old, size, &bad, &root, &p).is_err());
                    assert!(verify_consistency(old, size, &old_root, &bad, &p).is_err());
                    let mut q = p.clone();
                    q[0][0] ^= 1;
                    assert!(verify_consistency(old, size, &old_root, &root, &q).is_err());
                }
            }
        }
    }
}
