//! Verifies a signed model directory from the command line and prints one JSON line, so the
//! Python tests (and a release script) can check what the Rust verifier decides.
//!
//! ```text
//! cargo run -p edge-signing --example verify -- DIR SIGNATURE PUBKEY.pem [PUBKEY.pem…]
//! {"ok":true,"model":"shuttle","key_index":0,"resources":[{"name":"…","sha256":"…"}]}
//! {"ok":false,"code":"file_digest_mismatch","message":"file \"metadata.json\" does not match…"}
//! ```
//!
//! Exit status: 0 verified, 1 rejected, 2 usage error.

// The CLI reads files, so it is native only; a wasm32 build of the examples gets a stub.
#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    cli::main()
}

#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use std::path::Path;
    use std::process::ExitCode;

    use edge_signing::{verify_dir, SigningError, TrustedKeys, VerifiedManifest};
    use serde_json::json;

    pub fn main() -> ExitCode {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let [dir, signature, key_paths @ ..] = args.as_slice() else {
            eprintln!("usage: verify DIR SIGNATURE PUBKEY.pem [PUBKEY.pem...]");
            return ExitCode::from(2);
        };
        if key_paths.is_empty() {
            eprintln!("usage: verify DIR SIGNATURE PUBKEY.pem [PUBKEY.pem...]");
            return ExitCode::from(2);
        }
        match run(Path::new(dir), Path::new(signature), key_paths) {
            Ok(m) => {
                let resources: Vec<_> = m
                    .resources
                    .iter()
                    .map(|r| json!({"name": r.name, "sha256": hex(&r.sha256)}))
                    .collect();
                let out = json!({
                    "ok": true, "model": m.model_name, "subject_sha256": hex(&m.subject_sha256),
                    "key_index": m.key_index, "resources": resources,
                });
                println!("{out}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                println!("{}", json!({"ok": false, "code": e.code(), "message": e.to_string()}));
                ExitCode::from(1)
            }
        }
    }

    fn run(
        dir: &Path,
        signature: &Path,
        key_paths: &[String],
    ) -> Result<VerifiedManifest, SigningError> {
        let pems = key_paths
            .iter()
            .map(|p| {
                std::fs::read_to_string(p)
                    .map_err(|e| SigningError::Io { path: p.clone(), reason: e.to_string() })
            })
            .collect::<Result<Vec<String>, _>>()?;
        let pem_refs: Vec<&str> = pems.iter().map(String::as_str).collect();
        let keys = TrustedKeys::from_pems(&pem_refs)?;
        verify_dir(dir, signature, &keys)
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
