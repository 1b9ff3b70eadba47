//! Typed configuration, read once per request from the Worker's vars and secrets.
//!
//! Parsing is pure (it takes a lookup function), so defaults and validation are unit-tested on
//! the host. Secrets are kept in [`Secret`], whose `Debug` never prints the value.

use std::fmt;

use crate::access::audit::parse_retention_days;
use crate::access::enrollment::EnrollmentMode;
use crate::cors::AllowedOrigins;
use crate::files::costs::{Prices, DEFAULT_HYBRID_MAX_BYTES, DEFAULT_INLINE_MAX_BYTES};
use crate::files::lifecycle::Quota;
use crate::files::rollout::Rollout;
use crate::files::signed_url::UrlKey;
use crate::omi::reply::ReplyMessage;
use crate::store::gc::Grace;

/// A secret string that never shows up in logs or debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where app file content lives (see `files::tier`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageMode {
    /// Everything inline in D1.
    Database,
    /// Tiered by size: inline, both, or R2 only.
    Hybrid,
    /// Everything in R2.
    R2,
}

impl StorageMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "database" => Some(StorageMode::Database),
            "hybrid" => Some(StorageMode::Hybrid),
            "r2" => Some(StorageMode::R2),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StorageMode::Database => "database",
            StorageMode::Hybrid => "hybrid",
            StorageMode::R2 => "r2",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The bootstrap admin credential: `Authorization: Bearer` passes every key route.
    pub api_token: Option<Secret>,
    /// Legacy shared webhook token (`?token=` or Bearer), valid for every uid while set.
    pub omi_webhook_token: Option<Secret>,
    /// The Omi app's `whsec_…` signing secret: a valid `X-Omi-Signature` by it is accepted for
    /// every uid, and the legacy token is then ignored.
    pub omi_signing_secret: Option<Secret>,
    /// The secret Omi signs chat-tool calls with (`v2`); unset, the app's signing secret
    /// (`OMI_SIGNING_SECRET`) is used, since an Omi app has one secret for both. With
    /// neither, the tools answer 503: they would otherwise serve any uid's logs to anyone.
    pub omi_tools_secret: Option<Secret>,
    /// `OMI_ENROLLMENT`: whether deliveries of uids nobody enrolled are stored.
    pub omi_enrollment: EnrollmentMode,
    /// `AUDIT_RETENTION_DAYS`: how long the audit log keeps its rows.
    pub audit_retention_days: u32,
    pub max_body_bytes: usize,
    pub write_daily_copy: bool,
    pub r2_public_url: Option<String>,
    pub retention_days: Option<u32>,
    pub inline_max_bytes: usize,
    pub hybrid_max_bytes: usize,
    pub storage_mode: StorageMode,
    /// How long an unreferenced object is kept before the GC condemns it (and a condemned one
    /// before it may be deleted). At least an hour: see `store::gc`.
    pub gc_grace: Grace,
    /// The rollout as the variables set it (`STORAGE_R2_PERCENT`, `STORAGE_ROLLBACK`); rows of
    /// the D1 `storage_settings` table win over it (see `files::rollout`).
    pub rollout: Rollout,
    /// Quotas of every app that sets none of its own (`APP_MAX_BYTES`, `APP_MAX_FILES`,
    /// `APP_MAX_VERSIONS`; unset: unlimited).
    pub default_quota: Quota,
    /// The storage report's price table (`PRICE_*`, defaults: Cloudflare's list prices).
    pub prices: Prices,
    /// Key of signed URLs, derived from `SIGNED_URL_SECRET`; unset: no signed URLs.
    pub signed_url_key: Option<UrlKey>,
    /// The subrequests (R2 and D1 calls) one request may make: the Workers plan's limit (50
    /// on Free). Reads that could need more (a long transcript, an export with content, a
    /// mentor's archive) are served in pages or parts that stay under it.
    pub subrequest_budget: u32,
    /// Origins whose browsers may call the API (`ALLOWED_ORIGINS`; see `cors`).
    pub allowed_origins: AllowedOrigins,
    /// Whether the memory answer carries a `message` (`OMI_REPLY_MESSAGE`; see `omi::reply`).
    pub omi_reply_message: ReplyMessage,
}

pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// The Free plan's subrequest limit per request.
pub const DEFAULT_SUBREQUEST_BUDGET: u32 = 50;
/// Below this a request cannot read a page and an object.
pub const MIN_SUBREQUEST_BUDGET: u32 = 10;

impl Config {
    /// The chat tools' signing secret: `OMI_TOOLS_SECRET`, else `OMI_SIGNING_SECRET`.
    pub fn tools_secret(&self) -> Option<&Secret> {
        self.omi_tools_secret.as_ref().or(self.omi_signing_secret.as_ref())
    }

    /// Reads every setting through `lookup` (vars and secrets by name). Empty strings count as
    /// unset, so a blank line in `.dev.vars` does not become an empty, guessable token.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let secret = |name: &str| get(name).map(Secret);
        let number = |name: &str, default: usize| -> Result<usize, String> {
            match get(name) {
                None => Ok(default),
                Some(v) => v.parse().map_err(|_| format!("{name} must be a whole number, got {v:?}")),
            }
        };
        let flag = |name: &str, default: bool| -> Result<bool, String> {
            match get(name).map(|v| v.to_ascii_lowercase()) {
                None => Ok(default),
                Some(v) if ["1", "true", "yes", "on"].contains(&v.as_str()) => Ok(true),
                Some(v) if ["0", "false", "no", "off"].contains(&v.as_str()) => Ok(false),
                Some(v) => Err(format!("{name} must be true or false, got {v:?}")),
            }
        };

        // Defaults chosen so the plan's example (100 apps x 85 files x 5 KB) keeps 70-80 % of its
        // bytes out of D1: see `files::costs`.
        let inline_max_bytes = number("INLINE_MAX_BYTES", DEFAULT_INLINE_MAX_BYTES)?;
        let hybrid_max_bytes = number("HYBRID_MAX_BYTES", DEFAULT_HYBRID_MAX_BYTES)?;
        if hybrid_max_bytes < inline_max_bytes {
            return Err("HYBRID_MAX_BYTES must not be smaller than INLINE_MAX_BYTES".into());
        }
        let storage_mode = match get("STORAGE_MODE") {
            None => StorageMode::Hybrid,
            Some(v) => StorageMode::parse(&v).ok_or_else(|| format!("STORAGE_MODE must be database, hybrid or r2, got {v:?}"))?,
        };
        let retention_days = match get("RETENTION_DAYS") {
            None => None,
            Some(v) => Some(v.parse::<u32>().map_err(|_| format!("RETENTION_DAYS must be a whole number, got {v:?}"))?).filter(|d| *d > 0),
        };

        let subrequest_budget = number("SUBREQUEST_BUDGET", DEFAULT_SUBREQUEST_BUDGET as usize)?;
        if subrequest_budget < MIN_SUBREQUEST_BUDGET as usize || subrequest_budget > 1_000_000 {
            return Err(format!("SUBREQUEST_BUDGET must be from {MIN_SUBREQUEST_BUDGET} to 1000000, got {subrequest_budget}"));
        }

        let gc_grace = match get("GC_GRACE_HOURS") {
            None => Grace::default(),
            Some(v) => Grace::from_hours(&v).map_err(|why| format!("GC_GRACE_HOURS {why}"))?,
        };

        let rollout = Rollout::from_sources(get, |_| None)?;
        let default_quota = Quota::from_lookup(get)?;
        let prices = Prices::from_lookup(get)?;
        let signed_url_key = get("SIGNED_URL_SECRET").map(|s| UrlKey::from_secret(&s)).transpose()?;
        let allowed_origins = AllowedOrigins::parse(get("ALLOWED_ORIGINS").as_deref())?;
        let omi_reply_message = ReplyMessage::parse(get("OMI_REPLY_MESSAGE").as_deref())?;

        Ok(Config {
            api_token: secret("API_TOKEN"),
            omi_webhook_token: secret("OMI_WEBHOOK_TOKEN"),
            omi_signing_secret: secret("OMI_SIGNING_SECRET"),
            omi_tools_secret: secret("OMI_TOOLS_SECRET"),
            omi_enrollment: EnrollmentMode::parse(get("OMI_ENROLLMENT").as_deref())?,
            audit_retention_days: parse_retention_days(get("AUDIT_RETENTION_DAYS").as_deref())?,
            max_body_bytes: number("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)?,
            write_daily_copy: flag("WRITE_DAILY_COPY", true)?,
            r2_public_url: get("R2_PUBLIC_URL").map(|u| u.trim_end_matches('/').to_string()),
            retention_days,
            inline_max_bytes,
            hybrid_max_bytes,
            storage_mode,
            gc_grace,
            rollout,
            default_quota,
            prices,
            signed_url_key,
            subrequest_budget: subrequest_budget as u32,
            allowed_origins,
            omi_reply_message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let c = config(&[]).unwrap();
        assert!(c.api_token.is_none());
        assert_eq!(c.max_body_bytes, 8 * 1024 * 1024);
        assert!(c.write_daily_copy);
        assert_eq!(c.inline_max_bytes, 1024);
        assert_eq!(c.hybrid_max_bytes, 2048);
        assert_eq!(c.rollout, Rollout::default());
        assert_eq!(c.default_quota, Quota::default());
        assert_eq!(c.prices, Prices::default());
        assert!(c.signed_url_key.is_none());
        assert_eq!(c.subrequest_budget, 50);
        assert_eq!(c.storage_mode, StorageMode::Hybrid);
        assert_eq!(c.retention_days, None);
        assert_eq!(c.gc_grace, Grace::default());
        assert_eq!(c.allowed_origins, AllowedOrigins::None);
        assert_eq!(c.omi_reply_message, ReplyMessage::Auto);
        assert_eq!(c.omi_enrollment, EnrollmentMode::Open);
        assert_eq!(c.audit_retention_days, 365);
    }

    #[test]
    fn origins_and_the_reply_message_are_read_and_checked() {
        let c = config(&[("ALLOWED_ORIGINS", "https://dash.example.org"), ("OMI_REPLY_MESSAGE", "off")]).unwrap();
        assert_eq!(c.allowed_origins, AllowedOrigins::List(vec!["https://dash.example.org".into()]));
        assert_eq!(c.omi_reply_message, ReplyMessage::Off);
        assert!(config(&[("ALLOWED_ORIGINS", "dash.example.org")]).unwrap_err().contains("ALLOWED_ORIGINS"));
        assert!(config(&[("OMI_REPLY_MESSAGE", "shout")]).unwrap_err().contains("OMI_REPLY_MESSAGE"));
    }

    #[test]
    fn access_settings_are_read_and_checked() {
        let c = config(&[("OMI_ENROLLMENT", "required"), ("AUDIT_RETENTION_DAYS", "30")]).unwrap();
        assert_eq!(c.omi_enrollment, EnrollmentMode::Required);
        assert_eq!(c.audit_retention_days, 30);
        assert!(config(&[("OMI_ENROLLMENT", "closed")]).unwrap_err().contains("OMI_ENROLLMENT"));
        assert!(config(&[("AUDIT_RETENTION_DAYS", "0")]).unwrap_err().contains("AUDIT_RETENTION_DAYS"));
    }

    #[test]
    fn the_tools_secret_falls_back_to_the_signing_secret_and_the_budget_is_bounded() {
        assert!(config(&[]).unwrap().tools_secret().is_none());
        assert_eq!(config(&[("OMI_SIGNING_SECRET", "whsec_a")]).unwrap().tools_secret().unwrap().expose(), "whsec_a");
        let both = config(&[("OMI_SIGNING_SECRET", "whsec_a"), ("OMI_TOOLS_SECRET", "whsec_t")]).unwrap();
        assert_eq!(both.tools_secret().unwrap().expose(), "whsec_t");
        assert_eq!(config(&[]).unwrap().subrequest_budget, 50);
        assert_eq!(config(&[("SUBREQUEST_BUDGET", "1000")]).unwrap().subrequest_budget, 1000);
        assert!(config(&[("SUBREQUEST_BUDGET", "5")]).unwrap_err().contains("SUBREQUEST_BUDGET"));
        assert!(config(&[("SUBREQUEST_BUDGET", "many")]).unwrap_err().contains("SUBREQUEST_BUDGET"));
    }

    #[test]
    fn a_gc_grace_below_the_floor_is_refused() {
        assert!(config(&[("GC_GRACE_HOURS", "0")]).unwrap_err().contains("GC_GRACE_HOURS"));
        assert!(config(&[("GC_GRACE_HOURS", "0.25")]).unwrap_err().contains("GC_GRACE_HOURS"));
        assert_eq!(config(&[("GC_GRACE_HOURS", "2")]).unwrap().gc_grace.ms(), 7_200_000);
    }

    #[test]
    fn issue_13_settings_are_read_and_checked() {
        let c = config(&[
            ("STORAGE_R2_PERCENT", "10"),
            ("STORAGE_ROLLBACK", "on"),
            ("APP_MAX_FILES", "100"),
            ("PRICE_R2_STORAGE_GB_MONTH", "0.02"),
            ("SIGNED_URL_SECRET", &"s".repeat(32)),
            ("SUBREQUEST_BUDGET", "50"),
        ])
        .unwrap();
        assert_eq!(c.rollout, Rollout { r2_basis_points: 1_000, rollback: true });
        assert_eq!(c.default_quota.max_files, Some(100));
        assert_eq!(c.prices.r2_storage_gb_month, 0.02);
        assert!(c.signed_url_key.is_some());
        assert_eq!(c.subrequest_budget, 50);
        for (name, bad) in [
            ("STORAGE_R2_PERCENT", "150"),
            ("STORAGE_ROLLBACK", "maybe"),
            ("APP_MAX_BYTES", "lots"),
            ("PRICE_D1_STORAGE_GB_MONTH", "-1"),
            ("SIGNED_URL_SECRET", "short"),
            ("SUBREQUEST_BUDGET", "5"),
        ] {
            let e = config(&[(name, bad)]).unwrap_err();
            assert!(e.contains(name), "{name}: {e}");
        }
        // The secret never prints.
        assert!(!format!("{c:?}").contains(&"s".repeat(32)));
    }

    #[test]
    fn blank_secrets_count_as_missing() {
        let c = config(&[("API_TOKEN", "  "), ("OMI_WEBHOOK_TOKEN", "tok")]).unwrap();
        assert!(c.api_token.is_none());
        assert_eq!(c.omi_webhook_token.unwrap().expose(), "tok");
    }

    #[test]
    fn secrets_never_print() {
        let c = config(&[("API_TOKEN", "hunter2")]).unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn bad_values_are_reported_by_name() {
        assert!(config(&[("MAX_BODY_BYTES", "lots")]).unwrap_err().contains("MAX_BODY_BYTES"));
        assert!(config(&[("WRITE_DAILY_COPY", "maybe")]).unwrap_err().contains("WRITE_DAILY_COPY"));
        assert!(config(&[("STORAGE_MODE", "tape")]).unwrap_err().contains("STORAGE_MODE"));
        assert!(config(&[("INLINE_MAX_BYTES", "2048"), ("HYBRID_MAX_BYTES", "1024")]).is_err());
        let c = config(&[("WRITE_DAILY_COPY", "off"), ("STORAGE_MODE", "R2"), ("RETENTION_DAYS", "30")]).unwrap();
        assert!(!c.write_daily_copy);
        assert_eq!(c.storage_mode, StorageMode::R2);
        assert_eq!(c.retention_days, Some(30));
    }
}
