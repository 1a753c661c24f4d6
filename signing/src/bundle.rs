//! The Sigstore bundle as `model_signing sign key` writes it: the only file that knows its JSON
//! field names. Parsing checks the envelope's shape and decodes it; it trusts nothing yet.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;

use crate::SigningError;

/// The bundle version the signer writes.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// The DSSE payload type of an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// A bundle's DSSE envelope, decoded but not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The envelope's payload type (always [`IN_TOTO_PAYLOAD_TYPE`] once parsed).
    pub payload_type: String,
    /// The statement bytes, base64-decoded: exactly what was signed, before any JSON parsing.
    pub payload: Vec<u8>,
    /// The first signature, DER bytes; the signer writes exactly one.
    pub signature: Vec<u8>,
    /// Hex SHA-256 of the signer's public key PEM, if the bundle names its key.
    pub key_hint: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBundle {
    media_type: String,
    #[serde(default)]
    verification_material: Option<RawMaterial>,
    // Optional here so a bundle of another version is reported by its media type, not as
    // malformed.
    #[serde(default)]
    dsse_envelope: Option<RawEnvelope>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMaterial {
    #[serde(default)]
    public_key: Option<RawPublicKey>,
}

#[derive(Deserialize)]
struct RawPublicKey {
    #[serde(default)]
    hint: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEnvelope {
    payload: String,
    payload_type: String,
    signatures: Vec<RawSignature>,
}

#[derive(Deserialize)]
struct RawSignature {
    sig: String,
}

impl Envelope {
    /// Parses a bundle's JSON and decodes its envelope.
    pub fn parse(bundle_json: &[u8]) -> Result<Self, SigningError> {
        let raw: RawBundle = serde_json::from_slice(bundle_json)
            .map_err(|e| SigningError::MalformedBundle { reason: e.to_string() })?;
        if raw.media_type != BUNDLE_MEDIA_TYPE {
            return Err(SigningError::WrongMediaType { found: raw.media_type });
        }
        let Some(envelope) = raw.dsse_envelope else {
            return Err(SigningError::MalformedBundle { reason: "no dsseEnvelope".into() });
        };
        if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
            return Err(SigningError::WrongPayloadType { found: envelope.payload_type });
        }
        let payload = STANDARD
            .decode(envelope.payload.as_bytes())
            .map_err(|_| SigningError::BadBase64 { field: "payload" })?;
        let Some(first) = envelope.signatures.first() else {
            return Err(SigningError::NoSignature);
        };
        let signature = STANDARD
            .decode(first.sig.as_bytes())
            .map_err(|_| SigningError::BadBase64 { field: "signature" })?;
        let key_hint = raw
            .verification_material
            .and_then(|m| m.public_key)
            .and_then(|k| k.hint)
            .filter(|h| !h.is_empty());
        Ok(Self { payload_type: envelope.payload_type, payload, signature, key_hint })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(media: &str, payload_type: &str, payload: &str, sig: &str) -> Vec<u8> {
        serde_json::json!({
            "mediaType": media,
            "verificationMaterial": {"publicKey": {"hint": "ab"}, "tlogEntries": []},
            "dsseEnvelope": {
                "payload": payload,
                "payloadType": payload_type,
                "signatures": [{"sig": sig, "keyid": ""}],
            },
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn decodes_a_well_formed_envelope() {
        let b = bundle(BUNDLE_MEDIA_TYPE, IN_TOTO_PAYLOAD_TYPE, "e30=", "AAEC");
        let env = Envelope::parse(&b);
        assert_eq!(
            env,
            Ok(Envelope {
                payload_type: IN_TOTO_PAYLOAD_TYPE.into(),
                payload: b"{}".to_vec(),
                signature: vec![0, 1, 2],
                key_hint: Some("ab".into()),
            })
        );
    }

    #[test]
    fn rejections_have_their_own_code() {
        let good = bundle(BUNDLE_MEDIA_TYPE, IN_TOTO_PAYLOAD_TYPE, "e30=", "AAEC");
        let no_sigs = br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json",
            "dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[]}}"#;
        let v02 = br#"{"mediaType":"application/vnd.dev.sigstore.bundle+json;version=0.2",
            "messageSignature":{}}"#;
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("malformed_bundle", good[..good.len() / 2].to_vec()),
            ("malformed_bundle", b"".to_vec()),
            ("wrong_media_type", v02.to_vec()),
            ("wrong_payload_type", bundle(BUNDLE_MEDIA_TYPE, "text/plain", "e30=", "AAEC")),
            ("bad_base64", bundle(BUNDLE_MEDIA_TYPE, IN_TOTO_PAYLOAD_TYPE, "e30", "AAEC")),
            ("bad_base64", bundle(BUNDLE_MEDIA_TYPE, IN_TOTO_PAYLOAD_TYPE, "e30=", "!!")),
            ("no_signature", no_sigs.to_vec()),
        ];
        for (code, json) in cases {
            let got = Envelope::parse(&json).err().map(|e| e.code());
            assert_eq!(got, Some(code), "{}", String::from_utf8_lossy(&json));
        }
    }
}
