//! R2 operations as Cloudflare bills them, counted where they happen (the R2 adapter) and kept
//! as daily totals in D1 (`r2_operations_daily`), so the storage report can price a month of
//! them (`files::costs`).
//!
//! Classes (developers.cloudflare.com/r2/pricing): puts and lists are Class A, gets and heads
//! Class B, deletes are free. A conditional put that finds the key taken is still a put.
//!
//! Persisting must cost the hot paths (the webhook above all) nothing they wait for: each
//! request adds its counts to an accumulator of its isolate, and at most once a minute (or
//! every [`FLUSH_AT_OPS`] operations) one request hands one upsert batch to `waitUntil`, after
//! its response. What an isolate counted but never flushed before it was evicted is lost: at
//! most a minute of operations, which moves a monthly figure by well under a percent. The
//! storage report and the cron flush before they read.

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde::Serialize;

use super::kinds::{Kind, Workload};
use super::{MetaStore, Statement};
use crate::error::Result;
use crate::stmt;

/// A billing class of R2 operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpClass {
    A,
    B,
    Free,
}

/// Where an operation's key lives, as the report groups workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpWorkload {
    Omi,
    Files,
    /// Health probes and keys of no known kind.
    Other,
}

impl OpWorkload {
    pub const ALL: [OpWorkload; 3] = [OpWorkload::Omi, OpWorkload::Files, OpWorkload::Other];

    /// The name the report and `r2_operations_daily.workload` use (`files::costs::OMI_WORKLOAD`
    /// for the Omi logs).
    pub fn name(self) -> &'static str {
        match self {
            OpWorkload::Omi => "omi",
            OpWorkload::Files => "app_files",
            OpWorkload::Other => "other",
        }
    }

    /// The workload a key (or a listed prefix) belongs to.
    pub fn of_key(key: &str) -> OpWorkload {
        if key.starts_with("apps/") {
            return OpWorkload::Files;
        }
        if key.starts_with(super::kinds::OMI_ROOT) {
            return OpWorkload::Omi;
        }
        match Kind::of_key(key).map(|k| k.info().workload) {
            Some(Workload::Omi) => OpWorkload::Omi,
            Some(Workload::Files) => OpWorkload::Files,
            None => OpWorkload::Other,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Counts per workload and class (A, B), for one request or one isolate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OpCounts([[u64; 2]; 3]);

impl OpCounts {
    pub fn add(&mut self, workload: OpWorkload, class: OpClass, n: u64) {
        let slot = match class {
            OpClass::A => 0,
            OpClass::B => 1,
            OpClass::Free => return,
        };
        let cell = &mut self.0[workload.index()][slot];
        *cell = cell.saturating_add(n);
    }

    pub fn get(&self, workload: OpWorkload, class: OpClass) -> u64 {
        match class {
            OpClass::A => self.0[workload.index()][0],
            OpClass::B => self.0[workload.index()][1],
            OpClass::Free => 0,
        }
    }

    pub fn total(&self, class: OpClass) -> u64 {
        OpWorkload::ALL.iter().map(|w| self.get(*w, class)).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.total(OpClass::A) == 0 && self.total(OpClass::B) == 0
    }

    fn merge(&mut self, other: &OpCounts) {
        for w in OpWorkload::ALL {
            self.add(w, OpClass::A, other.get(w, OpClass::A));
            self.add(w, OpClass::B, other.get(w, OpClass::B));
        }
    }
}

/// Operations an isolate gathers before a flush is due regardless of time.
pub const FLUSH_AT_OPS: u64 = 500;
/// Longest an isolate keeps counts before a flush is due.
pub const FLUSH_EVERY_MS: i64 = 60_000;

/// An isolate's counts not yet in D1, by UTC day.
#[derive(Debug, Default)]
pub struct Pending {
    by_day: BTreeMap<String, OpCounts>,
    last_flush_ms: Option<i64>,
}

impl Pending {
    pub fn add(&mut self, day: &str, counts: &OpCounts) {
        if !counts.is_empty() {
            self.by_day.entry(day.to_string()).or_default().merge(counts);
        }
    }

    fn ops(&self) -> u64 {
        self.by_day.values().map(|c| c.total(OpClass::A) + c.total(OpClass::B)).sum()
    }

    /// Whether a flush is due at `now_ms`: something to write, and enough of it or long enough
    /// since the last flush (an isolate's first request flushes).
    pub fn due(&self, now_ms: i64) -> bool {
        !self.by_day.is_empty() && (self.ops() >= FLUSH_AT_OPS || self.last_flush_ms.is_none_or(|at| now_ms - at >= FLUSH_EVERY_MS))
    }

    /// The upserts for everything pending, which is handed over (a failed flush is logged and
    /// its counts dropped: counting must never fail a request).
    pub fn take(&mut self, now_ms: i64) -> Vec<Statement> {
        self.last_flush_ms = Some(now_ms);
        let by_day = std::mem::take(&mut self.by_day);
        let mut out = Vec::new();
        for (day, counts) in by_day {
            for w in OpWorkload::ALL {
                let (a, b) = (counts.get(w, OpClass::A), counts.get(w, OpClass::B));
                if a + b > 0 {
                    out.push(add_daily(&day, w.name(), a, b));
                }
            }
        }
        out
    }
}

fn add_daily(day: &str, workload: &str, a: u64, b: u64) -> Statement {
    stmt!(
        "INSERT INTO r2_operations_daily (day, workload, class_a, class_b) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (day, workload) DO UPDATE SET class_a = class_a + ?3, class_b = class_b + ?4",
        day,
        workload,
        a,
        b
    )
}

thread_local! {
    // The isolate's accumulator (one thread per isolate). Per-request state lives in
    // `RequestState`; this only sums what finished requests counted.
    static PENDING: RefCell<Pending> = RefCell::new(Pending::default());
}

/// `YYYY-MM-DD` (UTC) of a millisecond timestamp.
pub fn day_of(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_else(|| "1970-01-01".into())
}

/// Adds a finished request's counts; returns the statements to run if a flush is due.
pub fn after_request(now_ms: i64, counts: &OpCounts) -> Option<Vec<Statement>> {
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        p.add(&day_of(now_ms), counts);
        p.due(now_ms).then(|| p.take(now_ms))
    })
}

/// Writes everything pending now (the report and the cron, before they read the totals).
pub async fn flush_now(meta: &MetaStore, now_ms: i64, counts: &OpCounts) -> Result<()> {
    let stmts = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        p.add(&day_of(now_ms), counts);
        p.take(now_ms)
    });
    meta.batch(stmts).await.map(|_| ())
}

/// One row of `r2_operations_daily`.
#[derive(Debug, Clone, serde::Deserialize, Serialize, PartialEq, Eq)]
pub struct DailyOps {
    pub day: String,
    pub workload: String,
    pub class_a: u64,
    pub class_b: u64,
}

/// Daily totals from `since_day` on.
pub fn daily_since(since_day: &str) -> Statement {
    stmt!("SELECT day, workload, class_a, class_b FROM r2_operations_daily WHERE day >= ?1 ORDER BY day, workload", since_day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_their_workload() {
        assert_eq!(OpWorkload::of_key("apps/demo/blobs/ab"), OpWorkload::Files);
        assert_eq!(OpWorkload::of_key("apps/"), OpWorkload::Files);
        assert_eq!(OpWorkload::of_key("mobil3-mentorships/by-user/u/2024/01/m-1.json"), OpWorkload::Omi);
        assert_eq!(OpWorkload::of_key("mobil3-mentorships/analytics/x.json"), OpWorkload::Omi);
        assert_eq!(OpWorkload::of_key("__r2d1_health_probe"), OpWorkload::Other);
    }

    #[test]
    fn counts_add_by_class_and_ignore_free_operations() {
        let mut c = OpCounts::default();
        c.add(OpWorkload::Files, OpClass::A, 2);
        c.add(OpWorkload::Files, OpClass::B, 5);
        c.add(OpWorkload::Omi, OpClass::A, 1);
        c.add(OpWorkload::Omi, OpClass::Free, 100);
        assert_eq!((c.total(OpClass::A), c.total(OpClass::B)), (3, 5));
        assert_eq!(c.get(OpWorkload::Omi, OpClass::B), 0);
        assert!(!c.is_empty());
        assert!(OpCounts::default().is_empty());
    }

    #[test]
    fn flushes_are_due_once_a_minute_or_every_few_hundred_operations() {
        let mut p = Pending::default();
        assert!(!p.due(0), "nothing to write");
        let mut one = OpCounts::default();
        one.add(OpWorkload::Files, OpClass::B, 1);
        p.add("2026-01-01", &one);
        assert!(p.due(0), "an isolate's first flush is due at once");
        let stmts = p.take(1_000);
        assert_eq!(stmts.len(), 1);
        assert_eq!(stmts[0].params, vec!["2026-01-01".into(), "app_files".into(), 0u64.into(), 1u64.into()]);
        p.add("2026-01-01", &one);
        assert!(!p.due(30_000));
        assert!(p.due(61_000));
        let mut many = OpCounts::default();
        many.add(OpWorkload::Omi, OpClass::A, FLUSH_AT_OPS);
        p.add("2026-01-02", &many);
        assert!(p.due(2_000));
        let stmts = p.take(2_000);
        assert_eq!(stmts.len(), 2, "one upsert per day and workload");
        assert!(p.take(3_000).is_empty());
    }

    #[test]
    fn days_are_utc_dates() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(1_767_225_599_999), "2025-12-31");
        assert_eq!(day_of(1_767_225_600_000), "2026-01-01");
    }
}
