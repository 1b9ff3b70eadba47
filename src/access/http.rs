//! HTTP for access control: who am I (`/api/me`), API keys, mentors' webhook credentials,
//! invite codes, enrollment and the audit log (`/api/admin/…`, `admin` scope), and the Omi
//! app's auth-step page (`/api/omi/enroll`, open). Handlers parse the request into the pure
//! core's types, call the repository and render JSON (or, for the auth step, HTML).

use serde::Deserialize;
use serde_json::{json, Value};
use worker::{Headers, Request, Response};

use super::api_key::{CreateKeyRequest, KeyRecord, NewKey, PREFIX_CHARS};
use super::audit::{next_cursor, AuditFilter};
use super::enrollment::{CreateInviteRequest, InviteCode, InviteRecord, InviteRefusal};
use super::guard;
use super::repo::{kind_name, AccessRepo, CredentialRow, InviteRow, KeyRow};
use super::rule::Credential;
use super::scope::{Capability, Reach};
use super::secret::is_base32;
use super::webhook::{self, check_signing_secret, omi_urls, retirements, CredentialKind, NewMentorToken};
use crate::error::{Error, Result};
use crate::http::{self, App};
use crate::omi::keys::check_key_part;
use crate::routes::{route, Route};

/// Bodies of these routes are a few hundred bytes; anything larger is a mistake.
const MAX_BODY: usize = 16 * 1024;

pub static ROUTES: &[Route] = &[
    route!(Get "/api/me", ApiToken, |_req, app, _p| me(app).await),
    route!(Get "/api/omi/enroll", Open, |req, app, _p| enroll_page(&req, app).await),
    route!(Post "/api/omi/enroll", Open, |req, app, _p| redeem(req, app).await),
    route!(Get "/api/admin/keys", ApiToken, |_req, app, _p| list_keys(app).await),
    route!(Post "/api/admin/keys", ApiToken, |req, app, _p| create_key(req, app).await),
    route!(Delete "/api/admin/keys/{prefix}", ApiToken, |_req, app, p| revoke_key(app, p.get("prefix")).await),
    route!(Get "/api/admin/mentors/{uid}/credentials", ApiToken, |_req, app, p| list_credentials(app, &uid(p.get("uid"))?).await),
    route!(Post "/api/admin/mentors/{uid}/credentials", ApiToken, |req, app, p| {
        let uid = uid(p.get("uid"))?;
        create_credential(req, app, &uid).await
    }),
    route!(Delete "/api/admin/mentors/{uid}/credentials/{id}", ApiToken, |_req, app, p| {
        revoke_credential(app, &uid(p.get("uid"))?, id(p.get("id"))?).await
    }),
    route!(Get "/api/admin/invites", ApiToken, |_req, app, _p| list_invites(app).await),
    route!(Post "/api/admin/invites", ApiToken, |req, app, _p| create_invite(req, app).await),
    route!(Delete "/api/admin/invites/{id}", ApiToken, |_req, app, p| revoke_invite(app, id(p.get("id"))?).await),
    route!(Get "/api/admin/enrollment", ApiToken, |_req, app, _p| enrollment(app).await),
    route!(Post "/api/admin/enrollment/{uid}", ApiToken, |req, app, p| {
        let uid = uid(p.get("uid"))?;
        enroll(req, app, &uid).await
    }),
    route!(Get "/api/admin/audit", ApiToken, |req, app, _p| audit(&req, app).await),
];

fn uid(raw: &str) -> Result<String> {
    check_key_part(raw).map_err(|why| Error::invalid_field("uid", why))?;
    Ok(raw.to_string())
}

fn id(raw: &str) -> Result<i64> {
    raw.parse::<i64>().ok().filter(|n| *n >= 1).ok_or_else(|| Error::invalid_field("id", "must be a whole number from 1"))
}

fn repo(app: &App) -> Result<AccessRepo> {
    Ok(AccessRepo::new(app.meta()?))
}

/// Who made a change, for the rows that remember it: a key's prefix, or `API_TOKEN`.
fn actor(app: &App) -> String {
    app.caller.principal.as_ref().map(|p| p.label().to_string()).unwrap_or_default()
}

async fn json_body<T: serde::de::DeserializeOwned>(req: &mut Request, what: &str) -> Result<T> {
    http::require_json_content_type(req)?;
    let body = http::read_body(req, MAX_BODY).await?;
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".to_vec() } else { body };
    serde_json::from_slice(&body).map_err(|e| Error::bad_request("invalid_json", format!("{what}: {e}")))
}

/// The worker's origin as the caller reached it: what an admin pastes into Omi.
fn origin(req: &Request) -> Result<String> {
    Ok(req.url().map_err(|e| Error::Internal(format!("request url: {e}")))?.origin().ascii_serialization())
}

// --- who am I -------------------------------------------------------------------------------

fn reach_json(reach: Reach) -> Value {
    match reach {
        Reach::All => json!("all"),
        Reach::Only(targets) => json!(targets),
        Reach::Nothing => Value::Null,
    }
}

/// `GET /api/me`: the calling credential and, per capability, how far it reaches (`"all"`, a
/// list of mentors or apps, or `null`), so the dashboard shows only what the key can use.
async fn me(app: &App) -> Result<Response> {
    let principal = app.caller.principal.as_ref().ok_or_else(|| Error::Internal("/api/me without a principal".into()))?;
    let (credential, row) = match &principal.credential {
        Credential::BootstrapToken => ("bootstrap", None),
        Credential::ApiKey { prefix, .. } => ("apiKey", repo(app)?.key(prefix).await?),
    };
    let can: serde_json::Map<String, Value> =
        Capability::ALL.iter().map(|c| (c.as_str().to_string(), reach_json(principal.scopes.reach(*c)))).collect();
    http::ok(&json!({
        "success": true,
        "credential": credential,
        "prefix": row.as_ref().map(|r| r.prefix.clone()),
        "name": row.as_ref().map(|r| r.name.clone()).unwrap_or_else(|| "API_TOKEN".into()),
        "expiresAt": row.as_ref().and_then(|r| r.expires_at),
        "scopes": principal.scopes,
        "can": can,
        "enrollment": app.config.omi_enrollment,
        "legacyWebhookToken": crate::health::legacy_token_accepted(&app.config),
    }))
}

// --- API keys -------------------------------------------------------------------------------

fn key_view(record: &KeyRecord, now: i64) -> Value {
    let mut v = serde_json::to_value(record).unwrap_or(Value::Null);
    v["status"] = json!(record.status(now));
    v
}

fn row_view(row: &KeyRow, now: i64) -> Value {
    match row.record() {
        Some(r) => key_view(&r, now),
        None => json!({ "id": row.id, "prefix": row.prefix, "name": row.name, "status": "invalid" }),
    }
}

async fn list_keys(app: &App) -> Result<Response> {
    let rows = repo(app)?.keys().await?;
    let keys: Vec<Value> = rows.iter().map(|r| row_view(r, app.now_ms)).collect();
    http::ok(&json!({ "success": true, "keys": keys }))
}

/// `POST /api/admin/keys {name, scopes, expiresInDays?}`: the whole key is in this answer only.
async fn create_key(mut req: Request, app: &App) -> Result<Response> {
    let body: CreateKeyRequest = json_body(&mut req, "key").await?;
    let spec =
        body.validate(app.now_ms).map_err(|e| Error::invalid_field(e.field(), e.to_string().split_once(": ").map_or("", |(_, w)| w)))?;
    let key = NewKey::generate().map_err(|e| Error::Internal(format!("random: {e}")))?;
    let row = repo(app)?.create_key(&key, &spec, app.now_ms, &actor(app)).await?;
    let view = row_view(&row, app.now_ms);
    http::json(
        201,
        &json!({ "success": true, "key": view, "secret": key.key,
                 "note": "the secret is shown once: store it now; r2d1 keeps only its hash" }),
    )
}

async fn revoke_key(app: &App, prefix: &str) -> Result<Response> {
    if !is_base32(prefix, PREFIX_CHARS) {
        return Err(Error::invalid_field("prefix", "must be a key prefix (8 characters of a-z and 2-7)"));
    }
    let row = repo(app)?.revoke_key(prefix, app.now_ms).await?.ok_or_else(|| Error::NotFound(format!("no key {prefix}")))?;
    http::ok(&json!({ "success": true, "key": row_view(&row, app.now_ms) }))
}

// --- mentors' webhook credentials ----------------------------------------------------------

fn credential_view(row: &CredentialRow, now: i64) -> Value {
    let status = if row.revoked_at.is_some() {
        "revoked"
    } else if row.retires_at.is_some_and(|r| now >= r) {
        "retired"
    } else if row.retires_at.is_some() {
        "retiring"
    } else {
        "active"
    };
    json!({
        "id": row.id, "uid": row.uid, "kind": row.kind, "status": status, "createdAt": row.created_at,
        "retiresAt": row.retires_at, "revokedAt": row.revoked_at, "lastUsedAt": row.last_used_at,
    })
}

async fn list_credentials(app: &App, uid: &str) -> Result<Response> {
    let rows = repo(app)?.credentials(uid).await?;
    let list: Vec<Value> = rows.iter().map(|r| credential_view(r, app.now_ms)).collect();
    http::ok(&json!({ "success": true, "uid": uid, "credentials": list }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateCredential {
    #[serde(default)]
    kind: Option<String>,
    /// A `whsec_…` secret copied from Omi; without it r2d1 makes one.
    #[serde(default)]
    secret: Option<String>,
    /// Who the mentor is, for the enrollment list (default: the uid).
    #[serde(default)]
    label: Option<String>,
}

/// `POST /api/admin/mentors/{uid}/credentials {kind: "token"|"signingSecret", secret?, label?}`:
/// a credential valid for this uid only, enrolling it; the previous ones of the same kind
/// retire after the rotation grace (24 h). The answer carries the secret (once) and the exact
/// URLs to paste into Omi.
async fn create_credential(mut req: Request, app: &App, uid: &str) -> Result<Response> {
    let body: CreateCredential = json_body(&mut req, "credential").await?;
    let kind = match body.kind.as_deref().unwrap_or("token") {
        "token" => CredentialKind::Token,
        "signingSecret" | "signing_secret" => CredentialKind::SigningSecret,
        _ => return Err(Error::invalid_field("kind", "must be token or signingSecret")),
    };
    let label = body.label.as_deref().map(str::trim).filter(|l| !l.is_empty()).unwrap_or(uid).to_string();
    if label.chars().count() > 100 || label.chars().any(char::is_control) {
        return Err(Error::invalid_field("label", "must be 1-100 printable characters"));
    }
    let random = |e: getrandom::Error| Error::Internal(format!("random: {e}"));
    let (material, shown_token, shown_secret) = match kind {
        CredentialKind::Token => {
            if body.secret.is_some() {
                return Err(Error::invalid_field("secret", "only a signingSecret credential takes a secret"));
            }
            let t = NewMentorToken::generate(uid).map_err(random)?;
            (t.hash, Some(t.token), None)
        }
        CredentialKind::SigningSecret => {
            let secret = match body.secret {
                Some(s) => {
                    check_signing_secret(s.trim()).map_err(|why| Error::invalid_field("secret", why))?;
                    s.trim().to_string()
                }
                None => webhook::signing_secret_from_random(&super::secret::random_bytes().map_err(random)?),
            };
            (secret.clone(), None, Some(secret))
        }
    };
    let repo = repo(app)?;
    let existing: Vec<_> = repo.live_credentials(uid, app.now_ms).await?.iter().filter_map(CredentialRow::credential).collect();
    let retire = retirements(&existing, kind, app.now_ms);
    let row = repo.add_credential(uid, kind, &material, app.now_ms, &retire, &label).await?;
    let base = origin(&req)?;
    let urls = omi_urls(&base, shown_token.as_deref());
    let how = match kind {
        CredentialKind::Token => {
            "In the Omi app: Settings → Developer → Webhooks. Paste urls.memory as the Memory Creation webhook (and, if \
             wanted, urls.transcript and urls.daySummary); Omi adds ?uid= itself. Keep the URLs secret: the token in them \
             is this mentor's credential."
        }
        CredentialKind::SigningSecret => {
            "In the Omi app: Settings → Developer → Webhooks. Paste urls.memory (and, if wanted, urls.transcript and \
             urls.daySummary) and set this secret as the webhook signing secret. Omi signs each delivery with it; \
             during a rotation it signs with both, and the previous secret here stays valid for 24 hours."
        }
    };
    let retiring: Vec<Value> = retire.iter().map(|(id, at)| json!({ "id": id, "retiresAt": at })).collect();
    http::json(
        201,
        &json!({
            "success": true,
            "uid": uid,
            "credential": credential_view(&row, app.now_ms),
            "kind": kind_name(kind),
            "token": shown_token,
            "secret": shown_secret,
            "urls": urls,
            "retiring": retiring,
            "instructions": how,
            "note": "the token or secret is shown once: r2d1 keeps only what it needs to verify it",
        }),
    )
}

async fn revoke_credential(app: &App, uid: &str, id: i64) -> Result<Response> {
    let row =
        repo(app)?.revoke_credential(uid, id, app.now_ms).await?.ok_or_else(|| Error::NotFound(format!("no credential {id} for {uid}")))?;
    http::ok(&json!({ "success": true, "credential": credential_view(&row, app.now_ms) }))
}

// --- invites and enrollment -----------------------------------------------------------------

fn invite_view(record: &InviteRecord, now: i64) -> Value {
    let status = match record.check(now) {
        Ok(()) => "active",
        Err(InviteRefusal::Expired) => "expired",
        Err(InviteRefusal::UsedUp) => "usedUp",
        Err(InviteRefusal::Revoked) => "revoked",
        Err(InviteRefusal::Unknown) => "unknown",
    };
    let mut v = serde_json::to_value(record).unwrap_or(Value::Null);
    v["status"] = json!(status);
    v
}

async fn list_invites(app: &App) -> Result<Response> {
    let rows = repo(app)?.invites().await?;
    let list: Vec<Value> = rows.iter().map(|r| invite_view(&r.record(), app.now_ms)).collect();
    http::ok(&json!({ "success": true, "invites": list }))
}

/// `POST /api/admin/invites {label, maxUses?, expiresInDays?}`: the code is in this answer only.
async fn create_invite(mut req: Request, app: &App) -> Result<Response> {
    let body: CreateInviteRequest = json_body(&mut req, "invite").await?;
    let spec = body.validate(app.now_ms).map_err(|(field, why)| Error::invalid_field(field, why))?;
    let code = InviteCode::generate().map_err(|e| Error::Internal(format!("random: {e}")))?;
    let row: InviteRow = repo(app)?.create_invite(&code.hash(), &spec, app.now_ms, &actor(app)).await?;
    let base = origin(&req)?;
    http::json(
        201,
        &json!({
            "success": true,
            "code": code.display(),
            "invite": invite_view(&row.record(), app.now_ms),
            "enrollUrl": format!("{base}/api/omi/enroll"),
            "note": "the code is shown once: r2d1 keeps only its hash",
        }),
    )
}

async fn revoke_invite(app: &App, id: i64) -> Result<Response> {
    let row = repo(app)?.revoke_invite(id, app.now_ms).await?.ok_or_else(|| Error::NotFound(format!("no invite {id}")))?;
    http::ok(&json!({ "success": true, "invite": invite_view(&row.record(), app.now_ms) }))
}

/// `GET /api/admin/enrollment`: the mode, the enrolled uids, and the unenrolled uids whose
/// deliveries were dropped (with how many).
async fn enrollment(app: &App) -> Result<Response> {
    let (enrolled, asking) = repo(app)?.enrollments().await?;
    let dropped: i64 = asking.iter().map(|r| r.deliveries).sum();
    http::ok(&json!({
        "success": true,
        "mode": app.config.omi_enrollment,
        "enrolled": enrolled,
        "asking": asking,
        "droppedDeliveries": dropped,
    }))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EnrollBody {
    #[serde(default)]
    label: Option<String>,
}

/// `POST /api/admin/enrollment/{uid} {label?}`: enrolls a uid (one that was asking, or any).
async fn enroll(mut req: Request, app: &App, uid: &str) -> Result<Response> {
    let body: EnrollBody = json_body(&mut req, "enrollment").await?;
    let label = body.label.as_deref().map(str::trim).filter(|l| !l.is_empty()).unwrap_or(uid).to_string();
    if label.chars().count() > 100 || label.chars().any(char::is_control) {
        return Err(Error::invalid_field("label", "must be 1-100 printable characters"));
    }
    let row = repo(app)?.admin_enroll(uid, &label, app.now_ms).await?;
    http::ok(&json!({ "success": true, "enrollment": row }))
}

// --- the audit log ---------------------------------------------------------------------------

/// `GET /api/admin/audit?since=&until=&key=&route=&outcome=&cursor=&limit=`, newest first.
async fn audit(req: &Request, app: &App) -> Result<Response> {
    let filter = AuditFilter::parse(http::query_pairs(req))?;
    let mut rows = repo(app)?.audit(&filter).await?;
    let next = if rows.len() > filter.limit as usize {
        rows.truncate(filter.limit as usize);
        rows.last().map(|r| next_cursor(r.at_ms, r.id))
    } else {
        None
    };
    let entries: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({ "id": r.id, "at": crate::omi::render::iso(r.at_ms), "atMs": r.at_ms, "key": r.key_prefix, "method": r.method,
                    "route": r.route, "target": r.target, "outcome": r.outcome, "status": r.status })
        })
        .collect();
    http::ok(&json!({ "success": true, "entries": entries, "nextCursor": next }))
}

// --- the Omi app's auth step -----------------------------------------------------------------

/// The auth-step page has no script at all, so its CSP allows none; the one inline style
/// block is allowed by name.
const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&#39;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

fn page(status: u16, title: &str, body: &str) -> Result<Response> {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><meta name=\"referrer\" content=\"no-referrer\">\
         <title>{title} · r2d1</title><style>\
         body{{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f5f6f8;color:#1d2330}}\
         main{{max-width:26rem;margin:3rem auto;padding:1.5rem;background:#fff;border-radius:12px;box-shadow:0 1px 4px #0002}}\
         h1{{font-size:1.3rem;margin-top:0}}label{{display:block;font-weight:600;margin:1rem 0 .3rem}}\
         input{{font:inherit;width:100%;box-sizing:border-box;padding:.6rem;border:1px solid #99a;border-radius:8px;letter-spacing:.1em}}\
         button{{font:inherit;margin-top:1rem;width:100%;padding:.7rem;border:0;border-radius:8px;background:#2457d6;color:#fff}}\
         .error{{color:#a1131f}}.ok{{color:#176b2c}}.hint{{color:#556;font-size:.9rem}}\
         </style></head><body><main>{body}</main></body></html>",
        title = escape(title)
    );
    let headers = Headers::new();
    headers.set("Content-Type", "text/html; charset=utf-8")?;
    headers.set("Cache-Control", "no-store")?;
    headers.set("Content-Security-Policy", PAGE_CSP)?;
    headers.set("X-Content-Type-Options", "nosniff")?;
    headers.set("Referrer-Policy", "no-referrer")?;
    Ok(Response::from_html(html)?.with_status(status).with_headers(headers))
}

fn form(uid: &str, message: Option<(&str, &str)>) -> String {
    let note = message.map(|(class, text)| format!("<p class=\"{class}\" role=\"alert\">{}</p>", escape(text))).unwrap_or_default();
    format!(
        "<h1>Connect Omi to the mentorship programme</h1>\
         <p>Enter the invite code the programme gave you. It links this Omi account to you, so your conversations are kept \
         for the programme.</p>{note}\
         <form method=\"post\" action=\"/api/omi/enroll\">\
         <input type=\"hidden\" name=\"uid\" value=\"{uid}\">\
         <label for=\"code\">Invite code</label>\
         <input id=\"code\" name=\"code\" autocomplete=\"one-time-code\" autocapitalize=\"characters\" spellcheck=\"false\" \
          placeholder=\"ABCD-EFGH-JKMN\" required maxlength=\"64\">\
         <button type=\"submit\">Connect</button></form>\
         <p class=\"hint\">Letters and digits; case, spaces and dashes do not matter.</p>",
        uid = escape(uid)
    )
}

const DONE: &str = "<h1>Connected</h1><p class=\"ok\" role=\"status\">This Omi account is linked to the mentorship programme.</p>\
                    <p>You can go back to the Omi app: it notices within a few seconds.</p>";

/// `GET /api/omi/enroll?uid=`: the page Omi opens as the app's auth step.
async fn enroll_page(req: &Request, app: &App) -> Result<Response> {
    let Some(uid) = http::query_param(req, "uid").filter(|u| check_key_part(u).is_ok()) else {
        return page(400, "Missing Omi account", "<h1>Open this page from the Omi app</h1><p class=\"error\">The link is missing the Omi account (<code>?uid=</code>). Start the set-up again from the Omi app.</p>");
    };
    if repo(app)?.enrollment(&uid).await?.is_some() {
        return page(200, "Connected", DONE);
    }
    page(200, "Invite code", &form(&uid, None))
}

/// What a mentor posts: a form (the page) or JSON (`{"uid","code"}`).
#[derive(Deserialize)]
struct Redemption {
    uid: String,
    code: String,
}

fn form_value(body: &[u8], name: &str) -> Option<String> {
    // A form body is a query string; the URL parser decodes it the way browsers encode it.
    let text = std::str::from_utf8(body).ok()?;
    let url = worker::Url::parse(&format!("http://form.invalid/?{text}")).ok()?;
    let value = url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    value
}

/// `POST /api/omi/enroll`: redeems an invite code for a uid. Every failure counts against the
/// client's address (`AUTH_LIMITER`), like a wrong token: codes have 59 bits, and this keeps
/// guessing them out of reach.
async fn redeem(mut req: Request, app: &App) -> Result<Response> {
    let is_form =
        http::header(&req, "Content-Type").is_some_and(|t| t.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    let body = http::read_body(&mut req, 4 * 1024).await?;
    let parsed = if is_form {
        Redemption { uid: form_value(&body, "uid").unwrap_or_default(), code: form_value(&body, "code").unwrap_or_default() }
    } else {
        serde_json::from_slice(&body).map_err(|e| Error::bad_request("invalid_json", format!("body: {e}")))?
    };
    let address = guard::client_address(&req);
    let outcome = redeem_code(app, &address, &parsed).await;
    if !is_form {
        return match outcome {
            Ok(()) => http::ok(&json!({ "success": true, "uid": parsed.uid, "enrolled": true })),
            Err(e) => Err(e),
        };
    }
    match outcome {
        Ok(()) => page(200, "Connected", DONE),
        Err(e) if check_key_part(&parsed.uid).is_err() => page(e.status(), "Missing Omi account", "<h1>Open this page from the Omi app</h1><p class=\"error\">The Omi account is missing. Start the set-up again from the Omi app.</p>"),
        Err(e) => {
            let mut resp = page(e.status(), "Invite code", &form(&parsed.uid, Some(("error", &e.to_string()))))?;
            if let Error::TooManyRequests { retry_after_secs, .. } = e {
                resp.headers_mut().set("Retry-After", &retry_after_secs.to_string())?;
            }
            Ok(resp)
        }
    }
}

async fn redeem_code(app: &App, address: &str, r: &Redemption) -> Result<()> {
    check_key_part(&r.uid).map_err(|why| Error::invalid_field("uid", why))?;
    if guard::is_blocked(address).await {
        return Err(guard::too_many());
    }
    let wrong = |e: Error| async move { guard::failed(app, address, e).await };
    let code = match InviteCode::parse(&r.code) {
        Ok(c) => c,
        Err(e) => return Err(wrong(Error::invalid_field("code", e)).await),
    };
    let repo = repo(app)?;
    let Some(invite) = repo.invite(&code.hash()).await? else {
        return Err(wrong(Error::invalid_field("code", InviteRefusal::Unknown)).await);
    };
    if repo.enrollment(&r.uid).await?.is_some() {
        // Already linked (by this code or another way): nothing to use up.
        return Ok(());
    }
    if let Err(refusal) = invite.record().check(app.now_ms) {
        return Err(wrong(Error::invalid_field("code", refusal)).await);
    }
    match repo.redeem(invite.id, &r.uid, app.now_ms).await? {
        Some(_) => Ok(()),
        // Used up between the check and the redemption (a concurrent redemption won).
        None => Err(wrong(Error::invalid_field("code", InviteRefusal::UsedUp)).await),
    }
}
