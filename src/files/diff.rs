//! Comparing two versions: which files were added, modified, deleted or left alone, and a
//! unified diff for text, bounded so that no request can spend more than a few milliseconds
//! of CPU on diffs.
//!
//! Why bounded by counting rather than by a clock: a worker has no usable clock for this
//! (`Instant` does not exist on wasm32 and `Date.now()` does not advance during a request's
//! CPU work), so `similar`'s deadline cannot fire there, and Myers' algorithm is O((N+M)·D):
//! two unrelated 256 KB files of short lines cost hundreds of millions of steps. Here every
//! step is counted and capped:
//! 1. sizes and line counts per side are capped before anything is read ([`DiffBudget::admit`]);
//! 2. lines are numbered by sorting (O(L log L) comparisons, no hash table an input could
//!    flood), common prefix and suffix are cut, and a lower bound on the edit distance (lines
//!    the two sides do not share, as multisets) answers "too large" for unrelated files before
//!    any search;
//! 3. the Myers search itself counts one unit per diagonal visited and per snake step, and
//!    stops at the file's (and the request's remaining) work budget or edit cap;
//! 4. output is capped in lines and bytes per file and per request.
//!
//! A file over any cap gets a [`TooLarge`] marker instead of a diff (hash comparison still
//! says it changed). Measured natively (see the tests): the worst case for one file, two
//! unrelated or shuffled 256 KiB files, stays under ~2 ms.

use std::collections::BTreeMap;

use serde::Serialize;

use super::manifest::FileState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Added,
    Modified,
    Deleted,
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub path: String,
    pub change: Change,
    pub from_sha256: Option<String>,
    pub to_sha256: Option<String>,
}

/// Per-file comparison of version `from` with version `to` (their live files), sorted by path.
pub fn compare(from: &[FileState], to: &[FileState]) -> Vec<FileChange> {
    let a: BTreeMap<&str, &str> = from.iter().map(|f| (f.path.as_str(), f.sha256.as_str())).collect();
    let b: BTreeMap<&str, &str> = to.iter().map(|f| (f.path.as_str(), f.sha256.as_str())).collect();
    let mut paths: Vec<&str> = a.keys().chain(b.keys()).copied().collect();
    paths.sort_unstable();
    paths.dedup();
    paths
        .into_iter()
        .map(|path| {
            let (x, y) = (a.get(path).copied(), b.get(path).copied());
            let change = match (x, y) {
                (None, Some(_)) => Change::Added,
                (Some(_), None) => Change::Deleted,
                (Some(x), Some(y)) if x == y => Change::Unchanged,
                _ => Change::Modified,
            };
            FileChange { path: path.to_string(), change, from_sha256: x.map(String::from), to_sha256: y.map(String::from) }
        })
        .collect()
}

/// Text above this size (either side) is compared by hash only: a diff of megabytes helps no
/// reader and costs the worker's CPU budget.
pub const MAX_DIFF_INPUT_BYTES: usize = 256 * 1024;

/// Lines of context around each change.
const CONTEXT: usize = 3;

/// Work units charged per line for splitting, hashing and sorting the lines: measured at about
/// six times the cost of one step of the search, so one budget covers both.
const WORK_PER_LINE: u64 = 6;

/// Caps for one file's diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimits {
    /// Bytes per side.
    pub max_input_bytes: usize,
    /// Lines per side.
    pub max_lines: usize,
    /// Lines deleted plus inserted: past this a diff is no longer a useful read.
    pub max_edits: usize,
    /// Work units (diagonals visited plus snake steps) for the search.
    pub max_work: u64,
    pub max_output_bytes: usize,
    pub max_output_lines: usize,
}

/// Defaults, chosen so the worst case for one file stays under ~2 ms natively (see
/// `worst_cases_stay_within_the_cpu_budget`; a work unit is ~8 ns there): 256 KiB and 10,000
/// lines per side (256 KiB of source at 26+ bytes a line fits), 2,000 changed lines, 250,000
/// work units (numbering 20,000 lines takes 120,000; a search without anchors then reaches
/// about 500 edits, one with anchors far more), 128 KiB / 3,000 lines out.
pub const FILE_LIMITS: FileLimits = FileLimits {
    max_input_bytes: MAX_DIFF_INPUT_BYTES,
    max_lines: 10_000,
    max_edits: 2_000,
    max_work: 250_000,
    max_output_bytes: 128 * 1024,
    max_output_lines: 3_000,
};

/// Caps for all diffs of one request together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    pub max_files: usize,
    pub max_input_bytes: u64,
    pub max_work: u64,
    pub max_output_bytes: u64,
}

/// Defaults: two worst-case files' worth of CPU (~4 ms natively), 2 MiB read and 1 MiB of
/// diff text per request; an 85-file app with ordinary edits uses a small part of it
/// (numbering its lines costs 6 units a line, the anchored search little more).
pub const REQUEST_LIMITS: RequestLimits =
    RequestLimits { max_files: 1_000, max_input_bytes: 2 * 1024 * 1024, max_work: 500_000, max_output_bytes: 1024 * 1024 };

/// Why a file got no diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TooLarge {
    InputBytes,
    Lines,
    Edits,
    Work,
    OutputBytes,
    OutputLines,
    /// The request's shared budget was spent on earlier files.
    RequestBudget,
}

impl TooLarge {
    pub fn message(self) -> &'static str {
        match self {
            TooLarge::InputBytes => "too large to diff: a side is over 256 KiB",
            TooLarge::Lines => "too large to diff: a side has too many lines",
            TooLarge::Edits => "too large to diff: too many lines changed",
            TooLarge::Work => "too large to diff: the changes are too scattered to diff within the CPU budget",
            TooLarge::OutputBytes | TooLarge::OutputLines => "too large to diff: the diff would be too long",
            TooLarge::RequestBudget => "too large to diff: this request's diff budget is spent; diff fewer versions or files at once",
        }
    }
}

/// A file's diff, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextDiff {
    /// Unified diff text; empty when the sides are equal.
    Unified(String),
    TooLarge(TooLarge),
}

/// What a request has spent so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Spent {
    pub files: usize,
    pub input_bytes: u64,
    pub work: u64,
    pub output_bytes: u64,
}

/// The diff budget of one request: admit files before loading them, then diff them in turn.
#[derive(Debug, Clone)]
pub struct DiffBudget {
    file: FileLimits,
    request: RequestLimits,
    spent: Spent,
}

impl Default for DiffBudget {
    fn default() -> Self {
        DiffBudget::new(FILE_LIMITS, REQUEST_LIMITS)
    }
}

impl DiffBudget {
    pub fn new(file: FileLimits, request: RequestLimits) -> Self {
        DiffBudget { file, request, spent: Spent::default() }
    }

    pub fn spent(&self) -> Spent {
        self.spent
    }

    /// Whether a file with sides of these sizes (`None`: absent side) may be diffed at all;
    /// call it before loading the bytes, so refused files cost no R2 read.
    pub fn admit(&self, old_size: Option<u64>, new_size: Option<u64>) -> Result<(), TooLarge> {
        let (a, b) = (old_size.unwrap_or(0), new_size.unwrap_or(0));
        if a > self.file.max_input_bytes as u64 || b > self.file.max_input_bytes as u64 {
            return Err(TooLarge::InputBytes);
        }
        let s = &self.spent;
        if s.files >= self.request.max_files
            || s.input_bytes.saturating_add(a).saturating_add(b) > self.request.max_input_bytes
            || s.work >= self.request.max_work
            || s.output_bytes >= self.request.max_output_bytes
        {
            return Err(TooLarge::RequestBudget);
        }
        Ok(())
    }

    /// The unified diff of `old` → `new` for `path` (an absent side is `/dev/null`), within
    /// what is left of the budget. What it spends is charged even when it gives up.
    pub fn diff(&mut self, path: &str, old: Option<&str>, new: Option<&str>) -> TextDiff {
        if let Err(why) = self.admit(old.map(|s| s.len() as u64), new.map(|s| s.len() as u64)) {
            return TextDiff::TooLarge(why);
        }
        let work_left = self.request.max_work - self.spent.work;
        let output_left = self.request.max_output_bytes - self.spent.output_bytes;
        let limits = FileLimits {
            max_work: self.file.max_work.min(work_left),
            max_output_bytes: self.file.max_output_bytes.min(usize::try_from(output_left).unwrap_or(usize::MAX)),
            ..self.file
        };
        let mut work = 0;
        let result = bounded_unified(path, old, new, &limits, &mut work);
        self.spent.files += 1;
        self.spent.input_bytes += old.map_or(0, str::len) as u64 + new.map_or(0, str::len) as u64;
        self.spent.work += work;
        match result {
            Ok(text) => {
                self.spent.output_bytes += text.len() as u64;
                TextDiff::Unified(text)
            }
            Err(TooLarge::Work) if limits.max_work < self.file.max_work => TextDiff::TooLarge(TooLarge::RequestBudget),
            Err(TooLarge::OutputBytes) if limits.max_output_bytes < self.file.max_output_bytes => {
                TextDiff::TooLarge(TooLarge::RequestBudget)
            }
            Err(why) => TextDiff::TooLarge(why),
        }
    }
}

/// A unified diff (`---`/`+++` headers, 3 lines of context) of `old` → `new` for `path`, or
/// `""` when they are equal; an absent side (added or deleted file) is `/dev/null`. Bounded by
/// [`FILE_LIMITS`] alone: over a cap the text is a one-line `# too large to diff: …` marker.
/// Handlers diffing several files share a [`DiffBudget`] instead.
pub fn unified(path: &str, old: Option<&str>, new: Option<&str>) -> String {
    match bounded_unified(path, old, new, &FILE_LIMITS, &mut 0) {
        Ok(text) => text,
        Err(why) => format!("# {}\n", why.message()),
    }
}

/// The bounded engine; `work` receives the units spent, whatever the outcome.
fn bounded_unified(path: &str, old: Option<&str>, new: Option<&str>, limits: &FileLimits, work: &mut u64) -> Result<String, TooLarge> {
    let (old_text, new_text) = (old.unwrap_or(""), new.unwrap_or(""));
    if old_text.len() > limits.max_input_bytes || new_text.len() > limits.max_input_bytes {
        return Err(TooLarge::InputBytes);
    }
    if old_text == new_text {
        return Ok(String::new());
    }
    let a: Vec<&str> = old_text.split_inclusive('\n').collect();
    let b: Vec<&str> = new_text.split_inclusive('\n').collect();
    if a.len() > limits.max_lines || b.len() > limits.max_lines {
        return Err(TooLarge::Lines);
    }
    *work += (a.len() + b.len()) as u64 * WORK_PER_LINE;
    let (ids_a, ids_b, distinct) = number_lines(&a, &b);

    let runs = if a.is_empty() || b.is_empty() {
        // An added or deleted file (or one emptied): no search, only the output caps apply.
        let mut runs = Vec::new();
        if !a.is_empty() {
            runs.push(Run::Delete { a: 0, len: a.len() });
        }
        if !b.is_empty() {
            runs.push(Run::Insert { b: 0, len: b.len() });
        }
        runs
    } else {
        if edit_lower_bound(&ids_a, &ids_b, distinct) > limits.max_edits {
            return Err(TooLarge::Edits);
        }
        script(&ids_a, &ids_b, distinct, limits, work)?
    };
    let from = if old.is_some() { format!("a/{path}") } else { "/dev/null".to_string() };
    let to = if new.is_some() { format!("b/{path}") } else { "/dev/null".to_string() };
    render(&from, &to, &a, &b, &runs, limits)
}

/// Numbers lines so equal lines get equal ids: sorted by (hash, text), so strings are only
/// compared on equal hashes. Deliberately colliding lines can at worst turn this into a plain
/// sort of the lines, O(L log L) comparisons whose cost is bounded by the input's size; a hash
/// table could be flooded into quadratic time instead.
fn number_lines(a: &[&str], b: &[&str]) -> (Vec<u32>, Vec<u32>, usize) {
    use std::hash::{Hash, Hasher};
    let hash = |s: &str| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        s.hash(&mut h);
        h.finish()
    };
    let mut order: Vec<(u64, &str, u32)> = a.iter().chain(b).enumerate().map(|(i, s)| (hash(s), *s, i as u32)).collect();
    order.sort_unstable_by(|x, y| x.0.cmp(&y.0).then_with(|| x.1.cmp(y.1)));
    let mut ids = vec![0u32; order.len()];
    let mut next = 0u32;
    for (i, (_, line, at)) in order.iter().enumerate() {
        if i > 0 && order[i - 1].1 != *line {
            next += 1;
        }
        ids[*at as usize] = next;
    }
    let distinct = if order.is_empty() { 0 } else { next as usize + 1 };
    let ids_b = ids.split_off(a.len());
    (ids, ids_b, distinct)
}

/// A lower bound on deleted + inserted lines: lines one side has more copies of than the
/// other can never be matched.
fn edit_lower_bound(a: &[u32], b: &[u32], distinct: usize) -> usize {
    let mut count = vec![0i32; distinct];
    for &x in a {
        count[x as usize] += 1;
    }
    for &y in b {
        count[y as usize] -= 1;
    }
    count.iter().map(|c| c.unsigned_abs() as usize).sum()
}

/// A stretch of the edit script, in line indices of each side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    Equal { a: usize, b: usize, len: usize },
    Delete { a: usize, len: usize },
    Insert { b: usize, len: usize },
}

impl Run {
    fn shifted(self, da: usize, db: usize) -> Run {
        match self {
            Run::Equal { a, b, len } => Run::Equal { a: a + da, b: b + db, len },
            Run::Delete { a, len } => Run::Delete { a: a + da, len },
            Run::Insert { b, len } => Run::Insert { b: b + db, len },
        }
    }

    /// Lines deleted or inserted.
    fn edits(self) -> usize {
        match self {
            Run::Equal { .. } => 0,
            Run::Delete { len, .. } | Run::Insert { len, .. } => len,
        }
    }
}

/// The edit script of `a` → `b`. Lines that occur exactly once on each side and in the same
/// order (the longest such chain, as in patience diff) are kept as anchors, so the search only
/// runs on the gaps between them: scattered edits in a long file cost linear time instead of
/// Myers' O((N+M)·D). Each gap is trimmed of its common ends and searched within what is left
/// of the work budget and the edit cap.
fn script(a: &[u32], b: &[u32], distinct: usize, limits: &FileLimits, work: &mut u64) -> Result<Vec<Run>, TooLarge> {
    let mut count_a = vec![0u32; distinct];
    let mut count_b = vec![0u32; distinct];
    let mut at_b = vec![0usize; distinct];
    for &x in a {
        count_a[x as usize] += 1;
    }
    for (j, &y) in b.iter().enumerate() {
        count_b[y as usize] += 1;
        at_b[y as usize] = j;
    }
    let unique: Vec<(usize, usize)> = a
        .iter()
        .enumerate()
        .filter(|(_, &x)| count_a[x as usize] == 1 && count_b[x as usize] == 1)
        .map(|(i, &x)| (i, at_b[x as usize]))
        .collect();
    *work += unique.len() as u64;
    let anchors = longest_increasing(&unique);

    let mut runs: Vec<Run> = Vec::new();
    let (mut pa, mut pb, mut edits) = (0, 0, 0);
    for (i, j) in anchors.into_iter().chain(std::iter::once((a.len(), b.len()))) {
        let gap = gap_script(&a[pa..i], &b[pb..j], limits.max_edits - edits, limits.max_work.saturating_sub(*work), work)?;
        for r in gap {
            edits += r.edits();
            push_run(&mut runs, r.shifted(pa, pb));
        }
        if edits > limits.max_edits {
            return Err(TooLarge::Edits);
        }
        if i < a.len() {
            push_run(&mut runs, Run::Equal { a: i, b: j, len: 1 });
        }
        (pa, pb) = (i + 1, j + 1);
    }
    Ok(runs)
}

/// Appends `r`, merging it into the previous run when both are equal stretches that touch.
fn push_run(runs: &mut Vec<Run>, r: Run) {
    if let (Some(Run::Equal { a, b, len }), Run::Equal { a: ra, b: rb, len: rlen }) = (runs.last_mut(), r) {
        if *a + *len == ra && *b + *len == rb {
            *len += rlen;
            return;
        }
    }
    runs.push(r);
}

/// One gap between anchors: common ends are equal, a one-sided remainder is a plain
/// insertion or deletion, anything else goes to Myers.
fn gap_script(a: &[u32], b: &[u32], max_edits: usize, budget: u64, work: &mut u64) -> Result<Vec<Run>, TooLarge> {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..].iter().rev().zip(b[prefix..].iter().rev()).take_while(|(x, y)| x == y).count();
    let (mid_a, mid_b) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    *work += (prefix + suffix) as u64;
    let mut runs = Vec::new();
    if prefix > 0 {
        runs.push(Run::Equal { a: 0, b: 0, len: prefix });
    }
    if mid_a.is_empty() || mid_b.is_empty() {
        if !mid_a.is_empty() {
            runs.push(Run::Delete { a: prefix, len: mid_a.len() });
        }
        if !mid_b.is_empty() {
            runs.push(Run::Insert { b: prefix, len: mid_b.len() });
        }
    } else {
        runs.extend(myers(mid_a, mid_b, max_edits, budget, work)?.into_iter().map(|r| r.shifted(prefix, prefix)));
    }
    if suffix > 0 {
        runs.push(Run::Equal { a: a.len() - suffix, b: b.len() - suffix, len: suffix });
    }
    Ok(runs)
}

/// The longest chain of `pairs` (already increasing in `.0`) that also increases in `.1`,
/// by patience sorting: O(P log P).
fn longest_increasing(pairs: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut tails: Vec<usize> = Vec::new();
    let mut before = vec![usize::MAX; pairs.len()];
    for (k, &(_, j)) in pairs.iter().enumerate() {
        let pos = tails.partition_point(|&t| pairs[t].1 < j);
        if pos > 0 {
            before[k] = tails[pos - 1];
        }
        if pos == tails.len() {
            tails.push(k);
        } else {
            tails[pos] = k;
        }
    }
    let mut chain = Vec::with_capacity(tails.len());
    let mut k = tails.last().copied().unwrap_or(usize::MAX);
    while k != usize::MAX {
        chain.push(pairs[k]);
        k = before[k];
    }
    chain.reverse();
    chain
}

/// Myers' greedy O((N+M)·D) search for a shortest edit script, giving up past `max_edits`
/// edits or `budget` work units. Keeps each round's frontier (D²/2 numbers, bounded by the
/// budget) to walk the path back.
fn myers(a: &[u32], b: &[u32], max_edits: usize, budget: u64, work: &mut u64) -> Result<Vec<Run>, TooLarge> {
    let (n, m) = (a.len() as isize, b.len() as isize);
    if n == 0 && m == 0 {
        return Ok(Vec::new());
    }
    let max_d = (n + m).min(max_edits as isize);
    let offset = max_d + 1;
    let mut v = vec![0isize; 2 * max_d as usize + 3];
    // trace[d] = the frontier after round d, for k = -d, -d+2, …, d (d + 1 values).
    let mut trace: Vec<isize> = Vec::new();
    let mut spent = 0u64;
    let mut found = None;
    'rounds: for d in 0..=max_d {
        let mut k = -d;
        while k <= d {
            spent += 1;
            let i = (k + offset) as usize;
            let mut x = if k == -d || (k != d && v[i - 1] < v[i + 1]) { v[i + 1] } else { v[i - 1] + 1 };
            let mut y = x - k;
            while x < n && y < m && a[x as usize] == b[y as usize] {
                x += 1;
                y += 1;
                spent += 1;
            }
            v[i] = x;
            if x >= n && y >= m {
                found = Some(d);
                break 'rounds;
            }
            // Checked per diagonal: one round can hold many long snakes.
            if spent > budget {
                *work += spent;
                return Err(TooLarge::Work);
            }
            k += 2;
        }
        let mut k = -d;
        while k <= d {
            trace.push(v[(k + offset) as usize]);
            k += 2;
        }
    }
    *work += spent;
    let Some(total) = found else {
        return Err(TooLarge::Edits);
    };

    // Walk back from (n, m); each round contributes one insert or delete and a snake.
    let frontier = |d: isize, k: isize| trace[(d * (d + 1) / 2 + (k + d) / 2) as usize];
    let mut steps: Vec<(u8, usize, usize)> = Vec::with_capacity(total as usize * 2);
    let (mut x, mut y) = (n, m);
    for d in (1..=total).rev() {
        let k = x - y;
        let prev = d - 1;
        let prev_k = if k == -d || (k != d && frontier(prev, k - 1) < frontier(prev, k + 1)) { k + 1 } else { k - 1 };
        let prev_x = frontier(prev, prev_k);
        let prev_y = prev_x - prev_k;
        while x > prev_x && y > prev_y {
            x -= 1;
            y -= 1;
            steps.push((b'=', x as usize, y as usize));
        }
        if x == prev_x {
            y -= 1;
            steps.push((b'+', x as usize, y as usize));
        } else {
            x -= 1;
            steps.push((b'-', x as usize, y as usize));
        }
    }
    while x > 0 && y > 0 {
        x -= 1;
        y -= 1;
        steps.push((b'=', x as usize, y as usize));
    }
    steps.reverse();

    // Coalesce into runs; within a stretch of changes, deletions come before insertions (the
    // usual unified-diff reading order).
    let mut runs: Vec<Run> = Vec::new();
    let mut i = 0;
    while i < steps.len() {
        let (tag, sx, sy) = steps[i];
        let mut j = i;
        if tag == b'=' {
            while j < steps.len() && steps[j].0 == b'=' {
                j += 1;
            }
            runs.push(Run::Equal { a: sx, b: sy, len: j - i });
        } else {
            while j < steps.len() && steps[j].0 != b'=' {
                j += 1;
            }
            let dels: Vec<usize> = steps[i..j].iter().filter(|s| s.0 == b'-').map(|s| s.1).collect();
            let ins: Vec<usize> = steps[i..j].iter().filter(|s| s.0 == b'+').map(|s| s.2).collect();
            if let Some(&first) = dels.first() {
                runs.push(Run::Delete { a: first, len: dels.len() });
            }
            if let Some(&first) = ins.first() {
                runs.push(Run::Insert { b: first, len: ins.len() });
            }
        }
        i = j;
    }
    Ok(runs)
}

/// Unified text of `runs` in hunks with [`CONTEXT`] lines around changes (hunks closer than
/// twice that merge), in the format of GNU diff and `similar`.
fn render(from: &str, to: &str, a: &[&str], b: &[&str], runs: &[Run], limits: &FileLimits) -> Result<String, TooLarge> {
    let mut out = Out { text: String::new(), lines: 0, limits };
    // Change runs' positions; hunks are built around them.
    let changes: Vec<usize> = runs.iter().enumerate().filter(|(_, r)| !matches!(r, Run::Equal { .. })).map(|(i, _)| i).collect();
    if changes.is_empty() {
        return Ok(String::new());
    }
    out.push(&format!("--- {from}\n+++ {to}\n"))?;
    // Position (a, b) at the start of each run.
    let starts: Vec<(usize, usize)> = {
        let (mut pa, mut pb) = (0, 0);
        runs.iter()
            .map(|r| {
                let at = (pa, pb);
                match *r {
                    Run::Equal { len, .. } => {
                        pa += len;
                        pb += len;
                    }
                    Run::Delete { len, .. } => pa += len,
                    Run::Insert { len, .. } => pb += len,
                }
                at
            })
            .collect()
    };
    let mut g = 0;
    while g < changes.len() {
        // Extend the group while the equal stretch to the next change is short.
        let mut h = g;
        while h + 1 < changes.len() {
            let between: usize =
                runs[changes[h] + 1..changes[h + 1]].iter().map(|r| if let Run::Equal { len, .. } = r { *len } else { 0 }).sum();
            if between > 2 * CONTEXT {
                break;
            }
            h += 1;
        }
        let first = changes[g];
        let last = changes[h];
        let lead = if first > 0 { equal_len(&runs[first - 1]).min(CONTEXT) } else { 0 };
        let trail = runs.get(last + 1).map_or(0, |r| equal_len(r).min(CONTEXT));
        let (a0, b0) = (starts[first].0 - lead, starts[first].1 - lead);
        let (a1, b1) = match runs.get(last + 1) {
            Some(_) => (starts[last + 1].0 + trail, starts[last + 1].1 + trail),
            None => (a.len(), b.len()),
        };
        out.push(&format!("@@ -{} +{} @@\n", hunk_range(a0, a1), hunk_range(b0, b1)))?;
        a[a0..starts[first].0].iter().try_for_each(|l| out.line(' ', l))?;
        for r in &runs[first..=last] {
            match *r {
                Run::Equal { a: ra, len, .. } => a[ra..ra + len].iter().try_for_each(|l| out.line(' ', l))?,
                Run::Delete { a: ra, len } => a[ra..ra + len].iter().try_for_each(|l| out.line('-', l))?,
                Run::Insert { b: rb, len } => b[rb..rb + len].iter().try_for_each(|l| out.line('+', l))?,
            }
        }
        if last + 1 < runs.len() {
            let ra = starts[last + 1].0;
            a[ra..ra + trail].iter().try_for_each(|l| out.line(' ', l))?;
        }
        g = h + 1;
    }
    Ok(out.text)
}

fn equal_len(r: &Run) -> usize {
    match *r {
        Run::Equal { len, .. } => len,
        _ => 0,
    }
}

/// `start,len` (1-based), `start` alone for one line, and the line before for an empty range.
fn hunk_range(start: usize, end: usize) -> String {
    let len = end - start;
    match len {
        1 => format!("{}", start + 1),
        0 => format!("{start},0"),
        _ => format!("{},{len}", start + 1),
    }
}

struct Out<'a> {
    text: String,
    lines: usize,
    limits: &'a FileLimits,
}

impl Out<'_> {
    fn push(&mut self, s: &str) -> Result<(), TooLarge> {
        if self.text.len() + s.len() > self.limits.max_output_bytes {
            return Err(TooLarge::OutputBytes);
        }
        self.text.push_str(s);
        Ok(())
    }

    fn line(&mut self, tag: char, line: &str) -> Result<(), TooLarge> {
        self.lines += 1;
        if self.lines > self.limits.max_output_lines {
            return Err(TooLarge::OutputLines);
        }
        self.push(if tag == ' ' {
            " "
        } else if tag == '-' {
            "-"
        } else {
            "+"
        })?;
        self.push(line)?;
        if !line.ends_with('\n') {
            self.push("\n\\ No newline at end of file\n")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(path: &str, sha: &str) -> FileState {
        FileState { path: path.into(), sha256: sha.into(), size_bytes: 1 }
    }

    #[test]
    fn every_kind_of_change_is_named() {
        let from = [f("same", "1"), f("edit", "2"), f("gone", "3")];
        let to = [f("same", "1"), f("edit", "9"), f("new", "4")];
        let c = compare(&from, &to);
        let kinds: Vec<(&str, Change)> = c.iter().map(|x| (x.path.as_str(), x.change)).collect();
        assert_eq!(kinds, vec![("edit", Change::Modified), ("gone", Change::Deleted), ("new", Change::Added), ("same", Change::Unchanged)]);
        assert_eq!(c[1].to_sha256, None);
        assert_eq!(c[2].from_sha256, None);
    }

    #[test]
    fn unified_diff_has_headers_and_hunks() {
        let d = unified("src/a.txt", Some("one\ntwo\nthree\n"), Some("one\n2\nthree\n"));
        assert!(d.starts_with("--- a/src/a.txt\n+++ b/src/a.txt\n"), "{d}");
        assert!(d.contains("@@ -1,3 +1,3 @@"));
        assert!(d.contains("-two\n+2\n"));
        let added = unified("n.txt", None, Some("hi\n"));
        assert!(added.starts_with("--- /dev/null\n+++ b/n.txt\n"));
        assert!(added.contains("+hi"));
        assert_eq!(unified("x", Some("same\n"), Some("same\n")), "");
        // What tests/files.test.mjs expects over HTTP.
        assert_eq!(unified("new/one.txt", None, Some("brand new\n")), "--- /dev/null\n+++ b/new/one.txt\n@@ -0,0 +1 @@\n+brand new\n");
    }

    /// Deterministic text: `lines` lines of about `width` bytes from `seed`.
    fn text(seed: u64, lines: usize, width: usize) -> String {
        let mut x = seed | 1;
        let mut s = String::with_capacity(lines * (width + 1));
        for _ in 0..lines {
            for _ in 0..width {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                s.push((b'a' + (x % 26) as u8) as char);
            }
            s.push('\n');
        }
        s
    }

    /// The reference: `similar`'s own unified diff (unbounded), for inputs it handles quickly.
    fn reference(path: &str, old: Option<&str>, new: Option<&str>) -> String {
        let from = if old.is_some() { format!("a/{path}") } else { "/dev/null".into() };
        let to = if new.is_some() { format!("b/{path}") } else { "/dev/null".into() };
        similar::TextDiff::from_lines(old.unwrap_or(""), new.unwrap_or("")).unified_diff().context_radius(3).header(&from, &to).to_string()
    }

    /// Applies a unified diff made by `unified` to `old`, to check it describes `new`.
    fn apply(old: &str, diff: &str) -> String {
        let old_lines: Vec<&str> = old.split_inclusive('\n').collect();
        let mut out = String::new();
        let mut at = 0usize;
        let mut lines = diff.split_inclusive('\n').skip(2).peekable();
        let mut last_pushed_from_new = None::<usize>;
        while let Some(l) = lines.next() {
            if let Some(h) = l.strip_prefix("@@ -") {
                let old_range = h.split(' ').next().unwrap();
                let (start, len) = old_range.split_once(',').map_or((old_range, "1"), |(s, l)| (s, l));
                let (start, len): (usize, usize) = (start.parse().unwrap(), len.parse().unwrap());
                let begin = if len == 0 { start } else { start - 1 };
                while at < begin {
                    out.push_str(old_lines[at]);
                    at += 1;
                }
                continue;
            }
            if l.starts_with("\\ No newline") {
                if last_pushed_from_new == Some(out.len()) {
                    out.pop();
                }
                continue;
            }
            let (tag, body) = l.split_at(1);
            match tag {
                " " => {
                    out.push_str(old_lines[at]);
                    at += 1;
                }
                "-" => at += 1,
                "+" => out.push_str(body),
                _ => panic!("bad line {l:?}"),
            }
            last_pushed_from_new = (tag == "+" && lines.peek().is_some_and(|n| n.starts_with("\\ No newline"))).then_some(out.len());
        }
        while at < old_lines.len() {
            out.push_str(old_lines[at]);
            at += 1;
        }
        out
    }

    #[test]
    fn matches_similar_on_ordinary_edits() {
        let base = text(1, 200, 12);
        let lines: Vec<&str> = base.split_inclusive('\n').collect();
        let mut cases: Vec<(String, String)> = vec![
            ("a\nb\nc\n".into(), "a\nc\n".into()),
            ("a\nb\nc\n".into(), "a\nb\nc\nd\n".into()),
            ("".into(), "x\ny\n".into()),
            ("x\ny\n".into(), "".into()),
            ("no newline".into(), "no newline\n".into()),
            ("a\nb".into(), "a\nc".into()),
            ("one\n".into(), "two\n".into()),
        ];
        // Scattered edits in a longer file: separate hunks, merged hunks, edits at both ends.
        let mut edited: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        edited[0] = "first changed\n".into();
        edited[20] = "x\n".into();
        edited.insert(24, "inserted\n".into());
        edited.remove(100);
        edited[150] = "y\n".into();
        edited.push("appended\n".into());
        cases.push((base.clone(), edited.concat()));
        let mut moved: Vec<&str> = lines.clone();
        let block: Vec<&str> = moved.drain(10..30).collect();
        moved.splice(150..150, block);
        cases.push((base.clone(), moved.concat()));
        for (old, new) in &cases {
            let ours = unified("p.txt", Some(old), Some(new));
            assert_eq!(apply(old, &ours), *new, "our diff must turn old into new:\n{ours}");
            let theirs = reference("p.txt", Some(old), Some(new));
            // Both are shortest edit scripts; hunk headers and line counts agree.
            let headers = |d: &str| d.lines().filter(|l| l.starts_with("@@") || l.starts_with("---") || l.starts_with("+++")).count();
            let count = |d: &str, c: char| d.lines().filter(|l| l.starts_with(c) && !l.starts_with("---") && !l.starts_with("+++")).count();
            assert_eq!(count(&ours, '-'), count(&theirs, '-'), "ours:\n{ours}\ntheirs:\n{theirs}");
            assert_eq!(count(&ours, '+'), count(&theirs, '+'), "ours:\n{ours}\ntheirs:\n{theirs}");
            assert_eq!(headers(&ours), headers(&theirs), "ours:\n{ours}\ntheirs:\n{theirs}");
        }
        assert_eq!(unified("n", None, Some("hi\n")), reference("n", None, Some("hi\n")));
        assert_eq!(unified("n", Some("a\nb\nc\n"), None), reference("n", Some("a\nb\nc\n"), None));
        assert_eq!(unified("p", Some("a\nb"), Some("a\nc")), reference("p", Some("a\nb"), Some("a\nc")));
    }

    #[test]
    fn unrelated_files_get_the_marker_without_a_search() {
        let (a, b) = (text(1, 10_000, 25), text(2, 10_000, 25));
        assert!(a.len() <= MAX_DIFF_INPUT_BYTES && b.len() <= MAX_DIFF_INPUT_BYTES);
        let mut budget = DiffBudget::default();
        assert_eq!(budget.diff("x", Some(&a), Some(&b)), TextDiff::TooLarge(TooLarge::Edits));
        // Only the line numbering was paid for.
        assert_eq!(budget.spent().work, 20_000 * WORK_PER_LINE);
        assert!(unified("x", Some(&a), Some(&b)).starts_with("# too large to diff"));
    }

    /// `lines` lines drawn from `distinct` different ones: no line is unique, so there are no
    /// anchors, and two draws share their multiset closely: the search's worst case.
    fn drawn(seed: u64, lines: usize, distinct: u64) -> String {
        let mut x = seed | 1;
        (0..lines)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                format!("    let value_{} = compute();\n", x % distinct)
            })
            .collect()
    }

    #[test]
    fn shuffled_lines_run_out_of_work_not_cpu() {
        // A shuffle of unique lines is refused cheaply: the anchors leave too many edits.
        let a = text(3, 10_000, 25);
        let mut lines: Vec<&str> = a.split_inclusive('\n').collect();
        let n = lines.len();
        for i in 0..n {
            lines.swap(i, (i * 7919 + 13) % n);
        }
        let b = lines.concat();
        let mut budget = DiffBudget::default();
        assert_eq!(budget.diff("x", Some(&a), Some(&b)), TextDiff::TooLarge(TooLarge::Edits));
        // Repeated lines in another order: no anchors and a multiset bound near 0, so only the
        // work cap stops the search, a snake's length past the budget at most.
        let (a, b) = (drawn(1, 8_000, 40), drawn(2, 8_000, 40));
        let mut budget = DiffBudget::default();
        assert_eq!(budget.diff("x", Some(&a), Some(&b)), TextDiff::TooLarge(TooLarge::Work));
        assert!(budget.spent().work <= FILE_LIMITS.max_work + 16_000, "{:?}", budget.spent());
    }

    #[test]
    fn scattered_edits_in_a_long_file_are_cheap() {
        // Every 40th line of 10,000 changed: 500 edits in 250 hunks, found through the anchors
        // in linear work, where Myers alone would need over 125,000 units (D² / 2).
        let a = text(16, 10_000, 25);
        let b: String =
            a.split_inclusive('\n').enumerate().map(|(i, l)| if i % 40 == 0 { format!("changed {i}\n") } else { l.to_string() }).collect();
        let mut budget = DiffBudget::default();
        let TextDiff::Unified(d) = budget.diff("x", Some(&a), Some(&b)) else { panic!("expected a diff, {:?}", budget.spent()) };
        assert_eq!(apply(&a, &d), b);
        // Beyond numbering the lines: about one unit per line, not D² / 2.
        assert!(budget.spent().work - 20_000 * WORK_PER_LINE < 20_000, "{:?}", budget.spent());
        assert_eq!(d.lines().filter(|l| l.starts_with('-') && !l.starts_with("---")).count(), 250);
        assert_eq!(d.lines().filter(|l| l.starts_with("@@")).count(), 250);
    }

    #[test]
    fn caps_on_size_lines_and_output() {
        let big = "x".repeat(MAX_DIFF_INPUT_BYTES + 1);
        let budget = DiffBudget::default();
        assert_eq!(budget.admit(Some(big.len() as u64), Some(1)), Err(TooLarge::InputBytes));
        assert_eq!(DiffBudget::default().diff("x", Some(&big), Some("y")), TextDiff::TooLarge(TooLarge::InputBytes));
        let many = "\n".repeat(FILE_LIMITS.max_lines + 1);
        assert_eq!(DiffBudget::default().diff("x", Some(&many), Some("y\n")), TextDiff::TooLarge(TooLarge::Lines));
        // 1,500 lines replaced by 1,500 others sharing nothing: 3,000 edits > 2,000.
        let (a, b) = (text(5, 1_500, 10), text(6, 1_500, 10));
        assert_eq!(DiffBudget::default().diff("x", Some(&a), Some(&b)), TextDiff::TooLarge(TooLarge::Edits));
        // An added file needs no search, only the output caps: 1,300 lines of 101 bytes are
        // over 128 KiB, 3,001 short lines over 3,000 lines.
        let wide = text(7, 1_300, 100);
        assert_eq!(DiffBudget::default().diff("x", None, Some(&wide)), TextDiff::TooLarge(TooLarge::OutputBytes));
        let long = text(9, 3_001, 3);
        assert_eq!(DiffBudget::default().diff("x", None, Some(&long)), TextDiff::TooLarge(TooLarge::OutputLines));
        assert_eq!(
            DiffBudget::default().diff("x", Some(&long), Some(&long[..long.len() - 4])),
            TextDiff::Unified(unified("x", Some(&long), Some(&long[..long.len() - 4])))
        );
        let fine = text(10, 2_900, 3);
        assert!(
            matches!(DiffBudget::default().diff("x", Some(&fine), None), TextDiff::Unified(d) if d.starts_with("--- a/x\n+++ /dev/null\n@@ -1,2900 +0,0 @@\n"))
        );
    }

    #[test]
    fn the_request_budget_is_shared_and_charged() {
        let small = FileLimits { max_work: 1_000_000, ..FILE_LIMITS };
        let request = RequestLimits { max_files: 3, max_input_bytes: 1 << 20, max_work: 1_000_000, max_output_bytes: 1 << 20 };
        let mut budget = DiffBudget::new(small, request);
        for _ in 0..3 {
            assert!(matches!(budget.diff("x", Some("a\n"), Some("b\n")), TextDiff::Unified(_)));
        }
        assert_eq!(budget.diff("x", Some("a\n"), Some("b\n")), TextDiff::TooLarge(TooLarge::RequestBudget));
        assert_eq!(budget.spent().files, 3);
        assert!(budget.spent().output_bytes > 0);

        let request = RequestLimits { max_files: 100, max_input_bytes: 100, max_work: 1_000_000, max_output_bytes: 1 << 20 };
        let budget = DiffBudget::new(FILE_LIMITS, request);
        assert_eq!(budget.admit(Some(60), Some(41)), Err(TooLarge::RequestBudget));
        assert_eq!(budget.admit(Some(60), Some(40)), Ok(()));

        // A search cut short by what the request has left is reported as the request's limit.
        let (a, b) = (drawn(3, 2_000, 40), drawn(4, 2_000, 40));
        let request = RequestLimits { max_files: 100, max_input_bytes: 1 << 20, max_work: 40_000, max_output_bytes: 1 << 20 };
        let mut budget = DiffBudget::new(FILE_LIMITS, request);
        assert_eq!(budget.diff("x", Some(&a), Some(&b)), TextDiff::TooLarge(TooLarge::RequestBudget));
        assert_eq!(budget.diff("y", Some("a\n"), Some("b\n")), TextDiff::TooLarge(TooLarge::RequestBudget));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, failure_persistence: None, ..Default::default() })]

        /// Whatever the edits, the diff turns old into new, and never has more changed lines
        /// than deleting everything and inserting everything.
        #[test]
        fn a_diff_always_rebuilds_the_new_side(
            old in proptest::collection::vec(0u8..6, 0..60),
            new in proptest::collection::vec(0u8..6, 0..60),
            old_nl in proptest::bool::ANY,
            new_nl in proptest::bool::ANY,
        ) {
            let render = |v: &[u8], nl: bool| {
                let mut s: String = v.iter().map(|x| format!("line {x}\n")).collect();
                if !nl && s.ends_with('\n') {
                    s.pop();
                }
                s
            };
            let (a, b) = (render(&old, old_nl), render(&new, new_nl));
            let d = unified("p", Some(&a), Some(&b));
            proptest::prop_assert_eq!(apply(&a, &d), b.clone(), "diff:\n{}", d);
            let changed = d.lines().filter(|l| (l.starts_with('-') && !l.starts_with("---")) || (l.starts_with('+') && !l.starts_with("+++"))).count();
            proptest::prop_assert!(changed <= a.lines().count() + b.lines().count());
        }
    }

    /// The brief's bar: the worst case for one file within ~2 ms natively. Timed in release
    /// builds (`cargo test --release files::diff`); debug builds check the same inputs with a
    /// bound for unoptimised code. Best of five runs, so a busy machine does not fail it.
    #[test]
    fn worst_cases_stay_within_the_cpu_budget() {
        let unrelated = (text(11, 10_000, 25), text(12, 10_000, 25));
        let short_lines = (text(13, 10_000, 12), text(14, 10_000, 12));
        let shuffled = {
            let a = text(15, 10_000, 25);
            let mut l: Vec<&str> = a.split_inclusive('\n').collect();
            let n = l.len();
            for i in 0..n {
                l.swap(i, (i * 7919 + 13) % n);
            }
            let b = l.concat();
            (a, b)
        };
        // Many repeated lines, interleaved differently: long snakes, many diagonals.
        let repeated = {
            let a: String = (0..10_000).map(|i| if i % 3 == 0 { "}\n" } else { "    x += 1;\n" }).collect();
            let b: String = (0..10_000).map(|i| if i % 4 == 0 { "}\n" } else { "    x += 1;\n" }).collect();
            (a, b)
        };
        let drawn_lines = (drawn(17, 8_000, 40), drawn(18, 8_000, 40));
        // Scattered single-line edits: every 40th line changed, a diff within every cap.
        let scattered = {
            let a = text(16, 10_000, 25);
            let b: String = a
                .split_inclusive('\n')
                .enumerate()
                .map(|(i, l)| if i % 40 == 0 { format!("changed {i}\n") } else { l.to_string() })
                .collect();
            (a, b)
        };
        // Debug builds run this crate unoptimised (~20-40x slower); their bound still catches a
        // quadratic blow-up, which would take seconds.
        let bound_ms = if cfg!(debug_assertions) { 200.0 } else { 2.5 };
        for (name, (a, b)) in [
            ("unrelated", &unrelated),
            ("short lines", &short_lines),
            ("shuffled", &shuffled),
            ("repeated", &repeated),
            ("drawn", &drawn_lines),
            ("scattered", &scattered),
        ] {
            assert!(a.len() <= MAX_DIFF_INPUT_BYTES && b.len() <= MAX_DIFF_INPUT_BYTES, "{name}");
            let mut best = f64::MAX;
            let mut outcome = None;
            for _ in 0..5 {
                let t = std::time::Instant::now();
                let r = DiffBudget::default().diff("x", Some(a), Some(b));
                best = best.min(t.elapsed().as_secs_f64() * 1e3);
                outcome = Some(r);
            }
            let kind = match outcome.unwrap() {
                TextDiff::Unified(s) => format!("diff of {} bytes", s.len()),
                TextDiff::TooLarge(w) => format!("{w:?}"),
            };
            eprintln!("diff worst case {name}: {best:.3} ms ({kind})");
            assert!(best < bound_ms, "{name}: {best:.3} ms");
        }
    }
}
