//! The savings the plan promised, measured (issue 13): the storage report's cost section over
//! both workloads and the core's own tables, priced by `files::costs`.
//!
//! Where each figure comes from:
//! - D1 bytes by table: `store::census::d1_tables` (row sizes, every table), grouped into the
//!   workloads by table name (`omi_*`; `apps`, `app_*`, `blobs`; the rest is the core's);
//! - R2 objects and bytes by kind: the last complete `storage.census` pass (a listing walk);
//! - R2 operations: the daily totals the worker counted (`store::usage`), the last 30 days
//!   scaled to a month;
//! - what D1 would hold if nothing were in R2 ("all inline"): for the app files, the bytes of
//!   every R2-only file and version line, less what D1 keeps only because of R2 (the `blobs`
//!   table, `r2_key` columns and their index); for the Omi logs, every memory version's JSON and the
//!   transcript and day-summary objects (the daily copies are copies, an all-D1 design keeps
//!   one);
//! - the rollout: apps and bytes per cohort, mode and location (`files::rollout::report`);
//! - the plan's example, recomputed under the configured tiers (`files::costs::plan_example`).

use serde::Serialize;

use super::costs::{self, CostFacts, CostReport, D1Table, PlanExample, R2Ops, R2Prefix, Workload};
use super::lifecycle_repo;
use super::maintenance::current_rollout;
use super::repo;
use super::report::{TierCount, Tiers};
use super::rollout::{self, AppFacts, FilesBytes, RolloutReport};
use super::tier::Location;
use crate::config::{Config, StorageMode};
use crate::error::Result;
use crate::stmt;
use crate::store::census::{self, R2Census};
use crate::store::kinds::{self, Kind};
use crate::store::usage::{self, DailyOps};
use crate::store::MetaStore;

pub const FILES_WORKLOAD: &str = "app_files";
pub const CORE_WORKLOAD: &str = "core";
/// Days of operation totals a month's estimate is scaled from.
const OPS_WINDOW_DAYS: i64 = 30;
const DAY_MS: i64 = 86_400_000;

/// The workload a D1 table belongs to, by its name.
pub fn workload_of_table(name: &str) -> &'static str {
    if name.starts_with("omi_") {
        costs::OMI_WORKLOAD
    } else if name == "apps" || name == "blobs" || name.starts_with("app_") {
        FILES_WORKLOAD
    } else {
        CORE_WORKLOAD
    }
}

/// The workload objects of a census kind belong to.
pub fn workload_of_kind(kind: &str) -> &'static str {
    match Kind::parse(kind).map(|k| k.info().workload) {
        Some(kinds::Workload::Omi) => costs::OMI_WORKLOAD,
        Some(kinds::Workload::Files) => FILES_WORKLOAD,
        None => CORE_WORKLOAD,
    }
}

/// The workload `r2_operations_daily` rows of `name` belong to.
fn workload_of_ops(name: &str) -> &'static str {
    match name {
        "omi" => costs::OMI_WORKLOAD,
        "app_files" => FILES_WORKLOAD,
        _ => CORE_WORKLOAD,
    }
}

/// Operations over the window, per workload, scaled to a month.
#[derive(Debug, Clone, Serialize)]
pub struct OpsWindow {
    pub from_day: Option<String>,
    pub observed_secs: u64,
    pub counted: Vec<DailyOps>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Savings {
    pub costs: CostReport,
    /// D1 saved against everything inline, per workload (the plan's 70-80 % is about the app
    /// files: the Omi logs were always in R2).
    pub database_size_reduction_by_workload: Vec<WorkloadReduction>,
    pub census: CensusState,
    pub operations: OpsWindow,
    pub rollout: RolloutReport,
    pub plan_example: PlanExample,
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkloadReduction {
    pub workload: String,
    pub d1_bytes: u64,
    pub all_inline_d1_bytes: u64,
    pub percent: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CensusState {
    pub complete_at: Option<i64>,
    pub in_progress: bool,
}

/// The rollout report from the apps' current files.
pub async fn rollout_report(meta: &MetaStore, config: &Config) -> Result<RolloutReport> {
    let rollout = current_rollout(meta, config).await?;
    let mut apps: Vec<AppFacts> = Vec::new();
    for row in lifecycle_repo::app_locations(meta).await? {
        if apps.last().is_none_or(|a| a.app != row.app_id) {
            apps.push(AppFacts {
                app: row.app_id.clone(),
                app_override: row.storage_mode.as_deref().and_then(StorageMode::parse),
                ..Default::default()
            });
        }
        let a = apps.last_mut().expect("pushed above");
        let fb = FilesBytes { files: row.files, bytes: row.bytes };
        match row.location.as_deref().and_then(Location::parse) {
            Some(Location::Database) => a.database = fb,
            Some(Location::Hybrid) => a.hybrid = fb,
            Some(Location::R2) => a.r2 = fb,
            None => {}
        }
    }
    Ok(rollout::report(&rollout, config.storage_mode, &apps))
}

pub async fn build(meta: &MetaStore, config: &Config, now_ms: i64) -> Result<Savings> {
    let (tables, reported) = census::d1_tables(meta).await?;
    let r2: R2Census = census::read(meta).await?;
    let from_day = usage::day_of(now_ms - (OPS_WINDOW_DAYS - 1) * DAY_MS);
    let counted: Vec<DailyOps> = meta.all(usage::daily_since(&from_day)).await?;
    let first_day_ms = counted
        .iter()
        .filter_map(|d| chrono::NaiveDate::parse_from_str(&d.day, "%Y-%m-%d").ok())
        .min()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis());
    let observed_secs = first_day_ms.map(|f| ((now_ms - f).max(0) / 1000) as u64).unwrap_or(0);
    let repo::ReportRows { files, lines, blobs } = repo::report_rows(meta, None).await?;
    let mut tiers = Tiers::default();
    for r in files.iter().chain(&lines) {
        let slot = match Location::parse(&r.location) {
            Some(Location::Database) => &mut tiers.database,
            Some(Location::Hybrid) => &mut tiers.hybrid,
            Some(Location::R2) => &mut tiers.r2,
            None => continue,
        };
        *slot = TierCount { files: slot.files + r.files, bytes: slot.bytes + r.bytes };
    }
    #[derive(serde::Deserialize, Default)]
    struct Sum {
        b: u64,
    }
    let memory_json: Sum =
        meta.first(stmt!("SELECT COALESCE(SUM(size_bytes), 0) AS b FROM omi_memory_versions")).await?.unwrap_or_default();

    let mut workloads: Vec<Workload> = [costs::OMI_WORKLOAD, FILES_WORKLOAD, CORE_WORKLOAD]
        .iter()
        .map(|name| Workload { name: name.to_string(), ..Workload::default() })
        .collect();
    let slot = |ws: &mut Vec<Workload>, name: &str| -> usize { ws.iter().position(|w| w.name == name).expect("every workload is listed") };
    for t in &tables {
        let i = slot(&mut workloads, workload_of_table(&t.name));
        workloads[i].d1_tables.push(D1Table {
            name: t.name.clone(),
            rows: t.rows,
            payload_bytes: t.payload_bytes,
            index_entries: t.index_entries,
            index_key_bytes: t.index_key_bytes,
        });
    }
    for k in r2.kinds.iter().filter(|k| k.kind != "total") {
        let i = slot(&mut workloads, workload_of_kind(&k.kind));
        let prefix = Kind::parse(&k.kind).map(|kind| kind.info().prefix.to_string()).unwrap_or_default();
        workloads[i].r2_prefixes.push(R2Prefix { prefix: format!("{} ({prefix})", k.kind), objects: k.objects, bytes: k.bytes });
    }
    for d in &counted {
        let i = slot(&mut workloads, workload_of_ops(&d.workload));
        workloads[i].ops.class_a += d.class_a;
        workloads[i].ops.class_b += d.class_b;
    }
    for w in workloads.iter_mut() {
        w.ops = R2Ops { class_a: costs::per_month(w.ops.class_a, observed_secs), class_b: costs::per_month(w.ops.class_b, observed_secs) };
    }
    let census_bytes = |kind: &str| r2.kinds.iter().find(|k| k.kind == kind).map(|k| k.bytes).unwrap_or(0);
    let omi = slot(&mut workloads, costs::OMI_WORKLOAD);
    workloads[omi].r2_only_content_bytes = memory_json.b + census_bytes("transcript") + census_bytes("day_summary");
    let files_w = slot(&mut workloads, FILES_WORKLOAD);
    workloads[files_w].r2_only_content_bytes = tiers.r2.bytes;
    // What D1 holds only because content is in R2: the `blobs` table, and each `r2_key` with
    // its entry in the partial index on it.
    #[derive(serde::Deserialize, Default)]
    struct Keys {
        n: u64,
        b: u64,
    }
    let keys: Keys = meta
        .first(stmt!(
            "SELECT (SELECT COUNT(r2_key) FROM app_files) + (SELECT COUNT(r2_key) FROM app_version_files) AS n,
                    COALESCE((SELECT SUM(length(r2_key)) FROM app_files), 0)
                      + COALESCE((SELECT SUM(length(r2_key)) FROM app_version_files), 0) AS b"
        ))
        .await?
        .unwrap_or_default();
    let blobs_table = workloads[files_w].d1_tables.iter().filter(|t| t.name == "blobs").map(D1Table::estimated_bytes).sum::<u64>();
    workloads[files_w].r2_bookkeeping_d1_bytes = blobs_table + 2 * keys.b + keys.n * costs::D1_INDEX_ENTRY_OVERHEAD_BYTES;

    let facts = CostFacts {
        workloads,
        d1_reported_bytes: reported,
        tiers,
        r2_referenced_bytes: tiers.hybrid.bytes + tiers.r2.bytes,
        r2_unique_bytes: blobs.bytes,
        r2_stored_bytes: blobs.stored,
    };
    let report = costs::build(&facts, &config.prices);
    let reductions = report
        .workloads
        .iter()
        .map(|w| WorkloadReduction {
            workload: w.workload.clone(),
            d1_bytes: w.d1_bytes,
            all_inline_d1_bytes: w.all_inline_d1_bytes,
            percent: (w.all_inline_d1_bytes > 0)
                .then(|| ((1.0 - w.d1_bytes as f64 / w.all_inline_d1_bytes as f64) * 1000.0).round() / 10.0),
        })
        .collect();
    Ok(Savings {
        costs: report,
        database_size_reduction_by_workload: reductions,
        census: CensusState { complete_at: r2.complete_at, in_progress: r2.in_progress },
        operations: OpsWindow { from_day: counted.first().map(|d| d.day.clone()), observed_secs, counted },
        rollout: rollout_report(meta, config).await?,
        plan_example: costs::plan_example(
            100,
            &costs::typical_app_sizes(),
            config.inline_max_bytes as u64,
            config.hybrid_max_bytes as u64,
            &config.prices,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_kinds_and_counters_land_in_their_workload() {
        assert_eq!(workload_of_table("omi_memories"), "omi");
        assert_eq!(workload_of_table("omi_memories_fts_data"), "omi");
        assert_eq!(workload_of_table("app_version_files"), "app_files");
        assert_eq!(workload_of_table("apps"), "app_files");
        assert_eq!(workload_of_table("blobs"), "app_files");
        assert_eq!(workload_of_table("gc_marks"), "core");
        assert_eq!(workload_of_kind("memory"), "omi");
        assert_eq!(workload_of_kind("snapshot"), "app_files");
        assert_eq!(workload_of_kind("other"), "core");
        assert_eq!(workload_of_ops("app_files"), "app_files");
        assert_eq!(workload_of_ops("other"), "core");
    }
}
