//! The storage policy: where a file's bytes live, decided from its size and the mode alone.
//!
//! | size (mode `hybrid`)                   | location   | D1 inline | R2 object |
//! |----------------------------------------|------------|-----------|-----------|
//! | `size <= inline_max`                   | `database` | yes       | no        |
//! | `inline_max < size <= hybrid_max`      | `hybrid`   | yes       | yes       |
//! | `size > hybrid_max`                    | `r2`       | no        | yes       |
//!
//! Mode `database` keeps everything inline and mode `r2` everything in R2, except that no
//! content larger than [`D1_INLINE_HARD_MAX`] is ever put in a D1 row (D1 refuses rows and
//! statements over about 1 MB), so such a file goes to R2 whatever the mode says.

use crate::config::StorageMode;

/// The largest content we put inline in one D1 row, with room left for the row's other
/// columns and the SQL text under D1's ~1 MB statement limit.
pub const D1_INLINE_HARD_MAX: usize = 512 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Location {
    /// Inline in D1 only.
    Database,
    /// Inline in D1 and in R2.
    Hybrid,
    /// In R2 only.
    R2,
}

impl Location {
    pub fn as_str(self) -> &'static str {
        match self {
            Location::Database => "database",
            Location::Hybrid => "hybrid",
            Location::R2 => "r2",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "database" => Some(Location::Database),
            "hybrid" => Some(Location::Hybrid),
            "r2" => Some(Location::R2),
            _ => None,
        }
    }

    pub fn has_inline(self) -> bool {
        matches!(self, Location::Database | Location::Hybrid)
    }

    pub fn has_r2(self) -> bool {
        matches!(self, Location::Hybrid | Location::R2)
    }
}

/// The thresholds and mode in force for one app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub mode: StorageMode,
    pub inline_max: usize,
    pub hybrid_max: usize,
}

impl Policy {
    /// Where content of `size` bytes belongs.
    pub fn place(&self, size: usize) -> Location {
        let wanted = match self.mode {
            StorageMode::Database => Location::Database,
            StorageMode::R2 => Location::R2,
            StorageMode::Hybrid if size <= self.inline_max => Location::Database,
            StorageMode::Hybrid if size <= self.hybrid_max => Location::Hybrid,
            StorageMode::Hybrid => Location::R2,
        };
        if wanted.has_inline() && size > D1_INLINE_HARD_MAX {
            Location::R2
        } else {
            wanted
        }
    }

    /// What the migrator should do with content of `size` bytes now at `current`: the next
    /// step towards the policy's location, moving only towards R2 and always through `hybrid`
    /// (an R2 copy is made and checked before the inline copy is dropped).
    pub fn migration_step(&self, current: Location, size: usize) -> Option<Location> {
        match (current, self.place(size)) {
            (Location::Database, Location::Hybrid | Location::R2) => Some(Location::Hybrid),
            (Location::Hybrid, Location::R2) => Some(Location::R2),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hybrid() -> Policy {
        Policy { mode: StorageMode::Hybrid, inline_max: 1024, hybrid_max: 10240 }
    }

    #[test]
    fn tier_boundaries_are_inclusive_maxima() {
        let p = hybrid();
        assert_eq!(p.place(0), Location::Database);
        assert_eq!(p.place(1023), Location::Database);
        assert_eq!(p.place(1024), Location::Database);
        assert_eq!(p.place(1025), Location::Hybrid);
        assert_eq!(p.place(10239), Location::Hybrid);
        assert_eq!(p.place(10240), Location::Hybrid);
        assert_eq!(p.place(10241), Location::R2);
    }

    #[test]
    fn modes_override_the_tiers_but_never_d1s_row_limit() {
        let db = Policy { mode: StorageMode::Database, ..hybrid() };
        assert_eq!(db.place(100_000), Location::Database);
        assert_eq!(db.place(D1_INLINE_HARD_MAX + 1), Location::R2);
        let r2 = Policy { mode: StorageMode::R2, ..hybrid() };
        assert_eq!(r2.place(0), Location::R2);
        let huge = Policy { hybrid_max: usize::MAX, ..hybrid() };
        assert_eq!(huge.place(D1_INLINE_HARD_MAX + 1), Location::R2);
    }

    #[test]
    fn migration_goes_through_hybrid_and_only_towards_r2() {
        let p = hybrid();
        assert_eq!(p.migration_step(Location::Database, 20_000), Some(Location::Hybrid));
        assert_eq!(p.migration_step(Location::Hybrid, 20_000), Some(Location::R2));
        assert_eq!(p.migration_step(Location::R2, 20_000), None);
        assert_eq!(p.migration_step(Location::Database, 2_000), Some(Location::Hybrid));
        assert_eq!(p.migration_step(Location::Hybrid, 2_000), None);
        assert_eq!(p.migration_step(Location::Database, 10), None);
        // R2 content that the policy would put inline stays where it is: rollback does that.
        assert_eq!(p.migration_step(Location::R2, 10), None);
    }

    #[test]
    fn locations_round_trip() {
        for l in [Location::Database, Location::Hybrid, Location::R2] {
            assert_eq!(Location::parse(l.as_str()), Some(l));
        }
        assert_eq!(Location::parse("tape"), None);
    }
}
