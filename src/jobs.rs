//! What the cron trigger runs, capability by capability.

use serde_json::{json, Value};
use worker::Env;

use crate::config::Config;
use crate::http::App;
use crate::{files, omi};

pub async fn run(env: Env, config: Config, now_ms: i64) -> Value {
    let app = App { env, config, ctx: None, now_ms };
    let omi = omi::jobs::scheduled(&app).await;
    let gc = match files::admin::scheduled_gc(&app).await {
        Ok(r) => json!({ "scanned": r.scanned, "deleted": r.deleted.len(), "missing": r.missing.len(), "complete": r.complete }),
        Err(e) => json!({ "error": e.to_string() }),
    };
    json!({ "omi": omi, "files_gc": gc })
}
