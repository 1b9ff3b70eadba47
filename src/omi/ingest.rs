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

pub async fn store_memory(blobs: &BlobStore, repo: &OmiRepo, write_daily_copy: bool, inc: Incoming) -> Result<Stored> {
    let digest: [u8; 32] = Sha256::digest(&inc.body).into();
    let sha = hex::encode(digest);
    let id = inc.memory.id.as_str();
    if let Some(existing) = repo.find_existing(&inc.uid, id, &sha, inc.delivery_id.as_deref()).await? {
        return Ok(duplicate_of(existing));
    }

    let meta = |ts: i64| BlobMeta {
        content_type: Some("application/json".into()),
        content_encoding: None,
        custom: HashMap::from([
            ("userId".to_string(), inc.uid.clone()),
            ("memoryId".to_string(), id.to_string()),
            ("timestamp".to_string(), ts.to_string()),
            ("type".to_string(), inc.kind.to_string()),
            ("sha256".to_string(), sha.clone()),
            ("writer".to_string(), "r2d1".to_string()),
        ]),
        sha256: Some(digest),
    };

    // Keys carry the received millisecond; two deliveries of one memory in the same
    // millisecond would share it, so a taken key moves to the next millisecond.
    let mut ts = inc.received_ms;
    let (key, daily) = loop {
        if ts > inc.received_ms + 16 {
            return Err(Error::Conflict(format!("memory {id} is being delivered many times at once; retry")));
        }
        let key = memory_key(&inc.uid, id, ts);
        let daily = write_daily_copy.then(|| daily_key(&inc.uid, id, ts));
        let main_put = blobs.put_create_only(&key, inc.body.clone(), meta(ts));
        let (main, copy) = match &daily {
            Some(d) => {
                let (main, copy) = futures_util::join!(main_put, blobs.put_create_only(d, inc.body.clone(), meta(ts)));
                (main?, Some(copy?))
            }
            None => (main_put.await?, None),
        };
        match (main, copy) {
            (PutOutcome::Created, None | Some(PutOutcome::Created)) => break (key, daily),
            (main, copy) => {
                let mut ours = Vec::new();
                if main == PutOutcome::Created {
                    ours.push(key);
                }
                if let (Some(PutOutcome::Created), Some(d)) = (copy, daily) {
                    ours.push(d);
                }
                blobs.delete_many(ours).await?;
                ts += 1;
            }
        }
    };

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
