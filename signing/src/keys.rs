//! The public keys a device trusts, and which of them made a signature.
//!
//! More than one key may be trusted so that a key can be rotated: models signed with the old key
//! keep verifying while new ones are signed with the new key. The bundle names its key by a hint
//! (the SHA-256 of the key's PEM); a hint that matches a trusted key must verify with that key, so
//! an altered payload under a trusted key is told apart from a signature by a stranger.

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};
use sha2::{Digest, Sha256};

use crate::bundle::Envelope;
use crate::{dsse, hex, SigningError};

/// One trusted P-256 public key and the hint a bundle signed by it carries.
#[derive(Debug, Clone)]
struct TrustedKey {
    key: VerifyingKey,
    hint: String,
}

/// The P-256 public keys whose signatures are accepted.
#[derive(Debug, Clone)]
pub struct TrustedKeys {
    keys: Vec<TrustedKey>,
}

impl TrustedKeys {
    /// Parses SubjectPublicKeyInfo PEMs (`-----BEGIN PUBLIC KEY-----`, as `openssl ec -pubout`
    /// writes them). Fails on the first key that is not a P-256 public key, or on an empty list.
    pub fn from_pems(pems: &[&str]) -> Result<Self, SigningError> {
        if pems.is_empty() {
            return Err(SigningError::NoTrustedKeys);
        }
        let keys = pems
            .iter()
            .enumerate()
            .map(|(index, pem)| {
                let invalid = |reason: String| SigningError::InvalidKey { index, reason };
                let key = VerifyingKey::from_public_key_pem(pem.trim())
                    .map_err(|e| invalid(e.to_string()))?;
                let hint = key_hint(&key).map_err(invalid)?;
                Ok(TrustedKey { key, hint })
            })
            .collect::<Result<Vec<_>, SigningError>>()?;
        Ok(Self { keys })
    }

    /// How many keys are trusted.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always false: an empty set cannot be built.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The hint (hex SHA-256 of the canonical PEM) of each trusted key, in the order given.
    pub fn hints(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.hint.as_str())
    }

    /// Checks the envelope's signature and returns the index of the trusted key that made it.
    pub fn verify(&self, envelope: &Envelope) -> Result<usize, SigningError> {
        let signature = Signature::from_der(&envelope.signature)
            .map_err(|_| SigningError::MalformedSignature)?;
        let message = dsse::pae(&envelope.payload_type, &envelope.payload);
        let verifies = |k: &TrustedKey| k.key.verify(&message, &signature).is_ok();
        let named = envelope
            .key_hint
            .as_deref()
            .and_then(|hint| self.keys.iter().enumerate().find(|(_, k)| k.hint == hint));
        if let Some((index, key)) = named {
            return if verifies(key) { Ok(index) } else { Err(SigningError::BadSignature) };
        }
        // Without a matching hint (an older bundle, or a PEM the signer encoded differently)
        // any trusted key may still have made the signature.
        self.keys.iter().position(verifies).ok_or(SigningError::UntrustedKey)
    }
}

/// The signer hashes the key re-encoded by its crypto library (SPKI PEM, 64-column base64, LF
/// endings), not the file it was given, so the hint is computed from the key, not the text.
fn key_hint(key: &VerifyingKey) -> Result<String, String> {
    let pem = key.to_public_key_pem(LineEnding::LF).map_err(|e| e.to_string())?;
    Ok(hex::encode(&Sha256::digest(pem.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::TrustedKeys;
    use crate::test_support::{envelope_signed_by, public_pem, KEY_A, KEY_B};
    use crate::SigningError;
    use sha2::{Digest, Sha256};

    #[test]
    fn hint_is_the_sha256_of_the_canonical_pem() -> Result<(), SigningError> {
        let pem = public_pem(KEY_A);
        let hints = |pem: &str| -> Result<Vec<String>, SigningError> {
            Ok(TrustedKeys::from_pems(&[pem])?.hints().map(String::from).collect())
        };
        let want = crate::hex::encode(&Sha256::digest(pem.as_bytes()));
        assert_eq!(hints(&pem)?, std::slice::from_ref(&want));
        // CRLF line endings name the same key, and the signer hashes the key, not the text.
        assert_eq!(hints(&pem.replace('\n', "\r\n"))?, [want]);
        Ok(())
    }

    #[test]
    fn picks_the_signer_among_rotated_keys() {
        let (a, b) = (public_pem(KEY_A), public_pem(KEY_B));
        let env = envelope_signed_by(KEY_B, b"{}", true);
        let keys = TrustedKeys::from_pems(&[&a, &b]).map_err(|e| e.code());
        assert_eq!(keys.and_then(|k| k.verify(&env).map_err(|e| e.code())), Ok(1));
        let env = envelope_signed_by(KEY_B, b"{}", false);
        let keys = TrustedKeys::from_pems(&[&a, &b]).map_err(|e| e.code());
        assert_eq!(keys.and_then(|k| k.verify(&env).map_err(|e| e.code())), Ok(1));
    }

    #[test]
    fn rejections_have_their_own_code() {
        let a = public_pem(KEY_A);
        let keys = TrustedKeys::from_pems(&[&a]).map_err(|e| e.code());
        let verify = |env| keys.clone().and_then(|k| k.verify(&env).map_err(|e| e.code()));

        // Signed by a stranger who names their own key, or names none.
        assert_eq!(verify(envelope_signed_by(KEY_B, b"{}", true)), Err("untrusted_key"));
        assert_eq!(verify(envelope_signed_by(KEY_B, b"{}", false)), Err("untrusted_key"));
        // Names the trusted key, but the payload changed after signing.
        let mut env = envelope_signed_by(KEY_A, b"{}", true);
        env.payload = b"{ }".to_vec();
        assert_eq!(verify(env), Err("bad_signature"));
        // Signed by a stranger who claims the trusted key's hint.
        let mut env = envelope_signed_by(KEY_B, b"{}", true);
        env.key_hint = envelope_signed_by(KEY_A, b"{}", true).key_hint;
        assert_eq!(verify(env), Err("bad_signature"));
        let mut env = envelope_signed_by(KEY_A, b"{}", true);
        env.signature = vec![0x30, 0x01];
        assert_eq!(verify(env), Err("malformed_signature"));
    }

    #[test]
    fn bad_key_lists_are_refused() {
        let code = |pems: &[&str]| TrustedKeys::from_pems(pems).err().map(|e| e.code());
        assert_eq!(code(&[]), Some("no_trusted_keys"));
        assert_eq!(code(&["not a pem"]), Some("invalid_key"));
        let private = "-----BEGIN EC PRIVATE KEY-----\nAA==\n-----END EC PRIVATE KEY-----\n";
        assert_eq!(code(&[&public_pem(KEY_A), private]), Some("invalid_key"));
    }
}
