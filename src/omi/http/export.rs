//! `GET /api/omi/export?userId=&from=&to=&format=csv|ndjson|json[&include=memory,transcript]`:
//! every matching index entry, streamed page by page (keyset, 200 rows a page), so memory use
//! stays constant however many memories there are.
//!
//! With `include` (NDJSON and JSON), each entry also carries the stored memory (`memory`: its
//! raw JSON from R2, byte for byte) and/or its transcript as text (`transcript`). Each memory
//! is one R2 read, so such an export reads at most what the subrequest budget allows
//! (`SUBREQUEST_BUDGET`), a few at a time, and names the next page in `X-R2D1-Next-Cursor`
//! (pass it back as `cursor`).

use std::rc::Rc;

use futures_util::{stream, StreamExt};
use serde_json::Value;
use worker::{Headers, Request, Response};

use super::logs::stored_bytes;
use crate::error::{Error, Result};
use crate::http::{self, App};
use crate::omi::link::batch_text;
use crate::omi::payload::unwrap_legacy;
use crate::omi::query::{export_format, logs_query, ExportFormat, LogsQuery, Params, Sort};
use crate::omi::render::{csv_chunk, log_entry};
use crate::omi::repo::{LogRow, OmiRepo};

const PAGE: u32 = 200;
/// Memories read from R2 at once in an export with content.
const CONTENT_CHUNK: usize = 8;
/// Subrequests an export with content keeps for its D1 page.
const CONTENT_RESERVED: u32 = 4;

/// What an export adds to each entry (`include=memory,transcript`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Include {
    pub memory: bool,
    pub transcript: bool,
}

impl Include {
    pub fn any(self) -> bool {
        self.memory || self.transcript
    }
}

pub fn include_of(p: &Params) -> Result<Include> {
    let mut include = Include::default();
    for part in p.get("include").unwrap_or("").split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match part {
            "memory" => include.memory = true,
            "transcript" => include.transcript = true,
            _ => return Err(Error::invalid_field("include", "must list memory and/or transcript")),
        }
    }
    Ok(include)
}

/// An entry's JSON with the stored memory spliced in as it is (no re-serialisation: key order,
/// spacing and number spellings stay Omi's) and the transcript text. Line breaks, which an
/// NDJSON line cannot hold, become spaces: in valid JSON they can only be whitespace (inside a
/// string they are escaped), so the document means the same.
pub fn with_content(mut entry: Vec<u8>, memory: Option<&[u8]>, transcript: Option<&str>) -> Result<Vec<u8>> {
    if entry.last() != Some(&b'}') {
        return Err(Error::Internal("a log entry is not a JSON object".into()));
    }
    entry.pop();
    if let Some(raw) = memory {
        entry.extend_from_slice(b",\"memory\":");
        entry.extend(raw.trim_ascii().iter().map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b }));
    }
    if let Some(text) = transcript {
        entry.extend_from_slice(b",\"transcript\":");
        entry.extend(serde_json::to_vec(text)?);
    }
    entry.push(b'}');
    Ok(entry)
}

/// A memory's transcript as `speaker: text` lines (a legacy wrapper is read through).
fn transcript_of(raw: &[u8]) -> String {
    let memory = serde_json::from_slice::<Value>(raw).ok().and_then(|v| unwrap_legacy(v).ok()).map(|r| r.memory);
    let segments = memory.as_ref().and_then(|m| m.get("transcript_segments")).and_then(Value::as_array);
    segments.map(|s| batch_text(s)).unwrap_or_default()
}

struct Export {
    repo: OmiRepo,
    query: LogsQuery,
    format: ExportFormat,
    first: bool,
    done: bool,
}

impl Export {
    /// The next chunk of output, or `None` at the end.
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>> {
        if self.done {
            return Ok(None);
        }
        let mut rows = self.repo.logs_page(&self.query).await?;
        let more = rows.len() > PAGE as usize;
        rows.truncate(PAGE as usize);
        self.query.cursor = rows.last().map(|r| r.cursor());
        let mut out = Vec::new();
        match self.format {
            ExportFormat::Csv => out.extend(csv_chunk(&rows, self.first)),
            ExportFormat::Ndjson => {
                for r in &rows {
                    out.extend(serde_json::to_vec(&log_entry(r))?);
                    out.push(b'\n');
                }
            }
            ExportFormat::Json => {
                if self.first {
                    out.push(b'[');
                }
                for (i, r) in rows.iter().enumerate() {
                    if !(self.first && i == 0) {
                        out.push(b',');
                    }
                    out.extend(serde_json::to_vec(&log_entry(r))?);
                }
                if !more {
                    out.push(b']');
                }
            }
        }
        self.first = false;
        self.done = !more;
        Ok(Some(out))
    }
}

pub async fn export(req: &Request, app: &App) -> Result<Response> {
    let p = Params::new(http::query_pairs(req));
    let format = export_format(&p)?;
    let mut query = logs_query(&p)?;
    query.only_users = super::only_mentors(app);
    let include = include_of(&p)?;
    if include.any() && format == ExportFormat::Csv {
        return Err(Error::invalid_field("include", "needs format=ndjson or format=json"));
    }
    if include.any() {
        query.only_users = content_readers(req, app)?;
    }
    if (query.cursor.is_some() && !include.any()) || query.full {
        return Err(Error::bad_request("invalid_field", "cursor, full: are not supported by export (cursor only with include)"));
    }
    if query.sort != Sort::Newest {
        // An export is every matching memory, streamed in keyset pages: relevance ranks only a
        // bounded window of matches (`omi::cursor::RELEVANCE_WINDOW`), which is no archive.
        return Err(Error::invalid_field("sort", "export is newest first only"));
    }
    query.limit = PAGE;
    // Exports are for archives: discarded memories are included unless asked otherwise.
    if p.get("include_discarded").is_none() {
        query.include_discarded = true;
    }
    let (content_type, ext) = match format {
        ExportFormat::Csv => ("text/csv; charset=utf-8", "csv"),
        ExportFormat::Ndjson => ("application/x-ndjson", "ndjson"),
        ExportFormat::Json => ("application/json; charset=utf-8", "json"),
    };
    if include.any() {
        return content_export(app, query, format, include, content_type, ext).await;
    }
    let state = Export { repo: OmiRepo::new(app.meta()?), query, format, first: true, done: false };
    let body = stream::try_unfold(state, |mut state| async move {
        match state.next_chunk().await {
            Ok(Some(chunk)) => Ok(Some((chunk, state))),
            Ok(None) => Ok(None),
            Err(e) => {
                worker::console_error!("r2d1 export failed mid-stream: {e}");
                Err(worker::Error::from(e))
            }
        }
    });
    let headers = Headers::new();
    headers.set("Content-Type", content_type)?;
    headers.set("Content-Disposition", &format!("attachment; filename=\"omi-export.{ext}\""))?;
    headers.set("Cache-Control", "no-store")?;
    headers.set("X-Content-Type-Options", "nosniff")?;
    Ok(Response::from_stream(body)?.with_headers(headers))
}

/// An export with content carries what `omi:read` guards (memories, transcripts), so it
/// takes that scope, not the route's `omi:export`: for the `userId` asked for, or else the
/// mentors the key reads (the forced filter; empty: all). 403 names the scope missing.
fn content_readers(req: &Request, app: &App) -> Result<Vec<String>> {
    use crate::access::rule::{KeyRule, Rule, ScopedBy};
    use crate::access::scope::{Capability, TargetKind};
    let principal = app.caller.principal.as_ref().ok_or_else(|| Error::Internal("export without its access check".into()))?;
    let pairs = http::query_pairs(req);
    let query: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let params = crate::access::rule::RequestParams { path: &[], query: &query };
    let rule = KeyRule::Scope(Rule::new(Capability::OmiRead, ScopedBy::Query("userId")));
    let grant = crate::access::guard::authorize(&rule, principal, &params)?;
    Ok(match grant.only {
        Some(only) if only.kind == TargetKind::Mentor => only.values.into_iter().collect(),
        _ => Vec::new(),
    })
}

/// An export whose entries carry their memories: one D1 page of at most what the budget
/// leaves, then the memories read a chunk at a time and written out as they arrive.
async fn content_export(
    app: &App,
    mut query: LogsQuery,
    format: ExportFormat,
    include: Include,
    content_type: &str,
    ext: &str,
) -> Result<Response> {
    query.limit = app.config.subrequest_budget.saturating_sub(CONTENT_RESERVED).max(1);
    let mut rows = OmiRepo::new(app.meta()?).logs_page(&query).await?;
    let next = if rows.len() > query.limit as usize {
        rows.truncate(query.limit as usize);
        rows.last().map(|r| r.cursor().encode())
    } else {
        None
    };
    let json = format == ExportFormat::Json;
    let blobs = Rc::new(app.blobs()?);
    let chunks: Vec<Vec<LogRow>> = rows.chunks(CONTENT_CHUNK).map(<[LogRow]>::to_vec).collect();
    let last = chunks.len();
    let body = stream::iter(chunks.into_iter().enumerate())
        .then(move |(i, chunk)| {
            let blobs = blobs.clone();
            async move {
                let bodies = futures_util::future::join_all(chunk.iter().map(|r| stored_bytes(&blobs, &r.r2_key, &r.sha256))).await;
                let mut out = Vec::new();
                if json && i == 0 {
                    out.push(b'[');
                }
                for (n, (row, raw)) in chunk.iter().zip(bodies).enumerate() {
                    let raw = raw.map_err(worker::Error::from)?;
                    let entry = serde_json::to_vec(&log_entry(row)).map_err(|e| worker::Error::from(Error::from(e)))?;
                    let text = include.transcript.then(|| transcript_of(&raw));
                    let line =
                        with_content(entry, include.memory.then_some(raw.as_slice()), text.as_deref()).map_err(worker::Error::from)?;
                    if json && !(i == 0 && n == 0) {
                        out.push(b',');
                    }
                    out.extend(line);
                    if !json {
                        out.push(b'\n');
                    }
                }
                if json && i + 1 == last {
                    out.push(b']');
                }
                Ok::<Vec<u8>, worker::Error>(out)
            }
        })
        .boxed_local();
    // No rows: still a valid (empty) document.
    let body = if last == 0 { stream::iter(vec![Ok(if json { b"[]".to_vec() } else { Vec::new() })]).boxed_local() } else { body };
    let headers = Headers::new();
    headers.set("Content-Type", content_type)?;
    headers.set("Content-Disposition", &format!("attachment; filename=\"omi-export.{ext}\""))?;
    headers.set("Cache-Control", "no-store")?;
    if let Some(next) = &next {
        headers.set("X-R2D1-Next-Cursor", next)?;
    }
    Ok(Response::from_stream(body)?.with_headers(headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_spliced_in_byte_for_byte() {
        let entry = br#"{"userId":"u","memoryId":"m"}"#.to_vec();
        let raw = b" {\"id\":\"m\",\r\n \"z\":1.50,\"a\":[],\"t\":\"x\\ny\"}\n";
        let out = with_content(entry.clone(), Some(raw), Some("A: hola\n")).unwrap();
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            r#"{"userId":"u","memoryId":"m","memory":{"id":"m",   "z":1.50,"a":[],"t":"x\ny"},"transcript":"A: hola\n"}"#
        );
        assert!(!out.contains(&b'\n'));
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!((v["memory"]["z"].as_f64(), v["memory"]["t"].as_str()), (Some(1.5), Some("x\ny")));
        assert_eq!(with_content(entry.clone(), None, None).unwrap(), entry);
        assert!(with_content(b"[1]".to_vec(), None, None).is_err());
    }

    #[test]
    fn include_lists_are_checked() {
        let p = |v: &str| Params::new(vec![("include".into(), v.into())]);
        assert_eq!(include_of(&p("memory, transcript")).unwrap(), Include { memory: true, transcript: true });
        assert_eq!(include_of(&p("")).unwrap(), Include::default());
        assert!(include_of(&p("photos")).unwrap_err().to_string().starts_with("include"));
    }

    #[test]
    fn transcripts_are_read_from_bare_memories_and_wrappers() {
        let bare = br#"{"id":"m","created_at":"2025-01-01T00:00:00Z","transcript_segments":[{"text":"Hola","speaker_name":"Ana"}]}"#;
        assert_eq!(transcript_of(bare), "Ana: Hola\n");
        let wrapped = br#"{"memory":{"id":"m","transcript_segments":[{"text":"Hi","speaker":"SPEAKER_01"}]},"processed":{}}"#;
        assert_eq!(transcript_of(wrapped), "SPEAKER_01: Hi\n");
        assert_eq!(transcript_of(b"not json"), "");
    }
}
