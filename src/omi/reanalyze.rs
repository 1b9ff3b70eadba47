//! The `omi.analytics` job: brings stored analytics up to date. Ingest computes them for every
//! new memory; this recomputes, from the objects in R2, the index rows whose analytics are
//! older than [`ANALYTICS_VERSION`] (rows from before migration 0010, or from before a rule
//! changed), and makes the text of real-time batches stored before 0010 searchable.
//!
//! Resumable: the cursor is `m:{seq}` (memories after that row) or `t:{seq}` (batches), so a
//! run that stops at its deadline or budget continues where it left off, and a row that cannot
//! be analysed is stepped over, not retried forever. Each object is one R2 read, and a cron run
//! shares one invocation's subrequests with the other jobs: a run reads at most a quarter of
//! `SUBREQUEST_BUDGET` objects.

use serde::Deserialize;
use serde_json::{json, Value};

use super::analytics::ANALYTICS_VERSION;
use super::link::batch_text;
use super::payload::{memory_from_value, transcript_batch_from_value, unwrap_legacy};
use super::repo::{give_up_analytics, index_transcript_text, refresh_analytics};
use crate::app::App;
use crate::error::Result;
use crate::stmt;
use crate::store::object::{self, Read};
use crate::store::Statement;

const PAGE: u32 = 20;
const MAX_OBJECT_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Deserialize)]
struct Stale {
    seq: i64,
    r2_key: String,
    sha256: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Memories(i64),
    Transcripts(i64),
}

fn parse_cursor(cursor: Option<&str>) -> Phase {
    match cursor.and_then(|c| c.split_once(':')) {
        Some(("t", n)) => Phase::Transcripts(n.parse().unwrap_or(0)),
        Some(("m", n)) => Phase::Memories(n.parse().unwrap_or(0)),
        _ => Phase::Memories(0),
    }
}

fn stale_memories(after: i64, limit: u32) -> Statement {
    stmt!(
        "SELECT seq, r2_key, sha256 FROM omi_memories WHERE analytics_version < ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        ANALYTICS_VERSION,
        after,
        limit
    )
}

fn unindexed_batches(after: i64, limit: u32) -> Statement {
    stmt!("SELECT seq, r2_key, sha256 FROM omi_transcript_batches WHERE text_indexed = 0 AND seq > ?1 ORDER BY seq LIMIT ?2", after, limit)
}

/// One run: pages of memories, then of batches, until done, the deadline, or the run's share
/// of the subrequest budget. Returns the cursor to resume from (`None`: all current) and a
/// report.
pub async fn run(app: &App, cursor: Option<String>, deadline_ms: i64) -> Result<(Option<String>, Value)> {
    let store = app.store()?;
    let max_reads = (app.config.subrequest_budget / 4).max(1);
    let page = PAGE.min(max_reads);
    let (mut phase, mut reads) = (parse_cursor(cursor.as_deref()), 0u32);
    let (mut memories, mut batches, mut skipped) = (0u32, 0u32, 0u32);
    loop {
        if reads + page > max_reads || store.request().now() >= deadline_ms {
            break;
        }
        let (rows, transcripts, after) = match phase {
            Phase::Memories(after) => (store.meta.all::<Stale>(stale_memories(after, page)).await?, false, after),
            Phase::Transcripts(after) => (store.meta.all::<Stale>(unindexed_batches(after, page)).await?, true, after),
        };
        let mut stmts = Vec::new();
        for row in &rows {
            reads += 1;
            let bytes = match object::read(&store.blobs, &row.r2_key, &row.sha256, MAX_OBJECT_BYTES).await? {
                Read::Ok(bytes) => bytes,
                // Missing or damaged: the consistency check reports it; nothing to compute from.
                Read::Missing | Read::Corrupt(_) => {
                    skipped += 1;
                    continue;
                }
            };
            let value = serde_json::from_slice::<Value>(&bytes).ok();
            if transcripts {
                let segments = value.and_then(|v| transcript_batch_from_value(v).ok()).map(|b| b.segments).unwrap_or_default();
                stmts.extend(index_transcript_text(row.seq, &batch_text(&segments)));
                batches += 1;
            } else {
                match value.and_then(|v| unwrap_legacy(v).ok()).and_then(|r| memory_from_value(&r.memory).ok()) {
                    Some(memory) => {
                        stmts.extend(refresh_analytics(row.seq, &row.sha256, &memory));
                        memories += 1;
                    }
                    None => {
                        stmts.push(give_up_analytics(row.seq, &row.sha256));
                        skipped += 1;
                    }
                }
            }
        }
        if !stmts.is_empty() {
            store.meta.batch(stmts).await?;
        }
        let last = rows.last().map(|r| r.seq).unwrap_or(after);
        phase = match (phase, rows.len() < page as usize) {
            (Phase::Memories(_), false) => Phase::Memories(last),
            (Phase::Memories(_), true) => Phase::Transcripts(0),
            (Phase::Transcripts(_), false) => Phase::Transcripts(last),
            (Phase::Transcripts(_), true) => {
                return Ok((None, json!({ "memories": memories, "transcriptBatches": batches, "skipped": skipped, "done": true })));
            }
        };
    }
    let cursor = match phase {
        Phase::Memories(n) => format!("m:{n}"),
        Phase::Transcripts(n) => format!("t:{n}"),
    };
    Ok((Some(cursor), json!({ "memories": memories, "transcriptBatches": batches, "skipped": skipped, "done": false })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_resume_each_phase() {
        assert_eq!(parse_cursor(None), Phase::Memories(0));
        assert_eq!(parse_cursor(Some("m:41")), Phase::Memories(41));
        assert_eq!(parse_cursor(Some("t:7")), Phase::Transcripts(7));
        assert_eq!(parse_cursor(Some("junk")), Phase::Memories(0));
        assert!(stale_memories(3, 20).sql.contains("analytics_version < ?1"));
        assert_eq!(stale_memories(3, 20).params[0], crate::store::Value::Int(i64::from(ANALYTICS_VERSION)));
    }
}
