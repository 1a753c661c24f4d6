//! The OTLP/HTTP JSON answer to an accepted request: `{}` when every record was stored or was
//! already held, `{"partialSuccess": {"rejectedLogRecords": "N", "errorMessage": "…"}}` when
//! some were refused (a non-finite score, unsound contributions, or a record id already held
//! with other content).

/// A record refused on its own (not stored; the rest of the batch is).
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// The refused record's `edge.record_id`.
    pub record_id: String,
    /// Why it was refused.
    pub reason: String,
}

/// How many refused records the `errorMessage` names before summarising the rest.
pub const MAX_NAMED: usize = 10;

/// Longest record id quoted in the `errorMessage` (longer ones are cut, marked `…`).
pub const MAX_QUOTED_ID: usize = 100;

/// The response body for a request whose refused records are `rejected`.
pub fn body(rejected: &[Rejected]) -> String {
    if rejected.is_empty() {
        return "{}".to_owned();
    }
    let mut message = rejected
        .iter()
        .take(MAX_NAMED)
        .map(|r| format!("{}: {}", quote_id(&r.record_id), r.reason))
        .collect::<Vec<_>>()
        .join("; ");
    if rejected.len() > MAX_NAMED {
        message.push_str(&format!("; and {} more", rejected.len() - MAX_NAMED));
    }
    serde_json::json!({
        "partialSuccess": {
            "rejectedLogRecords": rejected.len().to_string(),
            "errorMessage": message,
        }
    })
    .to_string()
}

fn quote_id(id: &str) -> String {
    if id.len() <= MAX_QUOTED_ID {
        return id.to_owned();
    }
    let mut end = MAX_QUOTED_ID;
    while !id.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &id[..end])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn quoted_ids_are_cut_on_a_character_boundary() {
        let long = "é".repeat(80); // 160 bytes
        let body: serde_json::Value =
            serde_json::from_str(&body(&[Rejected { record_id: long, reason: "r".into() }]))
                .unwrap();
        let message = body["partialSuccess"]["errorMessage"].as_str().unwrap();
        assert_eq!(message, format!("{}…: r", "é".repeat(50)));
        assert_eq!(super::body(&[]), "{}");
    }
}
