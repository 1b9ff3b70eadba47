//! One garbage collector for every prefix r2d1 owns, safe by construction.
//!
//! Objects are written before the D1 rows that name them, and rows are deleted before their
//! objects, so the only question a collector has to get right is *when* an object nothing
//! references may go: a writer may have just put (or reused) it and be about to commit a row
//! that names it. The GC never decides and deletes in one step:
//!
//! 1. **Condemn.** A listing pass (for kinds whose unreferenced objects are garbage:
//!    [`KindInfo::listing_gc`](super::kinds::KindInfo)) walks the prefix with a persisted cursor
//!    and, in one statement per chunk, inserts a `condemned` mark for each of *our* objects older
//!    than the grace that no D1 row references. Explicit condemnation (deleting a mentor,
//!    retention, reconciliation's leftovers, a replaced day summary) inserts marks in the same
//!    batch that deletes the rows, eligible at once.
//! 2. **Claim.** A later sweep, in one D1 batch, turns eligible marks whose key is *still*
//!    unreferenced into `deleting` (per-kind `NOT EXISTS` over the reference sources).
//! 3. **Delete** the claimed objects from R2, then mark them `deleted` (a tombstone with
//!    `deleted_at`), conditional on the claim still being ours. Tombstones older than the grace
//!    are purged. A sweep that dies half way leaves `deleting` marks that the next sweep takes
//!    over once they are older than the grace.
//!
//! **Writers** close the race: every D1 batch that adds a reference to an object appends a
//! fence ([`fence`]) that aborts the whole batch if the key is `deleting`, or was `deleted`
//! since the writer's put started; and it deletes `condemned` marks of those keys in the same
//! batch ([`clear_condemned`]). A fenced writer re-puts its bytes and retries
//! (see [`super::commit`]). Since the claim and the writer's commit are both single D1
//! batches, one of them sees the other: either the claim sees the reference (and skips the
//! key), or the writer sees the claim (and re-writes the object after the deletion).
//!
//! The grace has a floor no request can outlast ([`MIN_GRACE_MS`]): a sweep that took over a
//! dead sweep's claims must never race the dead one's late delete, and a writer's `put_started`
//! must never be older than the oldest tombstone kept.

use serde::{Deserialize, Serialize};

use super::kinds::Kind;
use super::object::is_ours;
use super::{Statement, Store};
use crate::error::{Error, Result};
use crate::faults;

/// The shortest grace accepted: longer than any request or cron run can live.
pub const MIN_GRACE_MS: i64 = 3_600_000;
pub const DEFAULT_GRACE_MS: i64 = 24 * 3_600_000;
/// How far two requests' clocks may disagree. A tombstone this much older than a writer's put
/// still fences the writer (it costs a re-put, never a lost object).
pub const CLOCK_SKEW_MS: i64 = 60_000;
/// D1 binds at most 100 parameters per statement.
pub(crate) const KEYS_PER_STATEMENT: usize = 95;
/// Keys one sweep claims per kind.
const CLAIM_LIMIT: u32 = 500;

/// The most operations one listing page can cost: the R2 list and the condemn statements for
/// up to 1,000 keys. Bounded work checks it against the request's budget before each page.
pub const LISTING_PAGE_OPS: u64 = 1 + (1000_u64.div_ceil(KEYS_PER_STATEMENT as u64)) + 1;
/// The most operations one sweep can cost: the claim batch (two statements per kind and two
/// more), R2 deletes of up to `CLAIM_LIMIT` keys per kind, and the two tombstone statements.
pub const SWEEP_OPS: u64 = (Kind::ALL.len() as u64) * 2 + 2 + ((Kind::ALL.len() as u64) * CLAIM_LIMIT as u64).div_ceil(1000) + 2;

/// A grace period, checked against the floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grace(i64);

impl Grace {
    pub fn from_ms(ms: i64) -> std::result::Result<Grace, String> {
        if ms < MIN_GRACE_MS {
            return Err(format!(
                "must be at least {} hour(s): a shorter grace could collect an object a request is still writing",
                MIN_GRACE_MS / 3_600_000
            ));
        }
        Ok(Grace(ms))
    }

    /// Hours as an operator writes them (`GC_GRACE_HOURS`, `?grace_hours=`).
    pub fn from_hours(raw: &str) -> std::result::Result<Grace, String> {
        let h: f64 = raw.trim().parse().map_err(|_| format!("must be a number of hours, got {raw:?}"))?;
        if !h.is_finite() || h < 0.0 {
            return Err(format!("must be a number of hours, got {raw:?}"));
        }
        Grace::from_ms((h * 3_600_000.0) as i64)
    }

    pub fn ms(self) -> i64 {
        self.0
    }
}

impl Default for Grace {
    fn default() -> Self {
        Grace(DEFAULT_GRACE_MS)
    }
}

fn placeholders(from: usize, n: usize) -> String {
    (from..from + n).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ")
}

// ---------------------------------------------------------------------------------------------
// Statements (pure)

/// Writers: aborts the batch if any of `keys` is being deleted, or was deleted at or after
/// `put_started - CLOCK_SKEW_MS` (the object may be gone although the writer's put saw it).
pub fn fence(keys: &[String], put_started: i64) -> Vec<Statement> {
    keys.chunks(KEYS_PER_STATEMENT)
        .map(|chunk| {
            let mut s = Statement::new(format!(
                "INSERT INTO gc_fence (key) SELECT key FROM gc_marks WHERE key IN ({}) \
                 AND (state = 'deleting' OR (state = 'deleted' AND deleted_at >= ?1 - ?2))",
                placeholders(3, chunk.len())
            ))
            .bind(put_started)
            .bind(CLOCK_SKEW_MS);
            for k in chunk {
                s = s.bind(k.as_str());
            }
            s
        })
        .collect()
}

/// Reconciliation: aborts the batch if any of `keys` carries a mark at all. A condemned or
/// deleted object must never be re-indexed (it would bring back a deleted mentor).
pub fn fence_any_mark(keys: &[String]) -> Vec<Statement> {
    keys.chunks(KEYS_PER_STATEMENT)
        .map(|chunk| {
            let mut s = Statement::new(format!(
                "INSERT INTO gc_fence (key) SELECT key FROM gc_marks WHERE key IN ({})",
                placeholders(1, chunk.len())
            ));
            for k in chunk {
                s = s.bind(k.as_str());
            }
            s
        })
        .collect()
}

/// Writers: a reference revives a condemned object (in the same batch that adds it).
pub fn clear_condemned(keys: &[String]) -> Vec<Statement> {
    keys.chunks(KEYS_PER_STATEMENT)
        .map(|chunk| {
            let mut s =
                Statement::new(format!("DELETE FROM gc_marks WHERE state = 'condemned' AND key IN ({})", placeholders(1, chunk.len())));
            for k in chunk {
                s = s.bind(k.as_str());
            }
            s
        })
        .collect()
}

/// A fenced writer that re-put its object after reading this tombstone takes it away, so its
/// retry is not fenced by the deletion it already repaired (a newer deletion still fences).
pub fn acknowledge_deletion(key: &str, deleted_at: i64) -> Statement {
    crate::stmt!("DELETE FROM gc_marks WHERE key = ?1 AND state = 'deleted' AND deleted_at = ?2", key, deleted_at)
}

/// The upsert tail of an explicit condemnation: a key being deleted keeps its claim; a
/// tombstone becomes a mark again (the object came back). For statements that condemn keys
/// selected from rows (`INSERT INTO gc_marks … SELECT … {CONDEMN_ON_CONFLICT}`).
pub const CONDEMN_ON_CONFLICT: &str =
    "ON CONFLICT (key) DO UPDATE SET state = 'condemned', kind = excluded.kind, reason = excluded.reason, \
     condemned_at = excluded.condemned_at, eligible_at = excluded.eligible_at, claim = NULL, claimed_at = NULL, deleted_at = NULL \
     WHERE gc_marks.state != 'deleting'";

/// Explicit condemnation: marks `keys` condemned, eligible from `eligible_at`. A key being
/// deleted keeps its claim; a tombstone becomes a mark again (the object came back).
pub fn condemn(kind: Kind, keys: &[String], reason: &str, now: i64, eligible_at: i64) -> Vec<Statement> {
    keys.chunks(KEYS_PER_STATEMENT)
        .map(|chunk| {
            let values = (0..chunk.len()).map(|i| format!("(?{})", i + 5)).collect::<Vec<_>>().join(", ");
            let mut s = Statement::new(format!(
                "INSERT INTO gc_marks (key, kind, state, reason, condemned_at, eligible_at) \
                 SELECT column1, ?1, 'condemned', ?2, ?3, ?4 FROM (VALUES {values}) WHERE true \
                 ON CONFLICT (key) DO UPDATE SET state = 'condemned', kind = excluded.kind, reason = excluded.reason, \
                   condemned_at = excluded.condemned_at, eligible_at = excluded.eligible_at, claim = NULL, claimed_at = NULL, \
                   deleted_at = NULL \
                 WHERE gc_marks.state != 'deleting'"
            ))
            .bind(kind.name())
            .bind(reason)
            .bind(now)
            .bind(eligible_at);
            for k in chunk {
                s = s.bind(k.as_str());
            }
            s
        })
        .collect()
}

/// Listing pass: condemns those of `keys` (all of `kind`) that nothing references, deciding
/// and marking in one statement so no writer can slip in between.
pub fn condemn_unreferenced(kind: Kind, keys: &[String], now: i64, eligible_at: i64) -> Vec<Statement> {
    keys.chunks(KEYS_PER_STATEMENT)
        .map(|chunk| {
            let values = (0..chunk.len()).map(|i| format!("(?{})", i + 4)).collect::<Vec<_>>().join(", ");
            let mut s = Statement::new(format!(
                "INSERT INTO gc_marks (key, kind, state, reason, condemned_at, eligible_at) \
                 SELECT v.column1, ?1, 'condemned', 'unreferenced', ?2, ?3 FROM (VALUES {values}) v WHERE {} \
                 ON CONFLICT (key) DO UPDATE SET state = 'condemned', reason = excluded.reason, condemned_at = excluded.condemned_at, \
                   eligible_at = excluded.eligible_at, claim = NULL, claimed_at = NULL, deleted_at = NULL \
                 WHERE gc_marks.state = 'deleted'",
                kind.unreferenced_sql("v.column1")
            ))
            .bind(kind.name())
            .bind(now)
            .bind(eligible_at);
            for k in chunk {
                s = s.bind(k.as_str());
            }
            s
        })
        .collect()
}

/// The claim batch of one sweep: per kind, drop eligible condemned marks whose key is
/// referenced again (stale), then claim eligible marks whose key is still unreferenced; purge
/// old tombstones; finally read back what this sweep (`token`) claimed.
pub fn claim(token: &str, now: i64, grace_ms: i64) -> Vec<Statement> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        out.push(crate::stmt!(
            format!(
                "DELETE FROM gc_marks WHERE kind = ?1 AND state = 'condemned' AND eligible_at <= ?2 AND NOT ({})",
                kind.unreferenced_sql("gc_marks.key")
            ),
            kind.name(),
            now
        ));
        out.push(crate::stmt!(
            format!(
                "UPDATE gc_marks SET state = 'deleting', claim = ?2, claimed_at = ?3 \
                 WHERE key IN (SELECT key FROM gc_marks WHERE kind = ?1 AND \
                   ((state = 'condemned' AND eligible_at <= ?3) OR (state = 'deleting' AND claimed_at <= ?3 - ?4)) \
                   ORDER BY eligible_at, key LIMIT ?5) \
                 AND {}",
                kind.unreferenced_sql("gc_marks.key")
            ),
            kind.name(),
            token,
            now,
            grace_ms,
            CLAIM_LIMIT
        ));
    }
    out.push(crate::stmt!("DELETE FROM gc_marks WHERE state = 'deleted' AND deleted_at <= ?1 - ?2", now, grace_ms));
    out.push(crate::stmt!("SELECT key, kind FROM gc_marks WHERE claim = ?1 ORDER BY key", token));
    out
}

/// After the R2 delete: forget the blob rows and turn this sweep's claims into tombstones.
pub fn mark_deleted(token: &str, now: i64) -> Vec<Statement> {
    vec![
        crate::stmt!("DELETE FROM blobs WHERE r2_key IN (SELECT key FROM gc_marks WHERE claim = ?1 AND state = 'deleting')", token),
        crate::stmt!(
            "UPDATE gc_marks SET state = 'deleted', deleted_at = ?2, claim = NULL WHERE claim = ?1 AND state = 'deleting'",
            token,
            now
        ),
    ]
}

/// Which of `keys` carry marks, and in what state.
pub fn marks_of(keys: &[String]) -> Vec<Statement> {
    keys.chunks(KEYS_PER_STATEMENT)
        .map(|chunk| {
            let mut s =
                Statement::new(format!("SELECT key, state, deleted_at FROM gc_marks WHERE key IN ({})", placeholders(1, chunk.len())));
            for k in chunk {
                s = s.bind(k.as_str());
            }
            s
        })
        .collect()
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct MarkRow {
    pub key: String,
    pub state: String,
    pub deleted_at: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
struct ClaimedRow {
    key: String,
}

// ---------------------------------------------------------------------------------------------
// Running it

pub async fn marks(store: &Store, keys: &[String]) -> Result<Vec<MarkRow>> {
    let mut out = Vec::new();
    for rows in store.meta.batch_results(marks_of(keys)).await? {
        out.extend(rows.rows::<MarkRow>()?);
    }
    Ok(out)
}

#[derive(Debug, Default, Serialize)]
pub struct ListingReport {
    pub scanned: usize,
    pub condemned: u64,
    pub kept_recent: usize,
    pub kept_not_ours: usize,
    /// A whole pass over every prefix ended in this call (the next starts at the first key).
    pub pass_complete: bool,
    /// Where the next call continues; `None` after a complete pass.
    pub cursor: Option<String>,
}

/// The prefixes the listing pass walks: those of kinds it may collect, each once.
pub fn listing_roots() -> Vec<&'static str> {
    let mut roots: Vec<&'static str> = Kind::ALL.iter().filter(|k| k.info().listing_gc).map(|k| k.info().prefix).collect();
    roots.dedup();
    roots
}

/// `"{root index}:{R2 cursor}"`; a cursor this code did not write starts a new pass.
fn parse_cursor(cursor: Option<&str>) -> (usize, Option<String>) {
    let Some((i, rest)) = cursor.and_then(|c| c.split_once(':')) else { return (0, None) };
    match i.parse::<usize>() {
        Ok(i) if i < listing_roots().len() => (i, (!rest.is_empty()).then(|| rest.to_string())),
        _ => (0, None),
    }
}

/// Walks up to `max_pages` pages of 1,000 keys from `cursor`, condemning our unreferenced
/// objects older than the grace. Objects that are not ours are never touched.
pub async fn listing_pass(store: &Store, grace: Grace, cursor: Option<String>, max_pages: usize) -> Result<ListingReport> {
    let roots = listing_roots();
    let (mut root, mut r2_cursor) = parse_cursor(cursor.as_deref());
    let mut out = ListingReport::default();
    let now = store.request().now();
    for _ in 0..max_pages {
        let page = store.blobs.list_page(roots[root], r2_cursor.take(), 1000).await?;
        out.scanned += page.objects.len();
        let mut by_kind: std::collections::BTreeMap<Kind, Vec<String>> = Default::default();
        for o in &page.objects {
            let Some(kind) = Kind::of_key(&o.key).filter(|k| k.info().listing_gc) else { continue };
            if !is_ours(o, kind) {
                out.kept_not_ours += 1;
            } else if o.uploaded_ms as i64 > now - grace.ms() {
                out.kept_recent += 1;
            } else {
                by_kind.entry(kind).or_default().push(o.key.clone());
            }
        }
        let stmts: Vec<Statement> =
            by_kind.iter().flat_map(|(kind, keys)| condemn_unreferenced(*kind, keys, now, now + grace.ms())).collect();
        out.condemned += store.meta.batch(stmts).await?.iter().map(|r| r.changes).sum::<u64>();
        match page.cursor {
            Some(c) => r2_cursor = Some(c),
            None if root + 1 < roots.len() => root += 1,
            None => {
                out.pass_complete = true;
                return Ok(out);
            }
        }
    }
    out.cursor = Some(format!("{root}:{}", r2_cursor.unwrap_or_default()));
    Ok(out)
}

#[derive(Debug, Default, Serialize)]
pub struct SweepReport {
    pub claimed: usize,
    pub deleted: Vec<String>,
}

fn claim_token() -> String {
    let mut buf = [0u8; 12];
    if getrandom::fill(&mut buf).is_err() {
        // Uniqueness, not secrecy, is what matters: fall back to the clock.
        return format!("t{}", worker::Date::now().as_millis());
    }
    hex::encode(buf)
}

/// One sweep: claim, delete from R2, tombstone. Deletes at most [`CLAIM_LIMIT`] keys per kind;
/// call again while it deletes something.
pub async fn sweep(store: &Store, grace: Grace) -> Result<SweepReport> {
    let token = claim_token();
    let req = store.request().clone();
    let results = store.meta.batch_results(claim(&token, req.now(), grace.ms())).await?;
    let claimed: Vec<String> = match results.last() {
        Some(rows) => rows.rows::<ClaimedRow>()?.into_iter().map(|r| r.key).collect(),
        None => Vec::new(),
    };
    if claimed.is_empty() {
        return Ok(SweepReport::default());
    }
    faults::pause(&req, "gc.after_claim").await;
    req.trip("gc.delete")?;
    store.blobs.delete_many(claimed.clone()).await?;
    faults::pause(&req, "gc.after_delete").await;
    store.meta.batch(mark_deleted(&token, req.now())).await?;
    Ok(SweepReport { claimed: claimed.len(), deleted: claimed })
}

/// Sweeps until nothing eligible is left, `max_rounds` sweeps ran, or the request's
/// operation budget has no room for another (what is left stays condemned for the next run).
pub async fn sweep_all(store: &Store, grace: Grace, max_rounds: usize) -> Result<SweepReport> {
    let mut total = SweepReport::default();
    for _ in 0..max_rounds {
        if !store.request().can_afford(SWEEP_OPS) {
            break;
        }
        let r = sweep(store, grace).await?;
        if r.claimed == 0 {
            break;
        }
        total.claimed += r.claimed;
        total.deleted.extend(r.deleted);
    }
    Ok(total)
}

/// Explicit condemnation's statements for objects whose rows the same batch deletes: eligible
/// at once (nothing may reference them any more), swept by the caller or the next cron run.
pub fn condemn_now(store: &Store, kind: Kind, keys: &[String], reason: &str) -> Vec<Statement> {
    let now = store.request().now();
    condemn(kind, keys, reason, now, now)
}

/// Groups keys by kind for [`condemn_now`]; keys of no known kind are refused (a bug).
pub fn condemn_keys_now(store: &Store, keys: &[String], reason: &str) -> Result<Vec<Statement>> {
    let mut by_kind: std::collections::BTreeMap<Kind, Vec<String>> = Default::default();
    for k in keys {
        let kind = Kind::of_key(k).ok_or_else(|| Error::Internal(format!("cannot condemn {k}: no kind owns it")))?;
        by_kind.entry(kind).or_default().push(k.clone());
    }
    Ok(by_kind.iter().flat_map(|(kind, keys)| condemn_now(store, *kind, keys, reason)).collect())
}

// ---------------------------------------------------------------------------------------------
// The `gc` job

use crate::app::App;
use crate::store::jobs::{Job, JobInput, JobOutcome};
use futures_util::future::LocalBoxFuture;

pub static JOB: Job = Job {
    name: "gc",
    what: "listing pass over app blobs and snapshots (condemns unreferenced objects), then a sweep of every kind's eligible marks",
    min_interval_ms: 0,
    run: run_job,
};

#[derive(Debug, Default, Serialize)]
pub struct GcRun {
    pub listing: ListingReport,
    pub sweep: SweepReport,
}

fn run_job<'a>(app: &'a App, input: JobInput) -> LocalBoxFuture<'a, Result<JobOutcome>> {
    Box::pin(async move {
        let r = run(app, app.config.gc_grace, input.cursor, input.deadline_ms).await?;
        Ok(JobOutcome {
            cursor: r.listing.cursor.clone(),
            report: serde_json::json!({
                "scanned": r.listing.scanned, "condemned": r.listing.condemned, "passComplete": r.listing.pass_complete,
                "claimed": r.sweep.claimed, "deleted": r.sweep.deleted.len(),
            }),
        })
    })
}

/// One bounded GC run: listing pages from `cursor` until the pass completes, the deadline or
/// the operation budget (keeping room for one sweep), then sweeps until nothing is eligible,
/// the deadline or the budget. A run that could afford no page hands its cursor back as it was.
pub async fn run(app: &App, grace: Grace, cursor: Option<String>, deadline_ms: i64) -> Result<GcRun> {
    let store = app.store()?;
    let mut out = GcRun::default();
    let mut cursor = cursor;
    loop {
        if !store.request().can_afford(LISTING_PAGE_OPS + SWEEP_OPS) {
            out.listing.cursor = cursor;
            break;
        }
        let page = listing_pass(&store, grace, cursor.take(), 1).await?;
        out.listing.scanned += page.scanned;
        out.listing.condemned += page.condemned;
        out.listing.kept_recent += page.kept_recent;
        out.listing.kept_not_ours += page.kept_not_ours;
        if page.pass_complete {
            out.listing.pass_complete = true;
            break;
        }
        cursor = page.cursor;
        if store.request().now() >= deadline_ms {
            out.listing.cursor = cursor;
            break;
        }
    }
    while store.request().can_afford(SWEEP_OPS) {
        let r = sweep(&store, grace).await?;
        out.sweep.claimed += r.claimed;
        out.sweep.deleted.extend(r.deleted);
        if r.claimed == 0 || store.request().now() >= deadline_ms {
            break;
        }
    }
    Ok(out)
}

/// Which of `keys` (all of `kind`) some D1 row references.
pub async fn referenced(store: &Store, kind: Kind, keys: &[String]) -> Result<std::collections::HashSet<String>> {
    #[derive(Deserialize)]
    struct Key {
        k: String,
    }
    let mut found = std::collections::HashSet::new();
    for source in kind.info().refs {
        for chunk in keys.chunks(KEYS_PER_STATEMENT) {
            let mut s = Statement::new(format!(
                "SELECT {c} AS k FROM {t} WHERE {c} IN ({})",
                placeholders(1, chunk.len()),
                c = source.key_col,
                t = source.table
            ));
            for k in chunk {
                s = s.bind(k.as_str());
            }
            found.extend(store.meta.all::<Key>(s).await?.into_iter().map(|r| r.k));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("apps/a/blobs/{i:064}")).collect()
    }

    #[test]
    fn grace_has_a_floor() {
        assert!(Grace::from_hours("0").is_err());
        assert!(Grace::from_hours("0.5").is_err());
        assert!(Grace::from_hours("-1").is_err());
        assert!(Grace::from_hours("soon").is_err());
        assert_eq!(Grace::from_hours("1").unwrap().ms(), 3_600_000);
        assert_eq!(Grace::from_hours("24").unwrap(), Grace::default());
        assert!(Grace::from_ms(MIN_GRACE_MS - 1).is_err());
    }

    #[test]
    fn every_statement_stays_under_the_parameter_limit() {
        let k = keys(250);
        for stmts in [
            fence(&k, 5),
            fence_any_mark(&k),
            clear_condemned(&k),
            condemn(Kind::AppBlob, &k, "r", 1, 2),
            condemn_unreferenced(Kind::AppBlob, &k, 1, 2),
            marks_of(&k),
        ] {
            assert_eq!(stmts.len(), 3);
            assert!(stmts.iter().all(|s| s.params.len() <= 100));
            let bound: usize = stmts
                .iter()
                .map(|s| s.params.iter().filter(|p| matches!(p, crate::store::Value::Text(t) if t.starts_with("apps/"))).count())
                .sum();
            assert_eq!(bound, 250);
        }
    }

    #[test]
    fn the_fence_fires_on_deleting_and_recent_tombstones_only() {
        let s = &fence(&keys(1), 1000)[0];
        assert!(s.sql.starts_with("INSERT INTO gc_fence"));
        assert!(s.sql.contains("state = 'deleting' OR (state = 'deleted' AND deleted_at >= ?1 - ?2)"));
        assert_eq!(s.params[0], crate::store::Value::Int(1000));
        assert_eq!(s.params[1], crate::store::Value::Int(CLOCK_SKEW_MS));
    }

    #[test]
    fn a_claim_checks_references_per_kind_and_reads_back_its_own_token() {
        let stmts = claim("tok", 10, MIN_GRACE_MS);
        assert_eq!(stmts.len(), Kind::ALL.len() * 2 + 2);
        let blob_claim =
            stmts.iter().find(|s| s.sql.starts_with("UPDATE") && s.params[0] == crate::store::Value::Text("app_blob".into())).unwrap();
        assert!(blob_claim.sql.contains("NOT EXISTS (SELECT 1 FROM app_version_files WHERE r2_key = gc_marks.key)"));
        assert!(stmts.last().unwrap().sql.contains("WHERE claim = ?1"));
    }

    #[test]
    fn listing_cursors_round_trip_and_foreign_ones_restart() {
        assert_eq!(listing_roots(), vec!["apps/"]);
        assert_eq!(parse_cursor(Some("0:abc")), (0, Some("abc".into())));
        assert_eq!(parse_cursor(Some("7:abc")), (0, None));
        assert_eq!(parse_cursor(Some("garbage")), (0, None));
        assert_eq!(parse_cursor(None), (0, None));
    }
}
