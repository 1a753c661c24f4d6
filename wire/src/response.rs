//! Which answers acknowledge a batch.
//!
//! A 2xx status alone does not prove the batch reached an OTLP collector: a captive portal, a
//! proxy's login page or a misrouted static server answers `200 text/html` too, and a device
//! that deleted its batch on that would lose it. So a batch counts as delivered only when the
//! body is an `ExportLogsServiceResponse`:
//!
//! - an empty body (OTLP/HTTP allows it for full success);
//! - `application/json`: a JSON object whose only members are `partialSuccess` (or the proto
//!   field name `partial_success`), itself an object of `rejectedLogRecords` (int64 as a string
//!   or a number) and `errorMessage`;
//! - `application/x-protobuf`: the protobuf message (field 1, `ExportLogsPartialSuccess` with
//!   field 1 `rejected_log_records` and field 2 `error_message`; unknown fields skipped).
//!
//! Anything else is [`NotOtlp`]: the caller keeps the batch and tries again later.

use serde_json::{Map, Value};

/// What an acknowledging body says about records the collector did not keep.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartialSuccess {
    /// `rejectedLogRecords` (0 when absent).
    pub rejected: u64,
    /// `errorMessage`, when present and non-empty.
    pub message: Option<String>,
}

/// Why a 2xx body is not an OTLP logs response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotOtlp {
    /// The content type is neither JSON nor protobuf (e.g. `text/html` from a captive portal).
    ContentType(String),
    /// JSON, but not an `ExportLogsServiceResponse`.
    Json(String),
    /// Protobuf, but malformed.
    Protobuf(String),
}

impl std::fmt::Display for NotOtlp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotOtlp::ContentType(t) => write!(f, "not an OTLP response: content type {t:?}"),
            NotOtlp::Json(e) => write!(f, "not an OTLP JSON response: {e}"),
            NotOtlp::Protobuf(e) => write!(f, "not an OTLP protobuf response: {e}"),
        }
    }
}

impl std::error::Error for NotOtlp {}

/// Reads a 2xx body: the partial-success report if it is an `ExportLogsServiceResponse`.
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<PartialSuccess, NotOtlp> {
    if body.is_empty() {
        return Ok(PartialSuccess::default());
    }
    let media = content_type
        .and_then(|t| t.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match media.as_str() {
        "application/json" => parse_json(body),
        "application/x-protobuf" | "application/protobuf" => parse_protobuf(body),
        _ => Err(NotOtlp::ContentType(content_type.unwrap_or("(none)").to_owned())),
    }
}

fn parse_json(body: &[u8]) -> Result<PartialSuccess, NotOtlp> {
    let value: Value = serde_json::from_slice(body).map_err(|e| NotOtlp::Json(e.to_string()))?;
    let Value::Object(top) = value else {
        return Err(NotOtlp::Json("the body is not a JSON object".to_owned()));
    };
    let mut out = PartialSuccess::default();
    for (key, value) in top {
        match key.as_str() {
            "partialSuccess" | "partial_success" => out = partial_json(value)?,
            other => return Err(NotOtlp::Json(format!("unexpected member {other:?}"))),
        }
    }
    Ok(out)
}

fn partial_json(value: Value) -> Result<PartialSuccess, NotOtlp> {
    let fields: Map<String, Value> = match value {
        Value::Object(m) => m,
        Value::Null => return Ok(PartialSuccess::default()),
        _ => return Err(NotOtlp::Json("partialSuccess is not an object".to_owned())),
    };
    let mut out = PartialSuccess::default();
    for (key, value) in fields {
        match key.as_str() {
            "rejectedLogRecords" | "rejected_log_records" => {
                out.rejected = match &value {
                    Value::String(s) => s.trim().parse::<i64>().ok(),
                    Value::Number(n) => n.as_i64(),
                    Value::Null => Some(0),
                    _ => None,
                }
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| NotOtlp::Json(format!("bad rejectedLogRecords {value}")))?;
            }
            "errorMessage" | "error_message" => match value {
                Value::String(s) => out.message = Some(s).filter(|m| !m.is_empty()),
                Value::Null => {}
                other => return Err(NotOtlp::Json(format!("bad errorMessage {other}"))),
            },
            // Fields added to the message later are ignored, as protobuf readers do.
            _ => {}
        }
    }
    Ok(out)
}

/// A cursor over protobuf wire format: just enough for the two nested messages above.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, NotOtlp> {
        let mut value = 0u64;
        for i in 0..10 {
            let (&byte, rest) = self.buf.split_first().ok_or_else(|| pb("truncated varint"))?;
            self.buf = rest;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(pb("varint longer than 10 bytes"))
    }

    fn bytes(&mut self, n: u64) -> Result<&'a [u8], NotOtlp> {
        let n = usize::try_from(n).map_err(|_| pb("length overflow"))?;
        if n > self.buf.len() {
            return Err(pb("truncated field"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// The next field as its number and payload, or `None` at the end.
    fn field(&mut self) -> Result<Option<(u64, Field<'a>)>, NotOtlp> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let number = tag >> 3;
        if number == 0 {
            return Err(pb("field number 0"));
        }
        let field = match tag & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.bytes(8)?;
                Field::Other
            }
            2 => {
                let len = self.varint()?;
                Field::Bytes(self.bytes(len)?)
            }
            5 => {
                self.bytes(4)?;
                Field::Other
            }
            other => return Err(pb(&format!("unsupported wire type {other}"))),
        };
        Ok(Some((number, field)))
    }
}

/// One field's payload.
enum Field<'a> {
    /// A varint's value.
    Varint(u64),
    /// A length-delimited payload.
    Bytes(&'a [u8]),
    /// A fixed-width field; none of ours is one.
    Other,
}

fn pb(what: &str) -> NotOtlp {
    NotOtlp::Protobuf(what.to_owned())
}

fn parse_protobuf(body: &[u8]) -> Result<PartialSuccess, NotOtlp> {
    let mut top = Reader { buf: body };
    let mut out = PartialSuccess::default();
    while let Some((number, field)) = top.field()? {
        match (number, field) {
            (1, Field::Bytes(inner)) => out = partial_protobuf(inner)?,
            (1, _) => return Err(pb("partial_success is not a message")),
            _ => {}
        }
    }
    Ok(out)
}

fn partial_protobuf(buf: &[u8]) -> Result<PartialSuccess, NotOtlp> {
    let mut r = Reader { buf };
    let mut out = PartialSuccess::default();
    while let Some((number, field)) = r.field()? {
        match (number, field) {
            (1, Field::Varint(v)) => {
                // int64 on the wire: a negative count is nonsense.
                out.rejected =
                    u64::try_from(v as i64).map_err(|_| pb("negative rejected_log_records"))?;
            }
            (2, Field::Bytes(text)) => {
                let text =
                    std::str::from_utf8(text).map_err(|_| pb("error_message is not UTF-8"))?;
                out.message = Some(text.to_owned()).filter(|m| !m.is_empty());
            }
            (1 | 2, _) => return Err(pb("partial_success field of the wrong wire type")),
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const JSON: Option<&str> = Some("application/json; charset=utf-8");
    const PROTO: Option<&str> = Some("application/x-protobuf");

    #[test]
    fn acknowledging_bodies() {
        assert_eq!(parse(None, b""), Ok(PartialSuccess::default()));
        assert_eq!(parse(Some("text/html"), b""), Ok(PartialSuccess::default()));
        assert_eq!(parse(JSON, b"{}"), Ok(PartialSuccess::default()));
        assert_eq!(
            parse(JSON, br#"{"partialSuccess":{"rejectedLogRecords":"2","errorMessage":"bad"}}"#),
            Ok(PartialSuccess { rejected: 2, message: Some("bad".into()) })
        );
        assert_eq!(
            parse(JSON, br#"{"partial_success":{"rejected_log_records":3}}"#),
            Ok(PartialSuccess { rejected: 3, message: None })
        );
        assert_eq!(parse(JSON, br#"{"partialSuccess":{}}"#), Ok(PartialSuccess::default()));
        // protobuf: field 1 (len 7) { field 1 varint 5, field 2 "oops" }
        let body = [0x0a, 0x08, 0x08, 0x05, 0x12, 0x04, b'o', b'o', b'p', b's'];
        assert_eq!(
            parse(PROTO, &body),
            Ok(PartialSuccess { rejected: 5, message: Some("oops".into()) })
        );
    }

    #[test]
    fn a_captive_portal_page_is_not_an_acknowledgement() {
        let html = b"<!doctype html><title>Log in to the Wi-Fi</title>";
        assert!(matches!(
            parse(Some("text/html; charset=utf-8"), html),
            Err(NotOtlp::ContentType(_))
        ));
        assert!(matches!(parse(None, b"{}"), Err(NotOtlp::ContentType(_))));
        assert!(matches!(parse(JSON, html), Err(NotOtlp::Json(_))));
        assert!(matches!(parse(JSON, br#"{"status":"login required"}"#), Err(NotOtlp::Json(_))));
        assert!(matches!(parse(JSON, b"[]"), Err(NotOtlp::Json(_))));
        assert!(matches!(
            parse(JSON, br#"{"partialSuccess":{"rejectedLogRecords":"-1"}}"#),
            Err(NotOtlp::Json(_))
        ));
        assert!(matches!(parse(PROTO, &[0x0a, 0x05, 0x08]), Err(NotOtlp::Protobuf(_))));
        assert!(matches!(parse(PROTO, html), Err(NotOtlp::Protobuf(_))));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5_000))]
        #[test]
        fn never_panics_on_any_body(body in proptest::collection::vec(any::<u8>(), 0..64), ct in 0usize..4) {
            let types = [None, JSON, PROTO, Some("text/html")];
            let _ = parse(types[ct], &body);
        }
    }
}
