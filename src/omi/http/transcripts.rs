//! Real-time transcripts: a mentor's sessions (searchable), one session page by page, and the
//! batches linked to one memory page by page.
//!
//! Every batch on a page is one R2 read, and a session Omi files under the uid grows without
//! end, so a page holds at most `limit` batches (default 20, never more than the subrequest
//! budget allows) and names the next page in `nextCursor`; no request reads a whole session.

use futures_util::future::join_all;
use serde_json::{json, Value};
use worker::{Request, Response};

use super::key_part;
use super::logs::stored_bytes;
use crate::error::{Error, Result};
use crate::http::{self, App};
use crate::omi::cursor::Cursor;
use crate::omi::programme::params::batches_per_page;
use crate::omi::programme::repo::{memory_transcript_page, session_page, BatchRow, ProgrammeRepo};
use crate::omi::query::{fts_expression, Params};
use crate::omi::render::iso;

fn query(req: &Request) -> Params {
    Params::new(http::query_pairs(req))
}

fn cursor(p: &Params) -> Result<Option<Cursor>> {
    p.get("cursor")
        .map(|c| Cursor::decode(c).ok_or_else(|| Error::bad_request("invalid_cursor", "cursor: is not a cursor this API returned")))
        .transpose()
}

/// `GET /api/omi/transcripts/{uid}[?q=]`: sessions newest first, with how many memories
/// their batches became; `q` keeps the sessions whose text matches.
pub async fn sessions(req: &Request, app: &App, uid: &str) -> Result<Response> {
    let uid = key_part("userId", uid)?;
    let fts = query(req).get("q").map(fts_expression).transpose()?;
    let rows = ProgrammeRepo::new(app.meta()?).sessions(&uid, fts.as_deref()).await?;
    let sessions: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({ "sessionId": r.session_id, "batches": r.batches, "segments": r.segments, "memories": r.memories,
                    "first": r.first.map(iso), "last": r.last.map(iso) })
        })
        .collect();
    http::ok(&json!({ "success": true, "userId": uid, "sessions": sessions }))
}

/// A page of batches read from R2 (verified), as segments, text and the batches' facts.
async fn page_body(app: &App, mut rows: Vec<BatchRow>, limit: u32) -> Result<serde_json::Map<String, Value>> {
    let next_cursor = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.cursor().encode())
    } else {
        None
    };
    let blobs = app.blobs()?;
    let bodies = join_all(rows.iter().map(|r| stored_bytes(&blobs, &r.r2_key, &r.sha256))).await;
    let mut segments = Vec::new();
    for body in bodies {
        let value: Value = serde_json::from_slice(&body?)?;
        let batch = match value {
            Value::Array(a) => a,
            Value::Object(mut o) => match o.remove("segments") {
                Some(Value::Array(a)) => a,
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        segments.extend(batch);
    }
    let text: Vec<String> = segments
        .iter()
        .filter_map(|s| {
            let text = s["text"].as_str()?;
            let who = s["speaker_name"].as_str().or(s["speaker"].as_str()).unwrap_or("SPEAKER");
            Some(format!("{who}: {text}"))
        })
        .collect();
    let parts: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({ "sessionId": r.session_id, "receivedAt": iso(r.received_at), "segments": r.segment_count,
                    "memoryId": r.memory_id })
        })
        .collect();
    let mut out = serde_json::Map::new();
    out.insert("success".into(), json!(true));
    out.insert("batches".into(), json!(rows.len()));
    out.insert("parts".into(), json!(parts));
    out.insert("segments".into(), json!(segments));
    out.insert("text".into(), json!(text.join("\n")));
    out.insert("nextCursor".into(), json!(next_cursor));
    Ok(out)
}

/// `GET /api/omi/transcripts/{uid}/{sessionId}?cursor=&limit=`: a page of the session's
/// batches in arrival order, as one transcript.
pub async fn session(req: &Request, app: &App, uid: &str, session: &str) -> Result<Response> {
    let (uid, session) = (key_part("userId", uid)?, key_part("sessionId", session)?);
    let p = query(req);
    let (after, limit) = (cursor(&p)?, batches_per_page(&p, app.config.subrequest_budget)?);
    let rows = ProgrammeRepo::new(app.meta()?).batches(session_page(&uid, &session, after, limit)).await?;
    if rows.is_empty() && after.is_none() {
        return Err(Error::NotFound(format!("no transcript session {session} for user {uid}")));
    }
    let mut body = page_body(app, rows, limit).await?;
    body.insert("userId".into(), json!(uid));
    body.insert("sessionId".into(), json!(session));
    http::ok(&body)
}

/// `GET /api/omi/logs/{uid}/{memoryId}/transcript?cursor=&limit=`: the real-time batches that
/// became this memory (received during it), a page at a time; none is an empty page.
pub async fn memory(req: &Request, app: &App, uid: &str, memory_id: &str) -> Result<Response> {
    let (uid, memory_id) = (key_part("userId", uid)?, key_part("memoryId", memory_id)?);
    let p = query(req);
    let (after, limit) = (cursor(&p)?, batches_per_page(&p, app.config.subrequest_budget)?);
    let rows = ProgrammeRepo::new(app.meta()?).batches(memory_transcript_page(&uid, &memory_id, after, limit)).await?;
    let mut body = page_body(app, rows, limit).await?;
    body.insert("userId".into(), json!(uid));
    body.insert("memoryId".into(), json!(memory_id));
    http::ok(&body)
}
