//! Storing one memory: R2 first, then the D1 index, so that no index row ever names an object
//! that is not there.
//!
//! Idempotency is data, not a check-then-write race: objects are written create-only under
//! keys no one else uses, and the version row's UNIQUE (uid, memory id, sha256) decides which
//! of several concurrent deliveries of the same content wins; losers delete the objects *they
//! created* (never one they found) and answer `duplicate`. If the D1 write fails after the R2
//! write, the object stays (the client gets a 5xx and Omi retries); the reconciliation job
//! indexes such an object or, when a later delivery already stored the same content, condemns
//! it for the GC. The index batch carries the GC fence like every writer's (`store::commit`).

use super::keys::{daily_key, memory_key};
use super::payload::Memory;
use super::repo::{record_version, NewVersion, OmiRepo, VersionRow};
use crate::error::{Error, Result};
use crate::store::commit::{self, Guard, Reference};
use crate::store::digest::sha256_hex;
use crate::store::object::{self, NewObject, Written};
use crate::store::{Kind, Store};

pub struct Incoming {
    pub uid: String,
    pub body: Vec<u8>,
    pub memory: Memory,
    /// The content hash of the memory (`omi::content`): a version is new only if neither its
    /// bytes nor its content are stored already.
    pub content_sha256: String,
    pub received_ms: i64,
    pub delivery_id: Option<String>,
    /// Recorded in the object's metadata (`memory_created`, `import`).
    pub kind: &'static str,
}

#[derive(Debug, Clone)]
pub struct Stored {
    pub version: i64,
    pub duplicate: bool,
    pub r2_key: String,
}

fn duplicate_of(v: VersionRow) -> Stored {
    Stored { version: v.version, duplicate: true, r2_key: v.r2_key }
}

/// The memory object and its daily copy at `ts`, in the object convention plus the metadata
/// the old tools read. The memory object takes `body` itself (an 8 MB memory is not copied
/// for it; issue 16's peak memory); only the daily copy, when configured, is a copy.
fn objects_at(inc: &Incoming, body: Vec<u8>, sha: &str, ts: i64, write_daily_copy: bool) -> Vec<NewObject> {
    let id = inc.memory.id.as_str();
    let make = |kind: Kind, key: String, body: Vec<u8>| {
        NewObject::plain(kind, key, body, "application/json")
            .with("userId", inc.uid.clone())
            .with("memoryId", id)
            .with("timestamp", ts.to_string())
            .with("type", inc.kind)
            .with(object::LEGACY_SHA256, sha)
    };
    let daily = write_daily_copy.then(|| make(Kind::DailyCopy, daily_key(&inc.uid, id, ts), body.clone()));
    let mut out = vec![make(Kind::Memory, memory_key(&inc.uid, id, ts), body)];
    out.extend(daily);
    out
}

/// Writes the memory's objects under keys no one else uses: create-only, and since keys carry
/// the received millisecond, a key already taken (two deliveries in one millisecond) moves to
/// the next one. On failure nothing this call created is left behind (as far as R2 lets us).
async fn write_objects(
    store: &Store,
    inc: &Incoming,
    mut body: Vec<u8>,
    write_daily_copy: bool,
    sha: &str,
) -> Result<(Vec<NewObject>, i64)> {
    let mut ts = inc.received_ms;
    loop {
        if ts > inc.received_ms + 16 {
            return Err(Error::Conflict(format!("memory {} is being delivered many times at once; retry", inc.memory.id)));
        }
        let objects = objects_at(inc, body, sha, ts, write_daily_copy);
        let results = futures_util::future::join_all(objects.iter().map(|o| object::put(&store.blobs, o))).await;
        let ours: Vec<String> =
            objects.iter().zip(&results).filter(|(_, r)| matches!(r, Ok(Written::Created))).map(|(o, _)| o.key.clone()).collect();
        if results.iter().all(|r| matches!(r, Ok(Written::Created))) {
            return Ok((objects, ts));
        }
        let failed = results.into_iter().find_map(|r| r.err());
        let cleanup = store.blobs.delete_many(ours).await;
        match failed {
            Some(e) => return Err(e),
            None => {
                cleanup?;
                ts += 1;
                // The bytes move back out of the memory object for the next key.
                body = objects.into_iter().next().map(|o| o.stored).unwrap_or_default();
            }
        }
    }
}

/// Stores one memory. `admission` (the rate limiter) runs alongside the duplicate check.
pub async fn store_memory(
    store: &Store,
    repo: &OmiRepo,
    write_daily_copy: bool,
    mut inc: Incoming,
    admission: impl std::future::Future<Output = Result<()>>,
) -> Result<Stored> {
    let sha = sha256_hex(&inc.body);
    let size_bytes = inc.body.len();
    let id = inc.memory.id.as_str();

    // The rate limit and the duplicate check are independent reads: one round trip for both.
    // The R2 writes wait for them, so a re-delivery (Omi's retries, a re-sync) costs one D1
    // read and writes nothing.
    let (admitted, existing) =
        futures_util::join!(admission, repo.find_existing(&inc.uid, id, &sha, &inc.content_sha256, inc.delivery_id.as_deref()));
    admitted?;
    if let Some(existing) = existing? {
        return Ok(duplicate_of(existing));
    }
    let put_started = store.request().now();
    let body = std::mem::take(&mut inc.body);
    let (objects, ts) = write_objects(store, &inc, body, write_daily_copy, &sha).await?;
    store.request().trip("omi.after_put")?;
    let key = objects[0].key.clone();
    let daily = objects.get(1).map(|o| o.key.clone());
    let stmts = record_version(&NewVersion {
        uid: &inc.uid,
        memory: &inc.memory,
        sha256: &sha,
        content_sha256: &inc.content_sha256,
        r2_key: &key,
        daily_key: daily.as_deref(),
        size_bytes,
        received_ms: ts,
        delivery_id: inc.delivery_id.as_deref(),
    });
    let refs: Vec<Reference> = objects.iter().map(Reference::of).collect();
    let rows = commit::commit(store, &refs, put_started, Guard::Revive, stmts).await?;
    let winner = winner_of(&rows)?;
    if winner.r2_key != key {
        // A concurrent delivery of the same content recorded its objects first; ours were
        // created by this call and nothing references them.
        store.blobs.delete_many(objects.into_iter().map(|o| o.key).collect()).await?;
        return Ok(duplicate_of(winner));
    }
    Ok(Stored { version: winner.version, duplicate: false, r2_key: key })
}

/// The last statement of [`record_version`] reads which version holds the content.
fn winner_of(rows: &[crate::store::meta::Rows]) -> Result<VersionRow> {
    rows.last()
        .map(|r| r.rows::<VersionRow>())
        .transpose()?
        .and_then(|r| r.into_iter().next())
        .ok_or_else(|| Error::Internal("version row missing after insert".into()))
}

/// What indexing an object found in the bucket did.
pub enum Adopted {
    /// The object now holds (or already held) this content's version.
    Indexed(VersionRow),
    /// The same content is indexed under another key.
    DuplicateOf(VersionRow),
    /// The key carries a GC mark: it was condemned or deleted and must not come back.
    Marked,
}

/// An object found in R2, to be indexed where it is.
pub struct Found<'a> {
    pub uid: &'a str,
    pub memory: &'a Memory,
    /// The content hash of the memory it holds (of the memory inside, for the old app's
    /// wrappers).
    pub content_sha256: &'a str,
    pub key: &'a str,
    pub body: &'a [u8],
    pub ts: i64,
}

/// Indexes an object that is already in R2 (reindex, reconciliation), with its daily copy when
/// that exists (the key is derived from the memory key). Never adopts a key the GC marked.
pub async fn index_existing(store: &Store, repo: &OmiRepo, found: Found<'_>) -> Result<Adopted> {
    let Found { uid, memory, content_sha256, key, body, ts } = found;
    let sha = sha256_hex(body);
    if let Some(existing) = repo.find_existing(uid, &memory.id, &sha, content_sha256, None).await? {
        return Ok(if existing.r2_key == key { Adopted::Indexed(existing) } else { Adopted::DuplicateOf(existing) });
    }
    let daily = daily_key(uid, &memory.id, ts);
    let daily = store.blobs.head(&daily).await?.map(|_| daily);
    let mut refs = vec![Reference::existing(key)];
    refs.extend(daily.iter().map(Reference::existing));
    let stmts = record_version(&NewVersion {
        uid,
        memory,
        sha256: &sha,
        content_sha256,
        r2_key: key,
        daily_key: daily.as_deref(),
        size_bytes: body.len(),
        received_ms: ts,
        delivery_id: None,
    });
    match commit::commit(store, &refs, store.request().now(), Guard::IfUnmarked, stmts).await {
        Ok(rows) => {
            let winner = winner_of(&rows)?;
            Ok(if winner.r2_key == key { Adopted::Indexed(winner) } else { Adopted::DuplicateOf(winner) })
        }
        Err(Error::Fenced(_)) => Ok(Adopted::Marked),
        Err(e) => Err(e),
    }
}
