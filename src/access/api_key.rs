//! API keys: `r2d1_{prefix}_{secret}`.
//!
//! - `prefix`: 8 base32 characters (40 random bits), public. It is the key's handle in lists,
//!   logs, the audit trail and the revoke URL, and the row a presented key is looked up by.
//! - `secret`: 52 base32 characters (32 random bytes, 256 bits), shown once at creation.
//!
//! D1 keeps only `sha256_hex(whole key)` (see [`super::secret::sha256_hex`] for why a fast
//! hash is right), compared in constant time. Hashing the whole string binds the prefix to its
//! secret: a secret pasted under another key's prefix does not verify.

use serde::{Deserialize, Serialize};

use super::rule::{Credential, Principal};
use super::scope::{ScopeError, ScopeSet};
use super::secret::{base32, hash_matches, is_base32, sha256_hex};

pub const KEY_SCHEME: &str = "r2d1_";
pub const PREFIX_CHARS: usize = 8;
pub const SECRET_CHARS: usize = 52;
/// Random bytes one key is made of: 5 for the prefix, 32 for the secret.
pub const KEY_RANDOM_BYTES: usize = 37;

/// How often `last_used_at` is written: once a minute per key is enough to answer "is this key
/// still in use?" without a D1 write on every request.
pub const LAST_USED_RESOLUTION_MS: i64 = 60_000;

const MAX_NAME_CHARS: usize = 100;
/// Keys without an expiry are allowed; an expiry further out than this is a typo.
const MAX_EXPIRY_DAYS: u32 = 3650;
const DAY_MS: i64 = 86_400_000;

/// Why a presented string is not an r2d1 API key. Any of them answers 401, like an unknown key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyParseError {
    #[error("not an r2d1 API key (expected r2d1_<prefix>_<secret>)")]
    NotAKey,
    #[error("the key's prefix is malformed")]
    BadPrefix,
    #[error("the key's secret is malformed")]
    BadSecret,
}

/// A key presented in `Authorization: Bearer`, well-formed but not yet checked against D1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedKey<'a> {
    pub prefix: &'a str,
    whole: &'a str,
}

impl<'a> PresentedKey<'a> {
    pub fn parse(raw: &'a str) -> Result<PresentedKey<'a>, KeyParseError> {
        let rest = raw.strip_prefix(KEY_SCHEME).ok_or(KeyParseError::NotAKey)?;
        let (prefix, secret) = rest.split_once('_').ok_or(KeyParseError::NotAKey)?;
        if !is_base32(prefix, PREFIX_CHARS) {
            return Err(KeyParseError::BadPrefix);
        }
        if !is_base32(secret, SECRET_CHARS) {
            return Err(KeyParseError::BadSecret);
        }
        Ok(PresentedKey { prefix, whole: raw })
    }

    /// Whether this key hashes to `stored_hash` (constant time).
    pub fn matches(&self, stored_hash: &str) -> bool {
        hash_matches(&sha256_hex(self.whole), stored_hash)
    }
}

/// What an `Authorization` header presents, before any lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented<'a> {
    /// No `Authorization: Bearer`: 401 on a key route.
    Nothing,
    /// `API_TOKEN` (compared in constant time): the bootstrap admin.
    BootstrapToken,
    /// Looks like a key: load the row by `prefix`, then [`PresentedKey::matches`] and
    /// [`KeyRecord::is_usable`]; anything short of both is 401.
    ApiKey(PresentedKey<'a>),
    /// Neither: 401 (and counts against the client's failed-authentication budget).
    Unknown,
}

/// Classifies the `Authorization` header. `api_token` is `API_TOKEN`, if set.
pub fn classify<'a>(authorization: Option<&'a str>, api_token: Option<&str>) -> Presented<'a> {
    let Some(token) = crate::auth::bearer_token(authorization) else { return Presented::Nothing };
    if api_token.is_some_and(|expected| crate::auth::tokens_match(token, expected)) {
        return Presented::BootstrapToken;
    }
    match PresentedKey::parse(token) {
        Ok(key) => Presented::ApiKey(key),
        Err(_) => Presented::Unknown,
    }
}

/// A freshly made key: the whole key goes to the creator once; prefix and hash go to D1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    pub key: String,
    pub prefix: String,
    pub hash: String,
}

impl NewKey {
    pub fn from_random(random: &[u8; KEY_RANDOM_BYTES]) -> NewKey {
        let prefix = base32(&random[..5]);
        let key = format!("{KEY_SCHEME}{prefix}_{}", base32(&random[5..]));
        let hash = sha256_hex(&key);
        NewKey { key, prefix, hash }
    }

    pub fn generate() -> Result<NewKey, getrandom::Error> {
        Ok(NewKey::from_random(&super::secret::random_bytes()?))
    }
}

/// A row of `api_keys`, scopes parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyRecord {
    pub id: i64,
    pub prefix: String,
    pub name: String,
    pub scopes: ScopeSet,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    Active,
    Expired,
    Revoked,
}

impl KeyRecord {
    /// Revocation wins over expiry, so the list says what an admin did.
    pub fn status(&self, now_ms: i64) -> KeyStatus {
        if self.revoked_at.is_some() {
            KeyStatus::Revoked
        } else if self.expires_at.is_some_and(|e| now_ms >= e) {
            KeyStatus::Expired
        } else {
            KeyStatus::Active
        }
    }

    pub fn is_usable(&self, now_ms: i64) -> bool {
        self.status(now_ms) == KeyStatus::Active
    }

    /// Whether this request should record `last_used_at` (at most once per resolution).
    pub fn needs_touch(&self, now_ms: i64) -> bool {
        self.last_used_at.is_none_or(|t| now_ms.saturating_sub(t) >= LAST_USED_RESOLUTION_MS)
    }

    pub fn principal(&self) -> Principal {
        Principal { credential: Credential::ApiKey { id: self.id, prefix: self.prefix.clone() }, scopes: self.scopes.clone() }
    }
}

/// The body of `POST /api/admin/keys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateKeyRequest {
    pub name: String,
    pub scopes: Vec<String>,
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

/// A validated create request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpec {
    pub name: String,
    pub scopes: ScopeSet,
    pub expires_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySpecError {
    #[error("name: must be 1-{MAX_NAME_CHARS} printable characters")]
    Name,
    #[error("scopes: {0}")]
    Scopes(#[from] ScopeError),
    #[error("expiresInDays: must be from 1 to {MAX_EXPIRY_DAYS}")]
    Expiry,
}

impl KeySpecError {
    /// The request field at fault, for a 400 `invalid_field`.
    pub fn field(&self) -> &'static str {
        match self {
            KeySpecError::Name => "name",
            KeySpecError::Scopes(_) => "scopes",
            KeySpecError::Expiry => "expiresInDays",
        }
    }
}

impl CreateKeyRequest {
    pub fn validate(&self, now_ms: i64) -> Result<KeySpec, KeySpecError> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(KeySpecError::Name);
        }
        let scopes = ScopeSet::parse_each(self.scopes.iter().map(String::as_str))?;
        let expires_at = match self.expires_in_days {
            None => None,
            Some(d) if (1..=MAX_EXPIRY_DAYS).contains(&d) => Some(now_ms.saturating_add(i64::from(d) * DAY_MS)),
            Some(_) => return Err(KeySpecError::Expiry),
        };
        Ok(KeySpec { name: name.to_string(), scopes, expires_at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed_key() -> NewKey {
        let mut random = [0u8; KEY_RANDOM_BYTES];
        for (i, b) in random.iter_mut().enumerate() {
            *b = i as u8 * 7;
        }
        NewKey::from_random(&random)
    }

    fn record(expires_at: Option<i64>, revoked_at: Option<i64>) -> KeyRecord {
        KeyRecord {
            id: 7,
            prefix: "abcdefgh".into(),
            name: "mentor dashboard".into(),
            scopes: ScopeSet::parse("omi:read:alice").unwrap(),
            created_at: 1_000,
            expires_at,
            last_used_at: None,
            revoked_at,
        }
    }

    #[test]
    fn a_new_key_has_the_documented_shape_and_verifies() {
        let k = fixed_key();
        assert_eq!(k.key.len(), KEY_SCHEME.len() + PREFIX_CHARS + 1 + SECRET_CHARS);
        assert!(k.key.starts_with(&format!("r2d1_{}_", k.prefix)));
        let presented = PresentedKey::parse(&k.key).unwrap();
        assert_eq!(presented.prefix, k.prefix);
        assert!(presented.matches(&k.hash));
        assert!(!k.hash.contains(&k.key[14..]), "the hash is not the secret");
        let generated = NewKey::generate().unwrap();
        assert!(PresentedKey::parse(&generated.key).unwrap().matches(&generated.hash));
        assert_ne!(generated.prefix, NewKey::generate().unwrap().prefix);
    }

    #[test]
    fn a_secret_under_another_prefix_does_not_verify() {
        let k = fixed_key();
        let swapped = format!("r2d1_aaaaaaaa_{}", &k.key[14..]);
        assert!(!PresentedKey::parse(&swapped).unwrap().matches(&k.hash));
        let mut tampered = k.key.clone();
        tampered.pop();
        tampered.push(if k.key.ends_with('a') { 'b' } else { 'a' });
        assert!(!PresentedKey::parse(&tampered).unwrap().matches(&k.hash));
    }

    #[test]
    fn malformed_keys_are_typed() {
        let k = fixed_key();
        let secret = &k.key[14..];
        assert_eq!(PresentedKey::parse("hunter2"), Err(KeyParseError::NotAKey));
        assert_eq!(PresentedKey::parse("r2d1_abcdefgh"), Err(KeyParseError::NotAKey));
        assert_eq!(PresentedKey::parse(&format!("r2d1_ABCDEFGH_{secret}")), Err(KeyParseError::BadPrefix));
        assert_eq!(PresentedKey::parse(&format!("r2d1_abcdefg_{secret}")), Err(KeyParseError::BadPrefix));
        assert_eq!(PresentedKey::parse(&format!("r2d1_abcdefgh_{}", &secret[1..])), Err(KeyParseError::BadSecret));
        assert_eq!(PresentedKey::parse(&format!("r2d1_abcdefgh_{secret}_x")), Err(KeyParseError::BadSecret));
        assert_eq!(PresentedKey::parse(&format!("r2d1_abcdefgh_{}1", &secret[1..])), Err(KeyParseError::BadSecret));
    }

    #[test]
    fn the_authorization_header_is_classified_before_any_lookup() {
        let k = fixed_key();
        let bearer = format!("Bearer {}", k.key);
        assert_eq!(classify(None, Some("boot")), Presented::Nothing);
        assert_eq!(classify(Some("Basic x"), Some("boot")), Presented::Nothing);
        assert_eq!(classify(Some("Bearer boot"), Some("boot")), Presented::BootstrapToken);
        assert_eq!(classify(Some("Bearer boot"), None), Presented::Unknown);
        assert_eq!(classify(Some("Bearer bootx"), Some("boot")), Presented::Unknown);
        match classify(Some(&bearer), Some("boot")) {
            Presented::ApiKey(p) => assert_eq!(p.prefix, k.prefix),
            other => panic!("{other:?}"),
        }
        // An API_TOKEN that happens to look like a key is still the bootstrap token.
        assert_eq!(classify(Some(&bearer), Some(&k.key)), Presented::BootstrapToken);
    }

    #[test]
    fn usability_follows_revocation_and_expiry() {
        assert!(record(None, None).is_usable(i64::MAX));
        assert!(record(Some(5_000), None).is_usable(4_999));
        assert_eq!(record(Some(5_000), None).status(5_000), KeyStatus::Expired);
        assert!(!record(Some(5_000), None).is_usable(5_000));
        assert_eq!(record(None, Some(2_000)).status(1_500), KeyStatus::Revoked);
        assert_eq!(record(Some(5_000), Some(2_000)).status(9_000), KeyStatus::Revoked);
    }

    #[test]
    fn last_used_is_written_at_most_once_a_minute() {
        let mut r = record(None, None);
        assert!(r.needs_touch(0));
        r.last_used_at = Some(100_000);
        assert!(!r.needs_touch(159_999));
        assert!(r.needs_touch(160_000));
        assert!(!r.needs_touch(i64::MIN), "a clock far in the past does not overflow");
    }

    #[test]
    fn records_never_serialize_a_secret_and_become_principals() {
        let r = record(None, None);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["scopes"], serde_json::json!(["omi:read:alice"]));
        assert!(json.get("hash").is_none());
        let p = r.principal();
        assert_eq!(p.label(), "abcdefgh");
        assert_eq!(p.credential, Credential::ApiKey { id: 7, prefix: "abcdefgh".into() });
    }

    #[test]
    fn create_requests_are_validated() {
        let req = |name: &str, scopes: &[&str], days: Option<u32>| CreateKeyRequest {
            name: name.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            expires_in_days: days,
        };
        let spec = req(" alice's dashboard ", &["omi:read:alice"], Some(30)).validate(0).unwrap();
        assert_eq!(spec.name, "alice's dashboard");
        assert_eq!(spec.expires_at, Some(30 * DAY_MS));
        assert_eq!(req("x", &["apps:write"], None).validate(0).unwrap().expires_at, None);
        assert_eq!(req("", &["admin"], None).validate(0).unwrap_err().field(), "name");
        assert_eq!(req("a\nb", &["admin"], None).validate(0).unwrap_err(), KeySpecError::Name);
        assert_eq!(req("x", &[], None).validate(0).unwrap_err(), KeySpecError::Scopes(ScopeError::Empty));
        assert!(req("x", &["omi:read:a/b"], None).validate(0).unwrap_err().to_string().starts_with("scopes: "));
        assert_eq!(req("x", &["admin"], Some(0)).validate(0).unwrap_err(), KeySpecError::Expiry);
        assert_eq!(req("x", &["admin"], Some(MAX_EXPIRY_DAYS + 1)).validate(0).unwrap_err().field(), "expiresInDays");
        let parsed: Result<CreateKeyRequest, _> = serde_json::from_str(r#"{"name":"x","scopes":["admin"],"secret":"mine"}"#);
        assert!(parsed.is_err(), "a client cannot choose the secret");
    }
}
