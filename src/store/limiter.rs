//! The webhook rate limiter: the Workers rate-limiting binding `WEBHOOK_LIMITER`
//! (wrangler.toml `[[ratelimits]]`; Miniflare runs it too). Its limit and period live in the
//! binding's configuration. Without the binding there is no limit: the limiter exists to stop
//! abuse, and must never be the reason a real delivery is lost.

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::Env;

use crate::error::{Error, Result};

pub const BINDING: &str = "WEBHOOK_LIMITER";

/// `Ok(true)` when a request under `key` may proceed. A limiter that fails lets it through
/// (and logs): refusing Omi's deliveries because the limiter is down would lose memories.
pub async fn allow(env: &Env, key: &str) -> Result<bool> {
    let env: &JsValue = env.as_ref();
    let binding = Reflect::get(env, &JsValue::from_str(BINDING)).map_err(|_| Error::Internal("env lookup".into()))?;
    if binding.is_undefined() || binding.is_null() {
        return Ok(true);
    }
    match limit(&binding, key).await {
        Ok(allowed) => Ok(allowed),
        Err(e) => {
            worker::console_error!("r2d1 rate limiter failed, letting the request through: {e:?}");
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
