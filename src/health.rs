//! `GET /api/health`: proves both bindings answer, and which schema the database is on.

use serde::{Deserialize, Serialize};
use worker::Response;

use crate::error::Result;
use crate::http::{self, App};
use crate::stmt;

#[derive(Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    r2: bool,
    d1: bool,
    schema_version: Option<i64>,
}

#[derive(Deserialize)]
struct SchemaRow {
    version: Option<i64>,
}

pub async fn get(app: &App) -> Result<Response> {
    // A HEAD of a key that never exists is the cheapest call that still reaches the bucket.
    let r2 = match app.blobs() {
        Ok(blobs) => blobs.head("__r2d1_health_probe").await.is_ok(),
        Err(_) => false,
    };
    let schema_version = match app.meta() {
        Ok(meta) => meta
            .first::<SchemaRow>(stmt!("SELECT MAX(version) AS version FROM schema_version"))
            .await
            .ok()
            .flatten()
            .and_then(|r| r.version),
        Err(_) => None,
    };
    let d1 = schema_version.is_some();
    let healthy = r2 && d1;
    let body = Health { status: if healthy { "ok" } else { "degraded" }, version: env!("CARGO_PKG_VERSION"), r2, d1, schema_version };
    http::json(if healthy { 200 } else { 503 }, &body)
}
