"""Sign a model directory in the OpenSSF Model Signing format, as the device verifies it.

The signature is what ``model_signing sign key`` writes (a Sigstore bundle over an in-toto
statement listing every file's SHA-256, ECDSA P-256), made with that library's Python API. It
is written inside the directory (``DIR/model.sig`` by default) and listed in the statement's
ignore paths, so the directory ships as one unit and still verifies; the ``model_signing`` CLI
instead writes ``model.sig`` to the working directory unless told otherwise.

Examples (from models/):
  python -m edge_pipeline.sign --keygen keys/mine.pem          # writes mine.pem, mine.pub.pem
  python -m edge_pipeline.sign shuttle --private-key keys/mine.pem
  python -m edge_pipeline.sign shuttle --verify keys/mine.pub.pem
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from pathlib import Path

DEFAULT_SIGNATURE = "model.sig"


def public_key_path(private_key: str | os.PathLike) -> Path:
    """``name.pem`` -> ``name.pub.pem``, the pair's naming convention in models/keys/."""
    p = Path(private_key)
    stem = p.name[: -len(".pem")] if p.name.endswith(".pem") else p.name
    return p.with_name(stem + ".pub.pem")


def keygen(private_key: str | os.PathLike) -> tuple[Path, Path]:
    """Writes a new P-256 key pair, the same files as
    ``openssl ecparam -name prime256v1 -genkey -noout -out KEY.pem`` and
    ``openssl ec -in KEY.pem -pubout -out KEY.pub.pem``. Refuses to overwrite a key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    priv_path, pub_path = Path(private_key), public_key_path(private_key)
    for p in (priv_path, pub_path):
        if p.exists():
            raise FileExistsError(f"{p} exists; not overwriting a key")
    key = ec.generate_private_key(ec.SECP256R1())
    priv_pem = key.private_bytes(serialization.Encoding.PEM,
                                 serialization.PrivateFormat.TraditionalOpenSSL,
                                 serialization.NoEncryption())
    pub_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    priv_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(priv_pem)
    pub_path.write_bytes(pub_pem)
    return priv_path, pub_path


def _relative_inside(model_dir: Path, path: Path) -> Path | None:
    try:
        return path.resolve().relative_to(model_dir.resolve())
    except ValueError:
        return None


def sign(model_dir: str | os.PathLike, private_key: str | os.PathLike,
         signature: str | os.PathLike = DEFAULT_SIGNATURE,
         ignore: list[str] | tuple[str, ...] = (), password: str | None = None) -> Path:
    """Signs ``model_dir`` with the PEM ``private_key``; returns the signature's path.

    ``signature`` is relative to ``model_dir``. Unlike the CLI, the library does not leave the
    signature file out by itself, so re-signing would sign the previous signature: it is added to
    the ignore paths here, as the CLI does."""
    from model_signing import hashing, signing

    model = Path(model_dir)
    if not model.is_dir():
        raise NotADirectoryError(f"{model} is not a directory")
    sig_path = model / signature
    ignored = [Path(p) for p in ignore]
    inside = _relative_inside(model, sig_path)
    if inside is not None:
        ignored.append(inside)
    hashing_config = hashing.Config().set_ignored_paths(paths=ignored, ignore_git_paths=True)
    (signing.Config()
     .use_elliptic_key_signer(private_key=private_key, password=password)
     .set_hashing_config(hashing_config)
     .sign(model, sig_path))
    return sig_path


def verify(model_dir: str | os.PathLike, public_key: str | os.PathLike,
           signature: str | os.PathLike = DEFAULT_SIGNATURE) -> None:
    """Checks the signature with ``model_signing`` itself; raises ``ValueError`` on mismatch."""
    from model_signing import verifying

    model = Path(model_dir)
    (verifying.Config()
     .use_elliptic_key_verifier(public_key=public_key)
     .verify(model, model / signature))


def signed_files(signature_path: str | os.PathLike) -> list[str]:
    """The file names a signature covers, read from its statement (no verification)."""
    bundle = json.loads(Path(signature_path).read_text(encoding="utf-8"))
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    return [r["name"] for r in statement["predicate"]["resources"]]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="edge_pipeline.sign", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", nargs="?", help="model directory to sign or verify")
    p.add_argument("--private-key", help="PEM P-256 private key to sign with")
    p.add_argument("--password", help="password of an encrypted private key")
    p.add_argument("--signature", default=DEFAULT_SIGNATURE,
                   help="signature file, relative to DIR (default: model.sig)")
    p.add_argument("--ignore", action="append", default=[],
                   help="path relative to DIR to leave unsigned (repeatable)")
    p.add_argument("--verify", metavar="PUBLIC_KEY", help="verify DIR instead of signing it")
    p.add_argument("--keygen", metavar="KEY.pem", help="write a new P-256 key pair and exit")
    a = p.parse_args(argv)

    try:
        if a.keygen:
            priv, pub = keygen(a.keygen)
            print(json.dumps({"private_key": str(priv), "public_key": str(pub)}))
            return 0
        if not a.dir:
            p.error("DIR is required unless --keygen is given")
        if a.verify:
            verify(a.dir, a.verify, a.signature)
            print(json.dumps({"verified": a.dir, "signature": a.signature}))
            return 0
        if not a.private_key:
            p.error("--private-key is required to sign")
        sig = sign(a.dir, a.private_key, a.signature, a.ignore, a.password)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps({"signature": str(sig), "files": signed_files(sig)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
