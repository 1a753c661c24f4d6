//! The signed in-toto statement: which files make up the model and their digests. The only file
//! that knows the statement's JSON field names and how the signer's ignore paths match.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::{hex, SigningError};

/// The statement type the signer writes.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The model-signature predicate type the signer writes.
pub const PREDICATE_TYPE: &str = "https://model_signing/signature/v1.0";

/// One signed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Path relative to the model directory, `/`-separated.
    pub name: String,
    /// SHA-256 of the file's bytes.
    pub sha256: [u8; 32],
}

/// A statement whose types, serialization and subject digest have been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The subject's name: the signed directory's name. Informative only; a renamed directory
    /// still verifies.
    pub model_name: String,
    /// The subject digest, which covers every resource digest.
    pub subject_sha256: [u8; 32],
    /// The signed files, in the order the statement lists them.
    pub resources: Vec<Resource>,
    /// Paths (files or directories) the signer left out; files under them are neither checked nor
    /// reported as extra.
    pub ignore_paths: Vec<String>,
    /// Whether the signer followed symbolic links.
    pub allow_symlinks: bool,
}

#[derive(Deserialize)]
struct RawStatement {
    #[serde(rename = "_type")]
    statement_type: String,
    subject: Vec<RawSubject>,
    #[serde(rename = "predicateType")]
    predicate_type: String,
    // Parsed after the types are checked, so a foreign predicate is reported by its type.
    predicate: serde_json::Value,
}

#[derive(Deserialize)]
struct RawSubject {
    #[serde(default)]
    name: String,
    digest: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct RawPredicate {
    serialization: RawSerialization,
    resources: Vec<RawResource>,
}

#[derive(Deserialize)]
struct RawSerialization {
    method: String,
    #[serde(default)]
    hash_type: Option<String>,
    #[serde(default)]
    ignore_paths: Vec<String>,
    #[serde(default)]
    allow_symlinks: bool,
}

#[derive(Deserialize)]
struct RawResource {
    name: String,
    algorithm: String,
    digest: String,
}

fn malformed(reason: impl Into<String>) -> SigningError {
    SigningError::MalformedStatement { reason: reason.into() }
}

impl Statement {
    /// Parses the (already signature-checked) payload and checks it is self-consistent.
    pub fn parse(payload: &[u8]) -> Result<Self, SigningError> {
        let raw: RawStatement =
            serde_json::from_slice(payload).map_err(|e| malformed(e.to_string()))?;
        if raw.statement_type != STATEMENT_TYPE {
            return Err(SigningError::WrongStatementType { found: raw.statement_type });
        }
        if raw.predicate_type != PREDICATE_TYPE {
            return Err(SigningError::WrongPredicateType { found: raw.predicate_type });
        }
        let [subject] = <[RawSubject; 1]>::try_from(raw.subject)
            .map_err(|s| malformed(format!("expected one subject, found {}", s.len())))?;
        let subject_sha256 = subject
            .digest
            .get("sha256")
            .and_then(|d| hex::decode32(d))
            .ok_or_else(|| malformed("the subject has no sha256 digest"))?;
        let predicate: RawPredicate =
            serde_json::from_value(raw.predicate).map_err(|e| malformed(e.to_string()))?;

        let serialization = predicate.serialization;
        if serialization.method != "files" {
            return Err(SigningError::UnsupportedSerialization { method: serialization.method });
        }
        match serialization.hash_type {
            Some(h) if h == "sha256" => {}
            Some(hash_type) => return Err(SigningError::UnsupportedHashType { hash_type }),
            None => return Err(malformed("the serialization has no hash_type")),
        }

        let mut seen = BTreeSet::new();
        let mut resources = Vec::with_capacity(predicate.resources.len());
        for r in predicate.resources {
            if r.algorithm != "sha256" {
                return Err(SigningError::UnsupportedAlgorithm {
                    name: r.name,
                    algorithm: r.algorithm,
                });
            }
            let sha256 = hex::decode32(&r.digest).ok_or_else(|| {
                malformed(format!("resource {:?} has a malformed digest", r.name))
            })?;
            if !seen.insert(r.name.clone()) {
                return Err(SigningError::DuplicateResource { name: r.name });
            }
            resources.push(Resource { name: r.name, sha256 });
        }

        let computed = subject_digest(&resources);
        if computed != subject_sha256 {
            return Err(SigningError::SubjectDigestMismatch {
                expected: hex::encode(&subject_sha256),
                computed: hex::encode(&computed),
            });
        }
        Ok(Self {
            model_name: subject.name,
            subject_sha256,
            resources,
            ignore_paths: serialization.ignore_paths,
            allow_symlinks: serialization.allow_symlinks,
        })
    }

    /// Whether `name` is an ignore path or lies under one, matching whole path components (the
    /// signer's `Path.is_relative_to`): ignoring `.git` ignores `.git/HEAD` but not `.github`.
    pub fn is_ignored(&self, name: &str) -> bool {
        self.ignore_paths.iter().any(|p| {
            let p = p.trim_end_matches('/');
            name == p || name.strip_prefix(p).is_some_and(|rest| rest.starts_with('/'))
        })
    }

    /// Checks files (name → SHA-256) against the resources. Files under an ignore path are left
    /// out on both sides, as the signer left them out.
    pub fn check_digests(&self, files: &BTreeMap<String, [u8; 32]>) -> Result<(), SigningError> {
        for r in &self.resources {
            let present = if self.is_ignored(&r.name) { None } else { files.get(&r.name) };
            match present {
                None => return Err(SigningError::MissingFile { name: r.name.clone() }),
                Some(d) if *d != r.sha256 => {
                    return Err(SigningError::FileDigestMismatch { name: r.name.clone() })
                }
                Some(_) => {}
            }
        }
        let signed: BTreeSet<&str> = self.resources.iter().map(|r| r.name.as_str()).collect();
        match files.keys().find(|n| !signed.contains(n.as_str()) && !self.is_ignored(n)) {
            Some(extra) => Err(SigningError::ExtraFile { name: extra.clone() }),
            None => Ok(()),
        }
    }
}

/// SHA-256 over the raw resource digests in the order listed, as the signer computes it.
fn subject_digest(resources: &[Resource]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for r in resources {
        hasher.update(r.sha256);
    }
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::statement_json;

    fn code(payload: &[u8]) -> Option<&'static str> {
        Statement::parse(payload).err().map(|e| e.code())
    }

    fn edit(f: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
        let mut v: serde_json::Value = serde_json::from_slice(&statement_json(
            "m",
            &[("a", b"1"), ("b/c", b"2")],
            &["model.sig"],
        ))
        .unwrap_or_default();
        f(&mut v);
        v.to_string().into_bytes()
    }

    #[test]
    fn parses_what_the_signer_writes() -> Result<(), SigningError> {
        let s = Statement::parse(&edit(|_| {}))?;
        assert_eq!(s.model_name, "m");
        let names: Vec<&str> = s.resources.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "b/c"]);
        assert_eq!(s.resources[0].sha256, <[u8; 32]>::from(Sha256::digest(b"1")));
        assert!(!s.allow_symlinks);
        Ok(())
    }

    #[test]
    fn rejections_have_their_own_code() {
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("malformed_statement", b"{\"_type\":".to_vec()),
            (
                "wrong_statement_type",
                edit(|v| v["_type"] = "https://in-toto.io/Statement/v0.1".into()),
            ),
            (
                "wrong_predicate_type",
                edit(|v| v["predicateType"] = "https://slsa.dev/provenance/v1".into()),
            ),
            ("malformed_statement", edit(|v| v["subject"] = serde_json::json!([]))),
            (
                "malformed_statement",
                edit(|v| v["subject"][0]["digest"] = serde_json::json!({"sha512": "00"})),
            ),
            (
                "unsupported_serialization",
                edit(|v| v["predicate"]["serialization"]["method"] = "shards".into()),
            ),
            (
                "unsupported_hash_type",
                edit(|v| v["predicate"]["serialization"]["hash_type"] = "blake2".into()),
            ),
            (
                "unsupported_algorithm",
                edit(|v| v["predicate"]["resources"][0]["algorithm"] = "md5".into()),
            ),
            (
                "malformed_statement",
                edit(|v| v["predicate"]["resources"][0]["digest"] = "abc".into()),
            ),
            ("duplicate_resource", edit(|v| v["predicate"]["resources"][1]["name"] = "a".into())),
            (
                "subject_digest_mismatch",
                edit(|v| {
                    v["predicate"]["resources"][1]["digest"] = hex::encode(&[7; 32]).into();
                }),
            ),
        ];
        for (want, payload) in cases {
            assert_eq!(code(&payload), Some(want), "{}", String::from_utf8_lossy(&payload));
        }
    }

    #[test]
    fn ignore_paths_match_whole_components() -> Result<(), SigningError> {
        let s = Statement::parse(&edit(|v| {
            v["predicate"]["serialization"]["ignore_paths"] = serde_json::json!([".git", "logs/"]);
        }))?;
        let cases = [
            (".git", true),
            (".git/HEAD", true),
            (".github/x", false),
            ("logs", true),
            ("logs/a.txt", true),
            ("logsx", false),
            ("a", false),
        ];
        for (name, want) in cases {
            assert_eq!(s.is_ignored(name), want, "{name}");
        }
        Ok(())
    }

    #[test]
    fn file_checks_name_the_file() -> Result<(), SigningError> {
        let s = Statement::parse(&edit(|_| {}))?;
        let digest = |b: &[u8]| <[u8; 32]>::from(Sha256::digest(b));
        let files = |extra: &[(&str, &[u8])]| {
            let mut m: BTreeMap<String, [u8; 32]> = [("a", b"1"), ("b/c", b"2")]
                .iter()
                .map(|(n, b)| (n.to_string(), digest(*b)))
                .collect();
            for (n, b) in extra {
                m.insert(n.to_string(), digest(b));
            }
            m
        };
        assert_eq!(s.check_digests(&files(&[("model.sig", b"sig")])), Ok(()));
        let cases = [
            (files(&[("b/c", b"3")]), SigningError::FileDigestMismatch { name: "b/c".into() }),
            (files(&[("b/d", b"")]), SigningError::ExtraFile { name: "b/d".into() }),
        ];
        for (f, want) in cases {
            assert_eq!(s.check_digests(&f), Err(want));
        }
        let mut missing = files(&[]);
        missing.remove("a");
        assert_eq!(s.check_digests(&missing), Err(SigningError::MissingFile { name: "a".into() }));
        Ok(())
    }
}
