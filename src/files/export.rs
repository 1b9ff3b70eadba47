//! Every current file of an app, or of a version, in one streamed response (issue 13): NDJSON
//! (`files::ndjson`) for build pipelines, or a tar / tar.gz archive (`files::stream`).
//!
//! Nothing is built in memory. The plan (`files::export_plan`) reads the files' metadata and
//! decides, within the request's subrequest budget, which files this response carries; the
//! body is then a stream the runtime pulls: each pull reads the next inline group from D1 or
//! the next chunk of an R2 object (as a stream, decompressed a few KiB at a time), feeds the
//! writer and hands on what it produced. What the worker holds at any time is one inline group
//! (at most 4 MiB), one R2 chunk and the writer's bounded buffer, whatever the app's size: a
//! version of several hundred MB downloads within the isolate's 128 MB.
//!
//! Every file's bytes are counted and hashed as they pass; a file that fails (missing object,
//! wrong size or hash) aborts the stream, so the client sees a truncated body (an NDJSON
//! stream without its trailer, a gzip without its end), never wrong bytes. An archive ends
//! with `{name}.sha256` beside its top directory: the SHA-256 of every file it carries, in
//! `sha256sum` format (NDJSON carries each file's hash on its line).

use std::collections::{HashMap, VecDeque};
use std::io::Write;

use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use worker::ByteStream;

use super::export_plan::{Fetch, Planner, METADATA_PAGE};
use super::lifecycle::Tag;
use super::lifecycle_repo;
use super::ndjson::{ContentEncoding, ExportFile, ExportHeader, NdjsonWriter};
use super::path::AppId;
use super::repo;
use super::stream::{ArchiveFormat, ArchiveWriter, StreamError};
use super::tier::Location;
use crate::error::{Error, Result};
use crate::stmt;
use crate::store::object::{encoding_of, Encoding};
use crate::store::usage;
use crate::store::{BlobStore, MetaStore, Statement};

/// What the response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ndjson,
    Archive(ArchiveFormat),
}

impl Format {
    pub fn parse(raw: Option<&str>, default: Format) -> Result<Format> {
        match raw.map(str::to_ascii_lowercase).as_deref() {
            None | Some("") => Ok(default),
            Some("ndjson") => Ok(Format::Ndjson),
            Some("tar") => Ok(Format::Archive(ArchiveFormat::Tar)),
            Some("tar.gz") | Some("tgz") => Ok(Format::Archive(ArchiveFormat::TarGz)),
            Some(_) => Err(Error::invalid_field("format", "must be ndjson, tar or tar.gz")),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Ndjson => super::ndjson::CONTENT_TYPE,
            Format::Archive(a) => a.content_type(),
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Ndjson => "ndjson",
            Format::Archive(a) => a.extension(),
        }
    }
}

/// Which files: the current ones, or a version's (by number or tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Current,
    Version(i64),
    Tag(Tag),
}

impl Selector {
    /// `?version=` as a builder writes it: a number, or a tag such as `production`.
    pub fn parse(raw: Option<&str>) -> Result<Selector> {
        match raw.map(str::trim) {
            None | Some("") => Ok(Selector::Current),
            Some(v) if v.bytes().all(|b| b.is_ascii_digit()) => v
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 1)
                .map(Selector::Version)
                .ok_or_else(|| Error::invalid_field("version", "must be 1 or more")),
            Some(t) => Tag::parse(t).map(Selector::Tag).map_err(|_| Error::invalid_field("version", "must be a version number or a tag")),
        }
    }
}

/// One file the response carries.
#[derive(Debug, Clone, Deserialize)]
struct Entry {
    path: String,
    sha256: String,
    size_bytes: u64,
    content_type: String,
    file_type: String,
    storage_location: String,
    r2_key: Option<String>,
    #[serde(skip)]
    fetch: Option<Fetch>,
}

/// What the plan decided; the handler puts it in the response headers.
#[derive(Debug, Clone)]
pub struct Plan {
    pub app: String,
    pub version: Option<i64>,
    /// The app's revision when the plan was read (current files: a `since` for the change log).
    pub revision: Option<i64>,
    pub files: usize,
    pub bytes: u64,
    /// Every file after `after` fitted; otherwise continue with `?after=<next_after>`.
    pub complete: bool,
    pub next_after: Option<String>,
    /// SHA-256 over `"{path}\0{sha256}\n"` of the files carried (the NDJSON trailer's value).
    pub tree_sha256: String,
    pub subrequests: usize,
    /// Name of the archive's top directory and of the download.
    pub name: String,
    pub mtime_secs: u64,
}

/// The planned export: its facts and the stream of its body.
pub struct Export {
    pub plan: Plan,
    entries: Vec<Entry>,
    meta: MetaStore,
    blobs: BlobStore,
    format: Format,
}

/// Reads the metadata and plans the response within `budget` subrequests.
pub async fn plan(
    meta: MetaStore,
    blobs: BlobStore,
    app_id: &AppId,
    selector: &Selector,
    after: Option<&str>,
    format: Format,
    budget: usize,
) -> Result<Export> {
    let app = repo::app(&meta, app_id.as_str()).await?.ok_or_else(|| Error::NotFound(format!("no app {app_id}")))?;
    let mut fixed = 1;
    let version = match selector {
        Selector::Current => None,
        Selector::Version(v) => Some(*v),
        Selector::Tag(t) => {
            fixed += 1;
            let tags = lifecycle_repo::tags(&meta, app_id.as_str()).await?;
            Some(
                tags.iter()
                    .find(|r| r.tag == t.as_str())
                    .map(|r| r.version_number)
                    .ok_or_else(|| Error::NotFound(format!("app {app_id} has no tag {t}")))?,
            )
        }
    };
    let (name, mtime_ms) = match version {
        Some(v) => {
            fixed += 1;
            let row = repo::version(&meta, app_id.as_str(), v)
                .await?
                .ok_or_else(|| Error::NotFound(format!("app {app_id} has no version {v}")))?;
            (format!("{app_id}-v{v}"), row.created_at)
        }
        None => (app_id.to_string(), app.updated_at),
    };
    let mut planner = Planner::new(budget, fixed);
    let mut entries: Vec<Entry> = Vec::new();
    let mut cursor = after.unwrap_or("").to_string();
    let mut complete = false;
    'pages: while planner.may_read_page() {
        let page: Vec<Entry> = meta.all(metadata_page(app_id.as_str(), version, &cursor)).await?;
        let last_page = page.len() < METADATA_PAGE;
        for mut e in page {
            let Some(location) = Location::parse(&e.storage_location) else { continue };
            match planner.take(location, e.size_bytes) {
                Some(fetch) => {
                    e.fetch = Some(fetch);
                    cursor = e.path.clone();
                    entries.push(e);
                }
                None => break 'pages,
            }
        }
        if last_page {
            complete = true;
            break;
        }
    }
    let tree_sha256 = super::ndjson::tree_sha256(entries.iter().map(|e| (e.path.as_str(), e.sha256.as_str())));
    let plan = Plan {
        app: app_id.to_string(),
        version,
        revision: version.is_none().then_some(app.revision),
        files: entries.len(),
        bytes: entries.iter().map(|e| e.size_bytes).sum(),
        complete,
        next_after: (!complete).then(|| entries.last().map(|e| e.path.clone()).unwrap_or_else(|| after.unwrap_or("").to_string())),
        tree_sha256,
        subrequests: planner.used(),
        name,
        mtime_secs: (mtime_ms / 1000).max(0) as u64,
    };
    Ok(Export { plan, entries, meta, blobs, format })
}

fn metadata_page(app_id: &str, version: Option<i64>, after: &str) -> Statement {
    let cols = "path, sha256, size_bytes, content_type, file_type, storage_location, r2_key";
    match version {
        None => stmt!(
            format!("SELECT {cols} FROM app_files WHERE app_id = ?1 AND path > ?2 ORDER BY path LIMIT ?3"),
            app_id,
            after,
            METADATA_PAGE
        ),
        Some(v) => stmt!(
            format!(
                "SELECT {cols} FROM app_version_files WHERE app_id = ?1 AND version_number = ?4 AND action != 'deleted' AND path > ?2
                 ORDER BY path LIMIT ?3"
            ),
            app_id,
            after,
            METADATA_PAGE,
            v
        ),
    }
}

fn inline_group(app_id: &str, version: Option<i64>, paths: &[&str]) -> Statement {
    let first = if version.is_some() { 3 } else { 2 };
    let list = (first..first + paths.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
    let mut s = match version {
        None => stmt!(format!("SELECT path, content FROM app_files WHERE app_id = ?1 AND path IN ({list})"), app_id),
        Some(v) => stmt!(
            format!("SELECT path, content FROM app_version_files WHERE app_id = ?1 AND version_number = ?2 AND path IN ({list})"),
            app_id,
            v
        ),
    };
    for p in paths {
        s = s.bind(*p);
    }
    s
}

#[derive(Deserialize)]
struct Content {
    path: String,
    #[serde(default, deserialize_with = "repo::bytes_opt")]
    content: Option<Vec<u8>>,
}

enum Writer {
    Ndjson(NdjsonWriter),
    Archive(ArchiveWriter),
}

impl Writer {
    fn start(&mut self, e: &Entry) -> Result<(), StreamError> {
        match self {
            Writer::Ndjson(w) => w.start_file(&ExportFile {
                path: &e.path,
                sha256: &e.sha256,
                size: e.size_bytes,
                content_type: &e.content_type,
                encoding: ContentEncoding::for_file_type(&e.file_type),
            }),
            Writer::Archive(w) => w.start_file(&e.path, e.size_bytes, Some(&e.sha256)),
        }
    }

    fn chunk(&mut self, bytes: &[u8]) -> Result<(), StreamError> {
        match self {
            Writer::Ndjson(w) => w.write_chunk(bytes),
            Writer::Archive(w) => w.write_chunk(bytes),
        }
    }

    fn end(&mut self) -> Result<(), StreamError> {
        match self {
            Writer::Ndjson(w) => w.end_file(),
            Writer::Archive(w) => w.end_file(),
        }
    }

    fn take(&mut self) -> Vec<u8> {
        match self {
            Writer::Ndjson(w) => w.take_output(),
            Writer::Archive(w) => w.take_output(),
        }
    }

    fn finish(self) -> Result<Vec<u8>, StreamError> {
        match self {
            Writer::Ndjson(w) => w.finish(),
            Writer::Archive(w) => w.finish(),
        }
    }
}

/// An R2 object being copied into the writer.
struct Reading {
    body: ByteStream,
    /// For gzip-stored objects: the decoder, fed a few KiB at a time so one chunk can never
    /// inflate into more than a few MB.
    gunzip: Option<flate2::write::GzDecoder<Vec<u8>>>,
    key: String,
}

/// Compressed bytes handed to the decoder at once: gzip expands at most ~1,000-fold, so what
/// one step can produce stays around 4 MB.
const GUNZIP_SLICE: usize = 4 * 1024;
/// Output gathered before it is handed to the runtime (fewer, larger chunks; still small).
const YIELD_AT: usize = 64 * 1024;

struct State {
    app: String,
    version: Option<i64>,
    meta: MetaStore,
    blobs: BlobStore,
    entries: VecDeque<Entry>,
    writer: Option<Writer>,
    inline: HashMap<String, Vec<u8>>,
    group: Option<usize>,
    reading: Option<Reading>,
    out: Vec<u8>,
    /// The archive's top directory.
    name: String,
    /// `sha256sum` lines of the files written so far, for the archive's `{name}.sha256`.
    sums: String,
}

impl State {
    /// The R2 reads made while the body streamed (after the request's own accounting) go into
    /// the daily totals when it ends.
    async fn account(&mut self) {
        let request = self.blobs.request().clone();
        let counts = std::mem::take(&mut *request.counters.r2_by_class.borrow_mut());
        if let Some(stmts) = usage::after_request(request.now(), &counts) {
            if let Err(e) = self.meta.batch(stmts).await {
                worker::console_warn!("r2d1 usage: daily R2 operation totals not written: {e}");
            }
        }
    }

    fn writer(&mut self) -> &mut Writer {
        self.writer.as_mut().expect("the writer lives until the end")
    }

    /// Loads inline group `group`: the paths of the entries that share it.
    async fn load_group(&mut self, group: usize) -> Result<()> {
        let paths: Vec<&str> = self.entries.iter().filter(|e| e.fetch == Some(Fetch::Inline(group))).map(|e| e.path.as_str()).collect();
        let rows: Vec<Content> = self.meta.all(inline_group(&self.app, self.version, &paths)).await?;
        self.inline = rows.into_iter().filter_map(|r| r.content.map(|c| (r.path, c))).collect();
        self.group = Some(group);
        Ok(())
    }

    /// Moves the export on by one step (one inline file, one R2 chunk, or the end) and returns
    /// the output to send, if enough has gathered; `None` once everything was sent.
    async fn step(&mut self) -> Result<Option<Vec<u8>>> {
        loop {
            if self.out.len() >= YIELD_AT {
                return Ok(Some(std::mem::take(&mut self.out)));
            }
            if let Some(reading) = self.reading.as_mut() {
                match reading.body.next().await {
                    Some(chunk) => {
                        let chunk = chunk.map_err(|e| Error::Storage(format!("R2 read {}: {e}", reading.key)))?;
                        match reading.gunzip.as_mut() {
                            None => {
                                let w = self.writer.as_mut().expect("writer");
                                w.chunk(&chunk)?;
                            }
                            Some(gz) => {
                                for slice in chunk.chunks(GUNZIP_SLICE) {
                                    gz.write_all(slice).map_err(|e| Error::Integrity(format!("{}: does not gunzip: {e}", reading.key)))?;
                                    let decoded = std::mem::take(gz.get_mut());
                                    self.writer.as_mut().expect("writer").chunk(&decoded)?;
                                }
                            }
                        }
                    }
                    None => {
                        let reading = self.reading.take().expect("checked above");
                        if let Some(gz) = reading.gunzip {
                            let rest = gz.finish().map_err(|e| Error::Integrity(format!("{}: truncated gzip: {e}", reading.key)))?;
                            self.writer().chunk(&rest)?;
                        }
                        self.writer().end()?;
                    }
                }
                let produced = self.writer().take();
                self.out.extend_from_slice(&produced);
                continue;
            }
            let Some(entry) = self.entries.pop_front() else {
                let Some(mut writer) = self.writer.take() else {
                    return Ok((!self.out.is_empty()).then(|| std::mem::take(&mut self.out)));
                };
                if let Writer::Archive(w) = &mut writer {
                    // `sha256sum -c {name}.sha256` checks what was extracted.
                    w.add_root_file(&format!("{}.sha256", self.name), std::mem::take(&mut self.sums).as_bytes())?;
                }
                let last = writer.finish()?;
                self.out.extend_from_slice(&last);
                continue;
            };
            self.sums.push_str(&format!("{}  {}/{}\n", entry.sha256, self.name, entry.path));
            match entry.fetch {
                Some(Fetch::Inline(group)) => {
                    if self.group != Some(group) {
                        // Put the entry back while the group's paths are collected.
                        self.entries.push_front(entry.clone());
                        self.load_group(group).await?;
                        self.entries.pop_front();
                    }
                    let bytes = self.inline.remove(&entry.path).ok_or_else(|| {
                        Error::Integrity(format!("{} {}: no inline copy (changed while exporting?)", self.app, entry.path))
                    })?;
                    let w = self.writer();
                    w.start(&entry)?;
                    for piece in bytes.chunks(YIELD_AT) {
                        w.chunk(piece)?;
                    }
                    w.end()?;
                }
                Some(Fetch::R2) | None => {
                    let key = entry
                        .r2_key
                        .clone()
                        .ok_or_else(|| Error::Integrity(format!("{} {}: r2 row without a key", self.app, entry.path)))?;
                    let (info, body) = self
                        .blobs
                        .get_stream(&key)
                        .await?
                        .ok_or_else(|| Error::Integrity(format!("{} {}: R2 object {key} is missing", self.app, entry.path)))?;
                    let gunzip = (encoding_of(&info) == Encoding::Gzip).then(|| flate2::write::GzDecoder::new(Vec::new()));
                    self.writer().start(&entry)?;
                    self.reading = Some(Reading { body, gunzip, key });
                }
            }
            let produced = self.writer().take();
            self.out.extend_from_slice(&produced);
        }
    }
}

impl Export {
    /// The body: a stream the runtime pulls one step at a time.
    pub fn into_stream(self) -> impl Stream<Item = Result<Vec<u8>>> + 'static {
        let writer = match self.format {
            Format::Ndjson => Writer::Ndjson(NdjsonWriter::new(&ExportHeader {
                app: self.plan.app.clone(),
                version: self.plan.version,
                revision: self.plan.revision,
                files: self.plan.files as u64,
                bytes: self.plan.bytes,
                next_after: self.plan.next_after.clone(),
            })),
            Format::Archive(a) => Writer::Archive(ArchiveWriter::new(a, &self.plan.name, self.plan.mtime_secs)),
        };
        let state = State {
            app: self.plan.app.clone(),
            version: self.plan.version,
            meta: self.meta,
            blobs: self.blobs,
            entries: self.entries.into(),
            writer: Some(writer),
            inline: HashMap::new(),
            group: None,
            reading: None,
            out: Vec::new(),
            name: self.plan.name.clone(),
            sums: String::new(),
        };
        stream::try_unfold(state, |mut state| async move {
            match state.step().await {
                Ok(Some(bytes)) => Ok(Some((bytes, state))),
                Ok(None) => {
                    state.account().await;
                    Ok(None)
                }
                Err(e) => {
                    worker::console_error!("r2d1 export of {}: aborted: {e}", state.app);
                    state.account().await;
                    Err(e)
                }
            }
        })
    }
}
