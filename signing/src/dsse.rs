//! DSSE's pre-authentication encoding: the exact bytes an envelope's signature covers.
//!
//! Signing the encoding rather than the payload binds the payload type into the signature, so a
//! payload cannot be replayed under another type. See
//! <https://github.com/secure-systems-lab/dsse/blob/v1.0.0/protocol.md>.

/// `"DSSEv1" SP len(type) SP type SP len(payload) SP payload`, lengths in ASCII decimal bytes.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let header = format!("DSSEv1 {} {} {} ", payload_type.len(), payload_type, payload.len());
    let mut out = Vec::with_capacity(header.len() + payload.len());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::pae;

    #[test]
    fn matches_the_spec_examples() {
        let cases: &[(&str, &[u8], &[u8])] = &[
            // The DSSE protocol's own test vector.
            (
                "http://example.com/HelloWorld",
                b"hello world",
                b"DSSEv1 29 http://example.com/HelloWorld 11 hello world",
            ),
            ("", b"", b"DSSEv1 0  0 "),
            ("application/vnd.in-toto+json", b"{}", b"DSSEv1 28 application/vnd.in-toto+json 2 {}"),
        ];
        for (ty, payload, want) in cases {
            assert_eq!(pae(ty, payload), *want, "type {ty:?}");
        }
    }

    #[test]
    fn lengths_count_bytes_not_chars() {
        let payload = "é".as_bytes();
        assert_eq!(pae("t", payload), b"DSSEv1 1 t 2 \xc3\xa9".to_vec());
    }
}
