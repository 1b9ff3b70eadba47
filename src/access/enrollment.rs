//! Programme enrollment: which uids r2d1 stores deliveries for, and the invite codes that link a
//! uid to a mentor through the Omi app's auth step.
//!
//! `OMI_ENROLLMENT=open` (the default, today's behaviour) stores every authenticated delivery.
//! `required` stores only enrolled uids: anyone can install a public Omi app, and its signed
//! deliveries are genuine, so an unenrolled uid is answered 2xx (a 4xx would count as a failure
//! at Omi and eventually disable the app for everyone) and nothing of it is kept but a counter.
//!
//! Invite codes look like `ABCD-EFGH-JKLM`: 12 characters from an alphabet without the ones
//! people confuse (0/O, 1/I/L, and U, which reads as V), about 59 bits. They are typed by a mentor on a phone, so
//! input is forgiving (case, spaces, dashes); D1 keeps only their SHA-256 (enough for 59 random
//! bits that also expire and are limited per address by the rate limiter).

use serde::{Deserialize, Serialize};

use super::secret::sha256_hex;
use super::webhook::Via;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EnrollmentMode {
    #[default]
    Open,
    Required,
}

impl EnrollmentMode {
    /// `OMI_ENROLLMENT`; unset or blank is `open`.
    pub fn parse(raw: Option<&str>) -> Result<EnrollmentMode, String> {
        match raw.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("open") => Ok(EnrollmentMode::Open),
            Some("required") => Ok(EnrollmentMode::Required),
            Some(other) => Err(format!("OMI_ENROLLMENT must be open or required, got {other:?}")),
        }
    }
}

/// What to do with an authenticated delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Store,
    /// Answer 2xx, store nothing, count the uid as asking.
    Discard,
}

/// A per-mentor credential was issued for its uid by an admin, which is an enrollment in itself.
pub fn admit(mode: EnrollmentMode, enrolled: bool, via: Via) -> Admission {
    match mode {
        EnrollmentMode::Open => Admission::Store,
        EnrollmentMode::Required if enrolled || via.is_per_mentor() => Admission::Store,
        EnrollmentMode::Required => Admission::Discard,
    }
}

/// Omi's `setup_completed_url` answer. Under `required` only enrollment completes the set-up (the
/// mentor is polled while on the invite-code page); under `open`, as today, a first delivery
/// does too.
pub fn setup_completed(mode: EnrollmentMode, enrolled: bool, has_delivered: bool) -> bool {
    match mode {
        EnrollmentMode::Open => enrolled || has_delivered,
        EnrollmentMode::Required => enrolled,
    }
}

/// Letters and digits nobody misreads: no 0 O 1 I L U (U reads as V in some hands).
pub const INVITE_ALPHABET: &[u8; 30] = b"ABCDEFGHJKMNPQRSTVWXYZ23456789";
pub const INVITE_CHARS: usize = 12;
const GROUP: usize = 4;

/// A normalised invite code (`ABCDEFGHJKMN`, shown as `ABCD-EFGH-JKMN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteCode(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InviteCodeError {
    #[error("an invite code has 12 letters and digits, like ABCD-EFGH-JKMN")]
    Length,
    #[error("an invite code uses only A-Z (without I, L, O, U) and 2-9")]
    Character,
}

impl InviteCode {
    /// Uniform over the alphabet: bytes that would bias it (240 and above) are skipped, so the
    /// caller supplies more random bytes than characters ([`INVITE_RANDOM_BYTES`]); `None` in
    /// the (≈10⁻¹⁹) case they run out.
    pub fn from_random(random: &[u8]) -> Option<InviteCode> {
        let limit = (256 / INVITE_ALPHABET.len() * INVITE_ALPHABET.len()) as u8; // 240
        let code: String = random
            .iter()
            .filter(|b| **b < limit)
            .take(INVITE_CHARS)
            .map(|b| INVITE_ALPHABET[usize::from(*b) % INVITE_ALPHABET.len()] as char)
            .collect();
        (code.len() == INVITE_CHARS).then_some(InviteCode(code))
    }

    pub fn generate() -> Result<InviteCode, getrandom::Error> {
        loop {
            if let Some(code) = InviteCode::from_random(&super::secret::random_bytes::<INVITE_RANDOM_BYTES>()?) {
                return Ok(code);
            }
        }
    }

    /// Forgiving input: case, spaces and dashes do not matter.
    pub fn parse(input: &str) -> Result<InviteCode, InviteCodeError> {
        if input.len() > 64 {
            return Err(InviteCodeError::Length);
        }
        let code: String = input.chars().filter(|c| !c.is_whitespace() && *c != '-').map(|c| c.to_ascii_uppercase()).collect();
        if code.chars().count() != INVITE_CHARS {
            return Err(InviteCodeError::Length);
        }
        if !code.bytes().all(|b| INVITE_ALPHABET.contains(&b)) {
            return Err(InviteCodeError::Character);
        }
        Ok(InviteCode(code))
    }

    /// `ABCD-EFGH-JKMN`
    pub fn display(&self) -> String {
        self.0.as_bytes().chunks(GROUP).map(|g| std::str::from_utf8(g).expect("ASCII")).collect::<Vec<_>>().join("-")
    }

    /// What D1 stores and looks up.
    pub fn hash(&self) -> String {
        sha256_hex(&format!("r2d1-invite:{}", self.0))
    }
}

/// Enough random bytes that running out of unbiased ones is practically impossible.
pub const INVITE_RANDOM_BYTES: usize = 48;

/// A row of `invites`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InviteRecord {
    pub id: i64,
    /// Who the code is for, as the programme names them (the mentor directory's entry).
    pub label: String,
    pub max_uses: u32,
    pub uses: u32,
    pub expires_at: i64,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InviteRefusal {
    #[error("this invite code is not valid")]
    Unknown,
    #[error("this invite code has expired; ask the programme for a new one")]
    Expired,
    #[error("this invite code has already been used")]
    UsedUp,
    #[error("this invite code was withdrawn")]
    Revoked,
}

impl InviteRecord {
    pub fn check(&self, now_ms: i64) -> Result<(), InviteRefusal> {
        if self.revoked_at.is_some() {
            Err(InviteRefusal::Revoked)
        } else if now_ms >= self.expires_at {
            Err(InviteRefusal::Expired)
        } else if self.uses >= self.max_uses {
            Err(InviteRefusal::UsedUp)
        } else {
            Ok(())
        }
    }
}

/// The body of `POST /api/admin/invites`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateInviteRequest {
    pub label: String,
    #[serde(default)]
    pub max_uses: Option<u32>,
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteSpec {
    pub label: String,
    pub max_uses: u32,
    pub expires_at: i64,
}

pub const DEFAULT_INVITE_DAYS: u32 = 14;
pub const MAX_INVITE_DAYS: u32 = 90;
pub const MAX_INVITE_USES: u32 = 500;
const DAY_MS: i64 = 86_400_000;

impl CreateInviteRequest {
    /// Single use and two weeks unless asked otherwise. Errors name the field.
    pub fn validate(&self, now_ms: i64) -> Result<InviteSpec, (&'static str, String)> {
        let label = self.label.trim();
        if label.is_empty() || label.chars().count() > 100 || label.chars().any(char::is_control) {
            return Err(("label", "must be 1-100 printable characters".into()));
        }
        let max_uses = self.max_uses.unwrap_or(1);
        if !(1..=MAX_INVITE_USES).contains(&max_uses) {
            return Err(("maxUses", format!("must be from 1 to {MAX_INVITE_USES}")));
        }
        let days = self.expires_in_days.unwrap_or(DEFAULT_INVITE_DAYS);
        if !(1..=MAX_INVITE_DAYS).contains(&days) {
            return Err(("expiresInDays", format!("must be from 1 to {MAX_INVITE_DAYS}")));
        }
        Ok(InviteSpec { label: label.to_string(), max_uses, expires_at: now_ms.saturating_add(i64::from(days) * DAY_MS) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mode_defaults_to_open_and_bad_values_name_the_setting() {
        assert_eq!(EnrollmentMode::parse(None), Ok(EnrollmentMode::Open));
        assert_eq!(EnrollmentMode::parse(Some(" ")), Ok(EnrollmentMode::Open));
        assert_eq!(EnrollmentMode::parse(Some("Required")), Ok(EnrollmentMode::Required));
        assert!(EnrollmentMode::parse(Some("closed")).unwrap_err().contains("OMI_ENROLLMENT"));
    }

    #[test]
    fn required_mode_drops_unenrolled_uids_quietly() {
        use EnrollmentMode::*;
        assert_eq!(admit(Open, false, Via::AppSignature), Admission::Store);
        assert_eq!(admit(Required, false, Via::AppSignature), Admission::Discard);
        assert_eq!(admit(Required, false, Via::LegacyToken), Admission::Discard);
        assert_eq!(admit(Required, true, Via::AppSignature), Admission::Store);
        assert_eq!(admit(Required, false, Via::MentorSignature { id: 1 }), Admission::Store);
        assert!(!setup_completed(Required, false, true));
        assert!(setup_completed(Required, true, false));
        assert!(setup_completed(Open, false, true));
        assert!(!setup_completed(Open, false, false));
    }

    #[test]
    fn codes_are_unambiguous_grouped_and_forgiving() {
        let code = InviteCode::generate().unwrap();
        let shown = code.display();
        assert_eq!(shown.len(), 14);
        assert_eq!(shown.matches('-').count(), 2);
        assert_eq!(InviteCode::parse(&shown), Ok(code.clone()));
        assert_eq!(InviteCode::parse(&shown.to_lowercase().replace('-', " ")), Ok(code.clone()));
        assert_ne!(code, InviteCode::generate().unwrap());
        assert!(!INVITE_ALPHABET.iter().any(|c| b"01ILOU".contains(c)));
        assert_eq!(InviteCode::parse("ABCD-EFGH-JKM"), Err(InviteCodeError::Length));
        assert_eq!(InviteCode::parse("ABCD-EFGH-JKM0"), Err(InviteCodeError::Character));
        assert_eq!(InviteCode::parse("ABCD-EFGH-JKMÑ"), Err(InviteCodeError::Character));
        assert_eq!(InviteCode::parse(&"A".repeat(65)), Err(InviteCodeError::Length));
    }

    #[test]
    fn codes_come_from_unbiased_bytes() {
        // 240..=255 would favour the first 16 characters: they are skipped.
        let mut random = vec![255u8, 240, 0];
        random.extend(1..=11);
        let code = InviteCode::from_random(&random).unwrap();
        assert_eq!(code.display(), "ABCD-EFGH-JKMN");
        assert_eq!(InviteCode::from_random(&[250; 48]), None);
        assert_eq!(InviteCode::from_random(&[29, 59, 89, 119, 149, 179, 209, 239, 0, 0, 0, 0]).unwrap().display(), "9999-9999-AAAA");
    }

    #[test]
    fn the_hash_is_of_the_normalised_code() {
        let a = InviteCode::parse("abcd-efgh-jkmn").unwrap();
        assert_eq!(a.hash(), InviteCode::parse("ABCDEFGHJKMN").unwrap().hash());
        assert_ne!(a.hash(), InviteCode::parse("ABCDEFGHJKMP").unwrap().hash());
        assert!(!a.hash().contains("ABCD"));
    }

    #[test]
    fn invites_expire_run_out_and_can_be_withdrawn() {
        let mut r = InviteRecord { id: 1, label: "Ana".into(), max_uses: 1, uses: 0, expires_at: 1_000, created_at: 0, revoked_at: None };
        assert_eq!(r.check(999), Ok(()));
        assert_eq!(r.check(1_000), Err(InviteRefusal::Expired));
        r.uses = 1;
        assert_eq!(r.check(0), Err(InviteRefusal::UsedUp));
        r.revoked_at = Some(0);
        assert_eq!(r.check(0), Err(InviteRefusal::Revoked));
    }

    #[test]
    fn create_requests_default_to_single_use_for_two_weeks() {
        let req = |label: &str, uses: Option<u32>, days: Option<u32>| CreateInviteRequest {
            label: label.into(),
            max_uses: uses,
            expires_in_days: days,
        };
        assert_eq!(req(" Ana ", None, None).validate(0), Ok(InviteSpec { label: "Ana".into(), max_uses: 1, expires_at: 14 * DAY_MS }));
        assert_eq!(req("", None, None).validate(0).unwrap_err().0, "label");
        assert_eq!(req("x", Some(0), None).validate(0).unwrap_err().0, "maxUses");
        assert_eq!(req("x", Some(MAX_INVITE_USES + 1), None).validate(0).unwrap_err().0, "maxUses");
        assert_eq!(req("x", None, Some(91)).validate(0).unwrap_err().0, "expiresInDays");
        assert_eq!(req("x", Some(30), Some(90)).validate(i64::MAX).unwrap().expires_at, i64::MAX);
    }
}
