//! The whole check, platform-free: bundle → signature → statement → files. The browser passes
//! the files it downloaded; nothing here touches a file system.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::bundle::Envelope;
use crate::{Resource, SigningError, Statement, TrustedKeys};

/// What a successful verification vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedManifest {
    /// The signed directory's name (informative only).
    pub model_name: String,
    /// The subject digest: one SHA-256 that names this exact set of files.
    pub subject_sha256: [u8; 32],
    /// Each verified file and its SHA-256, in the statement's order.
    pub resources: Vec<Resource>,
    /// Which trusted key (its index in `TrustedKeys::from_pems`) made the signature.
    pub key_index: usize,
}

/// Checks a bundle's signature and statement, before any file is looked at. Returns the
/// statement and the index of the trusted key that signed it.
pub fn verify_bundle(
    bundle_json: &[u8],
    keys: &TrustedKeys,
) -> Result<(Statement, usize), SigningError> {
    let envelope = Envelope::parse(bundle_json)?;
    let key_index = keys.verify(&envelope)?;
    Ok((Statement::parse(&envelope.payload)?, key_index))
}

/// Verifies that `files` (path relative to the model directory, `/`-separated → bytes) are
/// exactly the model the bundle signs, signed by one of `keys`. Files under the statement's
/// ignore paths (such as the signature file itself) may be present or not.
pub fn verify_directory(
    bundle_json: &[u8],
    files: &BTreeMap<String, Vec<u8>>,
    keys: &TrustedKeys,
) -> Result<VerifiedManifest, SigningError> {
    let (statement, key_index) = verify_bundle(bundle_json, keys)?;
    let digests = files
        .iter()
        .filter(|(name, _)| !statement.is_ignored(name))
        .map(|(name, bytes)| (name.clone(), Sha256::digest(bytes).into()))
        .collect();
    statement.check_digests(&digests)?;
    Ok(VerifiedManifest::new(statement, key_index))
}

impl VerifiedManifest {
    pub(crate) fn new(statement: Statement, key_index: usize) -> Self {
        Self {
            model_name: statement.model_name,
            subject_sha256: statement.subject_sha256,
            resources: statement.resources,
            key_index,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{bundle_json, public_pem, statement_json, KEY_A, KEY_B};

    type Files = BTreeMap<String, Vec<u8>>;

    const FILES: &[(&str, &[u8])] = &[("a.onnx", b"weights"), ("sub/meta.json", b"{}")];

    fn files(extra: &[(&str, &[u8])]) -> Files {
        FILES.iter().chain(extra).map(|(n, b)| (n.to_string(), b.to_vec())).collect()
    }

    fn bundle() -> Vec<u8> {
        bundle_json(KEY_A, &statement_json("m", FILES, &["model.sig", ".git"]))
    }

    #[test]
    fn accepts_the_signed_files() -> Result<(), SigningError> {
        let keys = TrustedKeys::from_pems(&[&public_pem(KEY_B), &public_pem(KEY_A)])?;
        let m =
            verify_directory(&bundle(), &files(&[("model.sig", b"x"), (".git/HEAD", b"")]), &keys)?;
        assert_eq!(m.key_index, 1);
        let names: Vec<&str> = m.resources.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a.onnx", "sub/meta.json"]);
        Ok(())
    }

    #[test]
    fn rejections_have_their_own_code() -> Result<(), SigningError> {
        let keys = TrustedKeys::from_pems(&[&public_pem(KEY_A)])?;
        let mut changed = files(&[]);
        changed.insert("a.onnx".into(), b"weightz".to_vec());
        let mut missing = files(&[]);
        missing.remove("sub/meta.json");
        let inconsistent = {
            let mut s: serde_json::Value =
                serde_json::from_slice(&statement_json("m", FILES, &[])).unwrap_or_default();
            s["subject"][0]["digest"]["sha256"] = crate::hex::encode(&[0; 32]).into();
            bundle_json(KEY_A, s.to_string().as_bytes())
        };
        let cases: Vec<(&str, Vec<u8>, Files)> = vec![
            ("file_digest_mismatch", bundle(), changed),
            ("missing_file", bundle(), missing),
            ("extra_file", bundle(), files(&[("notes.txt", b"")])),
            ("untrusted_key", bundle_json(KEY_B, &statement_json("m", FILES, &[])), files(&[])),
            ("subject_digest_mismatch", inconsistent, files(&[])),
            ("malformed_bundle", bundle()[..100].to_vec(), files(&[])),
        ];
        for (want, b, f) in cases {
            assert_eq!(verify_directory(&b, &f, &keys).err().map(|e| e.code()), Some(want));
        }
        Ok(())
    }
}
