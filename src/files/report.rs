//! The storage report's arithmetic: from counts and byte sums read out of D1 to savings,
//! D1 bytes avoided, an R2 bill estimate and migration progress.

use serde::Serialize;

/// R2 Standard storage, US dollars per GB-month (GB = 10^9 bytes, as Cloudflare bills).
pub const R2_USD_PER_GB_MONTH: f64 = 0.015;

/// Files (or version lines) and their bytes in one tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TierCount {
    pub files: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tiers {
    pub database: TierCount,
    pub hybrid: TierCount,
    pub r2: TierCount,
}

/// What the report is computed from; every number is a plain sum or count out of D1.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Current files by location.
    pub files: Tiers,
    /// Version lines (`app_version_files`, deleted lines excluded) by location.
    pub versions: Tiers,
    /// Content objects in R2 (`blobs`): count, file bytes, bytes as stored (after gzip).
    pub blob_objects: u64,
    pub blob_bytes: u64,
    pub blob_stored_bytes: u64,
    /// Manifests kept in R2.
    pub snapshot_objects: u64,
    pub snapshot_bytes: u64,
    /// Rows still holding content inline that the policy wants in R2, and their bytes.
    pub pending_files: u64,
    pub pending_bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct Savings {
    /// Bytes that would be in R2 if every file and version line had its own object.
    pub dedupe_bytes: u64,
    /// Bytes gzip saved on the objects that are stored.
    pub compression_bytes: u64,
    /// Content bytes that are in R2 only, so no D1 row carries them.
    pub d1_bytes_avoided: u64,
}

#[derive(Debug, Serialize)]
pub struct R2Usage {
    pub objects: u64,
    pub stored_bytes: u64,
    pub blob_objects: u64,
    pub blob_bytes: u64,
    pub snapshot_objects: u64,
}

#[derive(Debug, Serialize)]
pub struct Cost {
    pub usd_per_gb_month: f64,
    pub estimated_usd_per_month: f64,
}

#[derive(Debug, Serialize)]
pub struct Migration {
    pub pending_files: u64,
    pub pending_bytes: u64,
    /// Files above the inline threshold that already have their R2 copy.
    pub migrated_files: u64,
    /// 100 when nothing is left to move.
    pub progress_percent: f64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub files: Tiers,
    pub versions: Tiers,
    pub r2: R2Usage,
    pub savings: Savings,
    pub cost: Cost,
    pub migration: Migration,
}

pub fn build(f: &Facts) -> Report {
    let referenced_r2_bytes = f.files.hybrid.bytes + f.files.r2.bytes + f.versions.hybrid.bytes + f.versions.r2.bytes;
    let stored_bytes = f.blob_stored_bytes + f.snapshot_bytes;
    let migrated_files = f.files.hybrid.files + f.files.r2.files + f.versions.hybrid.files + f.versions.r2.files;
    let progress_percent = if f.pending_files == 0 {
        100.0
    } else {
        let done = migrated_files as f64 / (migrated_files + f.pending_files) as f64;
        (done * 1000.0).floor() / 10.0
    };
    Report {
        files: f.files,
        versions: f.versions,
        r2: R2Usage {
            objects: f.blob_objects + f.snapshot_objects,
            stored_bytes,
            blob_objects: f.blob_objects,
            blob_bytes: f.blob_bytes,
            snapshot_objects: f.snapshot_objects,
        },
        savings: Savings {
            dedupe_bytes: referenced_r2_bytes.saturating_sub(f.blob_bytes),
            compression_bytes: f.blob_bytes.saturating_sub(f.blob_stored_bytes),
            d1_bytes_avoided: f.files.r2.bytes + f.versions.r2.bytes,
        },
        cost: Cost { usd_per_gb_month: R2_USD_PER_GB_MONTH, estimated_usd_per_month: stored_bytes as f64 / 1e9 * R2_USD_PER_GB_MONTH },
        migration: Migration { pending_files: f.pending_files, pending_bytes: f.pending_bytes, migrated_files, progress_percent },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn savings_cost_and_progress_add_up() {
        let facts = Facts {
            files: Tiers {
                database: TierCount { files: 10, bytes: 5_000 },
                hybrid: TierCount { files: 2, bytes: 4_000 },
                r2: TierCount { files: 3, bytes: 60_000 },
            },
            versions: Tiers { r2: TierCount { files: 3, bytes: 60_000 }, ..Default::default() },
            blob_objects: 5,
            blob_bytes: 64_000,
            blob_stored_bytes: 16_000,
            snapshot_objects: 1,
            snapshot_bytes: 4_000,
            pending_files: 2,
            pending_bytes: 30_000,
        };
        let r = build(&facts);
        assert_eq!(r.savings.dedupe_bytes, 4_000 + 60_000 + 60_000 - 64_000);
        assert_eq!(r.savings.compression_bytes, 48_000);
        assert_eq!(r.savings.d1_bytes_avoided, 120_000);
        assert_eq!(r.r2.objects, 6);
        assert_eq!(r.r2.stored_bytes, 20_000);
        assert!((r.cost.estimated_usd_per_month - 20_000.0 / 1e9 * 0.015).abs() < 1e-15);
        assert_eq!(r.migration.migrated_files, 8);
        assert_eq!(r.migration.progress_percent, 80.0);
    }

    #[test]
    fn nothing_pending_is_complete() {
        let r = build(&Facts::default());
        assert_eq!(r.migration.progress_percent, 100.0);
        assert_eq!(r.savings.dedupe_bytes, 0);
        assert_eq!(r.cost.estimated_usd_per_month, 0.0);
    }
}
