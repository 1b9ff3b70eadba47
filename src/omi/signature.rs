//! Omi's webhook signature: `X-Omi-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]`, where
//! `v1` is hex HMAC-SHA256 keyed by the whole `whsec_…` secret over `"{t}.{uid}." + body`.
//! Several `v1` values appear during a key rotation; any match is enough. Verified on the raw
//! bytes before anything is parsed, in constant time (`Mac::verify_slice`).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a signature's timestamp may be from our clock.
pub const TOLERANCE_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    pub timestamp: i64,
    pub signatures: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    Malformed(&'static str),
    Stale { skew_secs: i64 },
    Mismatch,
}

impl std::fmt::Display for SignatureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignatureError::Malformed(why) => write!(f, "X-Omi-Signature is malformed: {why}"),
            SignatureError::Stale { skew_secs } => {
                write!(f, "X-Omi-Signature timestamp is {skew_secs} s from now; at most {TOLERANCE_SECS} s is accepted")
            }
            SignatureError::Mismatch => f.write_str("X-Omi-Signature does not match the body"),
        }
    }
}

/// Parses the header. Unknown schemes (`v0=`, future `v2=`) are ignored, as Stripe-style
/// signature headers require; a `v1` that is not hex is an error.
pub fn parse_header(header: &str) -> Result<SignatureHeader, SignatureError> {
    if header.len() > 4096 {
        return Err(SignatureError::Malformed("header is too long"));
    }
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (key, value) = part.trim().split_once('=').ok_or(SignatureError::Malformed("expected key=value pairs"))?;
        match key.trim() {
            "t" => {
                let t: i64 = value.trim().parse().map_err(|_| SignatureError::Malformed("t is not a whole number"))?;
                timestamp = Some(t);
            }
            "v1" => {
                let sig = hex::decode(value.trim()).map_err(|_| SignatureError::Malformed("v1 is not hex"))?;
                if sig.len() != 32 {
                    return Err(SignatureError::Malformed("v1 must be 32 bytes of hex"));
                }
                signatures.push(sig);
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed("no t= timestamp"))?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed("no v1= signature"));
    }
    Ok(SignatureHeader { timestamp, signatures })
}

fn mac(secret: &str, timestamp: i64, uid: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(uid.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The hex signature Omi would send (used by tests and tools that sign requests).
pub fn sign(secret: &str, timestamp: i64, uid: &str, body: &[u8]) -> String {
    hex::encode(mac(secret, timestamp, uid, body).finalize().into_bytes())
}

/// Checks `header` against the body; `now_secs` is our clock.
pub fn verify(secret: &str, header: &str, uid: &str, body: &[u8], now_secs: i64) -> Result<(), SignatureError> {
    let parsed = parse_header(header)?;
    // `abs_diff`: a `t=` near i64::MIN (or our clock at an extreme) must be stale, not an
    // overflow panic.
    let skew = now_secs.abs_diff(parsed.timestamp);
    if skew > TOLERANCE_SECS.unsigned_abs() {
        return Err(SignatureError::Stale { skew_secs: i64::try_from(skew).unwrap_or(i64::MAX) });
    }
    let expected = mac(secret, parsed.timestamp, uid, body);
    if parsed.signatures.iter().any(|sig| expected.clone().verify_slice(sig).is_ok()) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const NOW: i64 = 1_750_000_000;

    #[test]
    fn a_good_signature_verifies() {
        let body = br#"{"id":"m1"}"#;
        let sig = sign(SECRET, NOW, "u1", body);
        assert_eq!(verify(SECRET, &format!("t={NOW},v1={sig}"), "u1", body, NOW + 10), Ok(()));
    }

    #[test]
    fn any_of_several_v1_values_is_enough() {
        let body = b"{}";
        let good = sign(SECRET, NOW, "u1", body);
        let old = sign("whsec_old", NOW, "u1", body);
        assert_eq!(verify(SECRET, &format!("t={NOW},v1={old},v1={good}"), "u1", body, NOW), Ok(()));
        assert_eq!(verify(SECRET, &format!("t={NOW}, v0=abc, v1={good}"), "u1", body, NOW), Ok(()));
    }

    #[test]
    fn tampering_and_staleness_are_rejected() {
        let body = b"{}";
        let sig = sign(SECRET, NOW, "u1", body);
        let header = format!("t={NOW},v1={sig}");
        assert_eq!(verify(SECRET, &header, "u1", b"{ }", NOW), Err(SignatureError::Mismatch));
        assert_eq!(verify(SECRET, &header, "u2", body, NOW), Err(SignatureError::Mismatch));
        assert_eq!(verify("whsec_other", &header, "u1", body, NOW), Err(SignatureError::Mismatch));
        assert_eq!(verify(SECRET, &header, "u1", body, NOW + 301), Err(SignatureError::Stale { skew_secs: 301 }));
        assert_eq!(verify(SECRET, &header, "u1", body, NOW - 301), Err(SignatureError::Stale { skew_secs: 301 }));
    }

    #[test]
    fn timestamps_at_the_extremes_are_stale_not_a_panic() {
        let body = b"{}";
        for t in [i64::MIN, i64::MIN + 1, i64::MAX, -1] {
            let header = format!("t={t},v1={}", sign(SECRET, 0, "u1", body));
            assert!(matches!(verify(SECRET, &header, "u1", body, NOW), Err(SignatureError::Stale { .. })), "{t}");
            assert!(verify(SECRET, &header, "u1", body, i64::MIN).is_err());
            assert!(verify(SECRET, &header, "u1", body, i64::MAX).is_err());
        }
    }

    #[test]
    fn malformed_headers_are_rejected() {
        for h in ["", "t=1", "v1=00", "t=x,v1=00", &format!("t=1,v1={}", "zz".repeat(32)), "t=1,v1=abcd", "garbage"] {
            assert!(matches!(parse_header(h), Err(SignatureError::Malformed(_))), "{h:?}");
        }
    }
}
