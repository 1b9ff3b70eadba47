//! Omi mentorship logs: the webhooks Omi calls, and the queries, export, import and jobs over
//! what they stored. Routes under `/api/omi/`.

pub mod analytics;
pub mod cursor;
pub mod keys;
pub mod legacy;
pub mod payload;
pub mod query;
pub mod repo;
pub mod signature;
pub mod tools;

mod admin;
pub mod consistency;
mod export;
mod ingest;
pub mod jobs;
mod logs;
mod render;
mod webhook;

use worker::{Method, Request, Response};

use crate::error::{Error, Result};
use crate::http::{self, App};

/// `rest` is the path after `/api/omi/`.
pub async fn dispatch(req: Request, app: &App, rest: &[&str]) -> Result<Response> {
    let method = req.method();
    match (rest, &method) {
        (["memory" | "conversation"], Method::Post) => webhook::memory(req, app).await,
        (["transcript" | "webhook"], Method::Post) => webhook::transcript(req, app).await,
        (["day-summary"], Method::Post) => webhook::day_summary(req, app).await,
        (["setup"], Method::Get) => webhook::setup(&req, app).await,
        (["memory" | "conversation" | "transcript" | "webhook" | "day-summary"], _) => http::method_not_allowed(&["POST"]),

        (["logs"], Method::Get) => logs::list(&req, app).await,
        (["logs", uid, memory_id], Method::Get) => logs::one(&req, app, uid, memory_id).await,
        (["logs", uid, memory_id, "versions"], Method::Get) => logs::versions(&req, app, uid, memory_id).await,
        (["users"], Method::Get) => logs::users(&req, app).await,
        (["users", uid, "stats"], Method::Get) => logs::stats(&req, app, uid).await,
        (["users", uid], Method::Delete) => admin::delete_user(&req, app, uid).await,
        (["analytics", "daily"], Method::Get) => logs::daily(&req, app).await,
        (["transcripts", uid], Method::Get) => logs::transcript_sessions(&req, app, uid).await,
        (["transcripts", uid, session], Method::Get) => logs::transcript(&req, app, uid, session).await,
        (["day-summaries", uid, date], Method::Get) => logs::day_summary(&req, app, uid, date).await,
        (["export"], Method::Get) => export::export(&req, app).await,
        (["import"], Method::Post) => admin::import(req, app).await,
        (["reindex"], Method::Post) => admin::reindex(&req, app).await,
        (["reconcile"], Method::Post) => admin::reconcile(&req, app).await,

        (
            ["logs"]
            | ["logs", _, _]
            | ["logs", _, _, "versions"]
            | ["users"]
            | ["users", _, "stats"]
            | ["analytics", "daily"]
            | ["transcripts", _]
            | ["transcripts", _, _]
            | ["day-summaries", _, _]
            | ["export"]
            | ["setup"],
            _,
        ) => http::method_not_allowed(&["GET"]),
        (["users", _], _) => http::method_not_allowed(&["DELETE"]),
        (["import"] | ["reindex"] | ["reconcile"], _) => http::method_not_allowed(&["POST"]),
        _ => Err(Error::NotFound(format!("no route for {method} /api/omi/{}", rest.join("/")))),
    }
}

/// A path segment that names a mentor or memory, validated like the webhook's `uid`.
fn key_part(field: &str, raw: &str) -> Result<String> {
    keys::check_key_part(raw).map_err(|why| Error::invalid_field(field, why))?;
    Ok(raw.to_string())
}
