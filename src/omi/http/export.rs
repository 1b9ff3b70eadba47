//! `GET /api/omi/export?userId=&from=&to=&format=csv|ndjson|json`: every matching index entry,
//! streamed page by page (keyset, 200 rows a page), so memory use stays constant however many
//! memories there are.

use futures_util::stream;
use worker::{Headers, Request, Response};

use crate::error::{Error, Result};
use crate::http::{self, App};
use crate::omi::query::{export_format, logs_query, ExportFormat, LogsQuery, Params};
use crate::omi::render::{csv_chunk, log_entry};
use crate::omi::repo::OmiRepo;

const PAGE: u32 = 200;

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
    if query.cursor.is_some() || query.full {
        return Err(Error::bad_request("invalid_field", "cursor, full: are not supported by export"));
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
