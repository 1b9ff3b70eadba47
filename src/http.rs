//! Request plumbing shared by every resource: body and query parsing with limits, the API
//! token check (called by the router's access rules), and JSON responses (errors included).
//! The per-request context is [`App`] (`app.rs`).

use serde::Serialize;
use worker::{Headers, Request, Response};

pub use crate::app::App;
use crate::auth;
use crate::config::Config;
use crate::error::{Error, Result};

/// Requires `Authorization: Bearer <API_TOKEN>`. Without a configured token the API is closed
/// (503), never open. Called by the router for every route whose access rule asks for it.
pub fn require_api_token(config: &Config, req: &Request) -> Result<()> {
    let expected =
        config.api_token.as_ref().ok_or_else(|| Error::NotConfigured("API_TOKEN is not set; the API stays closed until it is".into()))?;
    let header = req.headers().get("Authorization").ok().flatten();
    match auth::bearer_token(header.as_deref()) {
        Some(given) if auth::tokens_match(given, expected.expose()) => Ok(()),
        Some(_) => Err(Error::Unauthorized("invalid API token".into())),
        None => Err(Error::Unauthorized("missing Authorization: Bearer <API_TOKEN> header".into())),
    }
}

/// The value of query parameter `name`, if present (percent-decoded).
pub fn query_param(req: &Request, name: &str) -> Option<String> {
    let url = req.url().ok()?;
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// Every query parameter, percent-decoded, in order.
pub fn query_pairs(req: &Request) -> Vec<(String, String)> {
    req.url().map(|u| u.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()).unwrap_or_default()
}

pub fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

/// Reads the whole body, refusing more than `limit` bytes: first by `Content-Length`, before
/// reading anything, then by what actually arrived (a sender may lie or stream).
pub async fn read_body(req: &mut Request, limit: usize) -> Result<Vec<u8>> {
    if let Some(len) = header(req, "Content-Length").and_then(|v| v.trim().parse::<u64>().ok()) {
        if len > limit as u64 {
            return Err(Error::PayloadTooLarge(format!("body is {len} bytes; the limit is {limit}")));
        }
    }
    let bytes = req.bytes().await.map_err(|e| Error::bad_request("unreadable_body", format!("could not read the body: {e}")))?;
    if bytes.len() > limit {
        return Err(Error::PayloadTooLarge(format!("body is {} bytes; the limit is {limit}", bytes.len())));
    }
    Ok(bytes)
}

/// Requires a JSON content type when one is given (a missing type is accepted: many webhook
/// senders omit it).
pub fn require_json_content_type(req: &Request) -> Result<()> {
    match header(req, "Content-Type") {
        None => Ok(()),
        Some(ct) => {
            let ct = ct.to_ascii_lowercase();
            if ct.starts_with("application/json") || ct.contains("+json") || ct.starts_with("text/plain") {
                Ok(())
            } else {
                Err(Error::UnsupportedMediaType(format!("Content-Type must be application/json, got {ct:?}")))
            }
        }
    }
}

pub fn json<T: Serialize>(status: u16, value: &T) -> Result<Response> {
    let body = serde_json::to_string(value)?;
    let headers = Headers::new();
    headers.set("Content-Type", "application/json; charset=utf-8").map_err(Error::from)?;
    headers.set("Cache-Control", "no-store").map_err(Error::from)?;
    Ok(Response::ok(body).map_err(Error::from)?.with_status(status).with_headers(headers))
}

pub fn ok<T: Serialize>(value: &T) -> Result<Response> {
    json(200, value)
}

/// The JSON error response; server-side detail goes to the log only.
pub fn error_response(err: &Error) -> Response {
    if err.is_server_side() {
        worker::console_error!("r2d1 {}: {}", err.code(), err);
    }
    let mut resp = json(err.status(), &err.body()).unwrap_or_else(|_| Response::error("internal error", 500).expect("static response"));
    match err {
        Error::TooManyRequests { retry_after_secs, .. } => {
            let _ = resp.headers_mut().set("Retry-After", &retry_after_secs.to_string());
        }
        Error::Fenced(_) => {
            let _ = resp.headers_mut().set("Retry-After", "1");
        }
        _ => {}
    }
    resp
}
