//! Cross-origin access to the API for browsers on other origins (the old app's dashboard),
//! per `ALLOWED_ORIGINS` (pure: the router applies the headers).
//!
//! `ALLOWED_ORIGINS` is a comma-separated list of origins (`https://dash.example.org`), or `*`.
//! Unset, no CORS header is ever sent and browsers on other origins are refused, as before.
//! Credentials travel in `Authorization` (never cookies), so `Access-Control-Allow-Credentials`
//! is never sent and `*` is safe to answer literally.

/// Headers a cross-origin request may send.
pub const ALLOW_HEADERS: &str =
    "Authorization, Content-Type, If-Match, If-None-Match, Idempotency-Key, X-Omi-Signature, X-Omi-Event, X-Omi-Delivery";
/// Response headers a cross-origin script may read.
pub const EXPOSE_HEADERS: &str = "ETag, Retry-After, Content-Disposition, X-R2D1-Version, X-R2D1-Source, X-R2D1-Manifest-Source";
/// How long a browser may cache a preflight answer (seconds).
pub const MAX_AGE_SECS: u32 = 86_400;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AllowedOrigins {
    /// No cross-origin access (the default).
    #[default]
    None,
    Any,
    List(Vec<String>),
}

impl AllowedOrigins {
    /// Parses `ALLOWED_ORIGINS`: `*`, or origins separated by commas or spaces. Each must be
    /// `scheme://host[:port]` with nothing after it (browsers send exactly that in `Origin`).
    pub fn parse(raw: Option<&str>) -> Result<AllowedOrigins, String> {
        let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else { return Ok(AllowedOrigins::None) };
        if raw == "*" {
            return Ok(AllowedOrigins::Any);
        }
        let mut list = Vec::new();
        for origin in raw.split([',', ' ']).map(str::trim).filter(|o| !o.is_empty()) {
            let origin = origin.trim_end_matches('/');
            let rest = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
            match rest {
                Some(host) if !host.is_empty() && !host.contains(['/', '?', '#', '*']) => list.push(origin.to_ascii_lowercase()),
                _ => return Err(format!("ALLOWED_ORIGINS must be * or origins like https://dash.example.org, got {origin:?}")),
            }
        }
        Ok(AllowedOrigins::List(list))
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`, if it is allowed.
    pub fn allow(&self, origin: Option<&str>) -> Option<String> {
        let origin = origin?.trim();
        match self {
            AllowedOrigins::None => None,
            AllowedOrigins::Any => Some("*".to_string()),
            AllowedOrigins::List(list) => list.iter().any(|o| o.eq_ignore_ascii_case(origin)).then(|| origin.to_string()),
        }
    }

    pub fn is_enabled(&self) -> bool {
        *self != AllowedOrigins::None
    }
}

/// The headers to add to an answer for a request from `origin` (none when it is not allowed).
/// `Vary: Origin` whenever the answer depends on it, so caches keep the answers apart.
pub fn response_headers(allowed: &AllowedOrigins, origin: Option<&str>) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if matches!(allowed, AllowedOrigins::List(_)) {
        out.push(("Vary", "Origin".to_string()));
    }
    if let Some(value) = allowed.allow(origin) {
        out.push(("Access-Control-Allow-Origin", value));
        out.push(("Access-Control-Expose-Headers", EXPOSE_HEADERS.to_string()));
    }
    out
}

/// The extra headers of a preflight answer (`OPTIONS` with `Access-Control-Request-Method`)
/// for a path that answers to `methods`.
pub fn preflight_headers(allowed: &AllowedOrigins, origin: Option<&str>, methods: &[&str]) -> Vec<(&'static str, String)> {
    let mut out = response_headers(allowed, origin);
    if allowed.allow(origin).is_some() {
        let mut m: Vec<&str> = methods.to_vec();
        if m.contains(&"GET") && !m.contains(&"HEAD") {
            m.push("HEAD");
        }
        out.push(("Access-Control-Allow-Methods", m.join(", ")));
        out.push(("Access-Control-Allow-Headers", ALLOW_HEADERS.to_string()));
        out.push(("Access-Control-Max-Age", MAX_AGE_SECS.to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_parses() {
        assert_eq!(AllowedOrigins::parse(None), Ok(AllowedOrigins::None));
        assert_eq!(AllowedOrigins::parse(Some("  ")), Ok(AllowedOrigins::None));
        assert_eq!(AllowedOrigins::parse(Some("*")), Ok(AllowedOrigins::Any));
        assert_eq!(
            AllowedOrigins::parse(Some("https://Dash.Example.org/, http://localhost:3000")),
            Ok(AllowedOrigins::List(vec!["https://dash.example.org".into(), "http://localhost:3000".into()]))
        );
        for bad in ["dash.example.org", "https://x.org/path", "ftp://x.org", "https://*.x.org", "https://"] {
            assert!(AllowedOrigins::parse(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_listed_origins_get_headers() {
        let list = AllowedOrigins::parse(Some("https://dash.example.org")).unwrap();
        assert_eq!(list.allow(Some("https://dash.example.org")), Some("https://dash.example.org".into()));
        assert_eq!(list.allow(Some("https://evil.example.org")), None);
        assert_eq!(list.allow(None), None);
        let h = response_headers(&list, Some("https://evil.example.org"));
        assert_eq!(h, vec![("Vary", "Origin".to_string())]);
        let h = response_headers(&list, Some("https://dash.example.org"));
        assert!(h.iter().any(|(k, v)| *k == "Access-Control-Allow-Origin" && v == "https://dash.example.org"));
        assert!(response_headers(&AllowedOrigins::None, Some("https://dash.example.org")).is_empty());
        assert_eq!(AllowedOrigins::Any.allow(Some("https://any.org")), Some("*".into()));
    }

    #[test]
    fn preflights_name_the_methods_of_the_path() {
        let any = AllowedOrigins::Any;
        let h = preflight_headers(&any, Some("https://a.org"), &["GET", "DELETE"]);
        let get = |k: &str| h.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        assert_eq!(get("Access-Control-Allow-Methods").as_deref(), Some("GET, DELETE, HEAD"));
        assert!(get("Access-Control-Allow-Headers").unwrap().contains("Authorization"));
        assert_eq!(get("Access-Control-Max-Age").as_deref(), Some("86400"));
        assert!(preflight_headers(&AllowedOrigins::None, Some("https://a.org"), &["GET"]).is_empty());
    }
}
