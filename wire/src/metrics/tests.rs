//! Encode → decode gives back the snapshots (property), and each malformed body is refused with
//! its own error (table).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::drift::DriftSnapshot;

fn resource() -> MetricsResource {
    MetricsResource { device_id: "dev-1".into(), service_version: "0.3.0".into() }
}

fn snapshot(version: &str) -> DriftSnapshot {
    DriftSnapshot {
        model_version: version.into(),
        start_time_unix_nano: 1_700_000_000_000_000_000,
        time_unix_nano: 1_700_000_060_000_000_000,
        count: 10,
        anomalies: 2,
        sum: 4.5,
        bounds: vec![0.1, 0.5, 0.9],
        bucket_counts: vec![1, 4, 3, 2],
        expected_shares: vec![0.25, 0.25, 0.25, 0.25],
        quantiles: vec![(0.5, 0.4), (0.99, 1.2)],
        psi: 0.07,
        expected_anomaly_rate: 0.05,
    }
}

fn body(snapshots: &[DriftSnapshot]) -> Value {
    serde_json::from_str(&encode(snapshots, &resource()).unwrap()).unwrap()
}

fn decode_value(v: &Value) -> Result<DecodedMetrics, MetricsError> {
    decode(v.to_string().as_bytes(), &Limits::default())
}

/// Valid snapshots: ascending finite bounds, counts that add up, shares that sum to 1.
fn arb_snapshot() -> impl Strategy<Value = DriftSnapshot> {
    (
        "[a-z0-9@.-]{1,20}",
        0u64..u64::MAX / 2,
        0u64..1_000_000_000_000,
        prop::collection::vec(0u64..1_000_000, 1..12),
        -1e6f64..1e6,
        0f64..10.0,
        0f64..=1.0,
        prop::collection::vec((0f64..=1.0, -1e3f64..1e3), 0..8),
        any::<u64>(),
    )
        .prop_map(|(version, start, span, buckets, first, psi, rate, quantiles, seed)| {
            let n = buckets.len();
            let bounds: Vec<f64> = (0..n - 1).map(|i| first + i as f64 * 0.37).collect();
            let count: u64 = buckets.iter().sum();
            let raw: Vec<f64> = (0..n).map(|i| ((seed >> (i % 60)) & 0xff) as f64 + 1.0).collect();
            let total: f64 = raw.iter().sum();
            let mut quantiles = quantiles;
            quantiles.sort_by(|a, b| a.0.total_cmp(&b.0));
            quantiles.dedup_by(|a, b| a.0 == b.0);
            DriftSnapshot {
                model_version: version,
                start_time_unix_nano: start,
                time_unix_nano: start + span,
                count,
                anomalies: count / 3,
                sum: first * count as f64,
                bounds,
                bucket_counts: buckets,
                expected_shares: raw.iter().map(|r| r / total).collect(),
                quantiles,
                psi,
                expected_anomaly_rate: rate,
            }
        })
}

proptest! {
    #[test]
    fn encode_then_decode_gives_the_snapshots_back(
        snapshots in prop::collection::btree_map("[a-z0-9@.-]{1,20}", arb_snapshot(), 0..5),
    ) {
        let snapshots: Vec<DriftSnapshot> = snapshots
            .into_iter()
            .map(|(version, s)| DriftSnapshot { model_version: version, ..s })
            .collect();
        for s in &snapshots {
            prop_assert_eq!(validate(s), Ok(()));
        }
        let text = encode(&snapshots, &resource()).unwrap();
        let decoded = decode(text.as_bytes(), &Limits::default()).unwrap();
        prop_assert_eq!(decoded.rejected_data_points, 0);
        prop_assert_eq!(decoded.devices.len(), 1);
        let device = &decoded.devices[0];
        prop_assert_eq!(device.device_id.as_str(), "dev-1");
        prop_assert_eq!(device.service_version.as_deref(), Some("0.3.0"));
        prop_assert_eq!(&device.snapshots, &snapshots);
    }

    #[test]
    fn decoding_arbitrary_json_never_panics(text in "\\PC{0,200}") {
        let _ = decode(text.as_bytes(), &Limits::default());
    }
}

#[test]
fn the_body_has_the_otlp_shape() {
    let v = body(&[snapshot("m@1")]);
    let rm = &v["resourceMetrics"][0];
    let keys: Vec<&str> = rm["resource"]["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["service.name", "service.version", "device.id"]);
    let metrics = rm["scopeMetrics"][0]["metrics"].as_array().unwrap();
    let names: Vec<&str> = metrics.iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, METRIC_NAMES);
    let h = &metrics[0]["histogram"];
    assert_eq!(h["aggregationTemporality"], 2);
    let p = &h["dataPoints"][0];
    assert_eq!(p["count"], "10");
    assert_eq!(p["bucketCounts"], json!(["1", "4", "3", "2"]));
    assert_eq!(p["explicitBounds"], json!([0.1, 0.5, 0.9]));
    assert_eq!(p["startTimeUnixNano"], "1700000000000000000");
    assert_eq!(
        p["attributes"][0],
        json!({"key": "edge.model_version", "value": {"stringValue": "m@1"}})
    );
    assert_eq!(metrics[1]["gauge"]["dataPoints"][0]["asDouble"], 0.07);
    let sum = &metrics[2]["sum"];
    assert_eq!(
        (sum["isMonotonic"].clone(), sum["dataPoints"][0]["asInt"].clone()),
        (json!(true), json!("2"))
    );
    assert_eq!(
        metrics[3]["summary"]["dataPoints"][0]["quantileValues"][1],
        json!({"quantile": 0.99, "value": 1.2})
    );
}

#[test]
fn a_snapshot_without_quantiles_sends_no_summary() {
    let s = DriftSnapshot { quantiles: Vec::new(), ..snapshot("m@1") };
    let v = body(std::slice::from_ref(&s));
    assert_eq!(v["resourceMetrics"][0]["scopeMetrics"][0]["metrics"].as_array().unwrap().len(), 3);
    assert_eq!(decode_value(&v).unwrap().devices[0].snapshots, [s]);
}

/// Edits the first histogram data point of a valid body.
fn with_point(edit: impl FnOnce(&mut Value)) -> Value {
    let mut v = body(&[snapshot("m@1")]);
    edit(
        &mut v["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["histogram"]["dataPoints"][0],
    );
    v
}

fn metrics_of(v: &mut Value) -> &mut Vec<Value> {
    v["resourceMetrics"][0]["scopeMetrics"][0]["metrics"].as_array_mut().unwrap()
}

#[test]
fn malformed_bodies_are_refused_with_their_reason() {
    let no_device = {
        let mut v = body(&[snapshot("m@1")]);
        v["resourceMetrics"][0]["resource"]["attributes"].as_array_mut().unwrap().pop();
        v
    };
    let gauge_as_sum = {
        let mut v = body(&[snapshot("m@1")]);
        let psi = &mut metrics_of(&mut v)[1];
        psi["sum"] = psi["gauge"].take();
        psi.as_object_mut().unwrap().remove("gauge");
        v
    };
    let delta = {
        let mut v = body(&[snapshot("m@1")]);
        metrics_of(&mut v)[0]["histogram"]["aggregationTemporality"] = json!(1);
        v
    };
    let twice = {
        let mut v = body(&[snapshot("m@1")]);
        let point = metrics_of(&mut v)[1]["gauge"]["dataPoints"][0].clone();
        metrics_of(&mut v)[1]["gauge"]["dataPoints"].as_array_mut().unwrap().push(point);
        v
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        ("not an object", json!([1]), "SHAPE"),
        ("no device id", no_device, "MISSING_DEVICE_ID"),
        (
            "no model version",
            with_point(|p| p["attributes"][0]["value"] = json!({"intValue": "1"})),
            "MISSING_MODEL_VERSION",
        ),
        (
            "one bucket short",
            with_point(|p| {
                p["bucketCounts"].as_array_mut().unwrap().pop();
            }),
            "BUCKET_MISMATCH",
        ),
        ("buckets do not add up", with_point(|p| p["count"] = json!("11")), "BUCKET_MISMATCH"),
        ("negative count", with_point(|p| p["bucketCounts"][0] = json!(-1)), "BAD_COUNT"),
        ("fractional count", with_point(|p| p["count"] = json!(2.5)), "BAD_COUNT"),
        ("NaN count", with_point(|p| p["count"] = json!("NaN")), "BAD_COUNT"),
        ("NaN sum", with_point(|p| p["sum"] = json!("NaN")), "NON_FINITE"),
        (
            "infinite bound",
            with_point(|p| p["explicitBounds"][2] = json!("Infinity")),
            "NON_FINITE",
        ),
        (
            "bounds descending",
            with_point(|p| p["explicitBounds"] = json!([0.9, 0.5, 0.1])),
            "OUT_OF_RANGE",
        ),
        (
            "times reversed",
            with_point(|p| p["startTimeUnixNano"] = json!("1800000000000000000")),
            "OUT_OF_RANGE",
        ),
        ("string as count", with_point(|p| p["count"] = json!(true)), "BAD_COUNT"),
        (
            "no shares",
            with_point(|p| {
                p["attributes"].as_array_mut().unwrap().pop();
            }),
            "SHAPE",
        ),
        ("a gauge sent as a sum", gauge_as_sum, "WRONG_TYPE"),
        ("delta temporality", delta, "TEMPORALITY"),
        ("two points for one version", twice, "DUPLICATE"),
    ];
    for (name, v, code) in cases {
        let err = decode_value(&v).expect_err(name);
        assert_eq!(err.code(), code, "{name}: {err}");
        assert!(!err.to_string().is_empty());
    }
    let err = decode(b"{not json", &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "JSON");
}

#[test]
fn over_a_limit_is_too_large() {
    let many: Vec<_> = (0..5).map(|i| snapshot(&format!("m@{i}"))).collect();
    let limits = Limits { max_data_points: 10, ..Limits::default() };
    let err = decode(encode(&many, &resource()).unwrap().as_bytes(), &limits).unwrap_err();
    assert!(err.is_too_large(), "{err}");
    let long = snapshot(&"v".repeat(300));
    let err = decode_value(&body(&[long])).unwrap_err();
    assert!(err.is_too_large(), "{err}");
}

#[test]
fn foreign_metrics_and_incomplete_versions_are_rejected_points_not_errors() {
    let mut v = body(&[snapshot("m@1"), snapshot("m@2")]);
    metrics_of(&mut v).push(
        json!({"name": "process.cpu", "gauge": {"dataPoints": [{"asDouble": 1}, {"asInt": "2"}]}}),
    );
    // m@2 loses its drift index.
    metrics_of(&mut v)[1]["gauge"]["dataPoints"].as_array_mut().unwrap().pop();
    let decoded = decode_value(&v).unwrap();
    assert_eq!(decoded.devices[0].snapshots, [snapshot("m@1")]);
    // Two foreign points, and m@2's histogram, anomalies and summary points.
    assert_eq!(decoded.rejected_data_points, 5);
    let message = decoded.error_message().unwrap();
    assert!(message.contains("process.cpu") && message.contains("m@2"), "{message}");
}

#[test]
fn the_temporality_may_be_named_and_integers_may_be_numbers() {
    let mut v = with_point(|p| {
        p["count"] = json!(10);
        p["bucketCounts"] = json!([1, 4, 3, 2]);
    });
    metrics_of(&mut v)[0]["histogram"]["aggregationTemporality"] = json!(CUMULATIVE_NAME);
    assert_eq!(decode_value(&v).unwrap().devices[0].snapshots, [snapshot("m@1")]);
}

#[test]
fn validate_refuses_what_decode_would() {
    let bad = [
        DriftSnapshot { psi: f64::INFINITY, ..snapshot("m") },
        DriftSnapshot { psi: -0.1, ..snapshot("m") },
        DriftSnapshot { anomalies: 11, ..snapshot("m") },
        DriftSnapshot { expected_shares: vec![0.5, 0.5, 0.5, 0.5], ..snapshot("m") },
        DriftSnapshot { expected_anomaly_rate: 1.5, ..snapshot("m") },
        DriftSnapshot { quantiles: vec![(0.9, 1.0), (0.5, 0.2)], ..snapshot("m") },
        DriftSnapshot { model_version: String::new(), ..snapshot("m") },
    ];
    for s in bad {
        let err = validate(&s).expect_err("invalid");
        let decoded = decode(
            encode(std::slice::from_ref(&s), &resource()).unwrap().as_bytes(),
            &Limits::default(),
        );
        assert_eq!(decoded.map_err(|e| e.code()).err(), Some(err.code()), "{s:?}");
    }
    assert_eq!(validate(&snapshot("m")), Ok(()));
}
