//! Signed, expiring URLs for a file or an archive (issue 13), so a build machine or a preview
//! can fetch without the API key: `{path}?{query}&exp={unix seconds}&sig={hex}`.
//!
//! `sig` is HMAC-SHA256, keyed by a key derived from the `SIGNED_URL_SECRET` secret, over
//!
//! ```text
//! r2d1-signed-url/1\n{METHOD}\n{path}\n{canonical query, exp included, sig excluded}\n{pin}
//! ```
//!
//! - the path is the URL path exactly as the worker receives it, so a URL opens that one
//!   resource and nothing under or beside it;
//! - every other query parameter (`format=ndjson`, …) is signed too, so none can be added,
//!   dropped or changed; the canonical query is the decoded pairs, percent-encoded
//!   (RFC 3986 unreserved characters kept) and sorted;
//! - the pin binds the URL to content: a version number for a version's file or archive
//!   (immutable), or the SHA-256 of a current file, so the URL stops working when the file
//!   changes instead of serving other bytes than the ones it was made for;
//! - `HEAD` verifies as `GET`.
//!
//! Verification parses strictly (digits only, at most 19; exactly 64 lower-case hex), compares
//! the MAC in constant time, and only then looks at the clock: expired, or further out than
//! [`MAX_LIFETIME_SECS`] (which no URL made here can be). All time arithmetic is in i128.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::Error;

pub const EXP_PARAM: &str = "exp";
pub const SIG_PARAM: &str = "sig";
/// A week: long enough for a preview link to be shared, short enough that a leaked one dies.
pub const MAX_LIFETIME_SECS: u64 = 7 * 86_400;
/// Shortest accepted secret: 32 characters, as `openssl rand -hex 16` gives.
pub const MIN_SECRET_CHARS: usize = 32;
const DOMAIN: &str = "r2d1-signed-url/1";

/// The signing key: derived from the configured secret, so the secret itself never keys
/// anything a client sees and could be shared with another purpose without crossing over.
#[derive(Clone)]
pub struct UrlKey([u8; 32]);

impl std::fmt::Debug for UrlKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlKey(***)")
    }
}

impl UrlKey {
    pub fn from_secret(secret: &str) -> Result<UrlKey, String> {
        if secret.chars().count() < MIN_SECRET_CHARS {
            return Err(format!("SIGNED_URL_SECRET must be at least {MIN_SECRET_CHARS} characters"));
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
        mac.update(b"r2d1 signed-url key");
        Ok(UrlKey(mac.finalize().into_bytes().into()))
    }

    fn mac(&self, canonical: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(canonical.as_bytes());
        mac
    }
}

/// What a URL is bound to besides its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pin<'a> {
    /// A version (its files and archive never change).
    Version(i64),
    /// The SHA-256 of a current file's content.
    Sha256(&'a str),
}

impl Pin<'_> {
    fn canonical(&self) -> String {
        match self {
            Pin::Version(v) => format!("version:{v}"),
            Pin::Sha256(s) => format!("sha256:{}", s.to_ascii_lowercase()),
        }
    }
}

/// A signed URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedUrl {
    /// `{path}?{query}`, ready to append to the worker's origin.
    pub url: String,
    pub expires_at: i64,
    pub sig: String,
}

/// Why a URL was refused. Every variant answers 401: the URL is the credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("signed URL lacks {0}")]
    Missing(&'static str),
    #[error("signed URL has a malformed {0}")]
    Malformed(&'static str),
    #[error("signed URL does not match this request")]
    BadSignature,
    #[error("signed URL has expired")]
    Expired,
    #[error("signed URL lives longer than allowed")]
    TooLong,
}

impl From<UrlError> for Error {
    fn from(e: UrlError) -> Self {
        Error::Unauthorized(e.to_string())
    }
}

/// Signs `method path?query` for `lifetime_secs` from `now_secs`. `query` holds the request's
/// other parameters, decoded; it must not already carry `exp` or `sig`.
pub fn sign(
    key: &UrlKey,
    method: &str,
    path: &str,
    query: &[(String, String)],
    pin: Pin<'_>,
    now_secs: i64,
    lifetime_secs: u64,
) -> Result<SignedUrl, Error> {
    if lifetime_secs == 0 || lifetime_secs > MAX_LIFETIME_SECS {
        return Err(Error::invalid_field("expires_in", format!("must be from 1 to {MAX_LIFETIME_SECS} seconds")));
    }
    if query.iter().any(|(k, _)| k == EXP_PARAM || k == SIG_PARAM) {
        return Err(Error::invalid_field("query", "must not contain exp or sig"));
    }
    let expires_at =
        i64::try_from(i128::from(now_secs) + i128::from(lifetime_secs)).map_err(|_| Error::Internal("clock out of range".into()))?;
    let mut pairs: Vec<(String, String)> = query.to_vec();
    pairs.push((EXP_PARAM.to_string(), expires_at.to_string()));
    let canonical = canonical_request(method, path, &pairs, pin);
    let sig = hex::encode(key.mac(&canonical).finalize().into_bytes());
    let mut q = canonical_query(&pairs);
    q.push_str(&format!("&{SIG_PARAM}={sig}"));
    Ok(SignedUrl { url: format!("{path}?{q}"), expires_at, sig })
}

/// Checks a request's URL: `query` is all its parameters, decoded, `exp` and `sig` included.
/// Returns the expiry.
pub fn verify(key: &UrlKey, method: &str, path: &str, query: &[(String, String)], pin: Pin<'_>, now_secs: i64) -> Result<i64, UrlError> {
    let one = |name: &'static str| -> Result<&str, UrlError> {
        let mut values = query.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let first = values.next().ok_or(UrlError::Missing(name))?;
        if values.next().is_some() {
            return Err(UrlError::Malformed(name));
        }
        Ok(first)
    };
    let exp_raw = one(EXP_PARAM)?;
    let sig_raw = one(SIG_PARAM)?;
    if exp_raw.is_empty() || exp_raw.len() > 19 || !exp_raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UrlError::Malformed(EXP_PARAM));
    }
    let exp: i64 = exp_raw.parse().map_err(|_| UrlError::Malformed(EXP_PARAM))?;
    if sig_raw.len() != 64 || !sig_raw.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(UrlError::Malformed(SIG_PARAM));
    }
    let sig = hex::decode(sig_raw).map_err(|_| UrlError::Malformed(SIG_PARAM))?;
    let signed: Vec<(String, String)> = query.iter().filter(|(k, _)| k != SIG_PARAM).cloned().collect();
    key.mac(&canonical_request(method, path, &signed, pin)).verify_slice(&sig).map_err(|_| UrlError::BadSignature)?;
    let (exp_wide, now) = (i128::from(exp), i128::from(now_secs));
    if exp_wide < now {
        return Err(UrlError::Expired);
    }
    if exp_wide - now > i128::from(MAX_LIFETIME_SECS) {
        return Err(UrlError::TooLong);
    }
    Ok(exp)
}

fn canonical_request(method: &str, path: &str, pairs: &[(String, String)], pin: Pin<'_>) -> String {
    let method = match method.to_ascii_uppercase().as_str() {
        "HEAD" => "GET".to_string(),
        m => m.to_string(),
    };
    format!("{DOMAIN}\n{method}\n{path}\n{}\n{}", canonical_query(pairs), pin.canonical())
}

/// Pairs percent-encoded (unreserved characters kept, upper-case hex) and sorted by encoded
/// name, then encoded value: `a=1&b=x%20y`.
pub fn canonical_query(pairs: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> = pairs.iter().map(|(k, v)| (encode(k), encode(v))).collect();
    encoded.sort();
    encoded.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_750_000_000;
    const PATH: &str = "/api/apps/demo/versions/3/archive";

    fn key() -> UrlKey {
        UrlKey::from_secret("0123456789abcdef0123456789abcdef").unwrap()
    }

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// The query a client sends back: the signed URL's parameters, decoded.
    fn params(url: &str) -> Vec<(String, String)> {
        let query = url.split_once('?').unwrap().1;
        query
            .split('&')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                let dec = |s: &str| String::from_utf8(crate::files::path::percent_decode(s).unwrap()).unwrap();
                (dec(k), dec(v))
            })
            .collect()
    }

    #[test]
    fn a_signed_url_verifies_until_it_expires() {
        let s = sign(&key(), "GET", PATH, &q(&[("format", "tar gz")]), Pin::Version(3), NOW, 3_600).unwrap();
        assert_eq!(s.expires_at, NOW + 3_600);
        assert!(s.url.starts_with(&format!("{PATH}?exp={}&format=tar%20gz&sig=", NOW + 3_600)), "{}", s.url);
        let p = params(&s.url);
        assert_eq!(verify(&key(), "GET", PATH, &p, Pin::Version(3), NOW), Ok(NOW + 3_600));
        assert_eq!(verify(&key(), "HEAD", PATH, &p, Pin::Version(3), NOW + 3_600), Ok(NOW + 3_600));
        assert_eq!(verify(&key(), "GET", PATH, &p, Pin::Version(3), NOW + 3_601), Err(UrlError::Expired));
        // Parameter order does not matter.
        let mut reversed = p.clone();
        reversed.reverse();
        assert!(verify(&key(), "GET", PATH, &reversed, Pin::Version(3), NOW).is_ok());
    }

    #[test]
    fn the_signature_covers_method_path_query_pin_and_expiry() {
        let s = sign(&key(), "GET", PATH, &q(&[("format", "ndjson")]), Pin::Version(3), NOW, 600).unwrap();
        let p = params(&s.url);
        let bad = |method: &str, path: &str, p: &[(String, String)], pin: Pin<'_>| verify(&key(), method, path, p, pin, NOW);
        assert_eq!(bad("PUT", PATH, &p, Pin::Version(3)), Err(UrlError::BadSignature));
        assert_eq!(bad("GET", "/api/apps/demo/versions/4/archive", &p, Pin::Version(3)), Err(UrlError::BadSignature));
        assert_eq!(bad("GET", &format!("{PATH}/x"), &p, Pin::Version(3)), Err(UrlError::BadSignature));
        assert_eq!(bad("GET", PATH, &p, Pin::Version(4)), Err(UrlError::BadSignature));
        let mut changed = p.clone();
        changed.iter_mut().find(|(k, _)| k == "format").unwrap().1 = "tar".into();
        assert_eq!(bad("GET", PATH, &changed, Pin::Version(3)), Err(UrlError::BadSignature));
        let mut added = p.clone();
        added.push(("download".into(), "1".into()));
        assert_eq!(bad("GET", PATH, &added, Pin::Version(3)), Err(UrlError::BadSignature));
        let dropped: Vec<_> = p.iter().filter(|(k, _)| k != "format").cloned().collect();
        assert_eq!(bad("GET", PATH, &dropped, Pin::Version(3)), Err(UrlError::BadSignature));
        let mut later = p.clone();
        later.iter_mut().find(|(k, _)| k == EXP_PARAM).unwrap().1 = (NOW + 700).to_string();
        assert_eq!(bad("GET", PATH, &later, Pin::Version(3)), Err(UrlError::BadSignature));
        let other_key = UrlKey::from_secret("another-secret-of-at-least-32-chars").unwrap();
        assert_eq!(verify(&other_key, "GET", PATH, &p, Pin::Version(3), NOW), Err(UrlError::BadSignature));
    }

    #[test]
    fn a_file_url_dies_when_the_file_changes() {
        let path = "/api/apps/demo/files/index.html";
        let sha = "a".repeat(64);
        let s = sign(&key(), "GET", path, &[], Pin::Sha256(&sha), NOW, 60).unwrap();
        let p = params(&s.url);
        assert!(verify(&key(), "GET", path, &p, Pin::Sha256(&sha.to_uppercase()), NOW).is_ok());
        assert_eq!(verify(&key(), "GET", path, &p, Pin::Sha256(&"b".repeat(64)), NOW), Err(UrlError::BadSignature));
    }

    #[test]
    fn malformed_and_hostile_parameters_are_refused_without_panicking() {
        let s = sign(&key(), "GET", PATH, &[], Pin::Version(1), NOW, 60).unwrap();
        let good = params(&s.url);
        let with = |name: &str, value: &str| -> Vec<(String, String)> {
            good.iter().map(|(k, v)| (k.clone(), if k == name { value.to_string() } else { v.clone() })).collect()
        };
        for exp in ["", "-1", "+5", " 5", "1e9", "99999999999999999999", "9223372036854775808", "١٢٣"] {
            assert_eq!(
                verify(&key(), "GET", PATH, &with(EXP_PARAM, exp), Pin::Version(1), NOW),
                Err(UrlError::Malformed(EXP_PARAM)),
                "{exp:?}"
            );
        }
        for sig in ["", "00", &s.sig.to_uppercase(), &format!("{}0", s.sig), &"g".repeat(64)] {
            assert_eq!(
                verify(&key(), "GET", PATH, &with(SIG_PARAM, sig), Pin::Version(1), NOW),
                Err(UrlError::Malformed(SIG_PARAM)),
                "{sig:?}"
            );
        }
        assert_eq!(verify(&key(), "GET", PATH, &with(SIG_PARAM, &"0".repeat(64)), Pin::Version(1), NOW), Err(UrlError::BadSignature));
        let no_sig: Vec<_> = good.iter().filter(|(k, _)| k != SIG_PARAM).cloned().collect();
        assert_eq!(verify(&key(), "GET", PATH, &no_sig, Pin::Version(1), NOW), Err(UrlError::Missing(SIG_PARAM)));
        assert_eq!(verify(&key(), "GET", PATH, &[], Pin::Version(1), NOW), Err(UrlError::Missing(EXP_PARAM)));
        let mut twice = good.clone();
        twice.push((EXP_PARAM.into(), (NOW + 10).to_string()));
        assert_eq!(verify(&key(), "GET", PATH, &twice, Pin::Version(1), NOW), Err(UrlError::Malformed(EXP_PARAM)));
        // The largest representable expiry and the extreme clocks stay arithmetic, not panics.
        assert_eq!(
            verify(&key(), "GET", PATH, &with(EXP_PARAM, &i64::MAX.to_string()), Pin::Version(1), i64::MIN),
            Err(UrlError::BadSignature)
        );
        assert_eq!(verify(&key(), "GET", PATH, &good, Pin::Version(1), i64::MAX), Err(UrlError::Expired));
        assert_eq!(verify(&key(), "GET", PATH, &good, Pin::Version(1), i64::MIN), Err(UrlError::TooLong));
        assert_eq!(Error::from(UrlError::Expired).status(), 401);
    }

    #[test]
    fn lifetimes_and_secrets_are_bounded() {
        assert!(sign(&key(), "GET", PATH, &[], Pin::Version(1), NOW, 0).is_err());
        assert!(sign(&key(), "GET", PATH, &[], Pin::Version(1), NOW, MAX_LIFETIME_SECS + 1).is_err());
        let s = sign(&key(), "GET", PATH, &[], Pin::Version(1), NOW, MAX_LIFETIME_SECS).unwrap();
        assert!(verify(&key(), "GET", PATH, &params(&s.url), Pin::Version(1), NOW).is_ok());
        assert!(sign(&key(), "GET", PATH, &[], Pin::Version(1), i64::MAX, 60).is_err());
        assert!(sign(&key(), "GET", PATH, &q(&[("sig", "x")]), Pin::Version(1), NOW, 60).is_err());
        assert!(UrlKey::from_secret("short").unwrap_err().contains("SIGNED_URL_SECRET"));
        assert!(!format!("{:?}", key()).contains("0123"));
    }

    #[test]
    fn canonical_query_encodes_and_sorts() {
        assert_eq!(canonical_query(&q(&[("b", "x y"), ("a", "2"), ("a", "1"), ("ü", "/&=")])), "%C3%BC=%2F%26%3D&a=1&a=2&b=x%20y");
        assert_eq!(canonical_query(&[]), "");
    }
}
