//! Unit-test fixtures: statements and bundles shaped like the signer's, signed with fixed keys.
//!
//! Signing here is RFC 6979 (deterministic), so tests need no randomness either. End-to-end
//! tests against the real signer live in `models/tests/test_signing.py`.

use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey, LineEnding};
use sha2::{Digest, Sha256};

use crate::bundle::{Envelope, BUNDLE_MEDIA_TYPE, IN_TOTO_PAYLOAD_TYPE};
use crate::{dsse, hex};

/// Two fixed private scalars (any value below the group order is a valid key).
pub(crate) const KEY_A: [u8; 32] = [0x11; 32];
pub(crate) const KEY_B: [u8; 32] = [0x22; 32];

fn signing_key(scalar: [u8; 32]) -> Option<SigningKey> {
    SigningKey::from_slice(&scalar).ok()
}

/// The SPKI PEM of a fixed key, as `openssl ec -pubout` writes it.
pub(crate) fn public_pem(scalar: [u8; 32]) -> String {
    signing_key(scalar)
        .and_then(|k| k.verifying_key().to_public_key_pem(LineEnding::LF).ok())
        .unwrap_or_default()
}

fn hint(scalar: [u8; 32]) -> String {
    hex::encode(&Sha256::digest(public_pem(scalar).as_bytes()))
}

fn sign(scalar: [u8; 32], payload: &[u8]) -> Vec<u8> {
    let message = dsse::pae(IN_TOTO_PAYLOAD_TYPE, payload);
    signing_key(scalar)
        .map(|k| {
            let sig: Signature = k.sign(&message);
            sig.to_der().as_bytes().to_vec()
        })
        .unwrap_or_default()
}

/// An envelope over `payload` signed by `scalar`, naming its key only if `with_hint`.
pub(crate) fn envelope_signed_by(scalar: [u8; 32], payload: &[u8], with_hint: bool) -> Envelope {
    Envelope {
        payload_type: IN_TOTO_PAYLOAD_TYPE.into(),
        payload: payload.to_vec(),
        signature: sign(scalar, payload),
        key_hint: with_hint.then(|| hint(scalar)),
    }
}

/// A statement over `files` (name, bytes) in the order given, like the signer's.
pub(crate) fn statement_json(model: &str, files: &[(&str, &[u8])], ignore: &[&str]) -> Vec<u8> {
    let digests: Vec<[u8; 32]> = files.iter().map(|(_, b)| Sha256::digest(b).into()).collect();
    let subject: [u8; 32] =
        digests.iter().fold(Sha256::new(), |h, d| h.chain_update(d)).finalize().into();
    let resources: Vec<serde_json::Value> = files
        .iter()
        .zip(&digests)
        .map(|((name, _), d)| serde_json::json!({"algorithm": "sha256", "digest": hex::encode(d), "name": name}))
        .collect();
    serde_json::to_vec_pretty(&serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": model, "digest": {"sha256": hex::encode(&subject)}}],
        "predicateType": "https://model_signing/signature/v1.0",
        "predicate": {
            "serialization": {"method": "files", "hash_type": "sha256", "ignore_paths": ignore, "allow_symlinks": false},
            "resources": resources,
        },
    }))
    .unwrap_or_default()
}

/// A complete bundle over `payload`, signed by `scalar`.
pub(crate) fn bundle_json(scalar: [u8; 32], payload: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    serde_json::to_vec_pretty(&serde_json::json!({
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": hint(scalar)}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": b64(payload),
            "payloadType": IN_TOTO_PAYLOAD_TYPE,
            "signatures": [{"sig": b64(&sign(scalar, payload)), "keyid": ""}],
        },
    }))
    .unwrap_or_default()
}
