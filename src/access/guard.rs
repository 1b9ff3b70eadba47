//! The edge of access control: what the router runs before a handler, with the bindings the pure
//! modules leave out. It turns an `Authorization` header into a [`Principal`] (one D1 read for
//! an API key, none for `API_TOKEN`), a webhook's credentials into a [`Via`], counts failed
//! authentications per client address (`AUTH_LIMITER`), applies `OMI_ENROLLMENT`, and writes the
//! audit log after the response.
//!
//! Throttling: every failed authentication calls the limiter under the client's address. Once
//! an address is over its budget it is answered 429 — and, for the credentials a person chose
//! and could be guessing (`API_TOKEN`, `OMI_WEBHOOK_TOKEN`, invite codes), 429 even when the
//! guess is right, until the period ends: otherwise "429 means wrong" would leave guessing at
//! line speed open. The limiter binding cannot be read without counting, so the block is kept
//! as an entry in the Cache API (per colo, like the limiter) that those credentials check.
//! API keys and mentor tokens carry 256 random bits and skip that lookup.

use serde_json::json;
use worker::{Cache, Headers, Request, Response};

use super::api_key::{classify, Presented, LAST_USED_RESOLUTION_MS};
use super::audit::{self, AuditRecord, Outcome};
use super::enrollment::{self, Admission};
use super::repo::{self, AccessRepo, CredentialRow};
use super::rule::{Access, Decision, Grant, KeyRule, Principal, RequestParams, Rule};
use super::ticket::LiveGrant;
use super::webhook::{self, check_signature, check_token, MentorCredential, Refusal, TokenCheck, Via, WebhookSettings};
use crate::app::App;
use crate::error::{Error, Result};
use crate::http;
use crate::store::digest::sha256_hex;
use crate::store::limiter;

/// How long an address stays blocked once it used up its failed-authentication budget: the
/// limiter's period (wrangler.toml `AUTH_LIMITER`, 60 s).
pub const BLOCK_SECS: u64 = 60;

/// What the router learned about the caller, handed to the handler through [`App::caller`].
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The route's access rule.
    pub access: Option<Access>,
    /// The authenticated key (key and live routes).
    pub principal: Option<Principal>,
    /// What the rule lets the handler serve: `grant.only` is a forced filter.
    pub grant: Grant,
    /// The live socket's grant (what the hub filters events by).
    pub live: Option<LiveGrant>,
    /// How a webhook delivery authenticated before its body was read.
    pub webhook: Option<WebhookPass>,
}

#[derive(Debug, Clone)]
pub enum WebhookPass {
    Accepted(Via),
    /// Read the body (bounded), then [`finish_webhook`]. `loaded`: the uid's credentials, when
    /// the token check already read them (so the signature check does not read them again).
    NeedSignature {
        loaded: Option<Vec<CredentialRow>>,
    },
}

/// The address failed authentications are counted by: Cloudflare's `CF-Connecting-IP` (which
/// a client cannot set through Cloudflare), else one shared bucket.
pub fn client_address(req: &Request) -> String {
    http::header(req, "CF-Connecting-IP")
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty() && a.len() <= 64)
        .unwrap_or_else(|| "unknown".into())
}

fn block_url(address: &str) -> String {
    format!("https://r2d1.internal/auth-blocked/{}", &sha256_hex(address.as_bytes())[..32])
}

/// Whether `address` is blocked (see the module doc). A cache failure never blocks.
pub async fn is_blocked(address: &str) -> bool {
    matches!(Cache::default().get(block_url(address), false).await, Ok(Some(_)))
}

async fn block(address: &str) {
    let headers = Headers::new();
    let _ = headers.set("Cache-Control", &format!("max-age={BLOCK_SECS}"));
    if let Ok(resp) = Response::ok("blocked").map(|r| r.with_headers(headers)) {
        if let Err(e) = Cache::default().put(block_url(address), resp).await {
            worker::console_warn!("r2d1 auth: could not record a block: {e}");
        }
    }
}

pub fn too_many() -> Error {
    Error::TooManyRequests {
        message: "too many failed authentications from this address; retry in a minute".into(),
        retry_after_secs: BLOCK_SECS,
    }
}

/// A failed authentication: counted against the address; `refusal` (a 401) unless the address
/// is now over its budget (429, and blocked for the period).
pub async fn failed(app: &App, address: &str, refusal: Error) -> Error {
    match limiter::allow_on(&app.env, limiter::AUTH, &format!("auth:{address}")).await {
        Ok(true) | Err(_) => refusal,
        Ok(false) => {
            block(address).await;
            too_many()
        }
    }
}

/// Refuses a right guess of a guessable credential from a blocked address.
async fn unless_blocked(address: &str) -> Result<()> {
    if is_blocked(address).await {
        Err(too_many())
    } else {
        Ok(())
    }
}

// --- keys ---------------------------------------------------------------------------------

/// The caller of a key route: `API_TOKEN` or a usable API key; 401 otherwise (503 while
/// `API_TOKEN` is unset and nothing key-shaped was presented: the API is closed, not open).
pub async fn authenticate(app: &App, req: &Request) -> Result<Principal> {
    let header = http::header(req, "Authorization");
    let api_token = app.config.api_token.as_ref().map(|t| t.expose());
    let address = client_address(req);
    match classify(header.as_deref(), api_token) {
        Presented::BootstrapToken => {
            unless_blocked(&address).await?;
            Ok(Principal::bootstrap())
        }
        Presented::ApiKey(key) => {
            let row = AccessRepo::new(app.meta()?).key(key.prefix).await?;
            let record = row.as_ref().filter(|r| key.matches(&r.hash)).and_then(|r| r.record());
            match record {
                Some(r) if r.is_usable(app.now_ms) => {
                    if r.needs_touch(app.now_ms) {
                        touch_key(app, r.id).await;
                    }
                    Ok(r.principal())
                }
                _ => Err(failed(app, &address, unauthorized()).await),
            }
        }
        Presented::Nothing if api_token.is_none() => Err(not_configured()),
        Presented::Nothing => Err(unauthorized()),
        Presented::Unknown if api_token.is_none() => Err(failed(app, &address, not_configured()).await),
        Presented::Unknown => Err(failed(app, &address, unauthorized()).await),
    }
}

fn not_configured() -> Error {
    Error::NotConfigured("API_TOKEN is not set; the API stays closed until it is (or use an API key)".into())
}

fn unauthorized() -> Error {
    Error::Unauthorized(Decision::Unauthenticated.message().unwrap_or_default())
}

async fn touch_key(app: &App, id: i64) {
    let Ok(meta) = app.meta() else { return };
    let stmt = repo::touch_key(id, app.now_ms, LAST_USED_RESOLUTION_MS);
    app.after_response(async move {
        if let Err(e) = meta.run(stmt).await {
            worker::console_warn!("r2d1 auth: last_used_at not recorded: {e}");
        }
    })
    .await;
}

/// Applies a key rule to an authenticated caller: the grant the handler serves under; 403
/// names the missing scope.
pub fn authorize(rule: &KeyRule, principal: &Principal, params: &RequestParams<'_>) -> Result<Grant> {
    match rule.authorize(Some(principal), params) {
        Decision::Allow(grant) => Ok(grant),
        Decision::Forbidden { missing } => Err(Error::Forbidden { scope: missing.to_string() }),
        Decision::Unauthenticated => Err(unauthorized()),
    }
}

/// The live socket's rule: a ticket offered as a subprotocol, or a Bearer credential.
pub async fn check_live(app: &App, req: &Request, rule: &Rule, params: &RequestParams<'_>) -> Result<(LiveGrant, Grant)> {
    let offered = http::header(req, "Sec-WebSocket-Protocol").unwrap_or_default();
    let grant = match crate::live::ticket::from_protocols(&offered) {
        Some(t) => {
            let secret = ticket_secret(app)?;
            match super::ticket::verify(secret.as_bytes(), t, app.now_ms) {
                Some(g) => g,
                None => {
                    let address = client_address(req);
                    return Err(failed(
                        app,
                        &address,
                        Error::Unauthorized("invalid or expired live ticket; get a new one from POST /api/live/ticket".into()),
                    )
                    .await);
                }
            }
        }
        None => {
            let principal = authenticate(app, req).await?;
            LiveGrant::for_principal(&principal, app.config.api_token.as_ref().map(|t| t.expose()).unwrap_or(""))
        }
    };
    match rule.authorize(&grant.scopes, params) {
        Decision::Allow(g) => Ok((grant, g)),
        Decision::Forbidden { missing } => Err(Error::Forbidden { scope: missing.to_string() }),
        Decision::Unauthenticated => Err(unauthorized()),
    }
}

/// The key live tickets are signed with: `API_TOKEN`, so rotating it revokes every ticket.
pub fn ticket_secret(app: &App) -> Result<String> {
    app.config
        .api_token
        .as_ref()
        .map(|t| t.expose().to_string())
        .ok_or_else(|| Error::NotConfigured("API_TOKEN is not set; live tickets are signed with it".into()))
}

// --- webhooks -----------------------------------------------------------------------------

fn settings(app: &App) -> WebhookSettings<'_> {
    WebhookSettings {
        legacy_token: app.config.omi_webhook_token.as_ref().map(|t| t.expose()),
        app_secret: app.config.omi_signing_secret.as_ref().map(|t| t.expose()),
    }
}

async fn mentor_credentials(app: &App, uid: &str) -> Result<Vec<CredentialRow>> {
    AccessRepo::new(app.meta()?).live_credentials(uid, app.now_ms).await
}

fn parsed(rows: &[CredentialRow]) -> Vec<MentorCredential> {
    rows.iter().filter_map(CredentialRow::credential).collect()
}

fn refused(r: Refusal) -> Error {
    Error::Unauthorized(r.to_string())
}

/// The webhook's check before its body is read. D1 is asked for the uid's credentials only when
/// they can change the answer (a mentor token, or no token and no app secret: a mentor signing
/// secret), so deliveries with the legacy token or the app's signature cost no extra read.
pub async fn check_webhook(app: &App, req: &Request, uid: &str) -> Result<WebhookPass> {
    let s = settings(app);
    let header = http::header(req, "Authorization");
    let token = http::query_param(req, "token").or_else(|| crate::auth::bearer_token(header.as_deref()).map(str::to_string));
    let is_legacy = |t: &str| s.legacy_token.is_some_and(|l| crate::auth::tokens_match(t, l));
    let needs_lookup = match token.as_deref() {
        Some(t) => t.starts_with(webhook::TOKEN_SCHEME) && !(s.app_secret.is_none() && is_legacy(t)),
        None => s.app_secret.is_none(),
    };
    let loaded = if needs_lookup { Some(mentor_credentials(app, uid).await?) } else { None };
    let rows = loaded.clone().unwrap_or_default();
    let address = client_address(req);
    match check_token(s, uid, token.as_deref(), &parsed(&rows), app.now_ms) {
        TokenCheck::Accepted(via) => {
            if via == Via::LegacyToken {
                unless_blocked(&address).await?;
            }
            touch_credential(app, &rows, via).await;
            Ok(WebhookPass::Accepted(via))
        }
        TokenCheck::NeedSignature => Ok(WebhookPass::NeedSignature { loaded }),
        TokenCheck::Refused(r) => Err(failed(app, &address, refused(r)).await),
    }
}

/// After the bounded read: the signature, when the token check asked for one. The app's secret
/// is tried first (no D1 read); the uid's own signing secrets only if it does not verify.
pub async fn finish_webhook(app: &App, req: &Request, uid: &str, body: &[u8]) -> Result<Via> {
    let pass = app.caller.webhook.clone().ok_or_else(|| Error::Internal("webhook route without its access check".into()))?;
    let via = match pass {
        WebhookPass::Accepted(via) => return Ok(via),
        WebhookPass::NeedSignature { loaded } => {
            let s = settings(app);
            let sig = http::header(req, "X-Omi-Signature");
            let app_only = WebhookSettings { legacy_token: None, app_secret: s.app_secret };
            let first = if s.app_secret.is_some() {
                check_signature(app_only, uid, sig.as_deref(), body, &[], app.now_ms)
            } else {
                Err(Refusal::NoCredential)
            };
            match first {
                Ok(via) => via,
                Err(Refusal::MissingSignature) => return Err(failed(app, &client_address(req), refused(Refusal::MissingSignature)).await),
                Err(first_refusal) => {
                    let rows = match loaded {
                        Some(rows) => rows,
                        None => mentor_credentials(app, uid).await?,
                    };
                    let mine = parsed(&rows);
                    let own = WebhookSettings { legacy_token: None, app_secret: None };
                    match check_signature(own, uid, sig.as_deref(), body, &mine, app.now_ms) {
                        Ok(via) => {
                            touch_credential(app, &rows, via).await;
                            via
                        }
                        // The app secret's reason is the useful one when the uid has none.
                        Err(Refusal::NoCredential) if s.app_secret.is_some() => {
                            return Err(failed(app, &client_address(req), refused(first_refusal)).await)
                        }
                        Err(r) => return Err(failed(app, &client_address(req), refused(r)).await),
                    }
                }
            }
        }
    };
    Ok(via)
}

async fn touch_credential(app: &App, rows: &[CredentialRow], via: Via) {
    let id = match via {
        Via::MentorToken { id } | Via::MentorSignature { id } => id,
        _ => return,
    };
    let stale = rows
        .iter()
        .find(|r| r.id == id)
        .is_some_and(|r| r.last_used_at.is_none_or(|t| app.now_ms.saturating_sub(t) >= LAST_USED_RESOLUTION_MS));
    if !stale {
        return;
    }
    let Ok(meta) = app.meta() else { return };
    let stmt = repo::touch_credential(id, app.now_ms, LAST_USED_RESOLUTION_MS);
    app.after_response(async move {
        if let Err(e) = meta.run(stmt).await {
            worker::console_warn!("r2d1 webhook: credential last_used_at not recorded: {e}");
        }
    })
    .await;
}

/// `OMI_ENROLLMENT`: whether an authenticated delivery of `uid` is stored. Under `required`, a
/// uid nobody enrolled is counted (one D1 write) and its delivery dropped; under `open` this
/// costs nothing.
pub async fn admission(app: &App, uid: &str, via: Via) -> Result<Admission> {
    let mode = app.config.omi_enrollment;
    if enrollment::admit(mode, false, via) == Admission::Store {
        return Ok(Admission::Store);
    }
    let repo = AccessRepo::new(app.meta()?);
    let enrolled = repo.is_enrolled(uid).await?;
    let admission = enrollment::admit(mode, enrolled, via);
    if admission == Admission::Discard {
        repo.record_request(uid, app.now_ms).await?;
    }
    Ok(admission)
}

/// The answer to a delivery that was authenticated but not stored (an unenrolled uid under
/// `OMI_ENROLLMENT=required`): 2xx, so Omi never counts it as a failure, and no `message`,
/// which Omi would show the user.
pub fn discarded(uid: &str) -> Result<Response> {
    http::ok(&json!({ "success": true, "stored": false, "enrolled": false, "user_id": uid }))
}

/// Omi's `setup_completed_url` answer for `uid`: the one place the decision is made (the rule
/// is `enrollment::setup_completed`; this reads what it needs in one D1 statement).
pub async fn setup_completed(app: &App, uid: &str) -> Result<bool> {
    let (enrolled, delivered) = AccessRepo::new(app.meta()?).setup_state(uid).await?;
    Ok(enrollment::setup_completed(app.config.omi_enrollment, enrolled, delivered))
}

// --- the audit log -------------------------------------------------------------------------

/// Records the request if the audit rules say so, after the response is sent.
pub async fn audit(app: &App, method: &str, template: &str, path: &[(&str, &str)], status: u16) {
    let Some(access) = app.caller.access else { return };
    if !audit::should_record(&access, method, status) {
        return;
    }
    let record = AuditRecord {
        at_ms: app.now_ms,
        key_prefix: app.caller.principal.as_ref().map(|p| p.label().to_string()),
        method: method.to_ascii_uppercase(),
        route: template.to_string(),
        target: audit::target(&RequestParams { path, query: &[] }),
        outcome: Outcome::from_status(status),
        status,
    };
    write_audit(app, record).await;
}

/// Writes one audit row after the response (a failure is logged: the change it records has
/// already happened and must not turn into an error).
pub async fn write_audit(app: &App, record: AuditRecord) {
    let Ok(meta) = app.meta() else { return };
    let stmt = repo::insert_audit(&record);
    app.after_response(async move {
        if let Err(e) = meta.run(stmt).await {
            worker::console_error!("r2d1 audit: not recorded: {e}");
        }
    })
    .await;
}
