//! What an MQTT message carries: one reading, as JSON or as a CSV line, parsed into values and
//! an optional reading id; anything else is a typed [`PayloadError`] the gateway counts.
//!
//! JSON: `{"values": [..], "id": "r-17"}` (`id` optional, a string or a number), or a bare
//! array `[..]`. CSV: the values separated by commas (a last column that is not a number is
//! ignored, as the replay's label column is). `null`, `NaN` and `Infinity` are accepted and kept
//! as non-finite values: the core records such a reading raw with the reason `NON_FINITE`.

use serde::Deserialize;

/// Largest payload taken (bytes); a reading of a few hundred values fits many times over.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;

/// One reading from a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The values, in the model's feature order.
    pub values: Vec<f32>,
    /// The sender's id for this reading, when it gave one: a reading delivered twice (MQTT QoS 1
    /// redelivers after a lost acknowledgement) is recorded once.
    pub id: Option<String>,
}

/// Why a payload is not a reading.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Over [`MAX_PAYLOAD_BYTES`].
    #[error("payload of {0} bytes is over the limit")]
    TooLarge(usize),
    /// Not UTF-8 text.
    #[error("payload is not UTF-8 text")]
    NotText,
    /// JSON that is not a reading, or a CSV field that is not a number.
    #[error("malformed reading: {0}")]
    Malformed(String),
    /// No values at all.
    #[error("the reading has no values")]
    Empty,
}

impl PayloadError {
    /// The reason the gateway counts the message under.
    pub fn code(&self) -> &'static str {
        match self {
            PayloadError::TooLarge(_) => "PAYLOAD_TOO_LARGE",
            PayloadError::NotText | PayloadError::Malformed(_) | PayloadError::Empty => {
                "MALFORMED_PAYLOAD"
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Json {
    Object { values: Vec<Option<JsonValue>>, id: Option<JsonId> },
    Array(Vec<Option<JsonValue>>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum JsonValue {
    Number(f64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum JsonId {
    Text(String),
    Number(u64),
}

/// Parses one message payload.
pub fn parse(payload: &[u8]) -> Result<Reading, PayloadError> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(PayloadError::TooLarge(payload.len()));
    }
    let text = std::str::from_utf8(payload).map_err(|_| PayloadError::NotText)?.trim();
    if text.is_empty() {
        return Err(PayloadError::Empty);
    }
    let reading = if text.starts_with('{') || text.starts_with('[') {
        parse_json(text)?
    } else {
        Reading { values: parse_csv(text)?, id: None }
    };
    if reading.values.is_empty() {
        return Err(PayloadError::Empty);
    }
    Ok(reading)
}

fn parse_json(text: &str) -> Result<Reading, PayloadError> {
    let json: Json =
        serde_json::from_str(text).map_err(|e| PayloadError::Malformed(e.to_string()))?;
    let (values, id) = match json {
        Json::Object { values, id } => (values, id),
        Json::Array(values) => (values, None),
    };
    let values = values
        .into_iter()
        .map(|v| match v {
            None => Ok(f32::NAN),
            Some(JsonValue::Number(n)) => Ok(n as f32),
            Some(JsonValue::Text(t)) => number(&t),
        })
        .collect::<Result<_, _>>()?;
    let id = id.map(|id| match id {
        JsonId::Text(t) => t,
        JsonId::Number(n) => n.to_string(),
    });
    Ok(Reading { values, id })
}

/// The values of one CSV line; a last field that is not a number (a label) is dropped.
pub fn parse_csv(line: &str) -> Result<Vec<f32>, PayloadError> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    let mut values = Vec::with_capacity(fields.len());
    for (i, field) in fields.iter().enumerate() {
        match number(field) {
            Ok(v) => values.push(v),
            Err(_) if i + 1 == fields.len() && i > 0 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(values)
}

fn number(field: &str) -> Result<f32, PayloadError> {
    match field {
        "" | "null" | "NaN" | "nan" => Ok(f32::NAN),
        "Infinity" | "inf" => Ok(f32::INFINITY),
        "-Infinity" | "-inf" => Ok(f32::NEG_INFINITY),
        _ => field
            .parse::<f32>()
            .map_err(|_| PayloadError::Malformed(format!("{field:?} is not a number"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_objects_arrays_and_csv_lines() {
        let r = parse(br#"{"values": [1, 2.5, null, "NaN"], "id": "r-1"}"#).unwrap_or_else(|e| {
            panic!("{e}");
        });
        assert_eq!(r.values[..2], [1.0, 2.5]);
        assert!(r.values[2].is_nan() && r.values[3].is_nan());
        assert_eq!(r.id.as_deref(), Some("r-1"));
        assert_eq!(parse(br#"{"values":[3],"id":17}"#).map(|r| r.id), Ok(Some("17".into())));
        assert_eq!(parse(b"[1,2,3]").map(|r| r.values), Ok(vec![1.0, 2.0, 3.0]));
        assert_eq!(parse(b"1, 2,3,Rad Flow\n").map(|r| r.values), Ok(vec![1.0, 2.0, 3.0]));
        assert_eq!(parse(b"4,-Infinity").map(|r| r.values[1]), Ok(f32::NEG_INFINITY));
    }

    #[test]
    fn malformed_payloads_are_typed() {
        for bad in [&b"{\"values\": 3}"[..], b"{nope", b"1,x,3", b"[\"a\"]", b"\xff\xfe"] {
            assert_eq!(parse(bad).map_err(|e| e.code()), Err("MALFORMED_PAYLOAD"), "{bad:?}");
        }
        assert_eq!(parse(b"").map_err(|e| e.code()), Err("MALFORMED_PAYLOAD"));
        assert_eq!(parse(b"[]"), Err(PayloadError::Empty));
        let big = vec![b'1'; MAX_PAYLOAD_BYTES + 1];
        assert_eq!(parse(&big).map_err(|e| e.code()), Err("PAYLOAD_TOO_LARGE"));
    }
}
