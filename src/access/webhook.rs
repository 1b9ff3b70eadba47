//! Who may deliver as a mentor: per-mentor webhook credentials, the Omi app's signing secret,
//! and the legacy shared token.
//!
//! Credentials, strongest first:
//! - **the app's signing secret** (`OMI_SIGNING_SECRET`): held by Omi only, and Omi signs the
//!   `uid` with the body, so it is valid for every uid (the integration-app path);
//! - **a mentor's signing secret** (`whsec_…`, from that mentor's Omi developer settings): the
//!   mentor knows it, so it is valid for that mentor's uid only. Rotation: the new secret is
//!   added and the old ones retire after [`ROTATION_GRACE_MS`]; meanwhile Omi sends one `v1=`
//!   per secret and any valid one is enough;
//! - **a mentor's token** (`omi_{tag}_{secret}` in `?token=`, for senders that sign nothing):
//!   `tag` is derived from the uid, so a token sent with another `?uid=` is refused before any
//!   lookup, and D1 keeps only its hash;
//! - **`OMI_WEBHOOK_TOKEN`** (legacy): valid for every uid while it is set; `/api/health` warns.
//!   As today, it is ignored once `OMI_SIGNING_SECRET` is set (signature mode).
//!
//! The check runs in two steps so nothing is buffered for a stranger: [`check_token`] before
//! the body is read, [`check_signature`] after a bounded read, before any parsing.

use serde::Serialize;

use super::secret::{base32, hash_matches, is_base32, sha256_hex};
use crate::auth::tokens_match;
use crate::omi::signature::{self, SignatureError, TOLERANCE_SECS};

pub const TOKEN_SCHEME: &str = "omi_";
pub const TAG_CHARS: usize = 8;
pub const TOKEN_SECRET_CHARS: usize = 52;
pub const SIGNING_SECRET_PREFIX: &str = "whsec_";
/// Omi's own rotation window: it keeps signing with the old secret for 24 h.
pub const ROTATION_GRACE_MS: i64 = 24 * 3_600_000;

/// The public tag of a uid inside its tokens: 8 hex characters of SHA-256. It only routes a
/// token to the right mentor (and refuses it for the wrong one without a lookup); the secret
/// part carries the security.
pub fn uid_tag(uid: &str) -> String {
    sha256_hex(&format!("r2d1-mentor:{uid}"))[..TAG_CHARS].to_string()
}

/// A new per-mentor token: shown once (inside the webhook URL), its hash goes to D1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMentorToken {
    pub token: String,
    pub hash: String,
}

impl NewMentorToken {
    pub fn from_random(uid: &str, random: &[u8; 32]) -> NewMentorToken {
        let token = format!("{TOKEN_SCHEME}{}_{}", uid_tag(uid), base32(random));
        let hash = sha256_hex(&token);
        NewMentorToken { token, hash }
    }

    pub fn generate(uid: &str) -> Result<NewMentorToken, getrandom::Error> {
        Ok(NewMentorToken::from_random(uid, &super::secret::random_bytes()?))
    }
}

/// A new signing secret in Omi's format (`whsec_` + 32 random bytes, base64url), for set-ups
/// where r2d1 proposes the secret; one copied from Omi is stored as given.
pub fn signing_secret_from_random(random: &[u8; 32]) -> String {
    use base64::Engine;
    format!("{SIGNING_SECRET_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random))
}

/// Accepts a signing secret an admin pasted: Omi's prefix and enough material to be a secret.
pub fn check_signing_secret(secret: &str) -> Result<(), &'static str> {
    let material = secret.strip_prefix(SIGNING_SECRET_PREFIX).ok_or("must start with whsec_")?;
    if material.len() < 24 || material.len() > 200 || !material.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be whsec_ followed by 24-200 printable characters");
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CredentialKind {
    /// `material` is the token's SHA-256.
    Token,
    /// `material` is the `whsec_` secret itself: an HMAC needs it (see the report's note on
    /// storage).
    SigningSecret,
}

/// A row of `mentor_credentials`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MentorCredential {
    pub id: i64,
    pub uid: String,
    pub kind: CredentialKind,
    pub material: String,
    pub created_at: i64,
    /// Set when a newer credential of the same kind replaced this one: valid until then.
    pub retires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl MentorCredential {
    pub fn valid_at(&self, now_ms: i64) -> bool {
        self.revoked_at.is_none() && self.retires_at.is_none_or(|r| now_ms < r)
    }
}

/// When a new credential of `kind` is added for a uid: `(id, retires_at)` for each credential of
/// that kind still valid that must now retire after the grace window (never extending an
/// earlier retirement).
pub fn retirements(existing: &[MentorCredential], kind: CredentialKind, now_ms: i64) -> Vec<(i64, i64)> {
    let retire_at = now_ms.saturating_add(ROTATION_GRACE_MS);
    existing
        .iter()
        .filter(|c| c.kind == kind && c.valid_at(now_ms) && c.retires_at.is_none_or(|r| r > retire_at))
        .map(|c| (c.id, retire_at))
        .collect()
}

/// Deployment-wide webhook settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebhookSettings<'a> {
    /// `OMI_WEBHOOK_TOKEN`.
    pub legacy_token: Option<&'a str>,
    /// `OMI_SIGNING_SECRET`: the Omi app's secret.
    pub app_secret: Option<&'a str>,
}

/// Which credential let a delivery in (recorded with it, and used by enrollment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "via", rename_all = "camelCase")]
pub enum Via {
    LegacyToken,
    AppSignature,
    MentorToken { id: i64 },
    MentorSignature { id: i64 },
}

impl Via {
    /// Whether the credential was issued for this uid by an admin.
    pub fn is_per_mentor(self) -> bool {
        matches!(self, Via::MentorToken { .. } | Via::MentorSignature { .. })
    }
}

/// Why a delivery was refused: always 401, so Omi does not retry a credential that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("missing webhook credential: ?token=, Authorization: Bearer, or X-Omi-Signature")]
    NoCredential,
    #[error("this webhook credential belongs to another mentor than ?uid=")]
    WrongMentor,
    #[error("invalid webhook token")]
    BadToken,
    #[error("missing X-Omi-Signature header")]
    MissingSignature,
    #[error("{0}")]
    Signature(SignatureError),
}

/// The outcome of the check made before the body is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCheck {
    Accepted(Via),
    /// Read the body (bounded), then [`check_signature`].
    NeedSignature,
    Refused(Refusal),
}

/// Decides on the presented token (`?token=` or Bearer). `credentials` are the uid's rows
/// (`SELECT … WHERE uid = ?`); invalid ones are ignored here.
pub fn check_token(
    settings: WebhookSettings,
    uid: &str,
    presented: Option<&str>,
    credentials: &[MentorCredential],
    now_ms: i64,
) -> TokenCheck {
    let valid = || credentials.iter().filter(|c| c.uid == uid && c.valid_at(now_ms));
    let can_sign = settings.app_secret.is_some() || valid().any(|c| c.kind == CredentialKind::SigningSecret);
    let Some(token) = presented else {
        return if can_sign { TokenCheck::NeedSignature } else { TokenCheck::Refused(Refusal::NoCredential) };
    };
    // The legacy token first: a deployment may have chosen one that starts with `omi_`.
    if let Some(legacy) = settings.legacy_token {
        if settings.app_secret.is_none() && tokens_match(token, legacy) {
            return TokenCheck::Accepted(Via::LegacyToken);
        }
    }
    if let Some(rest) = token.strip_prefix(TOKEN_SCHEME) {
        let well_formed = rest.split_once('_').filter(|(tag, secret)| {
            tag.len() == TAG_CHARS && tag.bytes().all(|b| b.is_ascii_hexdigit()) && is_base32(secret, TOKEN_SECRET_CHARS)
        });
        let Some((tag, _)) = well_formed else { return TokenCheck::Refused(Refusal::BadToken) };
        if !tokens_match(tag, &uid_tag(uid)) {
            return TokenCheck::Refused(Refusal::WrongMentor);
        }
        let hash = sha256_hex(token);
        return match valid().find(|c| c.kind == CredentialKind::Token && hash_matches(&hash, &c.material)) {
            Some(c) => TokenCheck::Accepted(Via::MentorToken { id: c.id }),
            None => TokenCheck::Refused(Refusal::BadToken),
        };
    }
    // Signature mode ignores the shared token, as before per-mentor credentials.
    if settings.app_secret.is_some() {
        return TokenCheck::NeedSignature;
    }
    TokenCheck::Refused(Refusal::BadToken)
}

/// Verifies `X-Omi-Signature` on the raw body against the app's secret and the uid's valid
/// signing secrets.
pub fn check_signature(
    settings: WebhookSettings,
    uid: &str,
    header: Option<&str>,
    body: &[u8],
    credentials: &[MentorCredential],
    now_ms: i64,
) -> Result<Via, Refusal> {
    let header = header.ok_or(Refusal::MissingSignature)?;
    let mut secrets: Vec<(&str, Via)> = Vec::new();
    if let Some(app) = settings.app_secret {
        secrets.push((app, Via::AppSignature));
    }
    // Newest first: while both verify during a rotation, the delivery is credited to the new
    // secret, so the admin sees when the old one has stopped being used.
    let mut mine: Vec<&MentorCredential> =
        credentials.iter().filter(|c| c.uid == uid && c.kind == CredentialKind::SigningSecret && c.valid_at(now_ms)).collect();
    mine.sort_by_key(|c| std::cmp::Reverse((c.created_at, c.id)));
    for c in mine {
        secrets.push((&c.material, Via::MentorSignature { id: c.id }));
    }
    if secrets.is_empty() {
        return Err(Refusal::NoCredential);
    }
    let only: Vec<&str> = secrets.iter().map(|(s, _)| *s).collect();
    verify_any(&only, header, uid, body, now_ms.div_euclid(1000)).map(|i| secrets[i].1).map_err(Refusal::Signature)
}

/// Which of `secrets` signed the request: `signature::verify` for each, after a freshness check
/// that cannot overflow (`abs_diff`), so a `t=` near `i64::MIN` is stale, never a panic.
pub fn verify_any(secrets: &[&str], header: &str, uid: &str, body: &[u8], now_secs: i64) -> Result<usize, SignatureError> {
    let parsed = signature::parse_header(header)?;
    let skew = now_secs.abs_diff(parsed.timestamp);
    if skew > TOLERANCE_SECS.unsigned_abs() {
        return Err(SignatureError::Stale { skew_secs: i64::try_from(skew).unwrap_or(i64::MAX) });
    }
    for (i, secret) in secrets.iter().enumerate() {
        match signature::verify(secret, header, uid, body, now_secs) {
            Ok(()) => return Ok(i),
            Err(SignatureError::Mismatch) => continue,
            Err(other) => return Err(other),
        }
    }
    Err(SignatureError::Mismatch)
}

/// What an admin pastes into Omi for one mentor (Omi appends `uid` itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OmiUrls {
    pub memory: String,
    pub transcript: String,
    pub day_summary: String,
    pub setup: String,
}

/// `base` is the worker's origin (`https://r2d1.example.workers.dev`); `token`, when the
/// credential is a token, goes in `?token=` (never in `uid`, which Omi owns).
pub fn omi_urls(base: &str, token: Option<&str>) -> OmiUrls {
    let base = base.trim_end_matches('/');
    let with_token = |path: &str| match token {
        Some(t) => format!("{base}{path}?token={t}"),
        None => format!("{base}{path}"),
    };
    OmiUrls {
        memory: with_token("/api/omi/memory"),
        transcript: with_token("/api/omi/transcript"),
        day_summary: with_token("/api/omi/day-summary"),
        setup: format!("{base}/api/omi/setup"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_MS: i64 = 1_750_000_000_000;
    const NOW: i64 = NOW_MS / 1000;

    fn token_for(uid: &str, seed: u8) -> NewMentorToken {
        NewMentorToken::from_random(uid, &[seed; 32])
    }

    fn cred(id: i64, uid: &str, kind: CredentialKind, material: &str) -> MentorCredential {
        MentorCredential { id, uid: uid.into(), kind, material: material.into(), created_at: 0, retires_at: None, revoked_at: None }
    }

    fn signed(secrets: &[&str], uid: &str, body: &[u8], t: i64) -> String {
        let mut h = format!("t={t}");
        for s in secrets {
            h.push_str(&format!(",v1={}", signature::sign(s, t, uid, body)));
        }
        h
    }

    const OLD: &str = "whsec_old_secret_old_secret_old";
    const NEW: &str = "whsec_new_secret_new_secret_new";
    const APP: &str = "whsec_the_app_secret_of_omi_app";

    #[test]
    fn tokens_carry_their_mentor_and_verify_only_for_it() {
        let a = token_for("alice", 1);
        assert!(a.token.starts_with(&format!("omi_{}_", uid_tag("alice"))));
        assert_eq!(a.token.len(), 4 + TAG_CHARS + 1 + TOKEN_SECRET_CHARS);
        let creds = [cred(1, "alice", CredentialKind::Token, &a.hash)];
        let none = WebhookSettings::default();
        assert_eq!(check_token(none, "alice", Some(&a.token), &creds, NOW_MS), TokenCheck::Accepted(Via::MentorToken { id: 1 }));
        // Alice's token with ?uid=bob: refused before any lookup of bob's credentials.
        assert_eq!(check_token(none, "bob", Some(&a.token), &[], NOW_MS), TokenCheck::Refused(Refusal::WrongMentor));
        // Even if bob's rows were (wrongly) passed, alice's row does not count for bob.
        assert_eq!(check_token(none, "bob", Some(&a.token), &creds, NOW_MS), TokenCheck::Refused(Refusal::WrongMentor));
        let other = token_for("alice", 2);
        assert_eq!(check_token(none, "alice", Some(&other.token), &creds, NOW_MS), TokenCheck::Refused(Refusal::BadToken));
        assert_eq!(check_token(none, "alice", Some("omi_zz_x"), &creds, NOW_MS), TokenCheck::Refused(Refusal::BadToken));
        assert_eq!(check_token(none, "alice", None, &creds, NOW_MS), TokenCheck::Refused(Refusal::NoCredential));
        assert_ne!(NewMentorToken::generate("alice").unwrap(), NewMentorToken::generate("alice").unwrap());
    }

    #[test]
    fn revoked_and_retired_tokens_stop_working() {
        let a = token_for("alice", 1);
        let mut c = cred(1, "alice", CredentialKind::Token, &a.hash);
        c.retires_at = Some(NOW_MS + 1);
        let none = WebhookSettings::default();
        assert!(matches!(check_token(none, "alice", Some(&a.token), &[c.clone()], NOW_MS), TokenCheck::Accepted(_)));
        assert_eq!(check_token(none, "alice", Some(&a.token), &[c.clone()], NOW_MS + 1), TokenCheck::Refused(Refusal::BadToken));
        c.retires_at = None;
        c.revoked_at = Some(NOW_MS);
        assert_eq!(check_token(none, "alice", Some(&a.token), &[c], NOW_MS), TokenCheck::Refused(Refusal::BadToken));
    }

    #[test]
    fn the_legacy_token_works_for_every_uid_until_it_is_unset_or_signatures_are_on() {
        let legacy = WebhookSettings { legacy_token: Some("shared-secret"), app_secret: None };
        assert_eq!(check_token(legacy, "anyone", Some("shared-secret"), &[], NOW_MS), TokenCheck::Accepted(Via::LegacyToken));
        assert_eq!(check_token(legacy, "anyone", Some("shared-secreT"), &[], NOW_MS), TokenCheck::Refused(Refusal::BadToken));
        let unset = WebhookSettings::default();
        assert_eq!(check_token(unset, "anyone", Some("shared-secret"), &[], NOW_MS), TokenCheck::Refused(Refusal::BadToken));
        let signing = WebhookSettings { legacy_token: Some("shared-secret"), app_secret: Some(APP) };
        assert_eq!(check_token(signing, "anyone", Some("shared-secret"), &[], NOW_MS), TokenCheck::NeedSignature);
        // A legacy token that happens to look like a mentor token still works.
        let odd = WebhookSettings { legacy_token: Some("omi_legacy"), app_secret: None };
        assert_eq!(check_token(odd, "u", Some("omi_legacy"), &[], NOW_MS), TokenCheck::Accepted(Via::LegacyToken));
    }

    #[test]
    fn signatures_need_a_secret_valid_for_that_uid() {
        let body = br#"{"id":"m1"}"#;
        let creds = [cred(3, "alice", CredentialKind::SigningSecret, NEW)];
        let none = WebhookSettings::default();
        assert_eq!(check_token(none, "alice", None, &creds, NOW_MS), TokenCheck::NeedSignature);
        let h = signed(&[NEW], "alice", body, NOW);
        assert_eq!(check_signature(none, "alice", Some(&h), body, &creds, NOW_MS), Ok(Via::MentorSignature { id: 3 }));
        // Alice's secret signing for bob: bob has no such secret.
        let forged = signed(&[NEW], "bob", body, NOW);
        assert_eq!(check_signature(none, "bob", Some(&forged), body, &creds, NOW_MS), Err(Refusal::NoCredential));
        let bob = [cred(4, "bob", CredentialKind::SigningSecret, OLD), creds[0].clone()];
        assert_eq!(check_signature(none, "bob", Some(&forged), body, &bob, NOW_MS), Err(Refusal::Signature(SignatureError::Mismatch)));
        assert_eq!(check_signature(none, "alice", None, body, &creds, NOW_MS), Err(Refusal::MissingSignature));
    }

    #[test]
    fn the_app_secret_signs_for_every_uid() {
        let body = b"{}";
        let app = WebhookSettings { legacy_token: None, app_secret: Some(APP) };
        assert_eq!(check_token(app, "anyone", None, &[], NOW_MS), TokenCheck::NeedSignature);
        let h = signed(&[APP], "anyone", body, NOW);
        assert_eq!(check_signature(app, "anyone", Some(&h), body, &[], NOW_MS), Ok(Via::AppSignature));
    }

    #[test]
    fn rotation_keeps_deliveries_flowing_through_the_switch() {
        let body = b"{\"id\":\"m\"}";
        let none = WebhookSettings::default();
        let mut old = cred(1, "alice", CredentialKind::SigningSecret, OLD);
        // The admin adds the new secret: the old one retires after the grace window.
        let plan = retirements(&[old.clone()], CredentialKind::SigningSecret, NOW_MS);
        assert_eq!(plan, vec![(1, NOW_MS + ROTATION_GRACE_MS)]);
        old.retires_at = Some(plan[0].1);
        let creds = [old, cred(2, "alice", CredentialKind::SigningSecret, NEW)];
        // Omi, before it switches: old only. During its rotation: both. After: new only.
        for (secrets, via) in [(vec![OLD], 1), (vec![NEW, OLD], 2), (vec![OLD, NEW], 2), (vec![NEW], 2)] {
            let h = signed(&secrets, "alice", body, NOW);
            assert_eq!(check_signature(none, "alice", Some(&h), body, &creds, NOW_MS), Ok(Via::MentorSignature { id: via }));
        }
        // After the grace window the old secret no longer verifies.
        let later = NOW_MS + ROTATION_GRACE_MS;
        let h = signed(&[OLD], "alice", body, later / 1000);
        assert_eq!(check_signature(none, "alice", Some(&h), body, &creds, later), Err(Refusal::Signature(SignatureError::Mismatch)));
        // A second rotation never extends an earlier retirement.
        assert_eq!(retirements(&creds, CredentialKind::SigningSecret, NOW_MS + 1000), vec![(2, NOW_MS + 1000 + ROTATION_GRACE_MS)]);
        assert!(retirements(&creds, CredentialKind::Token, NOW_MS).is_empty());
    }

    #[test]
    fn timestamps_at_the_extremes_are_stale_not_a_panic() {
        let body = b"{}";
        for t in [i64::MIN, i64::MIN + 1, i64::MAX, -1] {
            let h = format!("t={t},v1={}", signature::sign(NEW, 0, "u", body));
            assert!(matches!(verify_any(&[NEW], &h, "u", body, NOW), Err(SignatureError::Stale { .. })), "{t}");
            // Our own clock at an extreme must not panic either.
            let _ = verify_any(&[NEW], &h, "u", body, i64::MIN);
            let _ = verify_any(&[NEW], &h, "u", body, i64::MAX);
        }
        let h = signed(&[NEW], "u", body, NOW - 300);
        assert_eq!(verify_any(&[OLD, NEW], &h, "u", body, NOW), Ok(1));
        let h = signed(&[NEW], "u", body, NOW - 301);
        assert_eq!(verify_any(&[NEW], &h, "u", body, NOW), Err(SignatureError::Stale { skew_secs: 301 }));
        assert!(matches!(verify_any(&[NEW], "t=1", "u", body, NOW), Err(SignatureError::Malformed(_))));
    }

    #[test]
    fn signing_secrets_are_checked_and_generated_in_omis_format() {
        let s = signing_secret_from_random(&[7; 32]);
        assert!(s.starts_with("whsec_") && s.len() == 6 + 43);
        assert_eq!(check_signing_secret(&s), Ok(()));
        assert!(check_signing_secret("whsec_short").is_err());
        assert!(check_signing_secret("sk_live_0123456789abcdefghijklmnop").is_err());
        assert!(check_signing_secret(&format!("whsec_{}", "a b".repeat(10))).is_err());
    }

    #[test]
    fn the_urls_to_paste_into_omi() {
        let u = omi_urls("https://r2d1.example.dev/", Some("omi_tag_secret"));
        assert_eq!(u.memory, "https://r2d1.example.dev/api/omi/memory?token=omi_tag_secret");
        assert_eq!(u.day_summary, "https://r2d1.example.dev/api/omi/day-summary?token=omi_tag_secret");
        assert_eq!(u.setup, "https://r2d1.example.dev/api/omi/setup");
        assert_eq!(omi_urls("https://h", None).transcript, "https://h/api/omi/transcript");
        assert!(Via::MentorToken { id: 1 }.is_per_mentor() && !Via::AppSignature.is_per_mentor());
    }
}
