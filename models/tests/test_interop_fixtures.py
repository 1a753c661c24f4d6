"""The engine's interop fixtures (`tests/fixtures/interop/`) are exactly what their generator
writes: regenerated into a temporary directory and compared, so a committed model or expected
score cannot drift from the recipe that documents it.

Every model file must be byte for byte the same, and so must every expected score except one
kind: onnxruntime's own run of an int8 file as written ("scores" of ``*.int8.onnx``), whose
integer kernels differ between machines (a file generated on another one differed here by up
to 2.3%; run to run on one machine they are identical). Those are compared within 5%; the
engine checks them with its own tolerance in ``tests/engine_interop.rs``.
"""
import importlib.util
import json
import pathlib

import numpy as np

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "interop"


def load_generator():
    spec = importlib.util.spec_from_file_location("interop_generate", FIXTURES / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_fixtures_are_what_the_generator_writes(tmp_path):
    generate = load_generator()
    generate.generate(str(tmp_path))
    written = sorted(p.name for p in tmp_path.iterdir())
    committed = sorted(p.name for p in FIXTURES.iterdir() if p.name != "generate.py")
    assert written == committed
    assert len([n for n in written if n.endswith(".int8.onnx")]) == len(list(generate.variants())) + 1
    for name in written:
        if name != "expected.json":
            assert (tmp_path / name).read_bytes() == (FIXTURES / name).read_bytes(), name
    fresh = json.loads((tmp_path / "expected.json").read_text())
    kept = json.loads((FIXTURES / "expected.json").read_text())
    assert fresh.keys() == kept.keys()
    assert fresh["rows"] == kept["rows"] and fresh["refused"] == kept["refused"]
    assert fresh["models"].keys() == kept["models"].keys()
    for name, entry in fresh["models"].items():
        assert entry.keys() == kept["models"][name].keys(), name
        for key, value in entry.items():
            if key == "scores" and name.endswith(".int8.onnx"):
                np.testing.assert_allclose(value, kept["models"][name][key], rtol=0.05, err_msg=name)
            else:
                assert value == kept["models"][name][key], (name, key)
