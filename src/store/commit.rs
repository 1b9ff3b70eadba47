//! The one way both workloads write objects and commit the rows that name them: R2 first,
//! then one D1 batch that carries the GC fence for every object it references (see
//! [`super::gc`]). Used by memory ingest, transcripts, day summaries, file writes, batches,
//! snapshots, restores, migration and import alike.

use futures_util::{stream, StreamExt};

use super::gc::{self, MarkRow};
use super::meta::Rows;
use super::object::{self, NewObject, Written};
use super::{Statement, Store};
use crate::error::{Error, Result};
use crate::faults;

/// How a batch treats marks on the keys it references.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// A writer with the object's bytes: a condemned mark is cleared (the reference revives
    /// the object); a deletion since its put fences the batch and the bytes are put again.
    Revive,
    /// Reconciliation adopting an object it found: any mark at all aborts the batch
    /// ([`Error::Fenced`]); a condemned or deleted object is never brought back.
    IfUnmarked,
}

/// A key the batch references, with the bytes to put back if the GC took it (borrowed: the
/// bytes are copied only in the rare case they must be put again).
#[derive(Debug, Clone)]
pub struct Reference<'a> {
    pub key: String,
    pub object: Option<&'a NewObject>,
}

impl<'a> Reference<'a> {
    pub fn of(object: &'a NewObject) -> Self {
        Reference { key: object.key.clone(), object: Some(object) }
    }

    /// A key the batch names without holding its bytes (e.g. a restore copying references).
    /// If the GC took it, the batch cannot repair that and answers 503.
    pub fn existing(key: impl Into<String>) -> Self {
        Reference { key: key.into(), object: None }
    }
}

/// Fenced attempts before giving up with a retryable 503.
const MAX_ATTEMPTS: usize = 6;

/// Writes `objects` (as their modes say), a few at a time.
pub async fn put_all(store: &Store, objects: &[&NewObject]) -> Result<Vec<Written>> {
    let results: Vec<Result<Written>> = stream::iter(objects.iter().map(|o| object::put(&store.blobs, o))).buffered(6).collect().await;
    results.into_iter().collect()
}

/// Runs `stmts` in one D1 batch together with the fence for `refs` and (for
/// [`Guard::Revive`]) the clearing of their condemned marks. `put_started` is the request
/// clock read before the caller's puts. Returns the results of `stmts` only.
///
/// When the fence fires the batch changed nothing. For each fenced key: if the GC is still
/// deleting it, wait and look again; once it is deleted, put the bytes again (create-only) and
/// acknowledge that tombstone in the retried batch. Bounded; past that a 503 asks the client
/// to retry.
pub async fn commit(store: &Store, refs: &[Reference<'_>], put_started: i64, guard: Guard, stmts: Vec<Statement>) -> Result<Vec<Rows>> {
    let req = store.request().clone();
    faults::pause(&req, "store.before_commit").await;
    let keys: Vec<String> = refs.iter().map(|r| r.key.clone()).collect();
    let mut put_started = put_started;
    let mut acknowledged: Vec<(String, i64)> = Vec::new();
    for attempt in 0..MAX_ATTEMPTS {
        let mut batch: Vec<Statement> = acknowledged.iter().map(|(k, at)| gc::acknowledge_deletion(k, *at)).collect();
        match guard {
            Guard::Revive => {
                batch.extend(gc::fence(&keys, put_started));
                batch.extend(gc::clear_condemned(&keys));
            }
            Guard::IfUnmarked => batch.extend(gc::fence_any_mark(&keys)),
        }
        let skip = batch.len();
        batch.extend(stmts.iter().cloned());
        match store.meta.batch_results(batch).await {
            Ok(mut results) => return Ok(results.split_off(skip)),
            Err(Error::Fenced(why)) if guard == Guard::Revive => {
                faults::pause(&req, "store.fenced").await;
                let marks = gc::marks(store, &keys).await?;
                let (deleting, deleted): (Vec<&MarkRow>, Vec<&MarkRow>) =
                    marks.iter().filter(|m| m.state != "condemned").partition(|m| m.state == "deleting");
                if !deleting.is_empty() {
                    // The GC is between its claim and its tombstone: wait for the tombstone.
                    worker::Delay::from(std::time::Duration::from_millis(25 << attempt.min(4))).await;
                    continue;
                }
                let fresh = put_started - gc::CLOCK_SKEW_MS;
                let mut reput = Vec::new();
                for m in deleted.into_iter().filter(|m| m.deleted_at.is_some_and(|at| at >= fresh)) {
                    let Some(object) = refs.iter().find(|r| r.key == m.key).and_then(|r| r.object.cloned()) else {
                        return Err(Error::Fenced(format!("{} was collected while this request referenced it: {why}", m.key)));
                    };
                    acknowledged.push((m.key.clone(), m.deleted_at.unwrap_or_default()));
                    reput.push(NewObject { mode: object::WriteMode::CreateOnly, ..object });
                }
                worker::console_warn!("r2d1 gc fence: re-writing {} object(s) the GC deleted under this request", reput.len());
                put_started = req.now();
                put_all(store, &reput.iter().collect::<Vec<_>>()).await?;
            }
            Err(e) => return Err(e),
        }
    }
    Err(Error::Fenced("objects this request references are being collected; retry".into()))
}

/// Puts `objects` and commits `stmts` with the fence for them and for `existing` keys the
/// batch also references.
pub async fn write_and_commit(
    store: &Store,
    objects: &[&NewObject],
    existing: &[String],
    after_put: &str,
    stmts: Vec<Statement>,
) -> Result<(Vec<Written>, Vec<Rows>)> {
    // What the budget cannot carry is refused before anything is written: the puts, the fence
    // and clearing statements, and the caller's statements.
    let fence = (objects.len() + existing.len()).div_ceil(gc::KEYS_PER_STATEMENT) * 2;
    store.request().spend((objects.len() + fence + stmts.len()) as u64)?;
    let put_started = store.request().now();
    let written = put_all(store, objects).await?;
    store.request().trip(after_put)?;
    let mut refs: Vec<Reference> = objects.iter().map(|o| Reference::of(o)).collect();
    refs.extend(existing.iter().map(Reference::existing));
    let rows = commit(store, &refs, put_started, Guard::Revive, stmts).await?;
    Ok((written, rows))
}
