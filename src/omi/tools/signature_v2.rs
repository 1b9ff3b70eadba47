//! Omi's `v2` request signature, on chat-tool calls:
//! `X-Omi-Signature: t=<unix seconds>,v2=<hex>[,v2=<hex>…]` with `X-Omi-Event: chat_tool` and
//! `X-Omi-Delivery: <id>`.
//!
//! `v2` is hex HMAC-SHA256, keyed by the secret's UTF-8 bytes, over seven lines each ending in
//! `\n` — `v2`, `t`, the delivery id, the event, the method in upper case, the canonical path,
//! the canonical query — then the raw body bytes. A tool URL's query can carry the arguments
//! (GET tools) and one secret covers every tool URL, so the whole request is bound, not just
//! the body. The literal `v2` line keeps the schemes apart: a `v1` string starts with digits,
//! so a `v1` signature never verifies here, and a header with only `v1=` values is rejected.
//!
//! Canonical forms, so that `%7E` and `~`, or `+` and `%20` in a query, sign the same:
//! - path: each `/` segment percent-decoded to bytes, then re-encoded; empty is `/`;
//! - query: split on `&`, each `name=value` decoded as a form (`+` is a space, invalid UTF-8
//!   becomes U+FFFD), a piece without `=` is a name with an empty value, empty pieces dropped;
//!   then names and values encoded, pairs stably sorted by encoded name (repeated names keep
//!   their order), joined `name=value` with `&`;
//! - encoding: UTF-8, every byte outside `A-Z a-z 0-9 - . _ ~` as `%XX`, upper-case hex.
//!
//! Timestamps more than 300 s from our clock either way are refused (a captured call cannot
//! be replayed later); the check cannot overflow on hostile values. Several `v2=` values
//! appear during a secret rotation: any match is enough. Compared in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

pub use crate::omi::signature::{SignatureError, TOLERANCE_SECS};

/// The `X-Omi-Event` value of a chat-tool call.
pub const CHAT_TOOL_EVENT: &str = "chat_tool";

/// What a `v2` signature covers, as the request arrived.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// `X-Omi-Delivery`.
    pub delivery: &'a str,
    /// `X-Omi-Event`.
    pub event: &'a str,
    /// Any case; signed in upper case.
    pub method: &'a str,
    /// The path Omi called, raw or decoded (the same unless it holds an encoded `/` or `%`).
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: &'a str,
    /// The raw body bytes (empty for GET).
    pub body: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Header {
    pub timestamp: i64,
    /// The `v2=` values that are 32 bytes of hex; other values can never match.
    pub signatures: Vec<[u8; 32]>,
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn encode_into(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if is_unreserved(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        }
    }
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// `%XX` to the byte; a `%` not followed by two hex digits stays as it is.
fn percent_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' && i + 2 < s.len() {
            if let (Some(h), Some(l)) = (hex_value(s[i + 1]), hex_value(s[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// A form-encoded name or value: `+` is a space, then percent-decoded, then UTF-8 with
/// invalid sequences replaced (what a query string's reader hands an application).
fn decode_form(s: &str) -> String {
    let spaced: Vec<u8> = s.bytes().map(|b| if b == b'+' { b' ' } else { b }).collect();
    String::from_utf8_lossy(&percent_decode(&spaced)).into_owned()
}

/// The decoded `(name, value)` pairs of a raw query string, in order.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            (decode_form(name), decode_form(value))
        })
        .collect()
}

pub fn canonical_path(path: &str) -> String {
    if path.is_empty() {
        return "/".to_string();
    }
    let mut out = String::with_capacity(path.len() + 8);
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        encode_into(&percent_decode(segment.as_bytes()), &mut out);
    }
    out
}

pub fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query_pairs(query)
        .into_iter()
        .map(|(name, value)| {
            let (mut n, mut v) = (String::new(), String::new());
            encode_into(name.as_bytes(), &mut n);
            encode_into(value.as_bytes(), &mut v);
            (n, v)
        })
        .collect();
    // `sort_by` is stable: repeated names keep their order, so a reordered list argument is a
    // different request.
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::with_capacity(query.len() + 8);
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// A header line must not break the framing of the signed string.
fn header_part(value: &str) -> Result<&str, SignatureError> {
    if value.is_empty() || !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(SignatureError::Malformed("X-Omi-Delivery, X-Omi-Event and the method must be non-empty printable ASCII"));
    }
    Ok(value)
}

/// The exact bytes a `v2` signature covers.
pub fn string_to_sign(timestamp: i64, req: &SignedRequest) -> Result<Vec<u8>, SignatureError> {
    let lines = [
        "v2".to_string(),
        timestamp.to_string(),
        header_part(req.delivery)?.to_string(),
        header_part(req.event)?.to_string(),
        header_part(req.method)?.to_ascii_uppercase(),
        canonical_path(req.path),
        canonical_query(req.query),
    ];
    let mut out = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum::<usize>() + req.body.len());
    for line in &lines {
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(req.body);
    Ok(out)
}

fn mac(secret: &str, timestamp: i64, req: &SignedRequest) -> Result<[u8; 32], SignatureError> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(&string_to_sign(timestamp, req)?);
    Ok(mac.finalize().into_bytes().into())
}

/// The hex `v2` signature Omi would send (for tests and tools that call r2d1 like Omi).
pub fn sign(secret: &str, timestamp: i64, req: &SignedRequest) -> Result<String, SignatureError> {
    Ok(hex::encode(mac(secret, timestamp, req)?))
}

/// Reads `t=` and the `v2=` values; `v1=` and unknown schemes are ignored, as are pieces
/// without `=`.
pub fn parse_header(header: &str) -> Result<V2Header, SignatureError> {
    if header.len() > 4096 {
        return Err(SignatureError::Malformed("header is too long"));
    }
    let mut timestamp = None;
    let mut signatures = Vec::new();
    let mut any_v2 = false;
    for part in header.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else { continue };
        match key.trim() {
            "t" => timestamp = Some(value.trim().parse::<i64>().map_err(|_| SignatureError::Malformed("t is not a whole number"))?),
            "v2" if !value.trim().is_empty() => {
                any_v2 = true;
                let mut sig = [0u8; 32];
                if hex::decode_to_slice(value.trim(), &mut sig).is_ok() {
                    signatures.push(sig);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed("no t= timestamp"))?;
    if !any_v2 {
        return Err(SignatureError::Malformed("no v2= signature"));
    }
    Ok(V2Header { timestamp, signatures })
}

/// Checks a chat-tool call; `now_secs` is our clock.
pub fn verify(secret: &str, header: &str, req: &SignedRequest, now_secs: i64) -> Result<(), SignatureError> {
    let parsed = parse_header(header)?;
    // `abs_diff` is exact for any pair of i64: no overflow on `t=-9223372036854775808`.
    let skew = now_secs.abs_diff(parsed.timestamp);
    if skew > TOLERANCE_SECS as u64 {
        return Err(SignatureError::Stale { skew_secs: i64::try_from(skew).unwrap_or(i64::MAX) });
    }
    let expected = mac(secret, parsed.timestamp, req)?;
    // Every candidate is compared, matched or not: the time taken says nothing about which.
    let matched = parsed.signatures.iter().fold(Choice::from(0), |acc, sig| acc | sig.ct_eq(&expected));
    if bool::from(matched) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_r2d1_v2_vector";
    const T: i64 = 1_750_000_000;

    /// A GET tool call whose query needs every canonical rule: `+` as a space, `%7e` → `~`,
    /// UTF-8 (`é`), a name without `=`, a repeated name whose order must be kept, an empty piece.
    const GET_QUERY: &str = "uid=mentor%2D1&period=this+month&z=%7e&a=2&&a=1&app_id=app%20one&flag&name=Jos%C3%A9";
    /// The same rules applied by hand: decoded pairs (uid=mentor-1, period="this month", z=~,
    /// a=2, a=1, app_id="app one", flag="", name=José), encoded, sorted by encoded name with
    /// the two `a` in their original order.
    const GET_CANONICAL_QUERY: &str = "a=2&a=1&app_id=app%20one&flag=&name=Jos%C3%A9&period=this%20month&uid=mentor-1&z=~";

    fn get_request() -> SignedRequest<'static> {
        SignedRequest {
            delivery: "dlv_0001",
            event: CHAT_TOOL_EVENT,
            method: "get",
            path: "/api/omi/tools/%68ours",
            query: GET_QUERY,
            body: b"",
        }
    }

    /// The vector, computed outside this crate from the written rule (the seven lines spelled
    /// out by hand, then the body):
    /// ```text
    /// python3 -c 'import hmac,hashlib;print(hmac.new(b"whsec_r2d1_v2_vector",
    ///   b"v2\n1750000000\ndlv_0001\nchat_tool\nGET\n/api/omi/tools/hours\n"
    ///   b"a=2&a=1&app_id=app%20one&flag=&name=Jos%C3%A9&period=this%20month&uid=mentor-1&z=~\n",
    ///   hashlib.sha256).hexdigest())'
    /// ```
    const GET_VECTOR: &str = "bcb5f6d59e6e8f265f7882cedf2634ca5a733786621b7f7f49f3262e37636529";

    /// A POST call: body bytes follow the seven lines unchanged.
    /// ```text
    /// python3 -c 'import hmac,hashlib;print(hmac.new(b"whsec_r2d1_v2_vector",
    ///   b"v2\n1750000000\ndlv_0002\nchat_tool\nPOST\n/api/omi/tools/search\n\n"
    ///   b"{\"uid\":\"mentor-1\",\"query\":\"Ana\"}", hashlib.sha256).hexdigest())'
    /// ```
    const POST_VECTOR: &str = "701b7067fec69e862d5f2911b7336d2e1d20ca6b5178acebda3f42ab5cfc18a7";
    const POST_BODY: &[u8] = br#"{"uid":"mentor-1","query":"Ana"}"#;

    fn post_request() -> SignedRequest<'static> {
        SignedRequest {
            delivery: "dlv_0002",
            event: CHAT_TOOL_EVENT,
            method: "POST",
            path: "/api/omi/tools/search",
            query: "",
            body: POST_BODY,
        }
    }

    #[test]
    fn canonical_forms_follow_the_written_rule() {
        assert_eq!(canonical_query(GET_QUERY), GET_CANONICAL_QUERY);
        assert_eq!(canonical_path("/api/omi/tools/%68ours"), "/api/omi/tools/hours");
        assert_eq!(canonical_path("/tools/%7euser/a b/%2F/%zz"), "/tools/~user/a%20b/%2F/%25zz");
        assert_eq!(canonical_path(""), "/");
        assert_eq!(canonical_query(""), "");
        assert_eq!(canonical_query("q=a+b%2Bc"), "q=a%20b%2Bc");
        // Invalid UTF-8 in a query value reads as U+FFFD, as a form reader would.
        assert_eq!(canonical_query("q=%FF"), "q=%EF%BF%BD");
        assert_eq!(
            String::from_utf8(string_to_sign(T, &get_request()).unwrap()).unwrap(),
            format!("v2\n{T}\ndlv_0001\nchat_tool\nGET\n/api/omi/tools/hours\n{GET_CANONICAL_QUERY}\n")
        );
    }

    #[test]
    fn the_fixed_vectors_verify() {
        assert_eq!(sign(SECRET, T, &get_request()).unwrap(), GET_VECTOR);
        assert_eq!(sign(SECRET, T, &post_request()).unwrap(), POST_VECTOR);
        assert_eq!(verify(SECRET, &format!("t={T},v2={GET_VECTOR}"), &get_request(), T + 299), Ok(()));
        assert_eq!(verify(SECRET, &format!("t={T},v2={POST_VECTOR}"), &post_request(), T - 300), Ok(()));
        // Upper-case hex is the same signature.
        assert_eq!(verify(SECRET, &format!("t={T},v2={}", POST_VECTOR.to_uppercase()), &post_request(), T), Ok(()));
    }

    #[test]
    fn an_equivalent_spelling_of_the_query_verifies() {
        let header = format!("t={T},v2={GET_VECTOR}");
        let respelled = "app_id=app+one&a=2&name=Jos%c3%a9&a=1&period=this%20month&flag=&uid=mentor-1&z=~";
        assert_eq!(verify(SECRET, &header, &SignedRequest { query: respelled, ..get_request() }, T), Ok(()));
    }

    #[test]
    fn tampering_is_a_mismatch() {
        let header = format!("t={T},v2={GET_VECTOR}");
        let tampered = [
            SignedRequest { query: "uid=mentor-2&period=this+month&z=%7e&a=2&&a=1&app_id=app%20one&flag&name=Jos%C3%A9", ..get_request() },
            // The two `a` values swapped: a reordered list is another request.
            SignedRequest {
                query: "uid=mentor%2D1&period=this+month&z=%7e&a=1&&a=2&app_id=app%20one&flag&name=Jos%C3%A9",
                ..get_request()
            },
            SignedRequest { method: "POST", ..get_request() },
            SignedRequest { path: "/api/omi/tools/search", ..get_request() },
            SignedRequest { delivery: "dlv_0003", ..get_request() },
            SignedRequest { event: "memory_created", ..get_request() },
            SignedRequest { body: b"x", ..get_request() },
        ];
        for req in tampered {
            assert_eq!(verify(SECRET, &header, &req, T), Err(SignatureError::Mismatch), "{req:?}");
        }
        assert_eq!(verify("whsec_other", &header, &get_request(), T), Err(SignatureError::Mismatch));
        let post = format!("t={T},v2={POST_VECTOR}");
        assert_eq!(
            verify(SECRET, &post, &SignedRequest { body: br#"{"uid":"mentor-2","query":"Ana"}"#, ..post_request() }, T),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn stale_and_future_timestamps_are_refused_without_overflow() {
        let header = format!("t={T},v2={GET_VECTOR}");
        assert_eq!(verify(SECRET, &header, &get_request(), T + 301), Err(SignatureError::Stale { skew_secs: 301 }));
        assert_eq!(verify(SECRET, &header, &get_request(), T - 301), Err(SignatureError::Stale { skew_secs: 301 }));
        let extreme = format!("t={},v2={GET_VECTOR}", i64::MIN);
        assert_eq!(verify(SECRET, &extreme, &get_request(), i64::MAX), Err(SignatureError::Stale { skew_secs: i64::MAX }));
    }

    #[test]
    fn several_v2_values_any_may_match_and_v1_never_does() {
        let old = sign("whsec_old", T, &get_request()).unwrap();
        let header = format!("t={T},v2={old},v2=nothex,v2={GET_VECTOR}");
        assert_eq!(verify(SECRET, &header, &get_request(), T), Ok(()));
        // The right HMAC under the v1 name is not a v2 signature.
        assert_eq!(
            verify(SECRET, &format!("t={T},v1={GET_VECTOR}"), &get_request(), T),
            Err(SignatureError::Malformed("no v2= signature"))
        );
        // A genuine v1 signature of the same body, offered as v2, does not match.
        let v1 = crate::omi::signature::sign(SECRET, T, "mentor-1", POST_BODY);
        assert_eq!(verify(SECRET, &format!("t={T},v2={v1}"), &post_request(), T), Err(SignatureError::Mismatch));
    }

    #[test]
    fn malformed_headers_and_framing_are_refused() {
        for h in ["", "v2=00", "t=x,v2=00", "t=1", "t=1,v1=00", &format!("t=1,v2={}", "a".repeat(5000))] {
            assert!(matches!(parse_header(h), Err(SignatureError::Malformed(_))), "{h:?}");
        }
        let header = format!("t={T},v2={GET_VECTOR}");
        for req in [
            SignedRequest { delivery: "", ..get_request() },
            SignedRequest { delivery: "a\nb", ..get_request() },
            SignedRequest { method: "GÉT", ..get_request() },
        ] {
            assert!(matches!(verify(SECRET, &header, &req, T), Err(SignatureError::Malformed(_))));
        }
    }
}
