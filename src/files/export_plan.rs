//! How much of an app one export request may carry (issue 13), decided before the first byte
//! goes out, so the response headers can say whether it is complete.
//!
//! Every D1 query and every R2 read is a subrequest, and a Worker has a fixed number per
//! request: 50 on the Workers Free plan, 1,000 calls to Cloudflare services on the paid plans
//! (`SUBREQUEST_BUDGET`). Past it the runtime throws, which would cut a streamed archive off
//! in the middle. So the export counts what it will need — its fixed reads, one per page of
//! metadata, one per group of inline files fetched together, one per R2-only file — and takes
//! files in path order only while they fit. The answer covers a prefix of the paths and says
//! where to continue (`?after=<path>`); each part is a complete NDJSON stream or archive.
//!
//! Inline and hybrid files are read from D1, whose copy is checked against the file's hash
//! like R2's: a group of up to [`INLINE_GROUP_FILES`] files and [`INLINE_GROUP_BYTES`] costs one
//! query, where R2 would cost one read each. R2-only files are streamed one at a time.
//!
//! Pure: sizes and locations in, a plan out.

use super::tier::Location;

/// Metadata rows read per D1 query while planning.
pub const METADATA_PAGE: usize = 500;
/// Inline files fetched by one query: their paths are its bound parameters (D1 binds 100).
pub const INLINE_GROUP_FILES: usize = 90;
/// Inline bytes fetched by one query: what the worker holds at once for inline files.
pub const INLINE_GROUP_BYTES: u64 = 4 * 1024 * 1024;
/// Files per response, whatever the budget: the plan's metadata stays a few MB.
pub const MAX_FILES_PER_EXPORT: usize = 20_000;

/// How one planned file's bytes are fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetch {
    /// From D1, with the other files of inline group `n`.
    Inline(usize),
    /// From R2, streamed.
    R2,
}

/// The running plan.
#[derive(Debug, Clone)]
pub struct Planner {
    budget: usize,
    used: usize,
    files: usize,
    groups: usize,
    group_files: usize,
    group_bytes: u64,
}

impl Planner {
    /// A plan with `budget` subrequests, of which `fixed` are spent already (the app's row, a
    /// version's row, a tag lookup).
    pub fn new(budget: usize, fixed: usize) -> Self {
        Planner { budget, used: fixed, files: 0, groups: 0, group_files: 0, group_bytes: 0 }
    }

    /// Whether another page of metadata may be read: it must leave room for at least one file.
    pub fn may_read_page(&mut self) -> bool {
        if self.used + 2 > self.budget || self.files >= MAX_FILES_PER_EXPORT {
            return false;
        }
        self.used += 1;
        true
    }

    /// Takes the next file (in path order) if it fits, saying how it is fetched; `None` when the
    /// budget (or the file cap) is spent, and the export ends before this file.
    pub fn take(&mut self, location: Location, size: u64) -> Option<Fetch> {
        if self.files >= MAX_FILES_PER_EXPORT {
            return None;
        }
        let fetch = if location.has_inline() {
            let joins = self.group_files > 0 && self.group_files < INLINE_GROUP_FILES && self.group_bytes + size <= INLINE_GROUP_BYTES;
            if !joins {
                if self.used + 1 > self.budget {
                    return None;
                }
                self.used += 1;
                self.groups += 1;
                self.group_files = 0;
                self.group_bytes = 0;
            }
            self.group_files += 1;
            self.group_bytes += size;
            Fetch::Inline(self.groups - 1)
        } else {
            if self.used + 1 > self.budget {
                return None;
            }
            self.used += 1;
            // An R2 file between inline ones ends their group: groups are runs in path order.
            self.group_files = 0;
            self.group_bytes = 0;
            Fetch::R2
        };
        self.files += 1;
        Some(fetch)
    }

    /// Subrequests the plan will have used once streamed.
    pub fn used(&self) -> usize {
        self.used
    }

    pub fn files(&self) -> usize {
        self.files
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_files_share_queries_and_r2_files_cost_one_each() {
        let mut p = Planner::new(1000, 1);
        assert!(p.may_read_page());
        let fetches: Vec<Fetch> =
            (0..200).map(|i| p.take(if i % 50 == 49 { Location::R2 } else { Location::Database }, 1_000).unwrap()).collect();
        // Runs of 49 inline files between R2 files: each run one query.
        assert_eq!(fetches[0], Fetch::Inline(0));
        assert_eq!(fetches[48], Fetch::Inline(0));
        assert_eq!(fetches[49], Fetch::R2);
        assert_eq!(fetches[50], Fetch::Inline(1));
        assert_eq!(p.used(), 1 + 1 + 4 + 4);
        assert_eq!(p.files(), 200);
    }

    #[test]
    fn a_group_is_capped_by_files_and_bytes() {
        let mut p = Planner::new(1000, 0);
        let groups: Vec<Fetch> = (0..(INLINE_GROUP_FILES + 1)).map(|_| p.take(Location::Hybrid, 10).unwrap()).collect();
        assert_eq!(groups[INLINE_GROUP_FILES - 1], Fetch::Inline(0));
        assert_eq!(groups[INLINE_GROUP_FILES], Fetch::Inline(1));
        let mut p = Planner::new(1000, 0);
        assert_eq!(p.take(Location::Database, INLINE_GROUP_BYTES - 1).unwrap(), Fetch::Inline(0));
        assert_eq!(p.take(Location::Database, 2).unwrap(), Fetch::Inline(1));
    }

    #[test]
    fn the_free_plan_budget_ends_the_export_early_and_exactly() {
        // 50 subrequests: 2 fixed reads, 1 metadata page, then R2 files at one each.
        let mut p = Planner::new(50, 2);
        assert!(p.may_read_page());
        let taken = (0..100).map_while(|_| p.take(Location::R2, 1 << 20)).count();
        assert_eq!(taken, 47);
        assert_eq!(p.used(), 50);
        assert!(!p.may_read_page(), "no room for another page");
        // Inline files still fit in an open group without a new query; a new group does not.
        let mut p = Planner::new(4, 1);
        assert!(p.may_read_page());
        assert_eq!(p.take(Location::R2, 1), Some(Fetch::R2));
        assert_eq!(p.take(Location::Database, 1), Some(Fetch::Inline(0)));
        assert_eq!(p.take(Location::Database, 1), Some(Fetch::Inline(0)));
        assert_eq!(p.take(Location::R2, 1), None);
    }

    #[test]
    fn the_file_cap_holds_whatever_the_budget() {
        let mut p = Planner::new(usize::MAX / 2, 0);
        let taken = (0..MAX_FILES_PER_EXPORT + 5).map_while(|_| p.take(Location::Database, 1)).count();
        assert_eq!(taken, MAX_FILES_PER_EXPORT);
        assert!(!p.may_read_page());
    }
}
