//! Per-request state: the request's clock, its armed fault and pause points, and counters of
//! the storage operations it made. Requests interleave in one isolate (every `await` is a point
//! where another request may run), so none of this may live in a thread-local: each request
//! carries its own, and the store adapters hold a reference to it.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use serde::Serialize;

use crate::error::Result;

/// Storage operations of one request, counted by the adapters (cheap `Cell`s, no locking:
/// a request runs on one thread). Structured logs and the bench read them.
#[derive(Debug, Default)]
pub struct Counters {
    pub d1_statements: Cell<u64>,
    pub d1_rows_read: Cell<u64>,
    pub d1_rows_written: Cell<u64>,
    pub r2_operations: Cell<u64>,
    pub r2_bytes_read: Cell<u64>,
    pub r2_bytes_written: Cell<u64>,
    /// R2 operations by workload and billing class (`store::usage`), for the storage report's
    /// cost of operations.
    pub r2_by_class: RefCell<crate::store::usage::OpCounts>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CounterSnapshot {
    pub d1_statements: u64,
    pub d1_rows_read: u64,
    pub d1_rows_written: u64,
    pub r2_operations: u64,
    pub r2_bytes_read: u64,
    pub r2_bytes_written: u64,
    pub r2_class_a: u64,
    pub r2_class_b: u64,
}

impl Counters {
    pub fn add(cell: &Cell<u64>, n: u64) {
        cell.set(cell.get().saturating_add(n));
    }

    pub fn snapshot(&self) -> CounterSnapshot {
        CounterSnapshot {
            d1_statements: self.d1_statements.get(),
            d1_rows_read: self.d1_rows_read.get(),
            d1_rows_written: self.d1_rows_written.get(),
            r2_operations: self.r2_operations.get(),
            r2_bytes_read: self.r2_bytes_read.get(),
            r2_bytes_written: self.r2_bytes_written.get(),
            r2_class_a: self.r2_by_class.borrow().total(crate::store::usage::OpClass::A),
            r2_class_b: self.r2_by_class.borrow().total(crate::store::usage::OpClass::B),
        }
    }
}

#[derive(Debug, Default)]
pub struct RequestState {
    /// The request clock when it arrived, in ms since the epoch.
    pub now_ms: i64,
    /// Request clock minus wall clock: 0 unless a test build set `X-R2D1-Now`.
    offset_ms: i64,
    faults: Vec<String>,
    pauses: Vec<String>,
    pub counters: Counters,
}

pub type Shared = Rc<RequestState>;

fn wall_ms() -> i64 {
    worker::Date::now().as_millis() as i64
}

fn names(list: Option<&str>) -> Vec<String> {
    list.map(|l| l.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()).unwrap_or_default()
}

impl RequestState {
    /// A request (or cron run) on the wall clock, with nothing armed.
    pub fn at_wall_clock() -> Self {
        RequestState { now_ms: wall_ms(), ..Default::default() }
    }

    /// State for a request in a test build: `now` overrides the clock (`X-R2D1-Now`), `faults`
    /// and `pauses` are the comma-separated names of `X-R2D1-Fault` and `X-R2D1-Pause`.
    /// Production builds never call this (see `routes::handle`).
    pub fn for_test(now: Option<i64>, faults: Option<&str>, pauses: Option<&str>) -> Self {
        let wall = wall_ms();
        let now_ms = now.unwrap_or(wall);
        RequestState { now_ms, offset_ms: now_ms - wall, faults: names(faults), pauses: names(pauses), counters: Counters::default() }
    }

    /// A fixed clock and armed points, without touching the JS clock (host unit tests).
    #[cfg(test)]
    pub fn fixed(now_ms: i64, faults: &str, pauses: &str) -> Self {
        RequestState { now_ms, offset_ms: 0, faults: names(Some(faults)), pauses: names(Some(pauses)), counters: Counters::default() }
    }

    /// The request clock now: arrival time plus the wall time that passed since (in Workers the
    /// wall clock moves on after each I/O). Timestamps the GC compares across requests
    /// (`deleted_at`, a writer's `put_started`) are read from here, never from `now_ms`.
    pub fn now(&self) -> i64 {
        wall_ms() + self.offset_ms
    }

    /// Fails with a storage error if the fault `point` is armed for this request.
    pub fn trip(&self, point: &str) -> Result<()> {
        if crate::faults::ENABLED && self.faults.iter().any(|p| p == point) {
            return Err(crate::error::Error::Storage(format!("injected fault at {point}")));
        }
        Ok(())
    }

    /// The armed entry for pause point `name`, if any: `name` itself or `name@tag` (a test
    /// tags its requests' pauses so that releases never reach another request's).
    pub fn pause_armed(&self, name: &str) -> Option<&str> {
        if !crate::faults::ENABLED {
            return None;
        }
        self.pauses.iter().find(|p| p.as_str() == name || p.split_once('@').is_some_and(|(base, _)| base == name)).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_and_snapshot() {
        let c = Counters::default();
        Counters::add(&c.d1_statements, 3);
        Counters::add(&c.r2_bytes_written, 10);
        let s = c.snapshot();
        assert_eq!((s.d1_statements, s.r2_bytes_written, s.r2_operations), (3, 10, 0));
    }

    #[test]
    fn armed_points_are_per_request() {
        let a = RequestState::fixed(5, "r2.put, d1.batch", "gc.after_claim, store.fenced@op7");
        let b = RequestState::fixed(5, "", "");
        assert_eq!(a.trip("r2.put").is_err(), crate::faults::ENABLED);
        assert!(a.trip("r2.get").is_ok());
        assert!(b.trip("r2.put").is_ok());
        let on = crate::faults::ENABLED;
        assert_eq!(a.pause_armed("gc.after_claim"), on.then_some("gc.after_claim"));
        assert_eq!(a.pause_armed("store.fenced"), on.then_some("store.fenced@op7"));
        assert_eq!(a.pause_armed("store"), None);
        assert_eq!(b.pause_armed("gc.after_claim"), None);
    }
}
