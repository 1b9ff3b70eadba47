//! The programme's routes: a memory's and a mentor's analytics, the mentor directory, and the
//! Mentors page's activity (sessions per week, who has gone quiet).

use serde_json::{json, Value};
use worker::{Request, Response};

use super::key_part;
use crate::error::{Error, Result};
use crate::http::{self, App};
use crate::omi::analytics::mentor::mentor_analytics;
use crate::omi::analytics::{MemoryAnalytics, WordCount, ANALYTICS_VERSION};
use crate::omi::payload::parse_json;
use crate::omi::programme::activity::{mentor_activity, narrow_activity, narrow_directory, window};
use crate::omi::programme::directory::{check_person_id, parse_person};
use crate::omi::programme::params;
use crate::omi::programme::repo::{FactsRow, ProgrammeRepo};
use crate::omi::query::Params;
use crate::omi::render::iso;

/// A mentor's period figures are summed over at most this many memories.
const MAX_PERIOD_MEMORIES: u32 = 10_000;
const MAX_PERSON_BYTES: usize = 64 * 1024;

fn query(req: &Request) -> Params {
    Params::new(http::query_pairs(req))
}

/// `GET /api/omi/logs/{uid}/{memoryId}/analytics`: the stored figures of the indexed version.
pub async fn memory(app: &App, uid: &str, memory_id: &str) -> Result<Response> {
    let (uid, memory_id) = (key_part("userId", uid)?, key_part("memoryId", memory_id)?);
    let row = ProgrammeRepo::new(app.meta()?)
        .memory_analytics(&uid, &memory_id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no memory {memory_id} for user {uid}")))?;
    let analytics: Option<MemoryAnalytics> = row.analytics_json.as_deref().and_then(|j| serde_json::from_str(j).ok());
    http::ok(&json!({
        "success": true,
        "userId": uid,
        "memoryId": memory_id,
        "analyticsVersion": row.analytics_version,
        // Older figures are recomputed by the omi.analytics job.
        "current": analytics.is_some() && row.analytics_version == i64::from(ANALYTICS_VERSION),
        "words": row.word_count,
        "analytics": analytics,
        "span": { "start": row.span_start.map(iso), "end": row.span_end.map(iso) },
        "linkedTranscript": { "batches": row.linked_batches },
    }))
}

/// `GET /api/omi/users/{uid}/analytics?from=&to=&top=`: hours per ISO week, the mentor's
/// share of the talking and the top words over a period (discarded fragments left out).
pub async fn mentor(req: &Request, app: &App, uid: &str) -> Result<Response> {
    let uid = key_part("userId", uid)?;
    let p = query(req);
    let (from, to) = params::period(&p, app.now_ms)?;
    let top = params::top_words(&p)?;
    let (rows, words, lang) = ProgrammeRepo::new(app.meta()?).mentor_period(&uid, from, to, top, MAX_PERIOD_MEMORIES).await?;
    let mut figures = mentor_analytics(&rows.iter().map(FactsRow::facts).collect::<Vec<_>>(), 0);
    figures.top_words = words.into_iter().map(|w| WordCount { word: w.word, count: w.count.max(0) as u32 }).collect();
    let analyzed = rows.iter().filter(|r| r.analytics_version >= i64::from(ANALYTICS_VERSION)).count();
    let mut body = serde_json::to_value(&figures)?;
    if let Value::Object(o) = &mut body {
        o.insert("success".into(), json!(true));
        o.insert("userId".into(), json!(uid));
        o.insert("from".into(), json!(iso(from)));
        o.insert("to".into(), json!(iso(to)));
        o.insert("language".into(), json!(lang.code()));
        o.insert("analyzedMemories".into(), json!(analyzed));
        o.insert("truncated".into(), json!(rows.len() as u32 >= MAX_PERIOD_MEMORIES));
    }
    http::ok(&body)
}

/// `GET /api/omi/directory`: every person with their uids, and uids no person names (a key
/// narrowed to some mentors: only those).
pub async fn directory(app: &App) -> Result<Response> {
    let (people, unassigned) = ProgrammeRepo::new(app.meta()?).directory().await?;
    let (people, unassigned) = narrow_directory(people, unassigned, &super::only_mentors(app));
    http::ok(&json!({ "success": true, "people": people, "unassigned": unassigned }))
}

/// `PUT /api/omi/directory/{personId}`: creates or replaces a person; uids listed move to
/// them.
pub async fn save_person(mut req: Request, app: &App, id: &str) -> Result<Response> {
    check_person_id(id)?;
    http::require_json_content_type(&req)?;
    let body = http::read_body(&mut req, MAX_PERSON_BYTES).await?;
    let person = parse_person(&parse_json(&body)?)?;
    ProgrammeRepo::new(app.meta()?).save_person(id, &person, app.now_ms).await?;
    http::ok(&json!({
        "success": true,
        "person": { "id": id, "name": person.name, "cohort": person.cohort, "mentees": person.mentees, "uids": person.uids },
    }))
}

/// `DELETE /api/omi/directory/{personId}`: the entry goes; the uids' data stays.
pub async fn delete_person(app: &App, id: &str) -> Result<Response> {
    check_person_id(id)?;
    if !ProgrammeRepo::new(app.meta()?).delete_person(id).await? {
        return Err(Error::NotFound(format!("no person {id} in the directory")));
    }
    http::ok(&json!({ "success": true, "personId": id }))
}

/// `GET /api/omi/programme?weeks=&inactive_days=`: per person, sessions and hours per week,
/// the last session, and who has had none in `inactive_days` (a key narrowed to some mentors:
/// only those).
pub async fn activity(req: &Request, app: &App) -> Result<Response> {
    let (weeks, inactive_days) = params::activity(&query(req))?;
    let only = super::only_mentors(app);
    let repo = ProgrammeRepo::new(app.meta()?);
    let (people, _) = narrow_directory(repo.directory().await?.0, Vec::new(), &only);
    let first_week = window(app.now_ms, weeks)[0];
    let (per_week, last) = repo.activity(first_week).await?;
    let (per_week, last) = narrow_activity(per_week, last, &only);
    let rows = mentor_activity(&people, &per_week, &last, app.now_ms, weeks, inactive_days);
    let mentors: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
            if let Value::Object(o) = &mut v {
                o.insert("lastSession".into(), json!(r.last_session_ms.map(iso)));
                o.remove("lastSessionMs");
            }
            v
        })
        .collect();
    let inactive: Vec<&str> = rows.iter().filter(|r| r.inactive).map(|r| r.name.as_str()).collect();
    http::ok(&json!({
        "success": true,
        "generatedAt": iso(app.now_ms),
        "weeks": weeks,
        "inactiveDays": inactive_days,
        "mentors": mentors,
        "inactive": inactive,
    }))
}
