//! Publishing signed model releases and serving them: the shipped, signed model directory is
//! published and listed with its signed digests; a tampered copy, an untrusted key and a
//! conflicting version are refused; the files come back byte for byte and nothing else does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use axum::body::{to_bytes, Body};
use axum::http::{Request, StatusCode};
use collector::releases::{manifest, publish, trusted_keys, PublishError};
use collector::{app, Config};
use common::{get_json, memory_state, send};
use tower::ServiceExt;

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/shuttle")
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn a_signed_directory_is_published_once_and_listed_with_its_signed_digests() {
    let releases = tempfile::tempdir().unwrap();
    let keys = trusted_keys(&[]).unwrap();
    let release = publish(&shipped(), releases.path(), &keys).unwrap();
    assert!(release.version.starts_with("1.0.0"), "{}", release.version);
    assert_eq!(release.base, format!("/releases/{}/", release.version));
    let names: Vec<&str> = release.files.iter().map(|f| f.name.as_str()).collect();
    for name in ["metadata.json", "golden.json", "model.int8.onnx", "model.f32.onnx", "model.sig"] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    let int8 = release.files.iter().find(|f| f.name == "model.int8.onnx").unwrap();
    assert_eq!(int8.bytes, fs::metadata(shipped().join("model.int8.onnx")).unwrap().len());
    // The same release again is a no-op; the manifest lists it once.
    assert_eq!(publish(&shipped(), releases.path(), &keys).unwrap(), release);
    assert_eq!(manifest(releases.path()).releases, vec![release]);
}

#[test]
fn tampered_untrusted_and_conflicting_releases_are_refused() {
    let releases = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let keys = trusted_keys(&[]).unwrap();

    let tampered = work.path().join("tampered");
    copy_dir(&shipped(), &tampered);
    let mut bytes = fs::read(tampered.join("model.int8.onnx")).unwrap();
    bytes[100] ^= 1;
    fs::write(tampered.join("model.int8.onnx"), bytes).unwrap();
    let err = publish(&tampered, releases.path(), &keys).unwrap_err();
    assert!(matches!(err, PublishError::Signature(_)), "{err}");

    let other_key = work.path().join("other.pub.pem");
    fs::write(
        &other_key,
        "-----BEGIN PUBLIC KEY-----\n\
         MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEHf1tu0qWneJ75xMGzdd/Jizai1jn\n\
         5XdRPkinlceyRtAkNWfvJwciFkPoG+idwphcSD9IRHxGHzPSSLJXNAPoJA==\n\
         -----END PUBLIC KEY-----\n",
    )
    .unwrap();
    let untrusted = trusted_keys(&[other_key]).unwrap();
    let err = publish(&shipped(), releases.path(), &untrusted).unwrap_err();
    assert!(matches!(err, PublishError::Signature(_)), "{err}");
    assert!(manifest(releases.path()).releases.is_empty(), "nothing published");

    // A version directory already holding other content.
    let version = publish(&shipped(), releases.path(), &keys).unwrap().version;
    let release_json = releases.path().join(&version).join("release.json");
    let text = fs::read_to_string(&release_json).unwrap();
    fs::write(&release_json, text.replace("\"subject_sha256\": \"", "\"subject_sha256\": \"00"))
        .unwrap();
    let err = publish(&shipped(), releases.path(), &keys).unwrap_err();
    assert!(matches!(err, PublishError::Conflict(v) if v == version), "conflict");
}

#[tokio::test]
async fn devices_get_the_manifest_and_each_file_and_nothing_else() {
    let releases = tempfile::tempdir().unwrap();
    let release = publish(&shipped(), releases.path(), &trusted_keys(&[]).unwrap()).unwrap();
    let config = Config { releases_dir: Some(releases.path().to_owned()), ..Config::default() };
    let app = app(memory_state(config));
    let listed = get_json(&app, "/releases/manifest.json").await;
    assert_eq!(listed["releases"][0]["version"], release.version.as_str());
    for file in &release.files {
        let path = format!("{}{}", release.base, file.name);
        let reply = app.clone().oneshot(Request::get(&path).body(Body::empty()).unwrap()).await;
        let reply = reply.unwrap();
        assert_eq!(reply.status(), StatusCode::OK, "{path}");
        let body = to_bytes(reply.into_body(), usize::MAX).await.unwrap();
        assert_eq!(body.to_vec(), fs::read(shipped().join(&file.name)).unwrap(), "{path}");
    }
    let v = &release.version;
    for path in [
        format!("/releases/{v}/release.json"),
        format!("/releases/{v}/..%2Fmetadata.json"),
        format!("/releases/{v}/.hidden"),
        "/releases/9.9.9/metadata.json".to_owned(),
        "/releases/not-a-version/metadata.json".to_owned(),
    ] {
        let reply = send(&app, Request::get(&path).body(Body::empty()).unwrap()).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
    }
}
