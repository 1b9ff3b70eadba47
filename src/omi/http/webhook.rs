//! The endpoints Omi calls: memory created, real-time transcript, day summary, setup check.

use serde_json::json;
use worker::{Request, Response};

use crate::auth;
use crate::error::{Error, Result};
use crate::http::{self, App};
use crate::omi::ingest::{store_memory, Incoming};
use crate::omi::keys::{check_key_part, day_summary_key, transcript_key};
use crate::omi::link;
use crate::omi::payload::{memory_from_value, parse_json, parse_time, transcript_batch_from_value};
use crate::omi::render;
use crate::omi::repo::{self, DaySummaryRow, OmiRepo};
use crate::omi::signature;
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

/// The webhooks' access rule (checked by the router): token mode, `?token=` or
/// `Authorization: Bearer`, before the body is read. Signature mode is checked on the body by
/// the handler (see [`check_signature`]).
pub fn check_token(app: &App, req: &Request) -> Result<()> {
    if app.config.omi_signing_secret.is_some() {
        return Ok(());
    }
    let expected = app
        .config
        .omi_webhook_token
        .as_ref()
        .ok_or_else(|| Error::NotConfigured("set OMI_WEBHOOK_TOKEN or OMI_SIGNING_SECRET to accept webhooks".into()))?;
    let header = http::header(req, "Authorization");
    let given = http::query_param(req, "token").or_else(|| auth::bearer_token(header.as_deref()).map(str::to_string));
    match given {
        Some(t) if auth::tokens_match(&t, expected.expose()) => Ok(()),
        Some(_) => Err(Error::Unauthorized("invalid webhook token".into())),
        None => Err(Error::Unauthorized("missing webhook token (?token= or Authorization: Bearer)".into())),
    }
}

fn check_signature(app: &App, req: &Request, uid: &str, body: &[u8]) -> Result<()> {
    let Some(secret) = &app.config.omi_signing_secret else { return Ok(()) };
    let header = http::header(req, "X-Omi-Signature").ok_or_else(|| Error::Unauthorized("missing X-Omi-Signature header".into()))?;
    signature::verify(secret.expose(), &header, uid, body, app.now_ms.div_euclid(1000)).map_err(|e| Error::Unauthorized(e.to_string()))
}

/// Reads a webhook body: uid, content type, size, signature (the token was checked by the
/// router).
async fn read_webhook(req: &mut Request, app: &App) -> Result<(String, Vec<u8>)> {
    let uid = uid_param(req)?;
    http::require_json_content_type(req)?;
    let body = http::read_body(req, app.config.max_body_bytes).await?;
    check_signature(app, req, &uid, &body)?;
    Ok((uid, body))
}

/// The per-uid rate limit. Called only once the sender proved it holds the secret, so
/// strangers cannot use up a mentor's budget.
async fn admit(app: &App, uid: &str) -> Result<()> {
    if limiter::allow(&app.env, &format!("omi:{uid}")).await? {
        Ok(())
    } else {
        Err(Error::TooManyRequests {
            message: format!("too many webhook deliveries for uid {uid}; retry after a minute"),
            retry_after_secs: 60,
        })
    }
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
    let (uid, body) = read_webhook(&mut req, app).await?;
    let memory = memory_from_value(&parse_json(&body)?)?;
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
        Incoming { uid: uid.clone(), body, memory, received_ms: app.now_ms, delivery_id, kind: "memory_created" },
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
    http::ok(&json!({
        "success": true,
        "message": if stored.duplicate { "Memory already stored in R2" } else { "Memory stored in R2" },
        "memory_id": memory_id,
        "user_id": uid,
        "duplicate": stored.duplicate,
        "version": stored.version,
        "storage": storage,
    }))
}

/// `POST /api/omi/transcript?uid=[&session_id=]` (alias `/api/omi/webhook`): one batch of
/// real-time segments, appended to its session. A re-sent identical batch is stored once.
pub async fn transcript(mut req: Request, app: &App) -> Result<Response> {
    let (uid, body) = read_webhook(&mut req, app).await?;
    admit(app, &uid).await?;
    let batch = transcript_batch_from_value(parse_json(&body)?)?;
    let session = match batch.session_id.or_else(|| http::query_param(&req, "session_id")) {
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
        "message": if fresh { "Transcript stored" } else { "Transcript batch already stored" },
        "user_id": uid,
        "session_id": session,
        "segments": segments,
        "duplicate": !fresh,
    }))
}

/// `POST /api/omi/day-summary?uid=`: keeps the raw body; the day is `summary_json.date`, else
/// the day of `created_at`, else today.
pub async fn day_summary(mut req: Request, app: &App) -> Result<Response> {
    let (uid, body) = read_webhook(&mut req, app).await?;
    admit(app, &uid).await?;
    let value = parse_json(&body)?;
    let obj = value.as_object().ok_or_else(|| Error::bad_request("invalid_json", "body must be a JSON object"))?;
    let summary =
        obj.get("summary_json").filter(|v| !v.is_null()).ok_or_else(|| Error::bad_request("missing_field", "summary_json: is required"))?;
    if !summary.is_object() {
        return Err(Error::invalid_field("summary_json", "must be an object"));
    }
    let date = match summary.get("date").and_then(|d| d.as_str()) {
        Some(d) => chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| Error::invalid_field("summary_json.date", "must be YYYY-MM-DD"))?
            .to_string(),
        None => {
            let ms = match obj.get("created_at") {
                Some(v) if !v.is_null() => parse_time(v, "created_at")?,
                _ => app.now_ms,
            };
            chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%d").to_string()
        }
    };
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

/// `GET /api/omi/setup?uid=`: Omi's setup check. Setup is complete once this mentor's device
/// has delivered anything. Open like the webhooks: it tells only whether a uid is known.
pub async fn setup(req: &Request, app: &App) -> Result<Response> {
    let uid = uid_param(req)?;
    let done = OmiRepo::new(app.meta()?).has_user(&uid).await?;
    http::ok(&json!({ "is_setup_completed": done }))
}
