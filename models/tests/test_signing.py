"""Model signing end to end: sign with the real ``model_signing`` tool, verify with the device's
Rust verifier (``signing/``, through its ``verify`` example), and check each way a signed model
can go wrong is rejected with its own reason code, and that ``model_signing`` agrees.
"""
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from edge_pipeline import sign

MODELS = Path(__file__).resolve().parent.parent
REPO = MODELS.parent
FILES = {
    "model.onnx": bytes(range(256)) * 8,
    "metadata.json": b'{"version": "1.0.0"}\n',
    "sub/notes.txt": b"calibration notes\n",
}


@pytest.fixture(scope="session")
def verifier():
    """The Rust verifier's CLI, built once; honours CARGO_TARGET_DIR like any cargo build."""
    cargo = shutil.which("cargo") or str(Path.home() / ".cargo/bin/cargo")
    out = subprocess.run(
        [cargo, "build", "--locked", "-q", "-p", "edge-signing", "--example", "verify",
         "--message-format=json"],
        cwd=REPO, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "verify" \
                and msg.get("executable"):
            return msg["executable"]
    raise AssertionError("cargo built no `verify` example")


@pytest.fixture(scope="session")
def keys(tmp_path_factory):
    """Two key pairs: `trusted` signs the models, `stranger` is nobody the device trusts."""
    d = tmp_path_factory.mktemp("keys")
    return {name: sign.keygen(d / f"{name}.pem") for name in ("trusted", "stranger")}


def write_model(root: Path, files=FILES) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


@pytest.fixture
def signed(tmp_path, keys):
    """A fresh copy of the small model, signed by the trusted key into DIR/model.sig."""
    model = write_model(tmp_path / "model")
    sign.sign(model, keys["trusted"][0])
    return model


def rust_verify(verifier, model: Path, signature: Path, *public_keys) -> dict:
    r = subprocess.run([verifier, str(model), str(signature), *map(str, public_keys)],
                       capture_output=True, text=True)
    result = json.loads(r.stdout)
    assert r.returncode == (0 if result["ok"] else 1), r
    return result


def reference_accepts(model: Path, signature: Path, public_key) -> bool:
    try:
        sign.verify(model, public_key, signature.relative_to(model)
                    if signature.is_relative_to(model) else signature.resolve())
    except Exception:  # the reference tool signals every rejection by raising
        return False
    return True


def read_bundle(sig: Path):
    bundle = json.loads(sig.read_text())
    return bundle, json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))


def write_bundle(sig: Path, bundle: dict, statement: dict | None = None, signer=None):
    """Re-encodes the statement into the bundle; re-signs it only if `signer` is given."""
    if statement is not None:
        payload = json.dumps(statement, indent=2).encode()
        bundle["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
        if signer is not None:
            key = serialization.load_pem_private_key(Path(signer).read_bytes(), None)
            ptype = bundle["dsseEnvelope"]["payloadType"].encode()
            pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(payload), payload)
            der = key.sign(pae, ec.ECDSA(hashes.SHA256()))
            bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(der).decode()
    sig.write_text(json.dumps(bundle))


# --- what the signer writes -----------------------------------------------------------------

def test_signature_lists_every_file_and_ignores_itself(signed, keys):
    bundle, statement = read_bundle(signed / "model.sig")
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert bundle["dsseEnvelope"]["payloadType"] == "application/vnd.in-toto+json"
    assert statement["predicateType"] == "https://model_signing/signature/v1.0"
    resources = statement["predicate"]["resources"]
    assert [r["name"] for r in resources] == sorted(FILES)
    for r in resources:
        assert r["digest"] == hashlib.sha256(FILES[r["name"]]).hexdigest()
    subject = hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in resources)).hexdigest()
    assert statement["subject"][0]["digest"]["sha256"] == subject
    assert "model.sig" in statement["predicate"]["serialization"]["ignore_paths"]
    pub_pem = keys["trusted"][1].read_bytes()
    assert bundle["verificationMaterial"]["publicKey"]["hint"] == hashlib.sha256(pub_pem).hexdigest()
    # Re-signing does not sign the previous signature.
    sign.sign(signed, keys["trusted"][0])
    assert "model.sig" not in sign.signed_files(signed / "model.sig")


# --- acceptance -----------------------------------------------------------------------------

def test_untouched_model_is_accepted(verifier, signed, keys):
    result = rust_verify(verifier, signed, signed / "model.sig", keys["trusted"][1])
    assert result["ok"] and result["key_index"] == 0
    assert [r["name"] for r in result["resources"]] == sorted(FILES)
    assert reference_accepts(signed, signed / "model.sig", keys["trusted"][1])


def test_cli_signature_outside_the_directory_is_accepted(verifier, tmp_path, keys):
    model = write_model(tmp_path / "model")
    sig = tmp_path / "model.sig"
    cli = Path(sys.executable).with_name("model_signing")
    subprocess.run([str(cli), "sign", "key", "--private_key", str(keys["trusted"][0]),
                    "--signature", str(sig), str(model)], check=True, capture_output=True)
    assert rust_verify(verifier, model, sig, keys["trusted"][1])["ok"]


def test_rotation_accepts_the_second_trusted_key(verifier, signed, keys):
    result = rust_verify(verifier, signed, signed / "model.sig",
                         keys["stranger"][1], keys["trusted"][1])
    assert result["ok"] and result["key_index"] == 1


def test_ignored_paths_may_appear_after_signing(verifier, signed, keys):
    (signed / ".git").mkdir()
    (signed / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    assert rust_verify(verifier, signed, signed / "model.sig", keys["trusted"][1])["ok"]
    assert reference_accepts(signed, signed / "model.sig", keys["trusted"][1])


# --- rejections, each with its own reason ---------------------------------------------------

def change_a_byte(model, sig, keys):
    p = model / "sub/notes.txt"
    data = bytearray(p.read_bytes())
    data[3] ^= 0x01
    p.write_bytes(bytes(data))


def add_a_file(model, sig, keys):
    (model / "sub/extra.bin").write_bytes(b"\0")


def remove_a_file(model, sig, keys):
    (model / "metadata.json").unlink()


def edit_the_statement(model, sig, keys):
    # A consistent edit (new digest and matching subject) that only re-signing could make valid.
    bundle, statement = read_bundle(sig)
    statement["predicate"]["resources"][0]["digest"] = hashlib.sha256(b"evil").hexdigest()
    digests = b"".join(bytes.fromhex(r["digest"]) for r in statement["predicate"]["resources"])
    statement["subject"][0]["digest"]["sha256"] = hashlib.sha256(digests).hexdigest()
    write_bundle(sig, bundle, statement)


def resign_by_stranger(model, sig, keys):
    sign.sign(model, keys["stranger"][0])


def resign_by_stranger_claiming_trusted_hint(model, sig, keys):
    hint = read_bundle(sig)[0]["verificationMaterial"]["publicKey"]["hint"]
    sign.sign(model, keys["stranger"][0])
    bundle, _ = read_bundle(sig)
    bundle["verificationMaterial"]["publicKey"]["hint"] = hint
    write_bundle(sig, bundle)


def inconsistent_subject_signed_by_trusted(model, sig, keys):
    bundle, statement = read_bundle(sig)
    statement["subject"][0]["digest"]["sha256"] = hashlib.sha256(b"other").hexdigest()
    write_bundle(sig, bundle, statement, signer=keys["trusted"][0])


def truncate_the_bundle(model, sig, keys):
    sig.write_bytes(sig.read_bytes()[: len(sig.read_bytes()) // 2])


def bundle_for_another_directory(model, sig, keys):
    other = write_model(model.parent / "other", {"weights.bin": b"other model\n"})
    sign.sign(other, keys["trusted"][0])
    shutil.copy(other / "model.sig", sig)


def wrong_media_type(model, sig, keys):
    bundle, _ = read_bundle(sig)
    bundle["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.2"
    write_bundle(sig, bundle)


def wrong_payload_type(model, sig, keys):
    bundle, _ = read_bundle(sig)
    bundle["dsseEnvelope"]["payloadType"] = "application/json"
    write_bundle(sig, bundle)


def add_a_symlink(model, sig, keys):
    os.symlink(model / "metadata.json", model / "link.json")


REJECTIONS = [
    # (how the model was tampered with, trusted keys, expected code)
    (change_a_byte, ["trusted"], "file_digest_mismatch"),
    (add_a_file, ["trusted"], "extra_file"),
    (remove_a_file, ["trusted"], "missing_file"),
    (lambda model, sig, keys: None, ["stranger"], "untrusted_key"),  # verified with another key
    (edit_the_statement, ["trusted"], "bad_signature"),
    (resign_by_stranger, ["trusted"], "untrusted_key"),
    (resign_by_stranger_claiming_trusted_hint, ["trusted"], "bad_signature"),
    (inconsistent_subject_signed_by_trusted, ["trusted"], "subject_digest_mismatch"),
    (truncate_the_bundle, ["trusted"], "malformed_bundle"),
    (bundle_for_another_directory, ["trusted"], "missing_file"),
    (wrong_media_type, ["trusted"], "wrong_media_type"),
    (wrong_payload_type, ["trusted"], "wrong_payload_type"),
    (add_a_symlink, ["trusted"], "symlink_not_allowed"),
]


@pytest.mark.parametrize("tamper,trusted,code", REJECTIONS,
                         ids=[f"{t.__name__}-{c}" if t.__name__ != "<lambda>"
                              else f"different_key-{c}" for t, _, c in REJECTIONS])
def test_tampering_is_rejected_with_its_own_code(verifier, signed, keys, tamper, trusted, code):
    sig = signed / "model.sig"
    tamper(signed, sig, keys)
    public_keys = [keys[k][1] for k in trusted]
    result = rust_verify(verifier, signed, sig, *public_keys)
    assert (result["ok"], result.get("code")) == (False, code), result
    # The reference verifier rejects it too.
    assert not reference_accepts(signed, sig, public_keys[0])


def test_a_rejection_names_the_file(verifier, signed, keys):
    change_a_byte(signed, signed / "model.sig", keys)
    result = rust_verify(verifier, signed, signed / "model.sig", keys["trusted"][1])
    assert "sub/notes.txt" in result["message"]
