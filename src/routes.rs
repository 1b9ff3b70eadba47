//! The route table: one match over (method, path segments), delegating to resource modules.

use worker::{Context, Env, Method, Request, Response};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::http::{self, App};
use crate::{admin, faults, files, health, live, omi};

pub fn read_config(env: &Env) -> Result<Config> {
    Config::from_lookup(|name| env.var(name).map(|v| v.to_string()).ok().or_else(|| env.secret(name).map(|v| v.to_string()).ok()))
        .map_err(|e| Error::NotConfigured(format!("configuration error: {e}")))
}

pub async fn handle(req: Request, env: Env, ctx: Context) -> Response {
    let now_ms = worker::Date::now().as_millis() as i64;
    if faults::ENABLED {
        if let Some(points) = http::header(&req, "X-R2D1-Fault") {
            faults::arm(&points);
        }
    }
    let result = match read_config(&env) {
        Ok(config) => dispatch(req, App { env, config, ctx: Some(ctx), now_ms }).await,
        Err(e) => Err(e),
    };
    faults::disarm();
    result.unwrap_or_else(|e| http::error_response(&e))
}

async fn dispatch(req: Request, app: App) -> Result<Response> {
    let path = req.path();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = req.method();
    match segments.as_slice() {
        ["api", "health"] => match method {
            Method::Get | Method::Head => health::get(&app).await,
            _ => http::method_not_allowed(&["GET"]),
        },
        ["api", "omi", rest @ ..] => omi::dispatch(req, &app, rest).await,
        ["api", "admin", "consistency", ..] => admin::dispatch(req, &app, &segments[2..]).await,
        ["api", "apps", rest @ ..] => files::routes::apps(req, &app, rest).await,
        ["api", "admin", "storage", rest @ ..] => files::routes::admin(req, &app, rest).await,
        ["api", "live", rest @ ..] => live::dispatch(req, &app, rest).await,
        // Test builds only: proves a panic becomes a 500 JSON error and the isolate recovers.
        ["api", "__test", "panic"] if faults::ENABLED => panic!("deliberate panic for the tests"),
        _ => Err(Error::NotFound(format!("no route for {method} {path}"))),
    }
}
