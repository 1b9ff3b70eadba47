//! What every handler and job gets: configuration read once, the bindings, and this request's
//! own state (clock, armed fault and pause points, storage counters).

use std::rc::Rc;

use worker::Env;

use crate::access::guard::Caller;
use crate::config::Config;
use crate::error::Result;
use crate::request::{RequestState, Shared};
use crate::store::{BlobStore, MetaStore, Store};

pub struct App {
    pub env: Env,
    pub config: Config,
    /// The request's execution context (`None` in the cron trigger).
    pub ctx: Option<worker::Context>,
    /// The request clock when it arrived (ms since the epoch); see [`RequestState::now`] for
    /// timestamps that must move on while the request runs.
    pub now_ms: i64,
    pub state: Shared,
    /// Who is calling and what the route's access rule lets the handler serve; set by the
    /// router before the handler runs (empty in the cron trigger).
    pub caller: Caller,
}

impl App {
    pub fn new(env: Env, config: Config, ctx: Option<worker::Context>, state: RequestState) -> Self {
        App { env, config, ctx, now_ms: state.now_ms, state: Rc::new(state), caller: Caller::default() }
    }

    pub fn blobs(&self) -> Result<BlobStore> {
        BlobStore::from_env(&self.env, self.state.clone())
    }

    pub fn meta(&self) -> Result<MetaStore> {
        MetaStore::from_env(&self.env, self.state.clone())
    }

    pub fn store(&self) -> Result<Store> {
        Ok(Store { blobs: self.blobs()?, meta: self.meta()? })
    }

    /// Runs `work` after the response is sent (`waitUntil`); inline where there is no request
    /// context to extend (the cron trigger).
    pub async fn after_response(&self, work: impl std::future::Future<Output = ()> + 'static) {
        match &self.ctx {
            Some(ctx) => ctx.wait_until(work),
            None => work.await,
        }
    }
}
