//! Key generation: a sign-only key pair generated inside the token, then read back and checked
//! (attributes, public key, a self-test signature), or destroyed (PKCS#11 v2.40 sections 4.8, 4.9).

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectHandle};
use der::Encode;
use sha2::Digest;

use super::error::{Error, ck};
use super::key::{KeyAttributes, KeyHandle, verifier};
use super::pool::{Hsm, Ops};
use crate::alg::KeyType;

/// The outcome of [`Hsm::generate_key`]: the key and what was checked about it.
#[derive(Clone, Debug)]
pub struct GeneratedKey {
    /// The new key.
    pub key: KeyHandle,
    /// The private key's attributes as read back, already checked with [`KeyAttributes::check`].
    pub attributes: KeyAttributes,
    /// SHA-256 of the self-test challenge that was signed and verified.
    pub self_test_challenge_sha256: String,
}

/// The mechanism and templates for a signing key pair (PKCS#11 v2.40 sections 4.8, 4.9): the
/// public key verify-only, the private key private, sensitive, not extractable and sign-only,
/// as token objects (`token`) or session objects. Every capability a CA key must not have is
/// set false explicitly: SoftHSM (among others) defaults CKA_DECRYPT and CKA_UNWRAP to true.
pub(super) fn key_pair_templates(
    label: &str,
    id: &[u8],
    key_type: KeyType,
    token: bool,
) -> Result<(Mechanism<'static>, Vec<Attribute>, Vec<Attribute>), Error> {
    let common = |private: bool| {
        vec![
            Attribute::Token(token),
            Attribute::Private(private),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.to_vec()),
        ]
    };
    let mut public = common(false);
    public.extend([
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
    ]);
    let mut private = common(true);
    private.extend([
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::SignRecover(false),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
    ]);
    let mechanism = match (key_type.rsa_bits(), key_type.curve()) {
        (Some(bits), _) => {
            public.extend([
                Attribute::ModulusBits((bits as u64).into()),
                Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
            ]);
            Mechanism::RsaPkcsKeyPairGen
        }
        (None, Some(curve)) => {
            let params = curve.to_der().map_err(|e| Error::PublicKey {
                label: label.to_string(),
                reason: e.to_string(),
            })?;
            public.push(Attribute::EcParams(params));
            Mechanism::EccKeyPairGen
        }
        (None, None) => unreachable!("every key type is RSA or EC"),
    };
    Ok((mechanism, public, private))
}

impl Hsm {
    /// Generates a key pair in the token and checks it (see the module doc). Refuses if any
    /// object already has `label`. Has [`Options::keygen_timeout`] as its deadline.
    ///
    /// [`Options::keygen_timeout`]: super::Options::keygen_timeout
    pub fn generate_key(&self, label: &str, key_type: KeyType) -> Result<GeneratedKey, Error> {
        let label = label.to_string();
        let mut generated = self.call(
            "C_GenerateKeyPair",
            self.inner.options.keygen_timeout,
            move |o| o.generate_key(&label, key_type),
        )?;
        generated.key.registered = Some(self.register(&generated.key));
        Ok(generated)
    }
}

impl Ops<'_> {
    /// Generates a key pair in the token and checks it (see the module doc). Refuses if any
    /// object already has `label`.
    pub(super) fn generate_key(
        &self,
        label: &str,
        key_type: KeyType,
    ) -> Result<GeneratedKey, Error> {
        if self.label_in_use(label)? {
            return Err(Error::LabelExists(label.to_string()));
        }
        // CKA_ID: 16 bytes from the token's RNG.
        let id = self.random(16)?;
        let (mechanism, public_template, private_template) =
            key_pair_templates(label, &id, key_type, true)?;
        let (public, private) = self
            .session
            .generate_key_pair(&mechanism, &public_template, &private_template)
            .map_err(ck("C_GenerateKeyPair"))?;
        self.check_generated(label, key_type, id, public, private)
            .inspect_err(|_| {
                // A key pair that failed its checks is not left on the token, where a later
                // script could name it by URI.
                let destroyed = self
                    .session
                    .destroy_object(private)
                    .and_then(|()| self.session.destroy_object(public));
                if let Err(e) = destroyed {
                    eprintln!(
                        "strongroom: the key pair {label:?} failed its checks and could not be \
                         destroyed ({e}); remove it from the token before using the label again"
                    );
                }
            })
    }

    /// The checks of a key pair just generated (see the module doc): its private key's
    /// attributes as read back, its public key's type and quality, and a self-test signature.
    fn check_generated(
        &self,
        label: &str,
        key_type: KeyType,
        id: Vec<u8>,
        public: ObjectHandle,
        private: ObjectHandle,
    ) -> Result<GeneratedKey, Error> {
        let attributes = self.read_key_attributes(private)?;
        attributes.check().map_err(|rule| Error::KeyAttributes {
            label: label.to_string(),
            rule,
        })?;
        let (read_type, spki) = self.read_public_key(public, label)?;
        if read_type != key_type {
            return Err(Error::PublicKey {
                label: label.to_string(),
                reason: format!("asked for {key_type}, the token made {read_type}"),
            });
        }
        crate::keycheck::check_public_key(&spki, &[key_type]).map_err(|e| Error::WeakKey {
            label: label.to_string(),
            reason: e.to_string(),
        })?;
        let key = KeyHandle {
            label: label.to_string(),
            id,
            key_type,
            verifier: verifier(&spki, label)?,
            spki,
            private,
            generation: self.generation,
            registered: None,
        };
        // Self-test: sign a domain-separated challenge; `sign` verifies it in software.
        let mut challenge = b"strongroom key self-test v1\0".to_vec();
        challenge.extend_from_slice(label.as_bytes());
        challenge.push(0);
        challenge.extend_from_slice(&self.random(32)?);
        let _ = self.sign(&key, key_type.default_signature_algorithm(), &challenge)?;
        Ok(GeneratedKey {
            key,
            attributes,
            self_test_challenge_sha256: hex::encode(sha2::Sha256::digest(&challenge)),
        })
    }
}
