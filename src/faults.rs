//! Fault injection and pause points for the reliability tests.
//!
//! Compiled in only with the `fault-injection` cargo feature, which `npm test` enables for its
//! own build and `npm run dev` / `wrangler deploy` never do. Which points are armed is
//! per-request state ([`crate::request::RequestState`], from `X-R2D1-Fault` / `X-R2D1-Pause`):
//! requests interleave in one isolate, so a thread-local list would arm another request's
//! points. Only the *release flags* of pause points are isolate-global, which is what lets one
//! test request release another request parked at a point.

use crate::request::RequestState;

pub const ENABLED: bool = cfg!(feature = "fault-injection");

#[cfg(feature = "fault-injection")]
mod parking {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    thread_local! {
        /// How many requests are parked at each pause point right now.
        pub static PARKED: RefCell<BTreeMap<String, u32>> = const { RefCell::new(BTreeMap::new()) };
        /// Releases not yet consumed: a release that arrives before its request parks is kept.
        pub static RELEASES: RefCell<BTreeMap<String, u32>> = const { RefCell::new(BTreeMap::new()) };
    }

    pub fn bump(map: &'static std::thread::LocalKey<RefCell<BTreeMap<String, u32>>>, name: &str, up: bool) {
        map.with(|m| {
            let mut m = m.borrow_mut();
            let n = m.entry(name.to_string()).or_insert(0);
            *n = if up { *n + 1 } else { n.saturating_sub(1) };
            if *n == 0 {
                m.remove(name);
            }
        });
    }

    pub fn take_release(name: &str) -> bool {
        RELEASES.with(|r| {
            let mut r = r.borrow_mut();
            match r.get_mut(name) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    if *n == 0 {
                        r.remove(name);
                    }
                    true
                }
                _ => false,
            }
        })
    }
}

/// Parks the request at pause point `name` if its `X-R2D1-Pause` header armed it (as `name`
/// or `name@tag`), until a test calls `POST /api/__test/release?name=<the armed entry>`
/// (polling every few ms through a JS timer, so other requests run meanwhile). Each pass
/// through the point parks again. Gives up after two minutes so a forgotten release cannot
/// hang a test run. A no-op in production builds.
pub async fn pause(state: &RequestState, name: &str) {
    #[cfg(feature = "fault-injection")]
    if let Some(entry) = state.pause_armed(name) {
        let entry = entry.to_string();
        parking::bump(&parking::PARKED, &entry, true);
        let mut waited = 0u64;
        while !parking::take_release(&entry) && waited < 120_000 {
            worker::Delay::from(std::time::Duration::from_millis(5)).await;
            waited += 5;
        }
        parking::bump(&parking::PARKED, &entry, false);
    }
    let _ = (state, name);
}

/// Releases one request parked (now or later) at `name`.
pub fn release(name: &str) {
    #[cfg(feature = "fault-injection")]
    parking::bump(&parking::RELEASES, name, true);
    let _ = name;
}

/// Pause points with parked requests, and how many are parked at each.
pub fn parked() -> Vec<(String, u32)> {
    #[cfg(feature = "fault-injection")]
    return parking::PARKED.with(|p| p.borrow().iter().map(|(k, v)| (k.clone(), *v)).collect());
    #[cfg(not(feature = "fault-injection"))]
    Vec::new()
}
