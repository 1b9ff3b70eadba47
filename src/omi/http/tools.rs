//! Omi's chat tools: `/.well-known/omi-tools.json` and the tools behind it. A mentor asks their
//! Omi "what did I promise Ana last week?" and Omi's assistant calls one of these with the
//! mentor's uid.
//!
//! Every call is checked before anything is read: a signing secret must be configured
//! (`OMI_TOOLS_SECRET`, else `OMI_SIGNING_SECRET`; without one the tools answer 503, since
//! nothing else would stop anyone from asking for any uid's logs), and the `v2` signature must
//! cover this very request — method, path, query, body — within 300 s (401 otherwise). Only
//! then is the call parsed, and every read is filtered on the uid the signed request names.
//! Answers are `{"result": "…"}`, short, in the language most of the mentor's memories are
//! in; failures `{"error": "…"}` with their status, as Omi expects.

use futures_util::join;
use worker::{Request, Response};

use crate::access::enrollment::EnrollmentMode;
use crate::access::repo::AccessRepo;
use crate::error::{Error, Result};
use crate::http::{self, App};
use crate::omi::analytics::mentor::{mentor_analytics, MemoryFacts};
use crate::omi::analytics::Lang;
use crate::omi::payload::OpenItem;
use crate::omi::programme::repo::{FactsRow, ProgrammeRepo};
use crate::omi::query::{LogsQuery, Sort};
use crate::omi::repo::{LogRow, OmiRepo};
use crate::omi::tools::answer::{self, MemoryHit, OpenActionItem};
use crate::omi::tools::call::{parse_call, TimeRange, Tool, ToolRequest, TOOLS_PATH};
use crate::omi::tools::manifest::manifest as tools_manifest;
use crate::omi::tools::signature_v2::{self, SignedRequest, CHAT_TOOL_EVENT};
use crate::omi::tools::terms::search_terms;

/// A tool call's body is a few arguments: anything larger is not Omi.
const MAX_CALL_BYTES: usize = 64 * 1024;
/// Open items are listed from this many of the newest memories that have any.
const OPEN_ITEM_MEMORIES: u32 = 50;
/// Hours are summed over at most this many memories (years of weekly sessions).
const MAX_PERIOD_MEMORIES: u32 = 5000;

pub fn is_tool_path(path: &str) -> bool {
    path.starts_with(TOOLS_PATH)
}

/// `{"error": "text"}` with the error's status; server faults keep their detail in the log.
pub fn error_response(err: &Error) -> Response {
    if err.is_server_side() {
        worker::console_error!("r2d1 chat tool {}: {}", err.code(), err);
    }
    let text = if err.is_server_side() && err.status() != 503 { "internal error, try again later".to_string() } else { err.to_string() };
    http::json(err.status(), &answer::error_body(&text))
        .unwrap_or_else(|_| Response::error("internal error", 500).expect("static response"))
}

/// `GET /.well-known/omi-tools.json`: endpoints absolute on the origin Omi fetched it from.
pub fn manifest(req: &Request) -> Result<Response> {
    let url = req.url()?;
    let origin = url.origin().ascii_serialization();
    http::ok(&tools_manifest(Some(&origin), true))
}

/// A tool route: always answers in Omi's shape.
pub async fn call(req: Request, app: &App, tool: Tool) -> Result<Response> {
    Ok(match answer_call(req, app, tool).await {
        Ok(text) => http::ok(&answer::result_body(&text))?,
        Err(e) => error_response(&e),
    })
}

fn unauthorized(why: impl std::fmt::Display) -> Error {
    Error::Unauthorized(format!("chat tool call refused: {why}"))
}

/// Verifies the call's `v2` signature over the request as it arrived.
fn verify(app: &App, req: &Request, body: &[u8]) -> Result<()> {
    let secret = app.config.tools_secret().ok_or_else(|| {
        Error::NotConfigured("chat tools are not configured: set OMI_TOOLS_SECRET (or OMI_SIGNING_SECRET) to the app's secret".into())
    })?;
    let header = http::header(req, "X-Omi-Signature").ok_or_else(|| unauthorized("missing X-Omi-Signature"))?;
    let delivery = http::header(req, "X-Omi-Delivery").unwrap_or_default();
    let event = http::header(req, "X-Omi-Event").unwrap_or_default();
    let url = req.url()?;
    let method = req.method().to_string();
    let signed =
        SignedRequest { delivery: &delivery, event: &event, method: &method, path: url.path(), query: url.query().unwrap_or(""), body };
    signature_v2::verify(secret.expose(), &header, &signed, app.now_ms.div_euclid(1000)).map_err(unauthorized)?;
    // Signed by Omi, but for another purpose: not a tool call.
    if event != CHAT_TOOL_EVENT {
        return Err(unauthorized(format!("X-Omi-Event is {event:?}, not {CHAT_TOOL_EVENT}")));
    }
    Ok(())
}

async fn answer_call(mut req: Request, app: &App, tool: Tool) -> Result<String> {
    let body = http::read_body(&mut req, MAX_CALL_BYTES).await?;
    verify(app, &req, &body)?;
    if req.method().to_string() != tool.method() {
        return Err(Error::MethodNotAllowed(format!("{} takes {}", tool.name(), tool.method())));
    }
    let url = req.url()?;
    let call = parse_call(tool, url.query().unwrap_or(""), &body, app.now_ms)?;
    let uid = call.uid.as_str();
    // A public Omi app can be installed by anyone, and Omi signs for whoever did: under
    // `OMI_ENROLLMENT=required` only a mentor the programme enrolled gets answers.
    if app.config.omi_enrollment == EnrollmentMode::Required && !AccessRepo::new(app.meta()?).is_enrolled(uid).await? {
        return Err(unauthorized(format!("uid {uid} is not enrolled in the programme")));
    }
    match call.request {
        ToolRequest::SearchLogs { text, range, limit } => {
            let (lang, found) = join!(language(app, uid), search(app, uid, &text, &range, limit));
            let (hits, total) = found?;
            Ok(answer::search_answer(lang?, &text, &range, &hits, total))
        }
        ToolRequest::SessionsWith { person, range, limit } => {
            let (lang, found) = join!(language(app, uid), search(app, uid, &person, &range, limit));
            let (hits, total) = found?;
            Ok(answer::sessions_answer(lang?, &person, &range, &hits, total))
        }
        ToolRequest::OpenActionItems { limit } => {
            let (rows, total, lang) = ProgrammeRepo::new(app.meta()?).open_items(uid, OPEN_ITEM_MEMORIES).await?;
            let items: Vec<OpenActionItem> = rows
                .iter()
                .flat_map(|r| {
                    let open: Vec<OpenItem> = r.open_items_json.as_deref().and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default();
                    open.into_iter().map(|i| OpenActionItem {
                        description: i.description,
                        memory_title: r.title.clone(),
                        memory_at_ms: r.at_ms,
                        due_ms: i.due_ms,
                    })
                })
                .take(limit as usize)
                .collect();
            Ok(answer::action_items_answer(lang, &items, total.max(0) as usize))
        }
        ToolRequest::MentoringHours { range } => {
            let (from, to) = (range.from_ms.unwrap_or(0), range.to_ms.unwrap_or(app.now_ms));
            let (rows, _, lang) = ProgrammeRepo::new(app.meta()?).mentor_period(uid, from, to, 0, MAX_PERIOD_MEMORIES).await?;
            let facts: Vec<MemoryFacts> = rows.iter().map(FactsRow::facts).collect();
            Ok(answer::hours_answer(lang, &range, &mentor_analytics(&facts, 0)))
        }
    }
}

async fn language(app: &App, uid: &str) -> Result<Lang> {
    ProgrammeRepo::new(app.meta()?).language(uid).await
}

fn hit(row: &LogRow) -> MemoryHit {
    MemoryHit { title: row.title.clone(), at_ms: row.started_at.unwrap_or(row.created_at), overview: row.overview.clone() }
}

/// The uid's memories matching every content word of `text`, else any of them; newest first,
/// and how many there are.
async fn search(app: &App, uid: &str, text: &str, range: &TimeRange, limit: u32) -> Result<(Vec<MemoryHit>, usize)> {
    let terms = search_terms(text).ok_or_else(|| Error::invalid_field("query", "must contain at least one word"))?;
    let repo = OmiRepo::new(app.meta()?);
    let query = |fts: String| LogsQuery {
        user_id: Some(uid.to_string()),
        limit,
        sort: Sort::Newest,
        cursor: None,
        rank_cursor: None,
        from_ms: range.from_ms,
        to_ms: range.to_ms,
        category: None,
        fts: Some(fts),
        include_discarded: false,
        full: false,
        only_users: Vec::new(),
    };
    let (mut rows, mut total) = repo.logs(&query(terms.all)).await?;
    if total == 0 {
        if let Some(any) = terms.any {
            (rows, total) = repo.logs(&query(any)).await?;
        }
    }
    rows.truncate(limit as usize);
    Ok((rows.iter().map(hit).collect(), total.max(0) as usize))
}
