//! What the cron trigger runs, capability by capability.

use serde_json::{json, Value};
use worker::Env;

use crate::config::Config;
use crate::http::App;
use crate::omi;

pub async fn run(env: Env, config: Config, now_ms: i64) -> Value {
    let app = App { env, config, ctx: None, now_ms };
    json!({ "omi": omi::jobs::scheduled(&app).await })
}
