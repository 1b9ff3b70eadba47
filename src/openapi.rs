//! `GET /api/openapi.json`: the API contract, the repository's `openapi.json` compiled into
//! the worker, so what is served is exactly what the tests validate every response against.
//! Open: it describes the API and holds no data.

use worker::{Headers, Response};

use crate::error::Result;

pub const DOCUMENT: &str = include_str!("../openapi.json");

pub fn get() -> Result<Response> {
    let headers = Headers::new();
    headers.set("Content-Type", "application/json; charset=utf-8")?;
    // It changes only with a deploy; browsers and the reference page may keep it a while.
    headers.set("Cache-Control", "public, max-age=300")?;
    headers.set("Access-Control-Allow-Origin", "*")?;
    Ok(Response::ok(DOCUMENT)?.with_headers(headers))
}
