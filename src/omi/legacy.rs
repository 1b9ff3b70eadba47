//! The old Next.js app's Omi logs, read for migration (pure: no bindings, host-tested).
//!
//! The old app wrote every memory several times, in four layouts:
//!
//! - `omi-logs/memory/by-user/{sanitizedUid}/memory-{id}-{ms}.json` (pruned to the newest 100),
//! - `omi-logs/memory/all/{sanitizedUid}-memory-{id}-{ms}.json` (never pruned),
//! - `mobil3-mentorships/by-user/{uid}/{yyyy}/{mm}/{id}-{ms}.json` (R2),
//! - `mobil3-mentorships/all/{yyyy-mm-dd}/{uid}-{id}-{ms}.json` (R2),
//!
//! each holding the wrapper `{memory, processed: {...memory, uid, …}, analytics,
//! webhook_received_at, processing_time_ms}`. A migration must store each memory once, under
//! its mentor, whichever copies survive. The rules, which `scripts/lib/omi-legacy.mjs` mirrors
//! line for line (both are checked against `tests/fixtures/omi/legacy_vectors.json`):
//!
//! - **Attribution** comes from the wrapper (`processed.uid`, which the old app sanitised) or
//!   from the object's name, never from a directory: a local `by-user/{dir}/` is only where a
//!   file happens to lie (reading the mentor from directories is how `all/` once became a
//!   mentor called `memory`). In R2 a key is the object's whole name, so its uid counts.
//! - **Names are ambiguous**: uids and ids (UUIDs) both contain `-`. With the memory id from the
//!   wrapper a name splits exactly; without it only where the split is unique.
//! - **The mapping** (sanitised id → real Omi uid) turns the old app's lower-cased ids back into
//!   Omi's; a mentor it does not name keeps the sanitised id and is reported.
//! - **Dedupe**: copies with the same mentor, memory id and content (SHA-256 of the memory as
//!   r2d1 stores it, i.e. re-serialised by `serde_json` with sorted keys) are one memory; other
//!   contents of the same id are its versions, ordered by when they were received.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use super::keys::check_key_part;
use super::payload::{memory_from_value, parse_json, unwrap_legacy};
use crate::error::Error;

/// How much of a uid the old app kept: JavaScript's `uid.substring(0, 50)`, which counts
/// UTF-16 code units, not characters.
const SANITIZED_UID_UNITS: usize = 50;

/// The old app's uid sanitiser, exactly: the first 50 UTF-16 units, lower-cased (Unicode, as
/// `toLowerCase`), `@` → `at_`, every other character outside `[a-z0-9_-]` → `_`, runs of `_`
/// collapsed, one leading and one trailing `_` dropped, empty → `anonymous`.
pub fn sanitize_uid(uid: &str) -> String {
    let mut head = String::new();
    let mut units = 0;
    let mut cut_pair = false;
    for c in uid.chars() {
        if units + c.len_utf16() > SANITIZED_UID_UNITS {
            // substring() kept the high half of this surrogate pair, which became a `_`.
            cut_pair = units < SANITIZED_UID_UNITS;
            break;
        }
        units += c.len_utf16();
        head.push(c);
    }
    let mut replaced = String::with_capacity(head.len() + 8);
    for c in head.to_lowercase().chars() {
        match c {
            '@' => replaced.push_str("at_"),
            'a'..='z' | '0'..='9' | '_' | '-' => replaced.push(c),
            _ => replaced.push('_'),
        }
    }
    if cut_pair {
        replaced.push('_');
    }
    let mut collapsed = String::with_capacity(replaced.len());
    for c in replaced.chars() {
        if !(c == '_' && collapsed.ends_with('_')) {
            collapsed.push(c);
        }
    }
    let trimmed = collapsed.strip_prefix('_').unwrap_or(&collapsed);
    let trimmed = trimmed.strip_suffix('_').unwrap_or(trimmed);
    if trimmed.is_empty() {
        "anonymous".to_string()
    } else {
        trimmed.to_string()
    }
}

/// Whether `uid` has the sanitiser's output alphabet and shape (any length: `@` → `at_` can
/// make it longer than 50).
pub fn is_sanitized(uid: &str) -> bool {
    !uid.is_empty()
        && uid.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
        && !uid.starts_with('_')
        && !uid.ends_with('_')
        && !uid.contains("__")
}

/// The sanitised id a uid stands for: itself when it already is one (sanitising is not
/// idempotent past 50 units), else its sanitised form. Two uids with the same class are the
/// same mentor as far as the old app could tell.
pub fn uid_class(uid: &str) -> String {
    if is_sanitized(uid) {
        uid.to_string()
    } else {
        sanitize_uid(uid)
    }
}

/// Which of the old app's four layouts a path follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// `…/by-user/{sanitizedUid}/memory-{id}-{ms}.json`
    LocalByUser,
    /// `…/all/{sanitizedUid}-memory-{id}-{ms}.json`
    LocalAll,
    /// `…/by-user/{uid}/{yyyy}/{mm}/{id}-{ms}.json`
    R2ByUser,
    /// `…/all/{yyyy-mm-dd}/{uid}-{id}-{ms}.json`
    R2All,
}

impl Layout {
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::LocalByUser => "local-by-user",
            Layout::LocalAll => "local-all",
            Layout::R2ByUser => "r2-by-user",
            Layout::R2All => "r2-all",
        }
    }
}

fn digits(s: Option<&str>, len: usize) -> bool {
    s.is_some_and(|s| s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
}

/// `yyyy-mm-dd` (bytes, so a multi-byte character can never split a slice).
fn is_date(s: Option<&str>) -> bool {
    s.is_some_and(|s| {
        let b = s.as_bytes();
        b.len() == 10 && b.iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() })
    })
}

/// `8-4-4-4-12` hex digits, any case.
pub fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5 && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// The layout of a file or object name (`/`-separated; anything may precede the layout's own
/// directories), or `None` for files that are not the old app's memories.
pub fn layout_of(path: &str) -> Option<Layout> {
    let segs = segments(path);
    let file = *segs.last()?;
    if !file.ends_with(".json") {
        return None;
    }
    // `up(1)` is the parent directory, `up(2)` the one above, …
    let up = |n: usize| segs.len().checked_sub(n + 1).map(|i| segs[i]);
    if up(2) == Some("by-user") && file.starts_with("memory-") {
        Some(Layout::LocalByUser)
    } else if up(1) == Some("all") && file.contains("-memory-") {
        Some(Layout::LocalAll)
    } else if up(4) == Some("by-user") && digits(up(2), 4) && digits(up(1), 2) {
        Some(Layout::R2ByUser)
    } else if up(2) == Some("all") && is_date(up(1)) {
        Some(Layout::R2All)
    } else {
        None
    }
}

/// What a name says: the mentor (only where the name itself carries one), the memory id and
/// the time in the name (milliseconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyName {
    pub layout: Layout,
    pub uid: Option<String>,
    pub memory_id: String,
    pub received_ms: i64,
}

/// Parses a name without knowing the memory id: exact for `by-user/` names, and for `all/`
/// names only when the split is unique (a single `-memory-` marker in local names, or a single
/// split whose id part is a UUID).
pub fn parse_name(path: &str) -> Option<LegacyName> {
    parse(path, None)
}

/// Parses a name with the memory id known (from the file's wrapper): exact for every layout;
/// `None` when the name does not carry that id.
pub fn parse_name_with_id(path: &str, memory_id: &str) -> Option<LegacyName> {
    parse(path, Some(memory_id))
}

fn parse(path: &str, known_id: Option<&str>) -> Option<LegacyName> {
    let layout = layout_of(path)?;
    let segs = segments(path);
    let stem = segs.last()?.strip_suffix(".json")?;
    let (head, ms) = stem.rsplit_once('-')?;
    if ms.is_empty() || !ms.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let received_ms: i64 = ms.parse().ok()?;
    let (uid, memory_id) = match layout {
        Layout::LocalByUser => (None, head.strip_prefix("memory-")?),
        Layout::R2ByUser => (Some(segs[segs.len() - 4]), head),
        Layout::LocalAll => split_uid(head, "-memory-", known_id)?,
        Layout::R2All => split_uid(head, "-", known_id)?,
    };
    if memory_id.is_empty() || uid == Some("") || known_id.is_some_and(|id| id != memory_id) {
        return None;
    }
    Some(LegacyName { layout, uid: uid.map(str::to_string), memory_id: memory_id.to_string(), received_ms })
}

/// Splits `{uid}{sep}{id}`.
fn split_uid<'a>(head: &'a str, sep: &str, known_id: Option<&str>) -> Option<(Option<&'a str>, &'a str)> {
    if let Some(id) = known_id {
        let uid = head.strip_suffix(id)?.strip_suffix(sep)?;
        return Some((Some(uid), &head[head.len() - id.len()..]));
    }
    let splits: Vec<(&str, &str)> = head.match_indices(sep).map(|(i, _)| (&head[..i], &head[i + sep.len()..])).collect();
    let unique = |c: Vec<(&'a str, &'a str)>| if c.len() == 1 { c.first().map(|&(u, id)| (Some(u), id)) } else { None };
    if sep == "-memory-" && splits.len() == 1 {
        return unique(splits);
    }
    unique(splits.into_iter().filter(|(_, id)| is_uuid(id)).collect())
}

/// What a file's wrapper says, read through [`unwrap_legacy`] (which also takes bare memories).
#[derive(Debug, Clone)]
pub struct Wrapper {
    pub memory: Value,
    pub memory_id: String,
    /// `processed.uid`: the sanitised uid, in the old app's wrappers.
    pub processed_uid: Option<String>,
    /// A uid at the top of the record or in the memory (`uid`, `userId`, `user_id`).
    pub uid: Option<String>,
    /// `webhook_received_at`.
    pub received_ms: Option<i64>,
}

pub fn read_wrapper(value: Value) -> Result<Wrapper, Error> {
    let non_empty = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_string);
    let processed_uid = non_empty(value.get("processed").and_then(|p| p.get("uid")).and_then(Value::as_str));
    let record = unwrap_legacy(value)?;
    let memory_id = match record.memory.get("id") {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        _ => return Err(Error::bad_request("missing_field", "memory.id: is required (a string)")),
    };
    Ok(Wrapper { memory: record.memory, memory_id, processed_uid, uid: non_empty(record.uid.as_deref()), received_ms: record.received_ms })
}

/// Where a copy's mentor was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UidSource {
    /// `processed.uid` in the wrapper.
    Processed,
    /// `uid` / `userId` / `user_id` on the record or the memory.
    Record,
    /// The object's name.
    Name,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribution {
    pub uid: String,
    pub source: UidSource,
    /// Uids the same copy names that are another mentor (reported; the wrapper wins).
    pub others: Vec<String>,
}

/// The copy's mentor. The wrapper's `processed.uid` decides which mentor (else the record's
/// uid, else the name's); among the uids that name that same mentor, the least sanitised one is
/// kept (`Alice@X.com` from an R2 key says more than `aliceat_x_com`).
pub fn attribute(wrapper: &Wrapper, name: &LegacyName) -> Option<Attribution> {
    let anchor = wrapper.processed_uid.as_deref().or(wrapper.uid.as_deref()).or(name.uid.as_deref())?;
    let class = uid_class(anchor);
    let candidates = [(UidSource::Record, &wrapper.uid), (UidSource::Name, &name.uid), (UidSource::Processed, &wrapper.processed_uid)];
    let mut chosen = None;
    let mut others = Vec::new();
    for (source, uid) in candidates {
        let Some(uid) = uid.as_deref() else { continue };
        if uid_class(uid) != class {
            if !others.iter().any(|o| o == uid) {
                others.push(uid.to_string());
            }
        } else if chosen.is_none() {
            chosen = Some((source, uid.to_string()));
        }
    }
    let (source, uid) = chosen?;
    Some(Attribution { uid, source, others })
}

/// Sanitised ids → real Omi uids, from a JSON object or two-column CSV.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapping {
    by_class: BTreeMap<String, String>,
    real: BTreeSet<String>,
}

/// First cells that mark a CSV header row (compared lower-cased, letters and digits only).
const CSV_HEADER_FIRST_CELLS: &[&str] = &["sanitized", "sanitizeduid", "legacy", "legacyuid", "old", "olduid", "from"];

impl Mapping {
    /// A JSON object `{"sanitized": "RealUid", …}`, or CSV lines `sanitized,RealUid` (an optional
    /// header row, blank lines and `#` comments allowed). Keys that are not in sanitised form
    /// (e.g. the original `Alice@X.com`) are sanitised. Values must be storable uids.
    pub fn parse(text: &str) -> Result<Mapping, Error> {
        let text = text.trim_start_matches('\u{feff}');
        let mut pairs: Vec<(String, String, String)> = Vec::new();
        if text.trim_start().starts_with('{') {
            let value = parse_json(text.as_bytes())?;
            for (from, to) in value.as_object().into_iter().flatten() {
                let to = to.as_str().ok_or_else(|| Error::invalid_field(&format!("mapping[{from:?}]"), "must be a string"))?;
                pairs.push((format!("mapping[{from:?}]"), from.clone(), to.to_string()));
            }
        } else {
            let mut seen_row = false;
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let cells: Vec<String> = line.split([',', ';', '\t']).map(|c| c.trim().trim_matches('"').trim().to_string()).collect();
                let field = format!("mapping line {}", i + 1);
                let first_row = !std::mem::replace(&mut seen_row, true);
                let header_word: String = cells[0].to_lowercase().chars().filter(char::is_ascii_alphanumeric).collect();
                if first_row && CSV_HEADER_FIRST_CELLS.contains(&header_word.as_str()) {
                    continue;
                }
                match cells.as_slice() {
                    [from, to] if !from.is_empty() => pairs.push((field, from.clone(), to.clone())),
                    _ => return Err(Error::invalid_field(&field, "must be two columns: sanitized id, real Omi uid")),
                }
            }
        }
        let mut mapping = Mapping::default();
        for (field, from, to) in pairs {
            check_key_part(&to).map_err(|why| Error::invalid_field(&field, format!("real uid {to:?} {why}")))?;
            let class = uid_class(&from);
            if let Some(before) = mapping.by_class.insert(class.clone(), to.clone()) {
                if before != to {
                    return Err(Error::invalid_field(&field, format!("{class} is mapped to both {before} and {to}")));
                }
            }
            mapping.real.insert(to);
        }
        Ok(mapping)
    }

    /// A mapping as stored (`omi_uid_mapping`): sanitised class → real uid, already checked.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Mapping {
        let mut mapping = Mapping::default();
        for (class, real) in pairs {
            mapping.by_class.insert(class.to_string(), real.to_string());
            mapping.real.insert(real.to_string());
        }
        mapping
    }

    /// Every sanitised class with its real uid, sorted by class.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.by_class.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.by_class.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_class.is_empty()
    }

    /// The uid to store an attributed copy under: the mapping's real uid for its sanitised id;
    /// else the uid itself when it is already a real uid of the mapping or a storable uid
    /// (`mapped: false`); else its sanitised form. Errors when even that cannot be a key.
    pub fn resolve(&self, uid: &str) -> Result<Resolved, Error> {
        let class = uid_class(uid);
        if let Some(real) = self.by_class.get(&class) {
            return Ok(Resolved { uid: real.clone(), mapped: true });
        }
        if self.real.contains(uid) {
            return Ok(Resolved { uid: uid.to_string(), mapped: true });
        }
        for candidate in [uid, class.as_str()] {
            if check_key_part(candidate).is_ok() {
                return Ok(Resolved { uid: candidate.to_string(), mapped: false });
            }
        }
        Err(Error::invalid_field(
            "uid",
            format!("{uid:?} cannot be stored (sanitised {class:?} is not 1-128 of A-Z a-z 0-9 . _ -); map it"),
        ))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub uid: String,
    /// Whether the uid is a real Omi uid from the mapping.
    pub mapped: bool,
}

/// Where an import record's mentor came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportUidSource {
    /// `uid` / `userId` / `user_id` on the record or its memory, used as given.
    Record,
    /// The old app's attribution (`processed.uid`, or the uid in the record's `path`), mapped.
    Legacy,
    /// The request's `?uid=`.
    Default,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportAttribution {
    pub uid: String,
    pub source: ImportUidSource,
    /// `webhook_received_at`, else the time in `path`'s name.
    pub received_ms: Option<i64>,
}

/// The mentor of one `POST /api/omi/import` record. A record that names its mentor (`uid`,
/// `userId`, `user_id`) is stored under it as given (the CLI sends real uids it has already
/// mapped). Otherwise an old-app wrapper is attributed like a migrated file: its
/// `processed.uid`, or the uid in `path` (the file or object it was read from, optional; its
/// name must carry the record's memory id), never a directory; the mapping turns a sanitised
/// id into the real uid. Last comes the request's `?uid=`.
pub fn attribute_import(
    wrapper: &Wrapper,
    path: Option<&str>,
    mapping: &Mapping,
    default_uid: Option<&str>,
) -> Result<ImportAttribution, Error> {
    let name = match path {
        Some(p) => Some(
            parse_name_with_id(p, &wrapper.memory_id)
                .ok_or_else(|| Error::invalid_field("path", format!("is not an old-app name that carries memory {}", wrapper.memory_id)))?,
        ),
        None => None,
    };
    let received_ms = wrapper.received_ms.or(name.as_ref().map(|n| n.received_ms));
    if let Some(uid) = &wrapper.uid {
        check_key_part(uid).map_err(|why| Error::invalid_field("uid", why))?;
        return Ok(ImportAttribution { uid: uid.clone(), source: ImportUidSource::Record, received_ms });
    }
    let name = name.unwrap_or(LegacyName { layout: Layout::LocalByUser, uid: None, memory_id: wrapper.memory_id.clone(), received_ms: 0 });
    if let Some(attribution) = attribute(wrapper, &name) {
        let resolved = mapping.resolve(&attribution.uid)?;
        return Ok(ImportAttribution { uid: resolved.uid, source: ImportUidSource::Legacy, received_ms });
    }
    match default_uid {
        Some(uid) => Ok(ImportAttribution { uid: uid.to_string(), source: ImportUidSource::Default, received_ms }),
        None => {
            Err(Error::bad_request("missing_field", "uid: the record names no mentor (uid, processed.uid, path) and no ?uid= was given"))
        }
    }
}

/// One readable copy of a memory.
#[derive(Debug, Clone)]
pub struct LegacyCopy {
    pub source: String,
    pub layout: Layout,
    pub attribution: Attribution,
    pub memory_id: String,
    /// `webhook_received_at`, else the time in the name.
    pub received_ms: i64,
    /// SHA-256 (hex) of the memory as r2d1 stores it (`serde_json::to_vec`).
    pub sha256: String,
    pub memory: Value,
}

/// Reads one file or object of a legacy layout. Errors name why it cannot be migrated: not
/// JSON, no memory id, a name that does not carry the wrapper's id, no mentor anywhere, or a
/// memory r2d1's webhook would refuse.
pub fn read_copy(path: &str, bytes: &[u8]) -> Result<LegacyCopy, Error> {
    let layout = layout_of(path).ok_or_else(|| Error::bad_request("invalid_field", "not a file of the old app's layouts"))?;
    let wrapper = read_wrapper(parse_json(bytes)?)?;
    let name = parse_name_with_id(path, &wrapper.memory_id).ok_or_else(|| {
        let says = parse_name(path).map(|n| format!("memory {}", n.memory_id)).unwrap_or_else(|| "no memory id".into());
        Error::invalid_field("name", format!("says {says} but the wrapper holds memory {}", wrapper.memory_id))
    })?;
    let attribution = attribute(&wrapper, &name)
        .ok_or_else(|| Error::bad_request("missing_field", "uid: neither processed.uid nor the name says whose memory this is"))?;
    let memory = memory_from_value(&wrapper.memory)?;
    let sha256 = crate::store::digest::sha256_hex(&serde_json::to_vec(&wrapper.memory)?);
    Ok(LegacyCopy {
        source: path.to_string(),
        layout,
        attribution,
        memory_id: memory.id,
        received_ms: wrapper.received_ms.unwrap_or(name.received_ms),
        sha256,
        memory: wrapper.memory,
    })
}

/// One content of a memory, with every copy that holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedVersion {
    pub sha256: String,
    /// The earliest time any copy of this content was received.
    pub received_ms: i64,
    /// Sorted; the first is the one to import.
    pub sources: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedMemory {
    pub uid: String,
    pub memory_id: String,
    /// In received order: the order to import them in, so version numbers follow it.
    pub versions: Vec<PlannedVersion>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub source: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    pub source: String,
    /// The mentor the copy was attributed to (before the mapping).
    pub uid: String,
    pub others: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MentorReport {
    pub uid: String,
    pub mapped: bool,
    pub memories: usize,
    pub versions: usize,
    pub copies: usize,
}

/// What a migration would do, before it writes anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub mentors: Vec<MentorReport>,
    pub memories: usize,
    pub versions: usize,
    pub copies: usize,
    /// Copies beyond the first of each version.
    pub duplicates: usize,
    pub unreadable: Vec<Problem>,
    pub conflicts: Vec<Conflict>,
    /// Stored uids that the mapping does not name (sanitised ids, most likely).
    pub unmapped: Vec<String>,
    /// Files that are in none of the layouts (not memories; left alone).
    pub skipped: Vec<String>,
}

/// Collects every file of an old tree into a dedupe plan and a report.
#[derive(Debug, Default)]
pub struct Migration {
    mapping: Mapping,
    /// (uid, memory id) → sha256 → version.
    memories: BTreeMap<(String, String), BTreeMap<String, PlannedVersion>>,
    mapped: BTreeMap<String, bool>,
    unreadable: Vec<Problem>,
    conflicts: Vec<Conflict>,
    skipped: Vec<String>,
}

impl Migration {
    pub fn new(mapping: Mapping) -> Self {
        Migration { mapping, ..Default::default() }
    }

    /// Adds one file (its path or key, `/`-separated, and its bytes).
    pub fn add_file(&mut self, path: &str, bytes: &[u8]) {
        if layout_of(path).is_none() {
            self.skipped.push(path.to_string());
            return;
        }
        match read_copy(path, bytes) {
            Ok(copy) => {
                if let Err(e) = self.add_copy(&copy) {
                    self.unreadable.push(Problem { source: path.to_string(), reason: e.to_string() });
                }
            }
            Err(e) => self.unreadable.push(Problem { source: path.to_string(), reason: e.to_string() }),
        }
    }

    /// Adds a copy already read; errors when its mentor cannot be stored.
    pub fn add_copy(&mut self, copy: &LegacyCopy) -> Result<(), Error> {
        let resolved = self.mapping.resolve(&copy.attribution.uid)?;
        if !copy.attribution.others.is_empty() {
            self.conflicts.push(Conflict {
                source: copy.source.clone(),
                uid: copy.attribution.uid.clone(),
                others: copy.attribution.others.clone(),
            });
        }
        self.mapped.insert(resolved.uid.clone(), resolved.mapped);
        let versions = self.memories.entry((resolved.uid, copy.memory_id.clone())).or_default();
        let version = versions.entry(copy.sha256.clone()).or_insert_with(|| PlannedVersion {
            sha256: copy.sha256.clone(),
            received_ms: copy.received_ms,
            sources: Vec::new(),
        });
        version.received_ms = version.received_ms.min(copy.received_ms);
        let at = version.sources.binary_search(&copy.source).unwrap_or_else(|i| i);
        version.sources.insert(at, copy.source.clone());
        Ok(())
    }

    /// Every memory once, sorted by mentor and id, its versions in received order.
    pub fn plan(&self) -> Vec<PlannedMemory> {
        self.memories
            .iter()
            .map(|((uid, memory_id), versions)| {
                let mut versions: Vec<PlannedVersion> = versions.values().cloned().collect();
                versions.sort_by(|a, b| (a.received_ms, &a.sha256).cmp(&(b.received_ms, &b.sha256)));
                PlannedMemory { uid: uid.clone(), memory_id: memory_id.clone(), versions }
            })
            .collect()
    }

    pub fn report(&self) -> Report {
        let plan = self.plan();
        let mut mentors: BTreeMap<&str, MentorReport> = BTreeMap::new();
        for m in &plan {
            let r = mentors.entry(&m.uid).or_insert_with(|| MentorReport {
                uid: m.uid.clone(),
                mapped: self.mapped.get(&m.uid).copied().unwrap_or(false),
                memories: 0,
                versions: 0,
                copies: 0,
            });
            r.memories += 1;
            r.versions += m.versions.len();
            r.copies += m.versions.iter().map(|v| v.sources.len()).sum::<usize>();
        }
        let mentors: Vec<MentorReport> = mentors.into_values().collect();
        let versions = mentors.iter().map(|m| m.versions).sum();
        let copies = mentors.iter().map(|m| m.copies).sum();
        let sorted = |mut v: Vec<Problem>| {
            v.sort_by(|a, b| a.source.cmp(&b.source));
            v
        };
        let mut conflicts = self.conflicts.clone();
        conflicts.sort_by(|a, b| a.source.cmp(&b.source));
        let mut skipped = self.skipped.clone();
        skipped.sort();
        Report {
            memories: plan.len(),
            versions,
            copies,
            duplicates: copies - versions,
            unmapped: mentors.iter().filter(|m| !m.mapped).map(|m| m.uid.clone()).collect(),
            mentors,
            unreadable: sorted(self.unreadable.clone()),
            conflicts,
            skipped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Shared with `tests/omi_cli.test.mjs`, which checks the JavaScript mirror against it.
    const VECTORS: &str = include_str!("../../tests/fixtures/omi/legacy_vectors.json");

    fn vectors() -> Value {
        serde_json::from_str(VECTORS).unwrap()
    }

    fn file_bytes(file: &Value) -> Vec<u8> {
        match (file.get("json"), file.get("text")) {
            (Some(v), _) => serde_json::to_vec(v).unwrap(),
            (None, Some(Value::String(t))) => t.as_bytes().to_vec(),
            _ => panic!("fixture file without json or text: {file}"),
        }
    }

    #[test]
    fn sanitize_matches_the_shared_vectors() {
        for case in vectors()["sanitize"].as_array().unwrap() {
            let (input, expected) = (case[0].as_str().unwrap(), case[1].as_str().unwrap());
            assert_eq!(sanitize_uid(input), expected, "sanitize_uid({input:?})");
        }
    }

    #[test]
    fn sanitize_edge_cases() {
        let a49 = "a".repeat(49);
        // `@` as the 50th unit survives the cut, becomes `at_`, and the trailing `_` goes.
        assert_eq!(sanitize_uid(&format!("{a49}@tail")), format!("{a49}at"));
        // `@` as the 51st is cut before it is replaced.
        assert_eq!(sanitize_uid(&format!("{}@x", "a".repeat(50))), "a".repeat(50));
        // An emoji straddling the 50th unit leaves half a surrogate pair: one more `_`, trimmed.
        assert_eq!(sanitize_uid(&format!("{a49}😀b")), a49);
        assert_eq!(sanitize_uid(&format!("{}😀b", "a".repeat(48))), "a".repeat(48));
        assert_eq!(sanitize_uid(&format!("{}😀", "a".repeat(47))), "a".repeat(47));
        // Unicode lower-casing, as JavaScript's: İ → i + U+0307, the Kelvin sign → k.
        assert_eq!(sanitize_uid("İstanbul"), "i_stanbul");
        assert_eq!(sanitize_uid("\u{212A}elvin"), "kelvin");
        // Everything a symbol: nothing is left.
        assert_eq!(sanitize_uid("!#$%^&*()+=.~ 😀"), "anonymous");
        assert_eq!(sanitize_uid(""), "anonymous");
        assert_eq!(sanitize_uid("@"), "at");
        // The output can outgrow 50 (and r2d1's 128-byte keys), and is then not idempotent.
        let long = sanitize_uid(&"@".repeat(60));
        assert_eq!(long.len(), 50 * 3 - 1);
        assert!(is_sanitized(&long));
        assert_ne!(sanitize_uid(&long), long);
        assert_eq!(uid_class(&long), long);
    }

    #[test]
    fn sanitized_ids_are_recognised() {
        for ok in ["abc", "a-b_c", "at_example_com", "-x-", "anonymous"] {
            assert!(is_sanitized(ok), "{ok}");
        }
        for bad in ["", "Abc", "_a", "a_", "a__b", "a.b", "a@b", "ü"] {
            assert!(!is_sanitized(bad), "{bad}");
        }
        assert_eq!(uid_class("Alice.Smith@Example.com"), "alice_smithat_example_com");
    }

    #[test]
    fn names_match_the_shared_vectors() {
        for case in vectors()["names"].as_array().unwrap() {
            let path = case["path"].as_str().unwrap();
            let parsed = match case.get("id").and_then(Value::as_str) {
                Some(id) => parse_name_with_id(path, id),
                None => parse_name(path),
            };
            assert_eq!(serde_json::to_value(&parsed).unwrap(), case["expect"], "{case}");
        }
    }

    #[test]
    fn layouts_are_told_apart_by_their_directories() {
        let id = "0b7c2a1e-3f4d-4c5b-9a8e-1d2c3b4a5f6e";
        assert_eq!(layout_of(&format!("/x/omi-logs/memory/by-user/bob/memory-{id}-1.json")), Some(Layout::LocalByUser));
        assert_eq!(layout_of(&format!("omi-logs/memory/all/bob-memory-{id}-1.json")), Some(Layout::LocalAll));
        assert_eq!(layout_of(&format!("mobil3-mentorships/by-user/Bob/2024/07/{id}-1.json")), Some(Layout::R2ByUser));
        assert_eq!(layout_of(&format!("mobil3-mentorships/all/2024-07-01/Bob-{id}-1.json")), Some(Layout::R2All));
        assert_eq!(layout_of("omi-logs/stats.json"), None);
        assert_eq!(layout_of("omi-logs/memory/by-user/bob/notes.json"), None);
        assert_eq!(layout_of(&format!("omi-logs/memory/by-user/bob/memory-{id}-1.txt")), None);
        assert_eq!(layout_of("mobil3-mentorships/all/2024-7-1/Bob-x-1.json"), None);
    }

    #[test]
    fn the_wrapper_gives_memory_uid_and_time_through_unwrap_legacy() {
        let w = read_wrapper(json!({
            "memory": {"id": "m1", "created_at": "2025-01-01T00:00:00Z"},
            "processed": {"id": "m1", "uid": "alice_at_x_com", "word_frequency": {}},
            "analytics": {}, "webhook_received_at": "2025-01-01T00:00:01.500Z", "processing_time_ms": 3
        }))
        .unwrap();
        assert_eq!((w.memory_id.as_str(), w.processed_uid.as_deref(), w.uid.as_deref()), ("m1", Some("alice_at_x_com"), None));
        assert_eq!(w.received_ms, Some(1_735_689_601_500));
        assert_eq!(w.memory, json!({"id": "m1", "created_at": "2025-01-01T00:00:00Z"}));
        assert!(read_wrapper(json!({"memory": {"created_at": "2025-01-01T00:00:00Z"}, "processed": {}})).is_err());
        assert!(read_wrapper(json!({"memory": {"id": 7}})).is_err());
        assert!(read_wrapper(json!([1])).is_err());
    }

    fn wrapper(processed: Option<&str>, uid: Option<&str>) -> Wrapper {
        Wrapper {
            memory: json!({}),
            memory_id: "m".into(),
            processed_uid: processed.map(Into::into),
            uid: uid.map(Into::into),
            received_ms: None,
        }
    }

    fn name(uid: Option<&str>) -> LegacyName {
        LegacyName { layout: Layout::R2All, uid: uid.map(Into::into), memory_id: "m".into(), received_ms: 1 }
    }

    #[test]
    fn attribution_prefers_the_wrapper_and_the_least_sanitised_spelling() {
        let a = attribute(&wrapper(Some("aliceat_x_com"), None), &name(Some("Alice@X.com"))).unwrap();
        assert_eq!((a.uid.as_str(), a.source, a.others.len()), ("Alice@X.com", UidSource::Name, 0));
        let a = attribute(&wrapper(Some("aliceat_x_com"), None), &name(Some("dave"))).unwrap();
        assert_eq!((a.uid.as_str(), a.source, a.others.clone()), ("aliceat_x_com", UidSource::Processed, vec!["dave".to_string()]));
        let a = attribute(&wrapper(None, None), &name(Some("carol"))).unwrap();
        assert_eq!((a.uid.as_str(), a.source), ("carol", UidSource::Name));
        let a = attribute(&wrapper(Some("abc123"), Some("AbC123")), &name(None)).unwrap();
        assert_eq!((a.uid.as_str(), a.source), ("AbC123", UidSource::Record));
        assert_eq!(attribute(&wrapper(None, None), &name(None)), None);
    }

    #[test]
    fn mappings_match_the_shared_vectors() {
        let v = vectors();
        let mut parsed = Vec::new();
        for case in v["mappings"]["ok"].as_array().unwrap() {
            let mapping = Mapping::parse(case["text"].as_str().unwrap()).unwrap_or_else(|e| panic!("{case}: {e}"));
            for r in case["resolve"].as_array().unwrap() {
                let got = mapping.resolve(r[0].as_str().unwrap()).ok().map(|r| json!({"uid": r.uid, "mapped": r.mapped}));
                assert_eq!(got.unwrap_or(Value::Null), r[1], "{} in {}", r[0], case["text"]);
            }
            parsed.push(mapping);
        }
        // The JSON, the CSV with a header and the tab-separated CSV are the same mapping.
        assert!(parsed[0] == parsed[1] && parsed[1] == parsed[2] && parsed[0].len() == 2);
        for bad in v["mappings"]["bad"].as_array().unwrap() {
            assert!(Mapping::parse(bad.as_str().unwrap()).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn the_shared_tree_plans_and_reports_like_the_cli() {
        let v = vectors();
        let tree = &v["tree"];
        let mapping = Mapping::parse(&tree["mapping"].to_string()).unwrap();
        let mut migration = Migration::new(mapping);
        for file in tree["files"].as_array().unwrap() {
            migration.add_file(file["path"].as_str().unwrap(), &file_bytes(file));
        }
        let mut report = serde_json::to_value(migration.report()).unwrap();
        // Reasons are prose, worded differently in each language: compare where, not why.
        for p in report["unreadable"].as_array_mut().unwrap() {
            p.as_object_mut().unwrap().remove("reason");
        }
        assert_eq!(report, tree["expect"]["report"]);
        assert_eq!(serde_json::to_value(migration.plan()).unwrap(), tree["expect"]["plan"]);
    }

    #[test]
    fn a_resent_memory_with_new_content_is_a_later_version() {
        let id = "0b7c2a1e-3f4d-4c5b-9a8e-1d2c3b4a5f6e";
        let file = |title: &str, at: &str| {
            serde_json::to_vec(&json!({
                "memory": {"id": id, "created_at": "2025-01-01T00:00:00Z", "structured": {"title": title}},
                "processed": {"uid": "bob"}, "webhook_received_at": at
            }))
            .unwrap()
        };
        let mut m = Migration::new(Mapping::default());
        // Added newest first: the plan still orders by received time.
        m.add_file(&format!("all/bob-memory-{id}-1735700000000.json"), &file("v2", "2025-01-01T02:53:20Z"));
        m.add_file(&format!("by-user/bob/memory-{id}-1735700000000.json"), &file("v2", "2025-01-01T02:53:20Z"));
        m.add_file(&format!("by-user/bob/memory-{id}-1735690000000.json"), &file("v1", "2025-01-01T00:06:40Z"));
        let plan = m.plan();
        assert_eq!(plan.len(), 1);
        let times: Vec<i64> = plan[0].versions.iter().map(|v| v.received_ms).collect();
        assert_eq!(times, [1_735_690_000_000, 1_735_700_000_000]);
        assert_eq!(plan[0].versions[1].sources.len(), 2);
        let report = m.report();
        assert_eq!((report.memories, report.versions, report.copies, report.duplicates), (1, 2, 3, 1));
        assert_eq!(report.unmapped, ["bob"]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 4_000, failure_persistence: None, ..Default::default() })]

        /// Whatever the old app was given, its output is a sanitised id (never empty, never
        /// `__`, never an edge `_`), and the names built from it parse back.
        #[test]
        fn sanitized_output_always_has_the_sanitised_shape(uid in "\\PC{0,70}|[A-Za-z@._ -]{0,70}", id in "[0-9a-f-]{1,40}", ms in 0i64..1i64 << 50) {
            let s = sanitize_uid(&uid);
            proptest::prop_assert!(is_sanitized(&s), "{:?} -> {:?}", uid, s);
            let local_all = format!("omi-logs/memory/all/{s}-memory-{id}-{ms}.json");
            let parsed = parse_name_with_id(&local_all, &id).unwrap();
            proptest::prop_assert_eq!((parsed.uid.as_deref(), parsed.received_ms), (Some(s.as_str()), ms));
            let local = format!("omi-logs/memory/by-user/{s}/memory-{id}-{ms}.json");
            proptest::prop_assert_eq!(parse_name(&local).map(|n| n.memory_id), Some(id.clone()));
        }

        /// Arbitrary names and bytes: an answer, never a panic.
        #[test]
        fn names_and_files_never_panic(path in "([a-z@.é-]{0,6}/){0,6}[a-zé0-9@.-]{0,40}(\\.json)?", id in "\\PC{0,8}", bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let _ = layout_of(&path);
            let _ = parse_name(&path);
            let _ = parse_name_with_id(&path, &id);
            let _ = read_copy(&path, &bytes);
            let _ = Mapping::parse(&String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn import_records_are_attributed_like_migrated_files() {
        let mapping = Mapping::parse(r#"{"aliceat_x_com": "AliceRealUid"}"#).unwrap();
        let id = "0b7c2a1e-3f4d-4c5b-9a8e-1d2c3b4a5f6e";
        let old = |extra: Value| {
            let mut v = json!({"memory": {"id": id, "created_at": "2025-01-01T00:00:00Z"}, "processed": {"uid": "aliceat_x_com"}});
            v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            read_wrapper(v).unwrap()
        };
        // processed.uid, mapped; ?uid= is only a fallback
        let a = attribute_import(&old(json!({})), None, &mapping, Some("fallback")).unwrap();
        assert_eq!((a.uid.as_str(), a.source), ("AliceRealUid", ImportUidSource::Legacy));
        // an explicit uid is used as given
        let a = attribute_import(&old(json!({"uid": "Explicit"})), None, &mapping, None).unwrap();
        assert_eq!((a.uid.as_str(), a.source), ("Explicit", ImportUidSource::Record));
        // the name of an R2 all/ object gives the uid and the time; unmapped and unstorable → its class
        let bare = read_wrapper(json!({"memory": {"id": id, "created_at": "2025-01-01T00:00:00Z"}})).unwrap();
        let a =
            attribute_import(&bare, Some(&format!("mobil3-mentorships/all/2024-07-01/Bob@Y.org-{id}-1719792000000.json")), &mapping, None)
                .unwrap();
        assert_eq!((a.uid.as_str(), a.received_ms), ("bobat_y_org", Some(1_719_792_000_000)));
        // a path that does not carry the memory's id is refused; nothing at all needs ?uid=
        assert!(attribute_import(&bare, Some("mobil3-mentorships/all/2024-07-01/bob-other-1.json"), &mapping, None).is_err());
        assert_eq!(attribute_import(&bare, None, &mapping, Some("dflt")).unwrap().source, ImportUidSource::Default);
        assert_eq!(attribute_import(&bare, None, &mapping, None).unwrap_err().code(), "missing_field");
        // a stored mapping round-trips through its pairs
        assert_eq!(Mapping::from_pairs(mapping.pairs()), mapping);
    }

    #[test]
    fn a_copy_whose_name_disagrees_with_its_wrapper_is_unreadable() {
        let body =
            serde_json::to_vec(&json!({"memory": {"id": "other", "created_at": "2025-01-01T00:00:00Z"}, "processed": {"uid": "bob"}}))
                .unwrap();
        let e = read_copy("by-user/bob/memory-m1-5.json", &body).unwrap_err();
        assert!(e.to_string().contains("says memory m1 but the wrapper holds memory other"), "{e}");
        let e = read_copy("by-user/bob/memory-m1-5.json", b"{\"memory\": {").unwrap_err();
        assert_eq!(e.code(), "invalid_json");
        let body = serde_json::to_vec(&json!({"memory": {"id": "m1"}, "processed": {"uid": "bob"}})).unwrap();
        assert!(read_copy("by-user/bob/memory-m1-5.json", &body).unwrap_err().to_string().starts_with("created_at"));
    }
}
