//! The endpoints Omi calls: memory created, real-time transcript, day summary, setup check;
//! and what each answers to a browser (`GET`/`HEAD`: a short description, no data).
//!
//! Omi reads 200 answers (see `omi::reply`): real-time transcript answers carry no `message`,
//! the memory answer's `message` follows `OMI_REPLY_MESSAGE`. A delivery is refused (4xx) only
//! when it is not a delivery at all (no uid, not JSON, no memory id): an optional field never
//! costs a mentor their webhook, which Omi disables after 100 failures in a row.

use serde_json::{json, Map, Value};
use worker::{Request, Response};

use crate::access::enrollment::Admission;
use crate::access::guard::{self, WebhookPass};
use crate::access::rule::{Access as RuleAccess, RequestParams};
use crate::access::table::{self, RouteRule, Verb};
use crate::access::webhook::Via;
use crate::error::{Error, Result};
use crate::http::{self, App};
use crate::omi::content::content_sha256;
use crate::omi::ingest::{store_memory, Incoming};
use crate::omi::keys::{check_key_part, day_summary_key, transcript_key};
use crate::omi::link;
use crate::omi::payload::{memory_from_value, parse_json, parse_time, transcript_batch_from_value};
use crate::omi::render;
use crate::omi::reply::{self, Sender};
use crate::omi::repo::{self, DaySummaryRow, OmiRepo};
use crate::store::commit::write_and_commit;
use crate::store::digest::sha256_hex;
use crate::store::object::{NewObject, Written};
use crate::store::{limiter, Kind};

/// The `uid` Omi appends to the webhook URL.
fn uid_param(req: &Request) -> Result<String> {
    let uid = http::query_param(req, "uid").ok_or_else(|| Error::bad_request("missing_field", "uid: query parameter is required"))?;
    check_key_part(&uid).map_err(|why| Error::invalid_field("uid", why))?;
    Ok(uid)
}

/// The webhooks' access rule (run by the router before the body is read): `uid`, then the
/// credential (`access::guard::check_webhook`). A signature is checked later, on the bounded
/// body ([`read_webhook`]).
pub async fn check_access(app: &App, req: &Request) -> Result<WebhookPass> {
    let uid = uid_param(req)?;
    guard::check_webhook(app, req, &uid).await
}

/// A delivery whose body has been read and whose credential holds.
struct Delivery {
    uid: String,
    body: Vec<u8>,
    via: Via,
}

/// Reads a webhook body: uid, content type, a bounded read, then the signature (before any
/// parsing), then enrollment. `None`: authenticated but not stored (an unenrolled uid under
/// `OMI_ENROLLMENT=required`), to be answered with [`guard::discarded`].
async fn read_webhook(req: &mut Request, app: &App) -> Result<Option<Delivery>> {
    let uid = uid_param(req)?;
    http::require_json_content_type(req)?;
    let body = http::read_body(req, app.config.max_body_bytes).await?;
    let via = guard::finish_webhook(app, req, &uid, &body).await?;
    match guard::admission(app, &uid, via).await? {
        Admission::Store => Ok(Some(Delivery { uid, body, via })),
        Admission::Discard => Ok(None),
    }
}

/// The per-uid rate limit and the ceiling over every uid. Called only once the sender proved
/// it holds a credential, so strangers cannot use up a mentor's budget.
async fn admit(app: &App, uid: &str) -> Result<()> {
    let key = format!("omi:{uid}");
    let (mine, all) = futures_util::join!(
        limiter::allow_on(&app.env, limiter::WEBHOOK, &key),
        limiter::allow_on(&app.env, limiter::WEBHOOK_CEILING, "omi:*")
    );
    if !mine? {
        return Err(Error::TooManyRequests {
            message: format!("too many webhook deliveries for uid {uid}; retry after a minute"),
            retry_after_secs: 60,
        });
    }
    if !all? {
        return Err(Error::TooManyRequests { message: "too many webhook deliveries; retry after a minute".into(), retry_after_secs: 60 });
    }
    Ok(())
}

fn delivery_id(req: &Request) -> Result<Option<String>> {
    let id = http::header(req, "X-Omi-Delivery").or_else(|| http::header(req, "Idempotency-Key"));
    match id {
        Some(id) if id.is_empty() || id.len() > 200 => Err(Error::invalid_field("X-Omi-Delivery", "must be 1-200 characters")),
        other => Ok(other),
    }
}

/// `POST /api/omi/memory?uid=` (alias `/api/omi/conversation`).
pub async fn memory(mut req: Request, app: &App) -> Result<Response> {
    let Some(Delivery { uid, body, via }) = read_webhook(&mut req, app).await? else { return discarded(&req) };
    let value = parse_json(&body)?;
    let memory = memory_from_value(&value)?;
    crate::observe::note_memory(&app.state, &memory.id);
    let content = content_sha256(&value);
    drop(value);
    let sender = sender_of(via);
    let delivery_id = delivery_id(&req)?;
    let repo = OmiRepo::new(app.meta()?);
    let store = app.store()?;
    let memory_id = memory.id.clone();
    let event = json!({
        "type": "memory", "userId": uid, "memoryId": memory_id, "title": memory.title, "emoji": memory.emoji,
        "category": memory.category, "discarded": memory.discarded, "createdAt": render::iso(memory.created_ms),
    });
    let stored = store_memory(
        &store,
        &repo,
        app.config.write_daily_copy,
        Incoming { uid: uid.clone(), body, memory, content_sha256: content, received_ms: app.now_ms, delivery_id, kind: "memory_created" },
        admit(app, &uid),
    )
    .await?;

    if !stored.duplicate {
        crate::live::announce(app, event);
    }
    let mut storage = json!({ "r2Key": stored.r2_key });
    if let Some(base) = &app.config.r2_public_url {
        storage["publicUrl"] = json!(format!("{base}/{}", stored.r2_key));
    }
    let mut answer = json!({
        "success": true,
        "memory_id": memory_id,
        "user_id": uid,
        "duplicate": stored.duplicate,
        "version": stored.version,
        "storage": storage,
    });
    if let Some(message) = reply::memory_message(app.config.omi_reply_message, sender, stored.duplicate) {
        answer["message"] = json!(message);
    }
    http::ok(&answer)
}

/// `POST /api/omi/transcript?uid=[&session_id=]` (alias `/api/omi/webhook`): one batch of
/// real-time segments, appended to its session. A re-sent identical batch is stored once. The
/// answer has no `message`: Omi would push it to the mentor's phone for every batch.
pub async fn transcript(mut req: Request, app: &App) -> Result<Response> {
    let Some(Delivery { uid, body, via }) = read_webhook(&mut req, app).await? else { return discarded(&req) };
    admit(app, &uid).await?;
    let batch = transcript_batch_from_value(parse_json(&body)?)?;
    // A signature covers the uid and the body, not the rest of the URL: a signed delivery's
    // session comes from its body (or is the uid), never from `?session_id=`, which anyone who
    // replays it could change. A token delivery's URL is the credential, so its query holds.
    let query_session = if signed(via) { None } else { http::query_param(&req, "session_id") };
    let session = match batch.session_id.or(query_session) {
        Some(s) => {
            check_key_part(&s).map_err(|why| Error::invalid_field("session_id", why))?;
            s
        }
        // Omi's backend uses the uid as the session id when it has none.
        None => uid.clone(),
    };
    let sha = sha256_hex(&body);
    let key = transcript_key(&uid, &session, app.now_ms, &sha);
    let segments = batch.segments.len();
    let text = link::batch_text(&batch.segments);
    let object = NewObject::plain(Kind::Transcript, key.clone(), body, "application/json")
        .with("userId", uid.clone())
        .with("sessionId", session.clone())
        .with("type", "transcript");
    let store = app.store()?;
    let mut stmts = repo::record_transcript_batch(&uid, &session, app.now_ms, &sha, &key, segments, &text);
    let key_at = stmts.len();
    stmts.push(repo::transcript_batch_key(&uid, &session, &sha));
    let (written, rows) = write_and_commit(&store, &[&object], &[], "omi.after_put", stmts).await?;
    let recorded = rows.get(key_at).map(|r| r.rows::<repo::KeyRow>()).transpose()?.and_then(|r| r.into_iter().next()).map(|r| r.r2_key);
    let created = written.first() == Some(&Written::Created);
    // Stored by this call if its batch inserted the row, or if reconciliation adopted the
    // object this call created meanwhile.
    let fresh = rows.first().map(|r| r.info().changes).unwrap_or(0) > 0 || (created && recorded.as_deref() == Some(key.as_str()));
    if !fresh && created && recorded.as_deref() != Some(key.as_str()) {
        // The same batch is already recorded under another key; this call created this object
        // and nothing references it. (An identical batch in the same millisecond shares the
        // key: its put found the object already there, and it must not delete it.)
        store.blobs.delete_many(vec![key.clone()]).await?;
    }
    http::ok(&json!({
        "success": true,
        "user_id": uid,
        "session_id": session,
        "segments": segments,
        "duplicate": !fresh,
    }))
}

/// `POST /api/omi/day-summary?uid=`: keeps the raw body, whatever its optional fields say;
/// the day is `summary_json.date`, else the day of `created_at`, else the day it arrived
/// (see [`summary_date`]). Any JSON object is a day summary: older senders send only
/// `summary` (a Python repr string), newer ones `summary_json`, possibly null.
pub async fn day_summary(mut req: Request, app: &App) -> Result<Response> {
    let Some(Delivery { uid, body, .. }) = read_webhook(&mut req, app).await? else { return discarded(&req) };
    admit(app, &uid).await?;
    let value = parse_json(&body)?;
    let obj = value.as_object().ok_or_else(|| Error::bad_request("invalid_json", "body must be a JSON object"))?;
    let date = summary_date(obj, app.now_ms);
    let sha = sha256_hex(&body);
    // Each delivery its own key; the row moves to the newest and the replaced object is
    // condemned in the same batch (never overwritten in place, where a reader could see bytes
    // that disagree with the row).
    let key = day_summary_key(&uid, &date, app.now_ms, &sha);
    let object =
        NewObject::plain(Kind::DaySummary, key.clone(), body, "application/json").with("userId", uid.clone()).with("type", "day_summary");
    let store = app.store()?;
    let stmts = repo::record_day_summary(&uid, &date, &key, &sha, app.now_ms, store.request().now());
    let (written, rows) = write_and_commit(&store, &[&object], &[], "omi.after_put", stmts).await?;
    let current = rows.last().map(|r| r.rows::<DaySummaryRow>()).transpose()?.and_then(|r| r.into_iter().next());
    let current_key = current.map(|c| c.r2_key).unwrap_or_default();
    if current_key != key && written.first() == Some(&Written::Created) {
        // A newer summary of that day was already stored: ours arrived late and loses.
        store.blobs.delete_many(vec![key.clone()]).await?;
    }
    http::ok(
        &json!({ "success": true, "message": "Day summary stored", "user_id": uid, "date": date, "storage": { "r2Key": current_key } }),
    )
}

/// The day a day summary belongs to: `summary_json.date` when it is a `YYYY-MM-DD`, else the
/// UTC day of `created_at` when that is a time, else the day of `received_ms`. Never an error:
/// these fields are optional, and a refused summary would count against the mentor's webhook.
pub fn summary_date(obj: &Map<String, Value>, received_ms: i64) -> String {
    let declared = obj
        .get("summary_json")
        .and_then(|s| s.get("date"))
        .and_then(Value::as_str)
        .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok().map(|d| d.to_string()));
    declared.unwrap_or_else(|| {
        let ms = obj.get("created_at").filter(|v| !v.is_null()).and_then(|v| parse_time(v, "created_at").ok()).unwrap_or(received_ms);
        render::day(ms)
    })
}

/// `GET /api/omi/setup?uid=`: Omi's setup check (`access::guard::setup_completed`): under
/// `OMI_ENROLLMENT=required` once the uid is enrolled, under `open` also once it has
/// delivered anything. Open like the webhooks: it tells only whether a uid is known.
pub async fn setup(req: &Request, app: &App) -> Result<Response> {
    let uid = uid_param(req)?;
    http::ok(&json!({ "is_setup_completed": guard::setup_completed(app, &uid).await? }))
}

fn signed(via: Via) -> bool {
    matches!(via, Via::AppSignature | Via::MentorSignature { .. })
}

fn discarded(req: &Request) -> Result<Response> {
    guard::discarded(&uid_param(req)?)
}

/// Who sent a delivery, as far as its answer matters: only the app-level signing secret is an
/// integration app (Omi shows its memory answer as a chat message); a per-mentor token or
/// secret is the mentor's own developer webhook.
fn sender_of(via: Via) -> Sender {
    if via == Via::AppSignature {
        Sender::IntegrationApp
    } else {
        Sender::DeveloperWebhook
    }
}

// ---------------------------------------------------------------------------------------------
// What a browser sees

/// The webhook routes, described for a person who pastes the URL into a browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Memory,
    Transcript,
    DaySummary,
}

/// A short description of a webhook route (no data, no secrets): what it takes, how it is
/// authenticated on this deployment, and that it is alive.
pub fn describe(hook: Hook, path: &str, signed: bool) -> Value {
    let (event, what) = match hook {
        Hook::Memory => ("memory_created", "Omi posts each finished conversation (memory) here"),
        Hook::Transcript => ("transcript_processed", "Omi posts real-time transcript segments here during a live session"),
        Hook::DaySummary => ("day_summary", "Omi posts a mentor's day summary here, once a day"),
    };
    json!({
        "success": true,
        "status": "ready",
        "service": "r2d1",
        "endpoint": path,
        "event": event,
        "description": what,
        "method": "POST",
        "contentType": "application/json",
        "query": { "uid": "the mentor's Omi uid (Omi adds it)" },
        "authentication": if signed {
            "X-Omi-Signature (the app's signing secret), or the mentor's own credential"
        } else {
            "?token= or Authorization: Bearer (the mentor's own credential), or X-Omi-Signature by the mentor's own secret"
        },
        "setupCheck": "/api/omi/setup?uid=",
    })
}

/// `GET`/`HEAD` on a webhook route: the description. `GET /api/omi/memory?uid=` adds the
/// mentor's stats, as the old app's endpoint did, for a caller who may read them.
pub async fn describe_route(req: &Request, app: &App, hook: Hook) -> Result<Response> {
    let path = req.path();
    let mut answer = describe(hook, &path, app.config.omi_signing_secret.is_some());
    if hook == Hook::Memory {
        if let Some(uid) = http::query_param(req, "uid").filter(|u| !u.is_empty()) {
            check_key_part(&uid).map_err(|why| Error::invalid_field("uid", why))?;
            answer["userId"] = json!(uid);
            if may_read_stats(req, app, &uid).await {
                answer["stats"] = super::logs::stats_json(app, &uid).await?.unwrap_or(Value::Null);
            } else {
                answer["stats"] = Value::Null;
                answer["statsRequire"] = json!("Authorization: Bearer <an API key with omi:export for this uid, or API_TOKEN>");
            }
        }
    }
    http::ok(&answer)
}

/// Whether the caller may see this mentor's stats: what `GET /api/omi/users/{uid}/stats` asks
/// (its row in `access::table`). The description itself is open, so a missing or refused
/// credential only leaves the stats out.
async fn may_read_stats(req: &Request, app: &App, uid: &str) -> bool {
    if http::header(req, "Authorization").is_none() {
        return false;
    }
    let Some(RouteRule { access: RuleAccess::Key(rule), .. }) = table::rule_for(Verb::Get, "/api/omi/users/{uid}/stats") else {
        return false;
    };
    let Ok(principal) = guard::authenticate(app, req).await else { return false };
    let path = [("uid", uid)];
    guard::authorize(rule, &principal, &RequestParams { path: &path, query: &[] }).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_day_summary_always_has_a_day() {
        let received = 1_735_776_000_000; // 2025-01-02
        assert_eq!(
            summary_date(&obj(json!({"summary_json": {"date": "2024-01-15"}, "created_at": "2024-01-16T00:00:00+00:00"})), received),
            "2024-01-15"
        );
        assert_eq!(summary_date(&obj(json!({"summary_json": null, "created_at": "2024-01-16T23:30:00+00:00"})), received), "2024-01-16");
        assert_eq!(summary_date(&obj(json!({"summary": "{'a': 1}", "created_at": "2024-01-16T23:30:00+00:00"})), received), "2024-01-16");
        assert_eq!(
            summary_date(&obj(json!({"summary_json": {"date": "Jan 15"}, "created_at": "2024-01-16T00:00:00Z"})), received),
            "2024-01-16"
        );
        assert_eq!(summary_date(&obj(json!({"summary_json": [1], "created_at": "yesterday"})), received), "2025-01-02");
        assert_eq!(summary_date(&obj(json!({})), received), "2025-01-02");
    }

    #[test]
    fn descriptions_carry_no_pushable_message_and_no_data() {
        for hook in [Hook::Memory, Hook::Transcript, Hook::DaySummary] {
            let d = describe(hook, "/api/omi/x", false);
            assert!(!reply::is_pushable(&d));
            assert_eq!(d["method"], "POST");
        }
        assert!(describe(Hook::Memory, "/p", true)["authentication"].as_str().unwrap().contains("X-Omi-Signature"));
    }
}
