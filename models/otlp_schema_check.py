"""Every OTLP body the outbox emits must parse, strictly, as the official
ExportLogsServiceRequest (opentelemetry-proto, protobuf JSON mapping), and carry our attributes
(a flagged reading's contributions, where present, held to the rules the collector enforces).

Run by scripts/test.sh after `cargo run --example wire_size -- --dump DIR`:
  OTLP_BODIES_DIR=DIR .venv/bin/python -m pytest -q otlp_schema_check.py
"""
import glob
import json
import os

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

CHANNELS = "edge.contributions.channels"
SHARES = "edge.contributions.shares"
MAX_CONTRIBUTIONS = 16  # collector/src/otlp/limits.rs
SHARE_SUM_TOLERANCE = 1e-3  # collector/src/otlp/contributions.rs

BODIES = sorted(glob.glob(os.path.join(os.environ.get("OTLP_BODIES_DIR", "/nonexistent"), "*.json")))


def check_contributions(attrs):
    """A flagged reading's top channels: both arrays or neither, strings and doubles, equally
    long, shares in [0, 1] summing to at most 1, only on a scored anomaly."""
    if CHANNELS not in attrs and SHARES not in attrs:
        return
    assert CHANNELS in attrs and SHARES in attrs, "one contributions array without the other"
    assert attrs["edge.scored"].bool_value and attrs["edge.anomaly"].bool_value
    channels = attrs[CHANNELS].array_value.values
    shares = attrs[SHARES].array_value.values
    assert attrs[CHANNELS].WhichOneof("value") == "array_value"
    assert attrs[SHARES].WhichOneof("value") == "array_value"
    assert all(c.WhichOneof("value") == "string_value" and c.string_value for c in channels)
    assert all(s.WhichOneof("value") == "double_value" for s in shares)
    assert 1 <= len(channels) == len(shares) <= MAX_CONTRIBUTIONS
    assert all(0.0 <= s.double_value <= 1.0 for s in shares)
    assert sum(s.double_value for s in shares) <= 1.0 + SHARE_SUM_TOLERANCE


def test_bodies_were_dumped():
    assert len(BODIES) >= 2, "run the wire_size example with --dump first"


@pytest.mark.parametrize("path", BODIES, ids=os.path.basename)
def test_body_is_a_valid_export_logs_request(path):
    text = open(path).read()
    msg = json_format.Parse(text, ExportLogsServiceRequest(), ignore_unknown_fields=False)
    assert len(msg.resource_logs) == 1
    res = {a.key: a.value for a in msg.resource_logs[0].resource.attributes}
    assert res["device.id"].string_value and res["service.name"].string_value == "edge-anomaly"
    records = msg.resource_logs[0].scope_logs[0].log_records
    assert records
    for r in records:
        attrs = {a.key: a.value for a in r.attributes}
        assert r.time_unix_nano > 0
        device, seq = attrs["edge.record_id"].string_value.rsplit(":", 1)
        assert device == res["device.id"].string_value
        assert int(seq) == attrs["edge.seq"].int_value
        check_contributions(attrs)
        if attrs["edge.scored"].bool_value:
            assert attrs["edge.score"].double_value >= 0
            assert attrs["edge.anomaly"].bool_value == (r.severity_number == 13)
        else:
            assert len(attrs["edge.reading"].array_value.values) == 9
            assert attrs["edge.unscored_reason"].string_value == "NOT_LOADED"
    # int64 fields travel as strings in the JSON mapping.
    raw = json.loads(text)["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    assert isinstance(raw["timeUnixNano"], str)


def test_flagged_readings_name_their_channels():
    """The dumped sample has anomalies; each one carries its top channels."""
    flagged = named = 0
    for path in BODIES:
        msg = json_format.Parse(open(path).read(), ExportLogsServiceRequest())
        for r in msg.resource_logs[0].scope_logs[0].log_records:
            attrs = {a.key: a.value for a in r.attributes}
            if "edge.anomaly" in attrs and attrs["edge.anomaly"].bool_value:
                flagged += 1
                named += CHANNELS in attrs
    assert flagged > 0 and named == flagged, f"{named} of {flagged} flagged records name channels"
