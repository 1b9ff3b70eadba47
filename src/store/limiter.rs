//! Rate limits through the Workers rate-limiting bindings (wrangler.toml `[[ratelimits]]`;
//! Miniflare runs them too). Limits and periods live in each binding's configuration:
//!
//! - [`WEBHOOK`] (`WEBHOOK_LIMITER`): Omi deliveries per uid;
//! - [`WEBHOOK_CEILING`] (`WEBHOOK_CEILING`): Omi deliveries of all uids together, so many uids
//!   at once (a public Omi app installed by strangers) cannot flood the index;
//! - [`AUTH`] (`AUTH_LIMITER`): failed authentications per client address.
//!
//! Without a binding there is no limit (and `/api/health` says so): the limiters exist to stop
//! abuse, and must never be the reason a real delivery is lost.

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::Env;

use crate::error::{Error, Result};

pub const WEBHOOK: &str = "WEBHOOK_LIMITER";
pub const WEBHOOK_CEILING: &str = "WEBHOOK_CEILING";
pub const AUTH: &str = "AUTH_LIMITER";
/// Every limiter binding, for `/api/health`.
pub const ALL: [&str; 3] = [WEBHOOK, WEBHOOK_CEILING, AUTH];

fn binding(env: &Env, name: &str) -> Result<Option<JsValue>> {
    let env: &JsValue = env.as_ref();
    let value = Reflect::get(env, &JsValue::from_str(name)).map_err(|_| Error::Internal("env lookup".into()))?;
    Ok((!value.is_undefined() && !value.is_null()).then_some(value))
}

/// Whether the deployment has the binding `name`.
pub fn is_bound(env: &Env, name: &str) -> bool {
    binding(env, name).ok().flatten().is_some()
}

/// `Ok(true)` when a request under `key` may proceed on limiter `name`. A missing limiter, or
/// one that fails, lets it through (and logs the failure): refusing Omi's deliveries because
/// the limiter is down would lose memories.
pub async fn allow_on(env: &Env, name: &str, key: &str) -> Result<bool> {
    let Some(binding) = binding(env, name)? else { return Ok(true) };
    match limit(&binding, key).await {
        Ok(allowed) => Ok(allowed),
        Err(e) => {
            worker::console_error!("r2d1 rate limiter {name} failed, letting the request through: {e:?}");
            Ok(true)
        }
    }
}

async fn limit(binding: &JsValue, key: &str) -> std::result::Result<bool, JsValue> {
    let limit: Function = Reflect::get(binding, &JsValue::from_str("limit"))?.dyn_into()?;
    let options = Object::new();
    Reflect::set(&options, &JsValue::from_str("key"), &JsValue::from_str(key))?;
    let promise: Promise = limit.call1(binding, &options)?.dyn_into()?;
    let outcome = JsFuture::from(promise).await?;
    Ok(Reflect::get(&outcome, &JsValue::from_str("success"))?.as_bool().unwrap_or(true))
}
