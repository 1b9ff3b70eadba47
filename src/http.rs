//! Request plumbing shared by every resource: body and query parsing with limits, and JSON
//! responses (errors included). Who may call a route is decided before any of this, by the
//! router (`access::guard`). The per-request context is [`App`] (`app.rs`).

use serde::Serialize;
use worker::{Headers, Request, Response};

pub use crate::app::App;
use crate::error::{Error, Result};

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

/// Reads the whole body, refusing more than `limit` bytes before buffering them: first by
/// `Content-Length`, before reading anything; then chunk by chunk as the body streams in,
/// cancelling the stream at the first chunk that passes the limit (a sender may lie, or send
/// chunked without a length). The chunks stay JavaScript buffers until the body is complete, and
/// are then copied once into a buffer of the exact size, so a refused body never reaches the
/// wasm heap (whose memory never shrinks) and an accepted one is allocated once.
pub async fn read_body(req: &mut Request, limit: usize) -> Result<Vec<u8>> {
    let declared = header(req, "Content-Length").and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(len) = declared {
        if len > limit as u64 {
            return Err(too_large(Some(len), limit));
        }
    }
    let Some(stream) = req.inner().body() else { return Ok(Vec::new()) };
    read_limited(stream.into(), limit).await.map_err(|e| match e {
        ReadError::TooLarge => too_large(None, limit),
        ReadError::Js(e) => Error::bad_request("unreadable_body", format!("could not read the body: {e:?}")),
    })
}

enum ReadError {
    TooLarge,
    Js(wasm_bindgen::JsValue),
}

impl From<wasm_bindgen::JsValue> for ReadError {
    fn from(e: wasm_bindgen::JsValue) -> Self {
        ReadError::Js(e)
    }
}

async fn read_limited(stream: wasm_bindgen::JsValue, limit: usize) -> std::result::Result<Vec<u8>, ReadError> {
    use js_sys::{Function, Promise, Reflect, Uint8Array};
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;
    let method = |target: &JsValue, name: &str| -> std::result::Result<Function, JsValue> {
        Reflect::get(target, &JsValue::from_str(name))?.dyn_into()
    };
    let reader = method(&stream, "getReader")?.call0(&stream)?;
    let read = method(&reader, "read")?;
    let mut chunks: Vec<Uint8Array> = Vec::new();
    let mut total: usize = 0;
    loop {
        let step = JsFuture::from(read.call0(&reader)?.dyn_into::<Promise>()?).await?;
        if Reflect::get(&step, &JsValue::from_str("done"))?.as_bool() == Some(true) {
            break;
        }
        let chunk: Uint8Array = Reflect::get(&step, &JsValue::from_str("value"))?.dyn_into()?;
        total = total.saturating_add(chunk.length() as usize);
        if total > limit {
            // Tell the sender to stop; what it already sent is dropped with `chunks`.
            if let Ok(cancel) = method(&reader, "cancel") {
                let _ = cancel.call0(&reader);
            }
            return Err(ReadError::TooLarge);
        }
        chunks.push(chunk);
    }
    let mut out = vec![0u8; total];
    let mut at = 0;
    for chunk in chunks {
        let n = chunk.length() as usize;
        chunk.copy_to(&mut out[at..at + n]);
        at += n;
    }
    Ok(out)
}

fn too_large(declared: Option<u64>, limit: usize) -> Error {
    match declared {
        Some(len) => Error::PayloadTooLarge(format!("body is {len} bytes; the limit is {limit}")),
        None => Error::PayloadTooLarge(format!("body is larger than the limit of {limit} bytes")),
    }
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
    headers.set("X-Content-Type-Options", "nosniff").map_err(Error::from)?;
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
