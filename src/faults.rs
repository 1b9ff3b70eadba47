//! Fault injection for the reliability tests: named points in the storage adapters and the
//! domain code that can be made to fail on purpose.
//!
//! Compiled in only with the `fault-injection` cargo feature, which `npm test` enables for its
//! own build and `npm run dev` / `wrangler deploy` never do: in a production build `trip` is an
//! empty inline function and the `X-R2D1-Fault` header means nothing.

use crate::error::Result;

#[cfg(feature = "fault-injection")]
mod armed {
    use std::cell::RefCell;

    thread_local! {
        // Workers run one request at a time per isolate between awaits; the fault tests send
        // their faulty request alone, so a per-isolate list is enough.
        pub static POINTS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    }
}

/// Arms the comma-separated `points` for the current request (test builds only).
pub fn arm(points: &str) {
    #[cfg(feature = "fault-injection")]
    armed::POINTS.with(|p| *p.borrow_mut() = points.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect());
    #[cfg(not(feature = "fault-injection"))]
    let _ = points;
}

pub fn disarm() {
    #[cfg(feature = "fault-injection")]
    armed::POINTS.with(|p| p.borrow_mut().clear());
}

/// Fails with a storage error if `point` is armed.
#[inline]
pub fn trip(point: &str) -> Result<()> {
    #[cfg(feature = "fault-injection")]
    {
        let hit = armed::POINTS.with(|p| p.borrow().iter().any(|a| a == point));
        if hit {
            return Err(crate::error::Error::Storage(format!("injected fault at {point}")));
        }
    }
    let _ = point;
    Ok(())
}

pub const ENABLED: bool = cfg!(feature = "fault-injection");
