//! Per-request state: the request's clock, its armed fault and pause points, and counters of
//! the storage operations it made. Requests interleave in one isolate (every `await` is a point
//! where another request may run), so none of this may live in a thread-local: each request
//! carries its own, and the store adapters hold a reference to it.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use serde::Serialize;

use crate::error::Result;

/// Storage operations of one request, counted by the adapters (cheap `Cell`s, no locking:
/// a request runs on one thread). Structured logs, metrics, the operation budget and the bench
/// read them.
#[derive(Debug, Default)]
pub struct Counters {
    /// Statements sent to D1 (each statement of a batch counts: D1 limits queries per
    /// invocation, 50 on the Free plan).
    pub d1_statements: Cell<u64>,
    /// Calls to D1 (a batch is one call).
    pub d1_calls: Cell<u64>,
    pub d1_rows_read: Cell<u64>,
    pub d1_rows_written: Cell<u64>,
    pub r2_operations: Cell<u64>,
    pub r2_bytes_read: Cell<u64>,
    pub r2_bytes_written: Cell<u64>,
    /// Other subrequests: Cache API calls and Durable Object calls.
    pub other_operations: Cell<u64>,
    /// R2 operations by workload and billing class (`store::usage`), for the storage report's
    /// cost of operations.
    pub r2_by_class: RefCell<crate::store::usage::OpCounts>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CounterSnapshot {
    pub d1_statements: u64,
    pub d1_calls: u64,
    pub d1_rows_read: u64,
    pub d1_rows_written: u64,
    pub r2_operations: u64,
    pub r2_bytes_read: u64,
    pub r2_bytes_written: u64,
    pub other_operations: u64,
    pub r2_class_a: u64,
    pub r2_class_b: u64,
}

impl CounterSnapshot {
    /// What the operation budget counts: R2 calls, D1 statements and other subrequests. A D1
    /// batch counts each statement, the stricter reading of the platform's limits, so a
    /// request within it is within both the subrequest and the D1 query limit.
    pub fn operations(&self) -> u64 {
        self.r2_operations.saturating_add(self.d1_statements).saturating_add(self.other_operations)
    }

    /// The operations made between `earlier` and `self` (a job's share of a cron run).
    pub fn since(&self, earlier: &CounterSnapshot) -> CounterSnapshot {
        CounterSnapshot {
            d1_statements: self.d1_statements.saturating_sub(earlier.d1_statements),
            d1_calls: self.d1_calls.saturating_sub(earlier.d1_calls),
            d1_rows_read: self.d1_rows_read.saturating_sub(earlier.d1_rows_read),
            d1_rows_written: self.d1_rows_written.saturating_sub(earlier.d1_rows_written),
            r2_operations: self.r2_operations.saturating_sub(earlier.r2_operations),
            r2_bytes_read: self.r2_bytes_read.saturating_sub(earlier.r2_bytes_read),
            r2_bytes_written: self.r2_bytes_written.saturating_sub(earlier.r2_bytes_written),
            other_operations: self.other_operations.saturating_sub(earlier.other_operations),
            r2_class_a: self.r2_class_a.saturating_sub(earlier.r2_class_a),
            r2_class_b: self.r2_class_b.saturating_sub(earlier.r2_class_b),
        }
    }
}

impl Counters {
    pub fn add(cell: &Cell<u64>, n: u64) {
        cell.set(cell.get().saturating_add(n));
    }

    pub fn snapshot(&self) -> CounterSnapshot {
        CounterSnapshot {
            d1_statements: self.d1_statements.get(),
            d1_calls: self.d1_calls.get(),
            d1_rows_read: self.d1_rows_read.get(),
            d1_rows_written: self.d1_rows_written.get(),
            r2_operations: self.r2_operations.get(),
            r2_bytes_read: self.r2_bytes_read.get(),
            r2_bytes_written: self.r2_bytes_written.get(),
            other_operations: self.other_operations.get(),
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
    /// The most operations the request may make (`SUBREQUEST_BUDGET`): the adapters refuse
    /// a call beyond it ([`RequestState::spend`]). Unlimited until the router or the cron sets it.
    budget: Cell<Option<u64>>,
    /// The operation count at which bounded work stops and hands back a cursor (see
    /// [`RequestState::can_afford`]): the budget, or a job's share of a cron run's.
    op_limit: Cell<Option<u64>>,
    /// What the request is about, for its log line and data point (`observe`).
    pub notes: RefCell<crate::observe::Notes>,
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
        RequestState { now_ms, offset_ms: now_ms - wall, faults: names(faults), pauses: names(pauses), ..Default::default() }
    }

    /// A fixed clock and armed points, without touching the JS clock (host unit tests).
    #[cfg(test)]
    pub fn fixed(now_ms: i64, faults: &str, pauses: &str) -> Self {
        RequestState { now_ms, offset_ms: 0, faults: names(Some(faults)), pauses: names(Some(pauses)), ..Default::default() }
    }

    /// Operations made so far (see [`CounterSnapshot::operations`]).
    pub fn ops_used(&self) -> u64 {
        self.counters.snapshot().operations()
    }

    /// Sets the request's budget (and the point bounded work stops at).
    pub fn set_budget(&self, budget: Option<u64>) {
        self.budget.set(budget);
        self.op_limit.set(budget);
    }

    pub fn budget(&self) -> Option<u64> {
        self.budget.get()
    }

    /// Sets the operation count bounded work stops at (`None`: the budget), never beyond the
    /// budget.
    pub fn set_op_limit(&self, limit: Option<u64>) {
        let limit = match (limit, self.budget.get()) {
            (Some(l), Some(b)) => Some(l.min(b)),
            (l, b) => l.or(b),
        };
        self.op_limit.set(limit);
    }

    pub fn op_limit(&self) -> Option<u64> {
        self.op_limit.get()
    }

    /// Operations left before the limit (`u64::MAX` when there is none).
    pub fn ops_left(&self) -> u64 {
        self.op_limit.get().map(|l| l.saturating_sub(self.ops_used())).unwrap_or(u64::MAX)
    }

    /// Whether `n` more operations fit under the limit. Resumable work (GC, reconciliation,
    /// retention, migration, consistency) checks this before each step, beside its deadline,
    /// and stops with a cursor rather than let the platform cut the request off.
    pub fn can_afford(&self, n: u64) -> bool {
        self.ops_left() >= n
    }

    /// Called by the adapters before `n` operations: refuses them when they would take the
    /// request past its budget, so an oversized request fails with a clear 413 `over_budget`
    /// before it makes the call the platform would refuse (an exception half way through).
    pub fn spend(&self, n: u64) -> Result<()> {
        match self.budget.get() {
            Some(budget) if self.ops_used().saturating_add(n) > budget => Err(crate::error::Error::OverBudget(format!(
                "this request needs more than the {budget} R2 and D1 operations a request may make (SUBREQUEST_BUDGET); \
                 ask for less at a time (a smaller batch, limit or page)"
            ))),
            _ => Ok(()),
        }
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
    fn the_operation_budget_counts_r2_d1_statements_and_other_calls() {
        let s = RequestState::fixed(0, "", "");
        assert!(s.can_afford(u64::MAX));
        Counters::add(&s.counters.r2_operations, 2);
        Counters::add(&s.counters.d1_statements, 5);
        Counters::add(&s.counters.d1_calls, 1);
        Counters::add(&s.counters.other_operations, 1);
        assert_eq!(s.ops_used(), 8);
        s.set_op_limit(Some(10));
        assert_eq!(s.ops_left(), 2);
        assert!(s.can_afford(2) && !s.can_afford(3));
        s.set_op_limit(Some(5));
        assert_eq!(s.ops_left(), 0);
        assert!(s.spend(1000).is_ok(), "no budget set: nothing is refused");
        s.set_budget(Some(9));
        assert!(s.spend(1).is_ok());
        assert_eq!(s.spend(2).unwrap_err().code(), "over_budget");
        s.set_op_limit(Some(100));
        assert_eq!(s.op_limit(), Some(9), "a share never exceeds the budget");
        let before = s.counters.snapshot();
        Counters::add(&s.counters.d1_statements, 3);
        assert_eq!(s.counters.snapshot().since(&before).operations(), 3);
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
