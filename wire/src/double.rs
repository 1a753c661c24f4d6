//! Floats that JSON cannot carry.
//!
//! JSON has no NaN or infinities, and serde_json writes them as `null`, which then cannot be read
//! back as a number. The protobuf JSON mapping that OTLP uses writes them as the strings
//! `"NaN"`, `"Infinity"` and `"-Infinity"`; this module applies that one encoding everywhere a
//! float is serialized — the OTLP body and the device's own store — so a record with a broken
//! sensor value round-trips instead of jamming the queue.
//!
//! Finite `f32`s are written as the shortest decimal that parses back to the same `f32`.
//! Readers accept a number, one of the three strings, a decimal string (the mapping allows it),
//! and `null` as NaN (what older stores wrote for a non-finite value).

use serde::de::{self, Deserializer, Visitor};
use serde::Serializer;
use serde_json::Value;

/// The wire spelling of NaN.
pub const NAN: &str = "NaN";
/// The wire spelling of +∞.
pub const INFINITY: &str = "Infinity";
/// The wire spelling of −∞.
pub const NEG_INFINITY: &str = "-Infinity";

/// The spelling of a non-finite value, or `None` for a finite one.
pub fn non_finite_str(v: f64) -> Option<&'static str> {
    if v.is_nan() {
        Some(NAN)
    } else if v == f64::INFINITY {
        Some(INFINITY)
    } else if v == f64::NEG_INFINITY {
        Some(NEG_INFINITY)
    } else {
        None
    }
}

/// Parses one of the three spellings, or a decimal string.
pub fn parse_str(s: &str) -> Option<f64> {
    match s {
        NAN => Some(f64::NAN),
        INFINITY => Some(f64::INFINITY),
        NEG_INFINITY => Some(f64::NEG_INFINITY),
        other => {
            let trimmed = other.trim();
            // Rust's parser also takes "inf"/"nan" spellings the mapping does not allow.
            let numeric = !trimmed.is_empty()
                && trimmed.bytes().all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
            if numeric {
                trimmed.parse().ok()
            } else {
                None
            }
        }
    }
}

/// `v` as a JSON value: a number when finite, else its spelling.
pub fn to_json(v: f64) -> Value {
    match non_finite_str(v) {
        Some(s) => Value::String(s.to_owned()),
        None => serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number),
    }
}

/// A JSON value as a double: a number, a spelling, or a decimal string; `None` otherwise.
pub fn from_json(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => parse_str(s),
        _ => None,
    }
}

fn serialize_one<S: Serializer>(v: f32, s: S) -> Result<S::Ok, S::Error> {
    match non_finite_str(f64::from(v)) {
        Some(text) => s.serialize_str(text),
        None => s.serialize_f32(v),
    }
}

/// Reads one float in any accepted form.
struct FloatVisitor;

impl<'de> Visitor<'de> for FloatVisitor {
    type Value = f32;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a number, \"NaN\", \"Infinity\", \"-Infinity\" or null")
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f32, E> {
        Ok(v as f32)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f32, E> {
        Ok(v as f32)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f32, E> {
        Ok(v as f32)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<f32, E> {
        parse_str(v)
            .map(|x| x as f32)
            .ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }
    fn visit_unit<E: de::Error>(self) -> Result<f32, E> {
        Ok(f32::NAN)
    }
    fn visit_none<E: de::Error>(self) -> Result<f32, E> {
        Ok(f32::NAN)
    }
}

/// `#[serde(with = "edge_wire::double::f32_serde")]` for an `f32` field.
pub mod f32_serde {
    use super::*;

    /// Writes `v` as a number or its spelling.
    pub fn serialize<S: Serializer>(v: &f32, s: S) -> Result<S::Ok, S::Error> {
        serialize_one(*v, s)
    }

    /// Reads any accepted form.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
        d.deserialize_any(FloatVisitor)
    }
}

/// `#[serde(with = "edge_wire::double::vec_f32_serde")]` for a `Vec<f32>` field.
pub mod vec_f32_serde {
    use serde::ser::SerializeSeq;

    use super::*;

    struct One(f32);

    impl serde::Serialize for One {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            serialize_one(self.0, s)
        }
    }

    impl<'de> serde::Deserialize<'de> for One {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(FloatVisitor).map(One)
        }
    }

    /// Writes each element as a number or its spelling.
    pub fn serialize<S: Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for &x in v {
            seq.serialize_element(&One(x))?;
        }
        seq.end()
    }

    /// Reads an array of any accepted forms.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        let values: Vec<One> = serde::Deserialize::deserialize(d)?;
        Ok(values.into_iter().map(|One(x)| x).collect())
    }
}

/// `#[serde(default, skip_serializing_if = "Option::is_none", with =
/// "edge_wire::double::opt_vec_f32_serde")]` for an `Option<Vec<f32>>` field.
pub mod opt_vec_f32_serde {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Values(#[serde(with = "super::vec_f32_serde")] Vec<f32>);

    /// Writes the values as [`super::vec_f32_serde`] does, or `null`.
    pub fn serialize<S: Serializer>(v: &Option<Vec<f32>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(values) => super::vec_f32_serde::serialize(values, s),
            None => s.serialize_none(),
        }
    }

    /// Reads an array of any accepted forms, or `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<f32>>, D::Error> {
        let values: Option<Values> = serde::Deserialize::deserialize(d)?;
        Ok(values.map(|Values(v)| v))
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    struct Holder {
        #[serde(with = "f32_serde")]
        one: f32,
        #[serde(with = "vec_f32_serde")]
        many: Vec<f32>,
    }

    fn same(a: f32, b: f32) -> bool {
        (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
    }

    fn round_trip(one: f32, many: Vec<f32>) -> Holder {
        let text = serde_json::to_string(&Holder { one, many }).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn non_finite_values_use_the_otlp_spellings() {
        let text = serde_json::to_string(&Holder {
            one: f32::NAN,
            many: vec![f32::INFINITY, f32::NEG_INFINITY, 1.5],
        })
        .unwrap();
        assert_eq!(text, r#"{"one":"NaN","many":["Infinity","-Infinity",1.5]}"#);
    }

    #[test]
    fn null_from_an_older_store_reads_as_nan() {
        let h: Holder = serde_json::from_str(r#"{"one":null,"many":[null,2]}"#).unwrap();
        assert!(h.one.is_nan() && h.many[0].is_nan());
        assert_eq!(h.many[1], 2.0);
    }

    #[test]
    fn edge_values_round_trip_exactly() {
        let edges = [
            0.0,
            -0.0,
            f32::MIN_POSITIVE,
            f32::from_bits(1),
            -f32::from_bits(1),
            f32::MAX,
            f32::MIN,
            f32::EPSILON,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ];
        for &x in &edges {
            let h = round_trip(x, edges.to_vec());
            assert!(same(h.one, x), "{x:e}");
            assert!(h.many.iter().zip(&edges).all(|(&a, &b)| same(a, b)));
        }
    }

    #[test]
    fn json_helpers_agree_with_the_serde_modules() {
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.25] {
            let back = from_json(&to_json(v)).unwrap();
            assert!((v.is_nan() && back.is_nan()) || v == back);
        }
        assert_eq!(from_json(&Value::String("2.5".into())), Some(2.5));
        assert_eq!(from_json(&Value::String("inf".into())), None);
        assert_eq!(from_json(&Value::Bool(true)), None);
        assert_eq!(from_json(&Value::Null), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        #[test]
        fn any_f32_bit_pattern_round_trips(bits in any::<u32>(), more in proptest::collection::vec(any::<u32>(), 0..8)) {
            let one = f32::from_bits(bits);
            let many: Vec<f32> = more.iter().copied().map(f32::from_bits).collect();
            let h = round_trip(one, many.clone());
            prop_assert!(same(h.one, one), "{:#x} came back as {:#x}", bits, h.one.to_bits());
            for (a, b) in h.many.iter().zip(&many) {
                prop_assert!(same(*a, *b));
            }
        }
    }
}
