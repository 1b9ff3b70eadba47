//! The Omi part of `GET /api/admin/consistency`.

use super::keys::{self, ROOT};
use super::repo::OmiRepo;
use crate::consistency::{compare, Entry, Section};
use crate::error::Result;
use crate::http::App;
use crate::store::BlobInfo;

/// The most objects one check lists per prefix; a larger bucket is reported as incomplete.
const MAX_OBJECTS: usize = 200_000;

fn objects(infos: Vec<BlobInfo>) -> Vec<Entry> {
    infos.into_iter().map(|o| Entry { sha256: o.custom.get("sha256").cloned(), key: o.key }).collect()
}

/// Sections for memories, daily copies, transcripts and day summaries, plus whether every
/// listing was complete and how many index rows lack a version row.
pub async fn check(app: &App) -> Result<(Vec<Section>, bool, i64)> {
    let repo = OmiRepo::new(app.meta()?);
    let blobs = app.blobs()?;
    let [versions, transcripts, summaries] = repo.all_keys().await?;
    let daily_rows = Entry::from_rows(&versions, "daily_key");
    let (by_user, c1) = blobs.list_all(keys::BY_USER_PREFIX, MAX_OBJECTS).await?;
    let (all, c2) = blobs.list_all(keys::ALL_PREFIX, MAX_OBJECTS).await?;
    let (tr, c3) = blobs.list_all(&format!("{ROOT}/transcripts/"), MAX_OBJECTS).await?;
    let (ds, c4) = blobs.list_all(&format!("{ROOT}/day-summaries/"), MAX_OBJECTS).await?;
    let sections = vec![
        compare("omi.memories", &Entry::from_rows(&versions, "r2_key"), &objects(by_user)),
        compare("omi.daily_copies", &daily_rows, &objects(all)),
        compare("omi.transcripts", &Entry::from_rows(&transcripts, "r2_key"), &objects(tr)),
        // Day summaries are replaced in place, so their listing hash is the latest write's.
        compare("omi.day_summaries", &Entry::from_rows(&summaries, "r2_key"), &objects(ds)),
    ];
    Ok((sections, c1 && c2 && c3 && c4, repo.index_rows_without_version().await?))
}
