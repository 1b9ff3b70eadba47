//! Storing one memory: R2 first, then the D1 index, so that no index row ever names an object
//! that is not there.
//!
//! Idempotency is data, not a check-then-write race: objects are written create-only under
//! keys no one else uses, and the version row's UNIQUE (uid, memory id, sha256) decides which
//! of several concurrent deliveries of the same content wins; losers delete the objects they
//! wrote and answer `duplicate`. If the D1 write fails after the R2 write, the object stays
//! (the client gets a 5xx and Omi retries); the reconciliation job indexes such an object or,
//! when a later delivery already stored the same content, removes it.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::keys::{daily_key, memory_key};
use super::payload::Memory;
use super::repo::{NewVersion, OmiRepo, VersionRow};
use crate::error::{Error, Result};
use crate::faults;
use crate::store::{BlobMeta, BlobStore, PutOutcome};

pub struct Incoming {
    pub uid: String,
    pub body: Vec<u8>,
    pub memory: Memory,
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

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn duplicate_of(v: VersionRow) -> Stored {
    Stored { version: v.version, duplicate: true, r2_key: v.r2_key }
}

/// Writes the memory's objects under keys no one else uses: create-only, and since keys carry
/// the received millisecond, a key already taken (two deliveries in one millisecond) moves to
/// the next one. On failure nothing this call wrote is left behind (as far as R2 lets us).
async fn write_objects(
    blobs: &BlobStore,
    inc: &Incoming,
    write_daily_copy: bool,
    sha: &str,
    digest: [u8; 32],
) -> Result<(String, Option<String>, i64)> {
    let id = inc.memory.id.as_str();
    let meta = |ts: i64| BlobMeta {
        content_type: Some("application/json".into()),
        content_encoding: None,
        custom: HashMap::from([
            ("userId".to_string(), inc.uid.clone()),
            ("memoryId".to_string(), id.to_string()),
            ("timestamp".to_string(), ts.to_string()),
            ("type".to_string(), inc.kind.to_string()),
            ("sha256".to_string(), sha.to_string()),
            ("writer".to_string(), "r2d1".to_string()),
        ]),
        sha256: Some(digest),
    };
    let mut ts = inc.received_ms;
    loop {
        if ts > inc.received_ms + 16 {
            return Err(Error::Conflict(format!("memory {id} is being delivered many times at once; retry")));
        }
        let key = memory_key(&inc.uid, id, ts);
        let daily = write_daily_copy.then(|| daily_key(&inc.uid, id, ts));
        let main_put = blobs.put_create_only(&key, inc.body.clone(), meta(ts));
        let (main, copy) = match &daily {
            Some(d) => {
                let (main, copy) = futures_util::join!(main_put, blobs.put_create_only(d, inc.body.clone(), meta(ts)));
                (main, Some(copy))
            }
            None => (main_put.await, None),
        };
        let mut ours = Vec::new();
        if matches!(main, Ok(PutOutcome::Created)) {
            ours.push(key.clone());
        }
        if let (Some(Ok(PutOutcome::Created)), Some(d)) = (&copy, &daily) {
            ours.push(d.clone());
        }
        match (main, copy.transpose()) {
            (Ok(PutOutcome::Created), Ok(None | Some(PutOutcome::Created))) => return Ok((key, daily, ts)),
            (Ok(_), Ok(_)) => {
                blobs.delete_many(ours).await?;
                ts += 1;
            }
            (Err(e), _) | (_, Err(e)) => {
                let _ = blobs.delete_many(ours).await;
                return Err(e);
            }
        }
    }
}

/// Stores one memory. `admission` (the rate limiter) runs alongside the duplicate check.
pub async fn store_memory(
    blobs: &BlobStore,
    repo: &OmiRepo,
    write_daily_copy: bool,
    inc: Incoming,
    admission: impl std::future::Future<Output = Result<()>>,
) -> Result<Stored> {
    let digest: [u8; 32] = Sha256::digest(&inc.body).into();
    let sha = hex::encode(digest);
    let id = inc.memory.id.as_str();

    // The rate limit and the duplicate check are independent reads: one round trip for both.
    // The R2 writes wait for them, so a re-delivery (Omi's retries, a re-sync) costs one D1
    // read and writes nothing.
    let (admitted, existing) = futures_util::join!(admission, repo.find_existing(&inc.uid, id, &sha, inc.delivery_id.as_deref()));
    admitted?;
    if let Some(existing) = existing? {
        return Ok(duplicate_of(existing));
    }
    let (key, daily, ts) = write_objects(blobs, &inc, write_daily_copy, &sha, digest).await?;

    faults::trip("omi.after_put")?;
    let winner = repo
        .record(&NewVersion {
            uid: &inc.uid,
            memory: &inc.memory,
            sha256: &sha,
            r2_key: &key,
            daily_key: daily.as_deref(),
            size_bytes: inc.body.len(),
            received_ms: ts,
            delivery_id: inc.delivery_id.as_deref(),
        })
        .await?;

    if winner.r2_key != key {
        // A concurrent delivery of the same content recorded its objects first.
        let mut ours = vec![key];
        ours.extend(daily);
        blobs.delete_many(ours).await?;
        return Ok(duplicate_of(winner));
    }
    Ok(Stored { version: winner.version, duplicate: false, r2_key: key })
}

/// Indexes an object that is already in R2 (reindex, reconciliation). Returns the version that
/// holds this content; if it is not `key`, the object duplicates one already indexed.
pub async fn index_existing(repo: &OmiRepo, uid: &str, memory: &Memory, key: &str, body: &[u8], received_ms: i64) -> Result<VersionRow> {
    let sha = sha256_hex(body);
    if let Some(existing) = repo.find_existing(uid, &memory.id, &sha, None).await? {
        return Ok(existing);
    }
    repo.record(&NewVersion {
        uid,
        memory,
        sha256: &sha,
        r2_key: key,
        daily_key: None,
        size_bytes: body.len(),
        received_ms,
        delivery_id: None,
    })
    .await
}
