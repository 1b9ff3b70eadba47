//! Rolling app files out to R2 by percentage of apps, and the rollback switch (issue 13).
//!
//! Which apps use the tiered policy (`STORAGE_MODE`, by default `hybrid`: big files in R2) and
//! which still keep everything in D1 is decided per app from a stable bucket: the first four
//! bytes of `SHA-256("r2d1-rollout:" + app)`, big-endian, modulo 10,000. An app is in the
//! rollout iff `bucket < percent × 100`, so raising the percentage (10 → 50 → 100) only ever
//! adds apps: an app never flips back as the percentage grows. A per-app `storage_mode` wins
//! over the percentage.
//!
//! The rollback switch (`STORAGE_ROLLBACK=true`, or the D1 setting of the same name, which
//! needs no deploy) makes D1 the source of truth again, at once:
//! - a read of a `hybrid` file is served from its D1 copy (hash-checked; R2 only if that copy
//!   is bad), so it stays readable with its R2 object gone;
//! - a write that fits in a D1 row lands inline only (`database`), so no new content depends
//!   on R2 at all; content over [`D1_INLINE_HARD_MAX`] has nowhere else to go and still goes
//!   to R2;
//! - the migrator stops moving content towards R2.
//!
//! Switching rollback off needs no data movement back: the migrator picks up the `database`
//! rows written meanwhile like any others.
//!
//! Pure: settings come in through lookup functions and row facts as plain values.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::tier::{Location, Policy, D1_INLINE_HARD_MAX};
use crate::config::StorageMode;

/// Buckets per app population: percentages are honoured to 0.01 %.
pub const BUCKETS: u32 = 10_000;
/// Setting names, as vars/secrets and as rows of the D1 settings table (where a row wins).
pub const PERCENT_SETTING: &str = "STORAGE_R2_PERCENT";
pub const ROLLBACK_SETTING: &str = "STORAGE_ROLLBACK";

/// The rollout settings in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rollout {
    /// Share of apps in the rollout, in hundredths of a percent (0..=10,000).
    pub r2_basis_points: u16,
    /// Reads prefer D1, writes stay out of R2 where they can, the migrator pauses.
    pub rollback: bool,
}

impl Default for Rollout {
    /// Every app rolled out, no rollback: what r2d1 did before the percentage existed.
    fn default() -> Self {
        Rollout { r2_basis_points: BUCKETS as u16, rollback: false }
    }
}

/// Why an app has the storage mode it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cohort {
    /// The app set its own `storage_mode`.
    Override,
    /// Its bucket is below the percentage: it follows `STORAGE_MODE`.
    Rollout,
    /// Not reached by the percentage yet: everything stays in D1.
    HeldBack,
}

/// An app's effective mode and the reason for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AppMode {
    #[serde(serialize_with = "mode_name")]
    pub mode: StorageMode,
    pub cohort: Cohort,
}

fn mode_name<S: serde::Serializer>(mode: &StorageMode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(mode.as_str())
}

/// Where a read looks for a file's bytes, in order. The cache sits in front of [`Self::R2`]
/// (it holds verified R2 bytes keyed by SHA-256).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadSource {
    Database,
    R2,
}

/// The stable bucket of an app, in `0..BUCKETS`.
pub fn bucket(app: &str) -> u32 {
    let digest = Sha256::new().chain_update(b"r2d1-rollout:").chain_update(app.as_bytes()).finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % BUCKETS
}

impl Rollout {
    /// Reads the settings: a value from `settings` (the D1 settings table) wins over one from
    /// `env` (vars), which wins over the default. Errors name the setting and the bad value.
    pub fn from_sources(env: impl Fn(&str) -> Option<String>, settings: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let get = |name: &str| {
            let clean = |v: Option<String>| v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
            clean(settings(name)).or_else(|| clean(env(name)))
        };
        let defaults = Rollout::default();
        let r2_basis_points = match get(PERCENT_SETTING) {
            None => defaults.r2_basis_points,
            Some(v) => parse_percent(&v).map_err(|why| format!("{PERCENT_SETTING} {why}, got {v:?}"))?,
        };
        let rollback = match get(ROLLBACK_SETTING) {
            None => defaults.rollback,
            Some(v) => parse_flag(&v).ok_or_else(|| format!("{ROLLBACK_SETTING} must be true or false, got {v:?}"))?,
        };
        Ok(Rollout { r2_basis_points, rollback })
    }

    /// These settings (from the variables) with the D1 settings table's rows laid over them.
    pub fn with_settings(self, settings: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let env = |name: &str| match name {
            PERCENT_SETTING => Some(format_percent(self.r2_basis_points)),
            ROLLBACK_SETTING => Some(self.rollback.to_string()),
            _ => None,
        };
        Rollout::from_sources(env, settings)
    }

    /// The percentage as a number for reports (`12.5`).
    pub fn percent(&self) -> f64 {
        f64::from(self.r2_basis_points) / 100.0
    }

    /// Whether `app` is reached by the percentage (ignoring any override).
    pub fn includes(&self, app: &str) -> bool {
        bucket(app) < u32::from(self.r2_basis_points)
    }

    /// The mode for `app`: its own override, else `global` if the rollout reached it, else
    /// `database`.
    pub fn app_mode(&self, global: StorageMode, app: &str, app_override: Option<StorageMode>) -> AppMode {
        match app_override {
            Some(mode) => AppMode { mode, cohort: Cohort::Override },
            None if self.includes(app) => AppMode { mode: global, cohort: Cohort::Rollout },
            None => AppMode { mode: StorageMode::Database, cohort: Cohort::HeldBack },
        }
    }

    /// The full policy for `app` with the configured thresholds.
    pub fn policy(
        &self,
        global: StorageMode,
        inline_max: usize,
        hybrid_max: usize,
        app: &str,
        app_override: Option<StorageMode>,
    ) -> Policy {
        Policy { mode: self.app_mode(global, app, app_override).mode, inline_max, hybrid_max }
    }

    /// Where new content of `size` bytes goes. Under rollback, whatever fits in a D1 row goes
    /// inline only, so writes keep working without R2 and nothing new is R2-only that could be
    /// inline.
    pub fn write_location(&self, policy: &Policy, size: usize) -> Location {
        let wanted = policy.place(size);
        if self.rollback && size <= D1_INLINE_HARD_MAX {
            Location::Database
        } else {
            wanted
        }
    }

    /// Where to read a file stored at `stored` from, first choice first. Each source's bytes are
    /// hash-checked; the next one is tried only when the previous is missing or bad.
    pub fn read_order(&self, stored: Location) -> &'static [ReadSource] {
        match (stored, self.rollback) {
            (Location::Database, _) => &[ReadSource::Database],
            (Location::Hybrid, false) => &[ReadSource::R2, ReadSource::Database],
            (Location::Hybrid, true) => &[ReadSource::Database, ReadSource::R2],
            (Location::R2, _) => &[ReadSource::R2],
        }
    }

    /// The migrator's next step for a row, or `None`; nothing moves towards R2 during rollback.
    pub fn migration_step(&self, policy: &Policy, current: Location, size: usize) -> Option<Location> {
        if self.rollback {
            None
        } else {
            policy.migration_step(current, size)
        }
    }
}

/// `"0"`..`"100"` with at most two decimals (`"12.5"`, `"0.25"`) → basis points.
pub fn parse_percent(raw: &str) -> Result<u16, &'static str> {
    const WHY: &str = "must be a percentage from 0 to 100 with at most two decimals";
    let raw = raw.trim().trim_end_matches('%');
    let (whole, frac) = raw.split_once('.').unwrap_or((raw, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 3 || frac.len() > 2 || !digits(whole) || !digits(frac) || (raw.contains('.') && frac.is_empty()) {
        return Err(WHY);
    }
    let whole: u32 = whole.parse().map_err(|_| WHY)?;
    let frac: u32 = format!("{frac:0<2}").parse().map_err(|_| WHY)?;
    let bp = whole * 100 + frac;
    if bp > BUCKETS {
        return Err(WHY);
    }
    Ok(bp as u16)
}

/// Basis points as the percentage text [`parse_percent`] reads back (`1250` → `"12.50"`).
pub fn format_percent(bp: u16) -> String {
    format!("{}.{:02}", bp / 100, bp % 100)
}

/// The same words `Config` accepts for its flags.
pub fn parse_flag(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Files and bytes of one app at each location (current files), with its override.
#[derive(Debug, Clone, Default)]
pub struct AppFacts {
    pub app: String,
    pub app_override: Option<StorageMode>,
    pub database: FilesBytes,
    pub hybrid: FilesBytes,
    pub r2: FilesBytes,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FilesBytes {
    pub files: u64,
    pub bytes: u64,
}

impl FilesBytes {
    fn add(&mut self, other: FilesBytes) {
        self.files += other.files;
        self.bytes += other.bytes;
    }
}

/// Apps and their bytes (all locations) in one state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AppsBytes {
    pub apps: u64,
    pub files: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ByCohort {
    pub overridden: AppsBytes,
    pub rollout: AppsBytes,
    pub held_back: AppsBytes,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ByMode {
    pub database: AppsBytes,
    pub hybrid: AppsBytes,
    pub r2: AppsBytes,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ByLocation {
    pub database: FilesBytes,
    pub hybrid: FilesBytes,
    pub r2: FilesBytes,
}

/// The rollout part of the storage report: how many apps and bytes are in each state.
#[derive(Debug, Clone, Serialize)]
pub struct RolloutReport {
    pub r2_percent: f64,
    pub rollback: bool,
    pub global_mode: &'static str,
    pub by_cohort: ByCohort,
    pub by_mode: ByMode,
    pub by_location: ByLocation,
    /// Bytes a read can serve from D1 (inline and hybrid): what rollback covers.
    pub readable_from_d1_bytes: u64,
    /// Bytes only R2 holds: unreadable if R2 is lost, whatever rollback says.
    pub r2_only_bytes: u64,
}

pub fn report(rollout: &Rollout, global: StorageMode, apps: &[AppFacts]) -> RolloutReport {
    let mut by_cohort = ByCohort::default();
    let mut by_mode = ByMode::default();
    let mut by_location = ByLocation::default();
    for a in apps {
        by_location.database.add(a.database);
        by_location.hybrid.add(a.hybrid);
        by_location.r2.add(a.r2);
        let files = a.database.files + a.hybrid.files + a.r2.files;
        let bytes = a.database.bytes + a.hybrid.bytes + a.r2.bytes;
        let state = rollout.app_mode(global, &a.app, a.app_override);
        let cohort = match state.cohort {
            Cohort::Override => &mut by_cohort.overridden,
            Cohort::Rollout => &mut by_cohort.rollout,
            Cohort::HeldBack => &mut by_cohort.held_back,
        };
        let mode = match state.mode {
            StorageMode::Database => &mut by_mode.database,
            StorageMode::Hybrid => &mut by_mode.hybrid,
            StorageMode::R2 => &mut by_mode.r2,
        };
        for slot in [cohort, mode] {
            slot.apps += 1;
            slot.files += files;
            slot.bytes += bytes;
        }
    }
    RolloutReport {
        r2_percent: rollout.percent(),
        rollback: rollout.rollback,
        global_mode: global.as_str(),
        by_cohort,
        by_mode,
        by_location,
        readable_from_d1_bytes: by_location.database.bytes + by_location.hybrid.bytes,
        r2_only_bytes: by_location.r2.bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn rollout(bp: u16, rollback: bool) -> Rollout {
        Rollout { r2_basis_points: bp, rollback }
    }

    fn tiers(mode: StorageMode) -> Policy {
        Policy { mode, inline_max: 1024, hybrid_max: 4096 }
    }

    fn from(env: &[(&str, &str)], settings: &[(&str, &str)]) -> Result<Rollout, String> {
        let env: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let settings: HashMap<String, String> = settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Rollout::from_sources(|k| env.get(k).cloned(), |k| settings.get(k).cloned())
    }

    #[test]
    fn buckets_are_stable_and_spread() {
        // Pinned: changing the bucket function would move apps between cohorts in production.
        assert_eq!(bucket("demo"), bucket("demo"));
        let digest = Sha256::digest(b"r2d1-rollout:demo");
        assert_eq!(bucket("demo"), u32::from_be_bytes(digest[..4].try_into().unwrap()) % 10_000);
        let mut per_decile = [0u32; 10];
        for i in 0..20_000 {
            per_decile[(bucket(&format!("app-{i}")) / 1000) as usize] += 1;
        }
        for n in per_decile {
            assert!((1_800..=2_200).contains(&n), "uneven buckets: {per_decile:?}");
        }
    }

    #[test]
    fn the_share_of_apps_follows_the_percentage() {
        for (bp, lo, hi) in [(0, 0, 0), (1_000, 900, 1_100), (5_000, 4_800, 5_200), (10_000, 10_000, 10_000)] {
            let r = rollout(bp, false);
            let n = (0..10_000).filter(|i| r.includes(&format!("app-{i}"))).count();
            assert!((lo..=hi).contains(&n), "{bp} bp: {n} apps");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        /// The rollout's promise: raising the percentage never takes an app out.
        #[test]
        fn an_app_never_flips_back_as_the_percentage_grows(
            apps in prop::collection::vec("[a-zA-Z0-9._-]{1,24}", 1..64),
            mut steps in prop::collection::vec(0u16..=10_000, 1..12),
        ) {
            steps.sort_unstable();
            for app in &apps {
                let mut was_in = false;
                for &bp in &steps {
                    let now_in = rollout(bp, false).app_mode(StorageMode::Hybrid, app, None).mode == StorageMode::Hybrid;
                    prop_assert!(now_in || !was_in, "{app} left the rollout at {bp} bp");
                    was_in = now_in;
                }
                prop_assert!(rollout(10_000, false).includes(app));
                prop_assert!(!rollout(0, false).includes(app));
            }
        }
    }

    #[test]
    fn an_override_wins_over_the_percentage() {
        let none = rollout(0, false);
        assert_eq!(none.app_mode(StorageMode::Hybrid, "a", None), AppMode { mode: StorageMode::Database, cohort: Cohort::HeldBack });
        assert_eq!(
            none.app_mode(StorageMode::Hybrid, "a", Some(StorageMode::R2)),
            AppMode { mode: StorageMode::R2, cohort: Cohort::Override }
        );
        let all = rollout(10_000, false);
        assert_eq!(all.app_mode(StorageMode::Hybrid, "a", None), AppMode { mode: StorageMode::Hybrid, cohort: Cohort::Rollout });
        assert_eq!(
            all.app_mode(StorageMode::Hybrid, "a", Some(StorageMode::Database)),
            AppMode { mode: StorageMode::Database, cohort: Cohort::Override }
        );
        assert_eq!(all.policy(StorageMode::R2, 10, 20, "a", None), Policy { mode: StorageMode::R2, inline_max: 10, hybrid_max: 20 });
    }

    #[test]
    fn rollback_keeps_writes_out_of_r2_where_they_fit() {
        let normal = rollout(10_000, false);
        let back = rollout(10_000, true);
        let p = tiers(StorageMode::Hybrid);
        assert_eq!(normal.write_location(&p, 100), Location::Database);
        assert_eq!(normal.write_location(&p, 2_000), Location::Hybrid);
        assert_eq!(normal.write_location(&p, 100_000), Location::R2);
        for size in [0, 100, 2_000, 100_000, D1_INLINE_HARD_MAX] {
            assert_eq!(back.write_location(&p, size), Location::Database, "{size}");
            assert_eq!(back.write_location(&tiers(StorageMode::R2), size), Location::Database, "{size}");
        }
        // Too big for a D1 row: R2 is the only place, rollback or not.
        assert_eq!(back.write_location(&p, D1_INLINE_HARD_MAX + 1), Location::R2);
    }

    #[test]
    fn rollback_reads_hybrid_files_from_d1_first() {
        let normal = rollout(10_000, false);
        let back = rollout(10_000, true);
        assert_eq!(normal.read_order(Location::Hybrid), &[ReadSource::R2, ReadSource::Database]);
        assert_eq!(back.read_order(Location::Hybrid), &[ReadSource::Database, ReadSource::R2]);
        for r in [normal, back] {
            assert_eq!(r.read_order(Location::Database), &[ReadSource::Database]);
            assert_eq!(r.read_order(Location::R2), &[ReadSource::R2]);
        }
    }

    #[test]
    fn rollback_pauses_the_migrator() {
        let p = tiers(StorageMode::Hybrid);
        assert_eq!(rollout(10_000, false).migration_step(&p, Location::Database, 100_000), Some(Location::Hybrid));
        assert_eq!(rollout(10_000, true).migration_step(&p, Location::Database, 100_000), None);
        assert_eq!(rollout(10_000, true).migration_step(&p, Location::Hybrid, 100_000), None);
    }

    #[test]
    fn settings_parse_with_clear_errors_and_d1_wins() {
        assert_eq!(from(&[], &[]).unwrap(), Rollout::default());
        assert_eq!(from(&[("STORAGE_R2_PERCENT", "10")], &[]).unwrap().r2_basis_points, 1_000);
        assert_eq!(from(&[("STORAGE_R2_PERCENT", "12.5")], &[]).unwrap().r2_basis_points, 1_250);
        assert_eq!(from(&[("STORAGE_R2_PERCENT", "0.05%")], &[]).unwrap().r2_basis_points, 5);
        assert_eq!(from(&[("STORAGE_R2_PERCENT", " 100 ")], &[]).unwrap().r2_basis_points, 10_000);
        assert_eq!(from(&[("STORAGE_R2_PERCENT", "")], &[]).unwrap(), Rollout::default());
        for bad in ["101", "-1", "ten", "1.234", "1.", ".5", "1e2", "100.01", "0x10", "1000"] {
            let e = from(&[("STORAGE_R2_PERCENT", bad)], &[]).unwrap_err();
            assert!(e.contains("STORAGE_R2_PERCENT") && e.contains(bad), "{bad}: {e}");
        }
        let e = from(&[("STORAGE_ROLLBACK", "maybe")], &[]).unwrap_err();
        assert!(e.contains("STORAGE_ROLLBACK") && e.contains("maybe"), "{e}");
        let r = from(
            &[("STORAGE_ROLLBACK", "false"), ("STORAGE_R2_PERCENT", "10")],
            &[("STORAGE_ROLLBACK", "on"), ("STORAGE_R2_PERCENT", "50")],
        )
        .unwrap();
        assert_eq!(r, rollout(5_000, true));
        assert_eq!(r.percent(), 50.0);
    }

    #[test]
    fn d1_settings_lay_over_the_variables() {
        let env = rollout(1_000, false);
        assert_eq!(env.with_settings(|_| None).unwrap(), env);
        assert_eq!(env.with_settings(|k| (k == ROLLBACK_SETTING).then(|| "true".into())).unwrap(), rollout(1_000, true));
        assert_eq!(env.with_settings(|k| (k == PERCENT_SETTING).then(|| "12.5".into())).unwrap(), rollout(1_250, false));
        assert!(env.with_settings(|k| (k == PERCENT_SETTING).then(|| "x".into())).is_err());
        for bp in [0, 1, 99, 100, 1_250, 9_999, 10_000] {
            assert_eq!(parse_percent(&format_percent(bp)).unwrap(), bp);
        }
    }

    #[test]
    fn report_counts_apps_and_bytes_per_state() {
        let fb = |files, bytes| FilesBytes { files, bytes };
        let r = rollout(0, true);
        let apps = [
            AppFacts { app: "a".into(), app_override: Some(StorageMode::R2), r2: fb(2, 2_000), ..Default::default() },
            AppFacts { app: "b".into(), database: fb(3, 300), hybrid: fb(1, 5_000), ..Default::default() },
            AppFacts { app: "c".into(), database: fb(1, 10), ..Default::default() },
        ];
        let rep = report(&r, StorageMode::Hybrid, &apps);
        assert_eq!(rep.by_cohort.overridden, AppsBytes { apps: 1, files: 2, bytes: 2_000 });
        assert_eq!(rep.by_cohort.held_back, AppsBytes { apps: 2, files: 5, bytes: 5_310 });
        assert_eq!(rep.by_cohort.rollout, AppsBytes::default());
        assert_eq!(rep.by_mode.r2.apps, 1);
        assert_eq!(rep.by_mode.database.apps, 2);
        assert_eq!(rep.by_location.database, fb(4, 310));
        assert_eq!(rep.readable_from_d1_bytes, 5_310);
        assert_eq!(rep.r2_only_bytes, 2_000);
        assert!(rep.rollback);
        assert_eq!(rep.global_mode, "hybrid");
    }
}
