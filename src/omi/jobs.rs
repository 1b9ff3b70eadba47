//! The daily cron job: rollups to R2, retention, and reconciliation of R2 objects the index
//! does not know. Each part is bounded so one run stays within a Worker's limits; what is left
//! is picked up by the next run.

use serde_json::{json, Value};

use super::admin::{reindex_page, ReindexReport, RECONCILE_GRACE_MS};
use super::keys;
use super::render::{day, day_series, iso};
use super::repo::OmiRepo;
use crate::error::Result;
use crate::http::App;
use crate::store::BlobMeta;

const DAY_MS: i64 = 86_400_000;
const MAX_USER_ROLLUPS: usize = 200;
const RETENTION_BATCH: u32 = 200;
const RECONCILE_PAGE: u32 = 200;

fn json_meta() -> BlobMeta {
    BlobMeta { content_type: Some("application/json".into()), ..Default::default() }
}

/// `analytics/daily-summaries/{date}.json` for the UTC day before `now`, and
/// `analytics/user-stats/{uid}.json` for every mentor.
pub async fn rollups(app: &App) -> Result<Value> {
    let repo = OmiRepo::new(app.meta()?);
    let blobs = app.blobs()?;
    let day_start = (app.now_ms.div_euclid(DAY_MS) - 1) * DAY_MS;
    let date = day(day_start);
    let rows = repo.daily(day_start, day_start + DAY_MS, None).await?;
    let series = day_series(&rows, day_start, day_start + DAY_MS);
    let summary = json!({ "date": date, "generatedAt": iso(app.now_ms), "totals": series.first() });
    blobs.put(&keys::daily_rollup_key(&date), serde_json::to_vec_pretty(&summary)?, json_meta()).await?;

    let users = repo.users().await?;
    let mut written = 0;
    for u in users.iter().take(MAX_USER_ROLLUPS) {
        let Some(uid) = u["user_id"].as_str() else { continue };
        let (totals, categories) = repo.user_stats(uid).await?;
        let doc = json!({ "userId": uid, "generatedAt": iso(app.now_ms), "totals": totals, "categories": categories });
        blobs.put(&keys::user_stats_key(uid), serde_json::to_vec_pretty(&doc)?, json_meta()).await?;
        written += 1;
    }
    Ok(json!({ "dailySummary": date, "userStats": written }))
}

/// Deletes memories older than `RETENTION_DAYS`: rows first, then their objects.
pub async fn retention(app: &App) -> Result<Value> {
    let Some(days) = app.config.retention_days else { return Ok(json!({ "enabled": false })) };
    let cutoff = app.now_ms - days as i64 * DAY_MS;
    let repo = OmiRepo::new(app.meta()?);
    let expired = repo.expired(cutoff, RETENTION_BATCH).await?;
    if expired.is_empty() {
        return Ok(json!({ "enabled": true, "deletedMemories": 0, "cutoff": iso(cutoff) }));
    }
    let keys = repo.delete_memories(&expired).await?;
    let objects = keys.len();
    app.blobs()?.delete_many(keys).await?;
    Ok(json!({ "enabled": true, "deletedMemories": expired.len(), "deletedObjects": objects, "cutoff": iso(cutoff) }))
}

/// One page of reconciliation, resuming where the last run stopped and starting over once the
/// whole `by-user/` prefix has been walked.
pub async fn reconcile_step(app: &App, limit: u32, grace_ms: i64) -> Result<ReindexReport> {
    let repo = OmiRepo::new(app.meta()?);
    let cursor = repo.job_cursor("reconcile").await?;
    let report = reindex_page(app, cursor, limit, grace_ms).await?;
    repo.set_job_cursor("reconcile", report.next_cursor.as_deref(), app.now_ms).await?;
    Ok(report)
}

/// Everything the cron trigger does for the Omi logs. A failing part is logged and reported;
/// it does not stop the others.
pub async fn scheduled(app: &App) -> Value {
    let mut out = json!({});
    match rollups(app).await {
        Ok(v) => out["rollups"] = v,
        Err(e) => out["rollups"] = json!({ "error": e.to_string() }),
    }
    match retention(app).await {
        Ok(v) => out["retention"] = v,
        Err(e) => out["retention"] = json!({ "error": e.to_string() }),
    }
    match reconcile_step(app, RECONCILE_PAGE, RECONCILE_GRACE_MS).await {
        Ok(r) => out["reconcile"] = r.to_json(),
        Err(e) => out["reconcile"] = json!({ "error": e.to_string() }),
    }
    out
}
