//! r2d1: Omi mentorship logs and versioned app files on Cloudflare R2 (blobs) and D1 (index).
//!
//! The pure core (payload parsing, key layout, validation, cursors, tiering, diff, signatures)
//! lives in modules that never call `worker`, so `cargo test` runs it on the host. The storage
//! adapters in [`store`] are the only code that touches the bindings; resource modules parse a
//! request, call the domain and render JSON.

pub mod access;
pub mod app;
pub mod auth;
pub mod config;
pub mod cors;
pub mod error;
pub mod faults;
pub mod files;
pub mod live;
pub mod observe;
pub mod omi;
pub mod request;
pub mod routes;
pub mod store;

#[cfg(test)]
mod contract_tests;
#[cfg(test)]
mod proptests;

mod admin;
pub mod health;
mod http;
mod jobs;
mod openapi;

use worker::{event, Context, Env, Request, Response, ScheduleContext, ScheduledEvent};

#[event(start)]
fn start() {
    // Panic messages go to the log; worker-build's shim then resets the wasm instance, and the
    // JS entry (src/js/entry.mjs) answers the request with a 500 JSON error.
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    Ok(routes::handle(req, env, ctx).await)
}

/// The cron trigger (wrangler.toml `[triggers]`, every 15 minutes): every registered job that
/// is due (GC, Omi reconciliation, retention, rollups), each within its time budget.
#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, ctx: ScheduleContext) {
    let _ = (ctx, event);
    match routes::read_config(&env) {
        Ok(config) => {
            // One cron invocation has one subrequest budget for all of its jobs.
            let state = request::RequestState::at_wall_clock();
            state.set_budget(Some(config.subrequest_budget as u64));
            state.notes.borrow_mut().request_id = Some(observe::random_id());
            let app = app::App::new(env, config, None, state);
            let report = jobs::run_scheduled(&app).await;
            // Each job wrote its own line; this one sums up the run (its jobs, the state read
            // and their audit rows).
            worker::console_log!("{}", observe::line::cron(&app.state, &report));
            // Then the jobs' own R2 operations, and whatever this isolate still holds, into the
            // daily totals (a cron run has no waitUntil to defer it to).
            let counts = *app.state.counters.r2_by_class.borrow();
            if let Err(e) = async { store::usage::flush_now(&app.meta()?, app.now_ms, &counts).await }.await {
                worker::console_warn!("r2d1 usage: daily R2 operation totals not written: {e}");
            }
        }
        Err(e) => worker::console_error!("r2d1 scheduled run skipped: {e}"),
    }
}
