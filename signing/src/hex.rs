//! Lowercase hex for SHA-256 digests, the only encoding the statement uses for them.

/// Lowercase hex of `bytes`, as the signer writes digests and key hints.
pub(crate) fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// A 32-byte digest from 64 hex digits of either case; `None` for anything else.
pub(crate) fn decode32(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        *slot = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::{decode32, encode};

    #[test]
    fn round_trips_and_rejects_bad_input() {
        let digest: [u8; 32] = core::array::from_fn(|i| (i * 37) as u8);
        assert_eq!(decode32(&encode(&digest)), Some(digest));
        assert_eq!(decode32(&encode(&digest).to_uppercase()), Some(digest));
        assert_eq!(decode32(&"0".repeat(63)), None);
        assert_eq!(decode32(&format!("{}zz", "0".repeat(62))), None);
        assert_eq!(decode32(&format!("{}é", "0".repeat(62))), None);
    }
}
