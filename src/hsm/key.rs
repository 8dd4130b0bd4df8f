//! Keys on the token: found by RFC 7512 URI and refused unless a CA may sign with them, their
//! public key read into a SubjectPublicKeyInfo, and remembered so that recovery finds them again.

use cryptoki::object::{Attribute, AttributeType, KeyType as CkKeyType, ObjectClass, ObjectHandle};
use der::asn1::{BitString, OctetString};
use der::{Decode, Encode};
use serde::Serialize;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use super::KeyUri;
use super::context::lock;
use super::error::{Error, ck};
use super::pool::{Hsm, Ops};
use crate::alg::KeyType;

/// Attributes of a generated private key as read back from the token (PKCS#11 v2.40 section 4.9).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct KeyAttributes {
    /// CKA_TOKEN
    pub token: bool,
    /// CKA_PRIVATE
    pub private: bool,
    /// CKA_SENSITIVE
    pub sensitive: bool,
    /// CKA_ALWAYS_SENSITIVE
    pub always_sensitive: bool,
    /// CKA_EXTRACTABLE
    pub extractable: bool,
    /// CKA_NEVER_EXTRACTABLE
    pub never_extractable: bool,
    /// CKA_LOCAL (generated on the token)
    pub local: bool,
    /// CKA_SIGN
    pub sign: bool,
    /// CKA_SIGN_RECOVER
    pub sign_recover: bool,
    /// CKA_DECRYPT
    pub decrypt: bool,
    /// CKA_UNWRAP
    pub unwrap: bool,
    /// CKA_DERIVE
    pub derive: bool,
}

impl KeyAttributes {
    /// The attributes every CA key must have, with the name of the first that is wrong: the
    /// rules of [`KeyAttributes::use_violations`] and, since strongroom made the key, that it
    /// was generated inside the token and never left it in the clear.
    pub fn check(&self) -> Result<(), &'static str> {
        let generated = [
            (self.token, "CKA_TOKEN must be true"),
            (self.private, "CKA_PRIVATE must be true"),
            (self.always_sensitive, "CKA_ALWAYS_SENSITIVE must be true"),
            (self.never_extractable, "CKA_NEVER_EXTRACTABLE must be true"),
            (
                self.local,
                "CKA_LOCAL must be true (generated inside the token)",
            ),
        ];
        match generated.iter().find(|(ok, _)| !ok) {
            Some((_, rule)) => Err(rule),
            None => match self.use_violations(true).first() {
                Some(rule) => Err(rule),
                None => Ok(()),
            },
        }
    }

    /// Every rule a private key strongroom signs with breaks (empty: the key may be used).
    ///
    /// PKCS#11 v2.40 section 4.9 (private key objects): a CA key is CKA_SENSITIVE and not
    /// CKA_EXTRACTABLE, so its value never leaves the token in the clear, and it signs and does
    /// nothing else: not CKA_DECRYPT, CKA_UNWRAP or CKA_DERIVE, and for an RSA key (`rsa`) not
    /// CKA_SIGN_RECOVER, which allows C_SignRecover with CKM_RSA_X_509, the raw private-key
    /// operation (PKCS#11 v2.40 Mechanisms 2.1.7). No EC mechanism signs with recovery, so the
    /// attribute (on by default in SoftHSM) grants an EC key nothing. These hold for every key
    /// found by URI (issuers, OCSP delegates, ceremony `uri=` references). CKA_LOCAL,
    /// CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE are not required here: a key restored from a
    /// wrapped backup legitimately lacks them ([`KeyAttributes::check`] requires them of the keys
    /// strongroom generates).
    pub fn use_violations(&self, rsa: bool) -> Vec<&'static str> {
        let required = [
            (self.sensitive, "CKA_SENSITIVE must be true"),
            (!self.extractable, "CKA_EXTRACTABLE must be false"),
            (self.sign, "CKA_SIGN must be true"),
            (
                !(rsa && self.sign_recover),
                "CKA_SIGN_RECOVER must be false",
            ),
            (!self.decrypt, "CKA_DECRYPT must be false"),
            (!self.unwrap, "CKA_UNWRAP must be false"),
            (!self.derive, "CKA_DERIVE must be false"),
        ];
        required
            .iter()
            .filter(|(ok, _)| !ok)
            .map(|(_, rule)| *rule)
            .collect()
    }
}

/// A private key found on (or generated in) the token, with its public key.
#[derive(Clone, Debug)]
pub struct KeyHandle {
    /// CKA_LABEL
    pub label: String,
    /// CKA_ID
    pub id: Vec<u8>,
    /// The key type.
    pub key_type: KeyType,
    /// The public key, as read from the token's public key object.
    pub spki: SubjectPublicKeyInfoOwned,
    pub(super) private: ObjectHandle,
    /// The generation (see the module doc) `private` belongs to.
    pub(super) generation: u64,
    /// The key's entry in the [`Hsm`]'s key list, which has its handle after a reconnection.
    pub(super) registered: Option<usize>,
    /// The public key parsed once, for verifying every signature made with this key.
    pub(super) verifier: std::sync::Arc<crate::verify::VerifyingKey>,
}

impl KeyHandle {
    /// The RFC 7512 URI of this key on `token`.
    pub fn uri(&self, token: &str) -> KeyUri {
        KeyUri {
            token: Some(token.to_string()),
            object: Some(self.label.clone()),
            id: Some(self.id.clone()),
            serial: None,
        }
    }
}

/// A key found so far: what recovery finds again and checks.
pub(super) struct Registered {
    pub(super) uri: KeyUri,
    /// The public key it had when first found (for issuers: the issuer certificate's).
    pub(super) spki: SubjectPublicKeyInfoOwned,
    pub(super) handle: ObjectHandle,
    pub(super) generation: u64,
}

impl Hsm {
    /// Records a key so that recovery finds it again; returns its index.
    pub(super) fn register(&self, key: &KeyHandle) -> usize {
        let mut keys = lock(&self.inner.keys);
        let same = |r: &Registered| {
            r.uri.object.as_deref() == Some(key.label.as_str())
                && r.uri.id.as_deref() == Some(key.id.as_slice())
        };
        if let Some(i) = keys.iter().position(same) {
            if let Some(r) = keys.get_mut(i) {
                if key.generation >= r.generation {
                    r.handle = key.private;
                    r.generation = key.generation;
                }
            }
            return i;
        }
        keys.push(Registered {
            uri: key.uri(&self.inner.description.label),
            spki: key.spki.clone(),
            handle: key.private,
            generation: key.generation,
        });
        keys.len() - 1
    }

    /// Finds the one private key a URI names, and its public key, and refuses a key a CA must
    /// not sign with ([`KeyAttributes::use_violations`]). The key is remembered: after a
    /// reconnection it is found again, and its attributes and public key checked, before the HSM
    /// is healthy.
    pub fn find_key(&self, uri: &KeyUri) -> Result<KeyHandle, Error> {
        let uri = uri.clone();
        let mut key = self.call("C_FindObjects", self.inner.options.call_timeout, move |o| {
            o.find_key(&uri)
        })?;
        key.registered = Some(self.register(&key));
        Ok(key)
    }
}

impl Ops<'_> {
    /// Finds the one private key a URI names, and its public key. Refuses the key, naming every
    /// attribute that is wrong and the key's own URI, if it breaks a rule of
    /// [`KeyAttributes::use_violations`].
    pub(super) fn find_key(&self, uri: &KeyUri) -> Result<KeyHandle, Error> {
        let key_err = |problem: String| Error::Key {
            uri: uri.to_string(),
            problem,
        };
        if let Some(t) = &uri.token {
            if *t != self.description.label {
                return Err(key_err(format!(
                    "names token {t:?} but the open token is {:?}",
                    self.description.label
                )));
            }
        }
        if let Some(s) = &uri.serial {
            if *s != self.description.serial {
                return Err(key_err(format!(
                    "names token serial {s:?}, not the open token's"
                )));
            }
        }
        let mut template = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
        if let Some(label) = &uri.object {
            template.push(Attribute::Label(label.as_bytes().to_vec()));
        }
        if let Some(id) = &uri.id {
            template.push(Attribute::Id(id.clone()));
        }
        let found = self
            .session
            .find_objects(&template)
            .map_err(ck("C_FindObjects"))?;
        let private = match found.as_slice() {
            [one] => *one,
            [] => return Err(key_err("no private key matches".to_string())),
            many => {
                return Err(key_err(format!(
                    "{} private keys match; the URI is ambiguous (add id=)",
                    many.len()
                )));
            }
        };
        let attrs = self
            .session
            .get_attributes(
                private,
                &[
                    AttributeType::Label,
                    AttributeType::Id,
                    AttributeType::KeyType,
                ],
            )
            .map_err(ck("C_GetAttributeValue"))?;
        let mut label = String::new();
        let mut id = Vec::new();
        // Unknown until read: treated as RSA, the stricter case.
        let mut rsa = true;
        for a in attrs {
            match a {
                Attribute::Label(l) => label = String::from_utf8_lossy(&l).into_owned(),
                Attribute::Id(i) => id = i,
                Attribute::KeyType(t) => rsa = t != CkKeyType::EC,
                _ => {}
            }
        }
        // A key found by URI (not generated here) must still be one a CA may sign with.
        let violations = self.read_key_attributes(private)?.use_violations(rsa);
        if !violations.is_empty() {
            let found = KeyUri {
                token: Some(self.description.label.clone()),
                object: Some(label),
                id: Some(id),
                serial: None,
            };
            return Err(Error::Key {
                uri: found.to_string(),
                problem: format!(
                    "{} (PKCS#11 v2.40 4.9: a CA key is sensitive, not extractable, and only signs)",
                    violations.join("; ")
                ),
            });
        }
        let public = self
            .session
            .find_objects(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::Id(id.clone()),
            ])
            .map_err(ck("C_FindObjects"))?;
        let public = match public.as_slice() {
            [one] => *one,
            [] => {
                return Err(key_err(
                    "no public key object with the private key's CKA_ID".to_string(),
                ));
            }
            _ => {
                return Err(key_err(
                    "several public key objects share the private key's CKA_ID".to_string(),
                ));
            }
        };
        let (key_type, spki) = self.read_public_key(public, &label)?;
        let verifier = verifier(&spki, &label)?;
        Ok(KeyHandle {
            label,
            id,
            key_type,
            spki,
            private,
            generation: self.generation,
            registered: None,
            verifier,
        })
    }

    /// Reads a private key's security attributes.
    pub(super) fn read_key_attributes(
        &self,
        private: ObjectHandle,
    ) -> Result<KeyAttributes, Error> {
        let types = [
            AttributeType::Token,
            AttributeType::Private,
            AttributeType::Sensitive,
            AttributeType::AlwaysSensitive,
            AttributeType::Extractable,
            AttributeType::NeverExtractable,
            AttributeType::Local,
            AttributeType::Sign,
            AttributeType::SignRecover,
            AttributeType::Decrypt,
            AttributeType::Unwrap,
            AttributeType::Derive,
        ];
        let attrs = self
            .session
            .get_attributes(private, &types)
            .map_err(ck("C_GetAttributeValue"))?;
        let mut a = KeyAttributes {
            token: false,
            private: false,
            sensitive: false,
            always_sensitive: false,
            extractable: true,
            never_extractable: false,
            local: false,
            sign: false,
            sign_recover: true,
            decrypt: true,
            unwrap: true,
            derive: true,
        };
        for attr in attrs {
            match attr {
                Attribute::Token(v) => a.token = v,
                Attribute::Private(v) => a.private = v,
                Attribute::Sensitive(v) => a.sensitive = v,
                Attribute::AlwaysSensitive(v) => a.always_sensitive = v,
                Attribute::Extractable(v) => a.extractable = v,
                Attribute::NeverExtractable(v) => a.never_extractable = v,
                Attribute::Local(v) => a.local = v,
                Attribute::Sign(v) => a.sign = v,
                Attribute::SignRecover(v) => a.sign_recover = v,
                Attribute::Decrypt(v) => a.decrypt = v,
                Attribute::Unwrap(v) => a.unwrap = v,
                Attribute::Derive(v) => a.derive = v,
                _ => {}
            }
        }
        Ok(a)
    }

    /// Reads a public key object into a SubjectPublicKeyInfo (RFC 5280 4.1.2.7): RSA from
    /// CKA_MODULUS/CKA_PUBLIC_EXPONENT (RFC 8017 A.1.1), EC from CKA_EC_PARAMS/CKA_EC_POINT
    /// (RFC 5480). CKA_EC_POINT is accepted DER-wrapped in an OCTET STRING (as PKCS#11 specifies
    /// and SoftHSM returns) or raw (as some tokens return).
    pub(super) fn read_public_key(
        &self,
        public: ObjectHandle,
        label: &str,
    ) -> Result<(KeyType, SubjectPublicKeyInfoOwned), Error> {
        let bad = |reason: String| Error::PublicKey {
            label: label.to_string(),
            reason,
        };
        let attrs = self
            .session
            .get_attributes(public, &[AttributeType::KeyType])
            .map_err(ck("C_GetAttributeValue"))?;
        let ck_type = attrs.into_iter().find_map(|a| match a {
            Attribute::KeyType(t) => Some(t),
            _ => None,
        });
        match ck_type {
            Some(t) if t == CkKeyType::RSA => {
                let attrs = self
                    .session
                    .get_attributes(
                        public,
                        &[AttributeType::Modulus, AttributeType::PublicExponent],
                    )
                    .map_err(ck("C_GetAttributeValue"))?;
                let (mut n, mut e) = (Vec::new(), Vec::new());
                for a in attrs {
                    match a {
                        Attribute::Modulus(v) => n = v,
                        Attribute::PublicExponent(v) => e = v,
                        _ => {}
                    }
                }
                let key = RsaPublicKey {
                    modulus: der::asn1::UintRef::new(&n).map_err(|e| bad(e.to_string()))?,
                    public_exponent: der::asn1::UintRef::new(&e).map_err(|e| bad(e.to_string()))?,
                };
                let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
                let key_type = match bits {
                    2048 => KeyType::Rsa2048,
                    3072 => KeyType::Rsa3072,
                    4096 => KeyType::Rsa4096,
                    other => return Err(bad(format!("unsupported RSA modulus size {other} bits"))),
                };
                let spki = SubjectPublicKeyInfoOwned {
                    algorithm: AlgorithmIdentifierOwned {
                        oid: const_oid::db::rfc5912::RSA_ENCRYPTION,
                        parameters: Some(der::asn1::Null.into()),
                    },
                    subject_public_key: BitString::from_bytes(
                        &key.to_der().map_err(|e| bad(e.to_string()))?,
                    )
                    .map_err(|e| bad(e.to_string()))?,
                };
                Ok((key_type, spki))
            }
            Some(t) if t == CkKeyType::EC => {
                let attrs = self
                    .session
                    .get_attributes(public, &[AttributeType::EcParams, AttributeType::EcPoint])
                    .map_err(ck("C_GetAttributeValue"))?;
                let (mut params, mut point) = (Vec::new(), Vec::new());
                for a in attrs {
                    match a {
                        Attribute::EcParams(v) => params = v,
                        Attribute::EcPoint(v) => point = v,
                        _ => {}
                    }
                }
                let curve = const_oid::ObjectIdentifier::from_der(&params)
                    .map_err(|e| bad(format!("CKA_EC_PARAMS is not a named curve: {e}")))?;
                let key_type = KeyType::ALL
                    .into_iter()
                    .find(|k| k.curve() == Some(curve))
                    .ok_or_else(|| bad(format!("unsupported curve {curve}")))?;
                let point = match OctetString::from_der(&point) {
                    Ok(inner) if inner.as_bytes().first() == Some(&0x04) => {
                        inner.as_bytes().to_vec()
                    }
                    _ => point,
                };
                let spki = SubjectPublicKeyInfoOwned {
                    algorithm: AlgorithmIdentifierOwned {
                        oid: const_oid::db::rfc5912::ID_EC_PUBLIC_KEY,
                        parameters: Some(curve.into()),
                    },
                    subject_public_key: BitString::from_bytes(&point)
                        .map_err(|e| bad(e.to_string()))?,
                };
                Ok((key_type, spki))
            }
            other => Err(bad(format!("unsupported key type {other:?}"))),
        }
    }

    /// The key's object handle in this worker's generation: the one it was found with, or the
    /// one recovery found again. A handle from before a reconnection is never used.
    pub(super) fn handle(&self, key: &KeyHandle) -> Result<ObjectHandle, Error> {
        if key.generation == self.generation {
            return Ok(key.private);
        }
        match key.registered {
            Some(i) => self.registered_handle(i),
            None => Err(self.stale(&key.label)),
        }
    }

    /// The current handle of the `i`th registered key.
    pub(super) fn registered_handle(&self, i: usize) -> Result<ObjectHandle, Error> {
        let keys = lock(&self.inner.keys);
        match keys.get(i) {
            Some(r) if r.generation == self.generation => Ok(r.handle),
            Some(r) => Err(self.stale(r.uri.object.as_deref().unwrap_or_default())),
            None => Err(self.stale("?")),
        }
    }

    /// A handle from an earlier generation: treated as unavailable, so that recovery runs and
    /// finds the key again.
    fn stale(&self, label: &str) -> Error {
        Error::Unavailable {
            op: "C_Sign".to_string(),
            rv: format!("the handle of key {label:?} is from before the HSM reconnected"),
        }
    }
}

/// Parses a key's public key once for verifying its signatures (a key on the token signs many
/// times; AWS-LC's parsed key is kept with it).
pub(super) fn verifier(
    spki: &SubjectPublicKeyInfoOwned,
    label: &str,
) -> Result<std::sync::Arc<crate::verify::VerifyingKey>, Error> {
    crate::verify::VerifyingKey::from_spki(spki)
        .map(std::sync::Arc::new)
        .map_err(|e| Error::PublicKey {
            label: label.to_string(),
            reason: e.to_string(),
        })
}

/// RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } (RFC 8017 A.1.1).
#[derive(der::Sequence)]
struct RsaPublicKey<'a> {
    modulus: der::asn1::UintRef<'a>,
    public_exponent: der::asn1::UintRef<'a>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key as strongroom generates it: passes both checks.
    fn generated() -> KeyAttributes {
        KeyAttributes {
            token: true,
            private: true,
            sensitive: true,
            always_sensitive: true,
            extractable: false,
            never_extractable: true,
            local: true,
            sign: true,
            sign_recover: false,
            decrypt: false,
            unwrap: false,
            derive: false,
        }
    }

    #[test]
    fn use_violations_name_each_wrong_attribute() {
        assert_eq!(generated().check(), Ok(()));
        assert!(generated().use_violations(true).is_empty());
        // A key restored from a wrapped backup: not local, not always sensitive, not never
        // extractable. Usable (not something strongroom would have generated).
        let restored = KeyAttributes {
            always_sensitive: false,
            never_extractable: false,
            local: false,
            ..generated()
        };
        assert!(restored.use_violations(true).is_empty());
        assert!(restored.check().is_err());
        type Spoil = fn(&mut KeyAttributes);
        let cases: [(Spoil, &str); 7] = [
            (|a| a.sensitive = false, "CKA_SENSITIVE must be true"),
            (|a| a.extractable = true, "CKA_EXTRACTABLE must be false"),
            (|a| a.sign = false, "CKA_SIGN must be true"),
            (|a| a.sign_recover = true, "CKA_SIGN_RECOVER must be false"),
            (|a| a.decrypt = true, "CKA_DECRYPT must be false"),
            (|a| a.unwrap = true, "CKA_UNWRAP must be false"),
            (|a| a.derive = true, "CKA_DERIVE must be false"),
        ];
        for (spoil, rule) in cases {
            let mut a = generated();
            spoil(&mut a);
            assert_eq!(a.use_violations(true), vec![rule]);
            assert_eq!(a.check(), Err(rule));
        }
        // CKA_SIGN_RECOVER grants an EC key nothing (no EC mechanism signs with recovery).
        let ec = KeyAttributes {
            sign_recover: true,
            ..generated()
        };
        assert!(ec.use_violations(false).is_empty());
    }
}
