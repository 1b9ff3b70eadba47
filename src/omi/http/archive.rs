//! `GET /api/omi/users/{uid}/archive[?format=tar|tar.gz][&cursor=]`: a mentor's complete data
//! (every version of every memory, transcript batches, day summaries) as one streamed archive
//! — the GDPR access request. See `omi::programme::archive` for the layout and why a mentor
//! with more objects than the subrequest budget allows is served in parts.

use std::rc::Rc;

use futures_util::{stream, StreamExt};
use serde_json::json;
use worker::{Headers, Request, Response};

use super::key_part;
use super::logs::stored_bytes;
use crate::error::{Error, Result};
use crate::files::stream::{ArchiveFormat, ArchiveWriter};
use crate::http::{self, App};
use crate::omi::programme::archive::{archive_name, entry_path, objects_per_part, ArchiveCursor, ArchiveRow};
use crate::omi::programme::repo::ProgrammeRepo;
use crate::omi::query::Params;
use crate::omi::render::iso;
use crate::store::BlobStore;

/// Objects read ahead while the previous one is written out.
const READ_AHEAD: usize = 4;

fn format_of(p: &Params) -> Result<ArchiveFormat> {
    match p.get("format").unwrap_or("tar.gz").to_ascii_lowercase().as_str() {
        "tar.gz" | "tgz" | "gz" => Ok(ArchiveFormat::TarGz),
        "tar" => Ok(ArchiveFormat::Tar),
        _ => Err(Error::invalid_field("format", "must be tar or tar.gz")),
    }
}

pub async fn archive(req: &Request, app: &App, uid: &str) -> Result<Response> {
    let uid = key_part("userId", uid)?;
    let p = Params::new(http::query_pairs(req));
    let format = format_of(&p)?;
    let cursor = match p.get("cursor") {
        None => ArchiveCursor::first(),
        Some(c) => {
            ArchiveCursor::decode(c).ok_or_else(|| Error::bad_request("invalid_cursor", "cursor: is not a cursor this API returned"))?
        }
    };
    let repo = ProgrammeRepo::new(app.meta()?);
    let per_part = objects_per_part(app.config.subrequest_budget);
    let mut rows = repo.archive_page(&uid, &cursor, per_part).await?;
    let next = if rows.len() > per_part as usize {
        rows.truncate(per_part as usize);
        rows.last().map(|r| ArchiveCursor::after(cursor.part + 1, r).encode())
    } else {
        None
    };

    let manifest = if cursor.part == 1 {
        let counts = repo.archive_counts(&uid).await?;
        if counts.versions == 0 && counts.transcript_batches == 0 && counts.day_summaries == 0 {
            return Err(Error::NotFound(format!("no data for user {uid}")));
        }
        let (people, _) = repo.directory().await?;
        let person = people.into_iter().find(|p| p.uids.contains(&uid));
        let doc = json!({
            "userId": uid,
            "generatedAt": iso(app.now_ms),
            "directory": person,
            "counts": counts,
            "parts": { "objectsPerPart": per_part, "complete": next.is_none() },
            "files": {
                "memories/{memoryId}/v{version}.json": "every stored version of every memory, byte for byte as Omi sent it",
                "transcripts/{sessionId}/{receivedMs}-{sha}.json": "every real-time transcript batch, as received",
                "day-summaries/{date}.json": "every day summary, as received",
            },
        });
        Some(serde_json::to_vec_pretty(&doc)?)
    } else {
        None
    };

    let name = archive_name(&uid, cursor.part);
    let objects = rows.len();
    let mtime = (app.now_ms.max(0) / 1000) as u64;
    let body = archive_stream(Rc::new(app.blobs()?), rows, manifest, ArchiveWriter::new(format, &name, mtime));

    let headers = Headers::new();
    headers.set("Content-Type", format.content_type())?;
    headers.set("Content-Disposition", &format!("attachment; filename=\"{name}.{}\"", format.extension()))?;
    headers.set("Cache-Control", "no-store")?;
    headers.set("X-R2D1-Archive-Part", &cursor.part.to_string())?;
    headers.set("X-R2D1-Archive-Objects", &objects.to_string())?;
    if let Some(next) = &next {
        headers.set("X-R2D1-Next-Cursor", next)?;
    }
    Ok(Response::from_stream(body)?.with_headers(headers))
}

enum Step {
    Manifest(Vec<u8>),
    Objects,
    Done,
}

/// The archive's bytes as they are produced: the manifest, then each object as soon as it is
/// read (a few read ahead), then the end blocks. A missing or damaged object ends the stream
/// with an error, so the client never gets an archive that looks complete but is not.
fn archive_stream(
    blobs: Rc<BlobStore>,
    rows: Vec<ArchiveRow>,
    manifest: Option<Vec<u8>>,
    writer: ArchiveWriter,
) -> impl futures_util::Stream<Item = worker::Result<Vec<u8>>> {
    let reads = stream::iter(rows)
        .map(move |row| {
            let blobs = blobs.clone();
            async move {
                let bytes = stored_bytes(&blobs, &row.r2_key, &row.sha256).await;
                (row, bytes)
            }
        })
        .buffered(READ_AHEAD)
        .boxed_local();
    let first = match manifest {
        Some(m) => Step::Manifest(m),
        None => Step::Objects,
    };
    stream::try_unfold((first, reads, Some(writer)), |(step, mut reads, mut writer)| async move {
        let fail = |e: Error| {
            worker::console_error!("r2d1 archive failed mid-stream: {e}");
            worker::Error::from(e)
        };
        let Some(w) = writer.as_mut() else { return Ok(None) };
        match step {
            Step::Done => Ok(None),
            Step::Manifest(bytes) => {
                w.start_file("manifest.json", bytes.len() as u64, None).map_err(|e| fail(e.into()))?;
                w.write_chunk(&bytes).map_err(|e| fail(e.into()))?;
                w.end_file().map_err(|e| fail(e.into()))?;
                let out = w.take_output();
                Ok(Some((out, (Step::Objects, reads, writer))))
            }
            Step::Objects => match reads.next().await {
                Some((row, bytes)) => {
                    let bytes = bytes.map_err(fail)?;
                    w.start_file(&entry_path(&row), bytes.len() as u64, Some(&row.sha256)).map_err(|e| fail(e.into()))?;
                    w.write_chunk(&bytes).map_err(|e| fail(e.into()))?;
                    w.end_file().map_err(|e| fail(e.into()))?;
                    let out = w.take_output();
                    Ok(Some((out, (Step::Objects, reads, writer))))
                }
                None => {
                    let w = writer.take().expect("checked above");
                    let out = w.finish().map_err(|e| fail(e.into()))?;
                    Ok(Some((out, (Step::Done, reads, None))))
                }
            },
        }
    })
}
