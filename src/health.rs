//! `GET /api/health`: proves both bindings answer, and which schema the database is on; warns
//! about settings that leave a door open (a shared webhook token, a missing rate limiter).

use serde::{Deserialize, Serialize};
use worker::Response;

use crate::access::enrollment::EnrollmentMode;
use crate::error::Result;
use crate::http::{self, App};
use crate::stmt;
use crate::store::limiter;

#[derive(Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    r2: bool,
    d1: bool,
    schema_version: Option<i64>,
    /// The rate-limit bindings present (a missing one means no limit of that kind).
    limiters: serde_json::Map<String, serde_json::Value>,
    enrollment: EnrollmentMode,
    /// Settings an operator should change; they do not make the worker unhealthy.
    warnings: Vec<String>,
}

#[derive(Deserialize)]
struct SchemaRow {
    version: Option<i64>,
}

/// What an operator should know about the configuration (pure: tested on the host).
pub fn warnings(legacy_webhook_token: bool, api_token: bool, missing_limiters: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    if legacy_webhook_token {
        out.push(
            "OMI_WEBHOOK_TOKEN is set: anyone holding it can write as any mentor. Give each mentor a credential \
             (POST /api/admin/mentors/{uid}/credentials) and unset it."
                .to_string(),
        );
    }
    if !api_token {
        out.push("API_TOKEN is not set: only API keys open the API, and live tickets cannot be issued.".to_string());
    }
    for name in missing_limiters {
        out.push(format!("the rate-limit binding {name} is missing: that limit is not enforced (see wrangler.toml [[ratelimits]])"));
    }
    out
}

/// Whether `OMI_WEBHOOK_TOKEN` opens the webhooks: set, and not ignored because the app's
/// signing secret is (signature mode).
pub fn legacy_token_accepted(config: &crate::config::Config) -> bool {
    config.omi_webhook_token.is_some() && config.omi_signing_secret.is_none()
}

pub async fn get(app: &App) -> Result<Response> {
    // A HEAD of a key that never exists is the cheapest call that still reaches the bucket.
    let r2 = match app.blobs() {
        Ok(blobs) => blobs.head("__r2d1_health_probe").await.is_ok(),
        Err(_) => false,
    };
    let schema_version = match app.meta() {
        Ok(meta) => meta
            .first::<SchemaRow>(stmt!("SELECT MAX(version) AS version FROM schema_version"))
            .await
            .ok()
            .flatten()
            .and_then(|r| r.version),
        Err(_) => None,
    };
    let d1 = schema_version.is_some();
    let healthy = r2 && d1;
    let mut limiters = serde_json::Map::new();
    let mut missing = Vec::new();
    for name in limiter::ALL {
        let bound = limiter::is_bound(&app.env, name);
        limiters.insert(name.to_string(), bound.into());
        if !bound {
            missing.push(name);
        }
    }
    let body = Health {
        status: if healthy { "ok" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        r2,
        d1,
        schema_version,
        limiters,
        enrollment: app.config.omi_enrollment,
        warnings: warnings(legacy_token_accepted(&app.config), app.config.api_token.is_some(), &missing),
    };
    http::json(if healthy { 200 } else { 503 }, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_doors_are_named() {
        assert!(warnings(false, true, &[]).is_empty());
        let w = warnings(true, false, &["AUTH_LIMITER"]);
        assert_eq!(w.len(), 3);
        assert!(w[0].contains("write as any mentor"));
        assert!(w[2].contains("AUTH_LIMITER"));
    }
}
