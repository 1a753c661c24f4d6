//! Why a signed model was rejected: one variant per reason, each with a stable `code()` that the
//! browser layer and the test harness can match on without parsing messages.

use thiserror::Error;

/// A reason to reject a signature, a trusted key or a model directory.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SigningError {
    /// A trusted key is not a PEM SubjectPublicKeyInfo P-256 public key.
    #[error("trusted key {index} is not a P-256 public key PEM: {reason}")]
    InvalidKey {
        /// Position of the key in the list given to `TrustedKeys::from_pems`.
        index: usize,
        /// What the PEM/SPKI parser reported.
        reason: String,
    },
    /// `TrustedKeys::from_pems` was given no keys, so nothing could ever verify.
    #[error("no trusted keys were given")]
    NoTrustedKeys,
    /// The signature file is not the bundle JSON (truncated, not JSON, or a field missing).
    #[error("the signature bundle is malformed: {reason}")]
    MalformedBundle {
        /// What the JSON parser reported.
        reason: String,
    },
    /// The bundle is not a Sigstore bundle v0.3, the only version the signer writes.
    #[error("unsupported bundle media type {found:?}")]
    WrongMediaType {
        /// The media type in the bundle.
        found: String,
    },
    /// The DSSE envelope does not carry an in-toto statement.
    #[error("unsupported DSSE payload type {found:?}")]
    WrongPayloadType {
        /// The payload type in the envelope.
        found: String,
    },
    /// A base64 field of the envelope does not decode.
    #[error("the envelope's {field} is not valid base64")]
    BadBase64 {
        /// Which field: `payload` or `signature`.
        field: &'static str,
    },
    /// The envelope carries no signature.
    #[error("the envelope carries no signature")]
    NoSignature,
    /// The signature bytes are not a DER-encoded P-256 ECDSA signature.
    #[error("the signature is not a DER-encoded P-256 ECDSA signature")]
    MalformedSignature,
    /// The bundle names a key (by its hint) that is not trusted, and no trusted key verifies it.
    #[error("the bundle is signed by a key that is not trusted")]
    UntrustedKey,
    /// The bundle names a trusted key, but the signature does not verify with it: the payload or
    /// the signature was changed after signing.
    #[error("the signature does not verify with the trusted key it names")]
    BadSignature,
    /// The signed payload is not an in-toto statement of the expected shape.
    #[error("the signed statement is malformed: {reason}")]
    MalformedStatement {
        /// What is wrong with it.
        reason: String,
    },
    /// The statement is not an in-toto Statement v1.
    #[error("unsupported statement type {found:?}")]
    WrongStatementType {
        /// The statement's `_type`.
        found: String,
    },
    /// The statement's predicate is not a model signature v1.0.
    #[error("unsupported predicate type {found:?}")]
    WrongPredicateType {
        /// The statement's `predicateType`.
        found: String,
    },
    /// The model was serialized some other way than one digest per file.
    #[error("unsupported serialization method {method:?}")]
    UnsupportedSerialization {
        /// The predicate's `serialization.method`.
        method: String,
    },
    /// The model was hashed with something other than SHA-256.
    #[error("unsupported serialization hash type {hash_type:?}")]
    UnsupportedHashType {
        /// The predicate's `serialization.hash_type`.
        hash_type: String,
    },
    /// A resource is hashed with something other than SHA-256.
    #[error("resource {name:?} uses unsupported digest algorithm {algorithm:?}")]
    UnsupportedAlgorithm {
        /// The resource's name.
        name: String,
        /// The resource's `algorithm`.
        algorithm: String,
    },
    /// The statement lists the same file twice.
    #[error("resource {name:?} is listed twice")]
    DuplicateResource {
        /// The repeated name.
        name: String,
    },
    /// The subject digest does not cover the listed resources: the statement is inconsistent.
    #[error(
        "the subject digest {expected} does not match the resources, which hash to {computed}"
    )]
    SubjectDigestMismatch {
        /// Hex digest the subject claims.
        expected: String,
        /// Hex digest of the listed resources.
        computed: String,
    },
    /// A signed file's contents differ from what was signed.
    #[error("file {name:?} does not match its signed digest")]
    FileDigestMismatch {
        /// The file's path relative to the model directory.
        name: String,
    },
    /// A signed file is absent.
    #[error("signed file {name:?} is missing")]
    MissingFile {
        /// The file's path relative to the model directory.
        name: String,
    },
    /// A file is present that was not signed and is not under an ignored path.
    #[error("file {name:?} is not covered by the signature")]
    ExtraFile {
        /// The file's path relative to the model directory.
        name: String,
    },
    /// A symbolic link was found, and the signer did not allow them.
    #[error("{name:?} is a symbolic link, which the signature does not allow")]
    SymlinkNotAllowed {
        /// The link's path relative to the model directory.
        name: String,
    },
    /// Reading the directory or the bundle failed (native `verify_dir` only).
    #[error("cannot read {path}: {reason}")]
    Io {
        /// The path that could not be read.
        path: String,
        /// What the operating system reported.
        reason: String,
    },
}

impl SigningError {
    /// A stable, machine-readable name for the reason, for telemetry and tests.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidKey { .. } => "invalid_key",
            Self::NoTrustedKeys => "no_trusted_keys",
            Self::MalformedBundle { .. } => "malformed_bundle",
            Self::WrongMediaType { .. } => "wrong_media_type",
            Self::WrongPayloadType { .. } => "wrong_payload_type",
            Self::BadBase64 { .. } => "bad_base64",
            Self::NoSignature => "no_signature",
            Self::MalformedSignature => "malformed_signature",
            Self::UntrustedKey => "untrusted_key",
            Self::BadSignature => "bad_signature",
            Self::MalformedStatement { .. } => "malformed_statement",
            Self::WrongStatementType { .. } => "wrong_statement_type",
            Self::WrongPredicateType { .. } => "wrong_predicate_type",
            Self::UnsupportedSerialization { .. } => "unsupported_serialization",
            Self::UnsupportedHashType { .. } => "unsupported_hash_type",
            Self::UnsupportedAlgorithm { .. } => "unsupported_algorithm",
            Self::DuplicateResource { .. } => "duplicate_resource",
            Self::SubjectDigestMismatch { .. } => "subject_digest_mismatch",
            Self::FileDigestMismatch { .. } => "file_digest_mismatch",
            Self::MissingFile { .. } => "missing_file",
            Self::ExtraFile { .. } => "extra_file",
            Self::SymlinkNotAllowed { .. } => "symlink_not_allowed",
            Self::Io { .. } => "io",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SigningError;
    use std::collections::BTreeSet;

    fn one_of_each() -> Vec<SigningError> {
        let s = || "x".to_string();
        vec![
            SigningError::InvalidKey { index: 0, reason: s() },
            SigningError::NoTrustedKeys,
            SigningError::MalformedBundle { reason: s() },
            SigningError::WrongMediaType { found: s() },
            SigningError::WrongPayloadType { found: s() },
            SigningError::BadBase64 { field: "payload" },
            SigningError::NoSignature,
            SigningError::MalformedSignature,
            SigningError::UntrustedKey,
            SigningError::BadSignature,
            SigningError::MalformedStatement { reason: s() },
            SigningError::WrongStatementType { found: s() },
            SigningError::WrongPredicateType { found: s() },
            SigningError::UnsupportedSerialization { method: s() },
            SigningError::UnsupportedHashType { hash_type: s() },
            SigningError::UnsupportedAlgorithm { name: s(), algorithm: s() },
            SigningError::DuplicateResource { name: s() },
            SigningError::SubjectDigestMismatch { expected: s(), computed: s() },
            SigningError::FileDigestMismatch { name: s() },
            SigningError::MissingFile { name: s() },
            SigningError::ExtraFile { name: s() },
            SigningError::SymlinkNotAllowed { name: s() },
            SigningError::Io { path: s(), reason: s() },
        ]
    }

    #[test]
    fn codes_are_distinct_and_snake_case() {
        let all = one_of_each();
        let codes: BTreeSet<&str> = all.iter().map(SigningError::code).collect();
        assert_eq!(codes.len(), all.len(), "two variants share a code");
        for code in codes {
            assert!(
                code.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{code}"
            );
        }
    }

    #[test]
    fn messages_name_the_file() {
        let e = SigningError::FileDigestMismatch { name: "model.int8.onnx".into() };
        assert!(e.to_string().contains("model.int8.onnx"));
    }
}
