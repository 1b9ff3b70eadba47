//! The Mentors page of a programme manager: per person (a directory entry, or a uid nobody has
//! named yet), sessions and hours in each of the last weeks, the last session, and whether it
//! has been quiet for too long ("no session in N days").
//!
//! Pure: D1 gives per-uid rows ([`UidWeek`], [`UidLast`]), this merges them per person.
//! Discarded memories (Omi's short fragments) are not sessions; the caller leaves them out.

use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::omi::analytics::mentor::IsoWeek;
use crate::omi::link::week_monday;

const DAY_MS: i64 = 86_400_000;
pub const DEFAULT_WEEKS: u32 = 8;
pub const MAX_WEEKS: u32 = 53;
pub const DEFAULT_INACTIVE_DAYS: u32 = 14;
pub const MAX_INACTIVE_DAYS: u32 = 366;

/// Sessions of one uid in one ISO week (`week` = the day number of its Monday).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UidWeek {
    pub user_id: String,
    pub week: i64,
    pub sessions: u32,
    pub seconds: Option<f64>,
}

/// A uid's last session (`None`: only discarded fragments) and how many memories it has.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UidLast {
    pub user_id: String,
    pub last_ms: Option<i64>,
    pub memories: i64,
}

/// A directory entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    pub id: String,
    pub name: String,
    pub cohort: Option<String>,
    pub mentees: Vec<String>,
    pub uids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WeekActivity {
    /// `2025-W03`.
    pub week: String,
    /// Its Monday, `2025-01-13`.
    pub week_start: String,
    pub sessions: u32,
    /// Two decimals.
    pub hours: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MentorActivity {
    /// The directory id; `None` for a uid the directory does not name.
    pub person_id: Option<String>,
    /// The person's name, else the uid.
    pub name: String,
    pub cohort: Option<String>,
    pub mentees: Vec<String>,
    pub uids: Vec<String>,
    pub memories: i64,
    /// Sessions and hours over the weeks listed.
    pub sessions: u32,
    pub hours: f64,
    /// Oldest first, every week of the window (zeros included).
    pub weeks: Vec<WeekActivity>,
    /// ms; `None` when there was never a session.
    pub last_session_ms: Option<i64>,
    /// Whole days since the last session; `None` when there was none.
    pub days_since_last_session: Option<i64>,
    /// No session in `inactive_days` (or never).
    pub inactive: bool,
}

fn monday_date(day: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch") + Duration::days(day)
}

fn hours(seconds: f64) -> f64 {
    (seconds / 36.0).round() / 100.0
}

/// The Monday day numbers of the `weeks` ISO weeks that end with the week of `now_ms`.
pub fn window(now_ms: i64, weeks: u32) -> Vec<i64> {
    let this = week_monday(now_ms);
    (0..i64::from(weeks.max(1))).rev().map(|i| this - 7 * i).collect()
}

/// One row per person, then one per uid no person names; sorted by name (case-insensitive),
/// then by first uid.
pub fn mentor_activity(
    people: &[Person],
    per_week: &[UidWeek],
    last: &[UidLast],
    now_ms: i64,
    weeks: u32,
    inactive_days: u32,
) -> Vec<MentorActivity> {
    let window = window(now_ms, weeks);
    let mut groups: Vec<(Option<&Person>, Vec<String>)> = people.iter().map(|p| (Some(p), p.uids.clone())).collect();
    let named = |uid: &str| people.iter().any(|p| p.uids.iter().any(|u| u == uid));
    let mut loose: Vec<&str> = last.iter().map(|l| l.user_id.as_str()).chain(per_week.iter().map(|w| w.user_id.as_str())).collect();
    loose.sort_unstable();
    loose.dedup();
    groups.extend(loose.into_iter().filter(|u| !named(u)).map(|u| (None, vec![u.to_string()])));

    let mut out: Vec<MentorActivity> = groups
        .into_iter()
        .map(|(person, uids)| {
            let mine = |uid: &str| uids.iter().any(|u| u == uid);
            let weeks: Vec<WeekActivity> = window
                .iter()
                .map(|&monday| {
                    let (sessions, seconds) = per_week
                        .iter()
                        .filter(|w| w.week == monday && mine(&w.user_id))
                        .fold((0, 0.0), |(n, s), w| (n + w.sessions, s + w.seconds.filter(|s| s.is_finite() && *s > 0.0).unwrap_or(0.0)));
                    let date = monday_date(monday);
                    WeekActivity {
                        week: IsoWeek::of_date(date).label(),
                        week_start: date.format("%Y-%m-%d").to_string(),
                        sessions,
                        hours: hours(seconds),
                    }
                })
                .collect();
            let seconds: f64 = per_week
                .iter()
                .filter(|w| mine(&w.user_id) && window.contains(&w.week))
                .map(|w| w.seconds.filter(|s| s.is_finite() && *s > 0.0).unwrap_or(0.0))
                .sum();
            let last_session_ms = last.iter().filter(|l| mine(&l.user_id)).filter_map(|l| l.last_ms).max();
            let days_since_last_session = last_session_ms.map(|l| (now_ms - l).max(0) / DAY_MS);
            MentorActivity {
                person_id: person.map(|p| p.id.clone()),
                name: person.map(|p| p.name.clone()).unwrap_or_else(|| uids[0].clone()),
                cohort: person.and_then(|p| p.cohort.clone()),
                mentees: person.map(|p| p.mentees.clone()).unwrap_or_default(),
                memories: last.iter().filter(|l| mine(&l.user_id)).map(|l| l.memories).sum(),
                sessions: weeks.iter().map(|w| w.sessions).sum(),
                hours: hours(seconds),
                weeks,
                inactive: days_since_last_session.is_none_or(|d| d >= i64::from(inactive_days)),
                last_session_ms,
                days_since_last_session,
                uids,
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.to_lowercase().cmp(&b.name.to_lowercase()).then_with(|| a.uids.first().cmp(&b.uids.first())));
    out
}

/// What a key narrowed to some mentors (`omi:export:{uid}`) may see of the directory: the
/// people with one of those uids, each listing only those uids, and the unnamed uids among
/// them. A person's other uids and everybody else stay hidden. `only` empty: everything.
pub fn narrow_directory(people: Vec<Person>, unassigned: Vec<String>, only: &[String]) -> (Vec<Person>, Vec<String>) {
    if only.is_empty() {
        return (people, unassigned);
    }
    let allowed = |uid: &String| only.contains(uid);
    let people = people
        .into_iter()
        .filter_map(|mut p| {
            p.uids.retain(allowed);
            (!p.uids.is_empty()).then_some(p)
        })
        .collect();
    (people, unassigned.into_iter().filter(allowed).collect())
}

/// The per-uid rows a narrowed key may see (`only` empty: all).
pub fn narrow_activity(per_week: Vec<UidWeek>, last: Vec<UidLast>, only: &[String]) -> (Vec<UidWeek>, Vec<UidLast>) {
    if only.is_empty() {
        return (per_week, last);
    }
    (per_week.into_iter().filter(|w| only.contains(&w.user_id)).collect(), last.into_iter().filter(|l| only.contains(&l.user_id)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::omi::payload::parse_time_str;

    fn ms(iso: &str) -> i64 {
        parse_time_str(iso).unwrap()
    }

    fn wk(uid: &str, monday: &str, sessions: u32, minutes: f64) -> UidWeek {
        UidWeek { user_id: uid.into(), week: ms(&format!("{monday}T00:00:00Z")) / DAY_MS, sessions, seconds: Some(minutes * 60.0) }
    }

    #[test]
    fn people_merge_their_uids_and_quiet_ones_are_flagged() {
        // Wednesday 29 January 2025: the window of 3 weeks is W03, W04, W05.
        let now = ms("2025-01-29T12:00:00Z");
        let people = vec![
            Person {
                id: "lucia".into(),
                name: "Lucía".into(),
                cohort: Some("A".into()),
                mentees: vec!["Ana".into()],
                uids: vec!["old-phone".into(), "new-phone".into()],
            },
            Person { id: "sam".into(), name: "sam".into(), cohort: None, mentees: vec![], uids: vec!["sam-1".into()] },
        ];
        let per_week = vec![
            wk("old-phone", "2025-01-13", 2, 90.0),
            wk("new-phone", "2025-01-27", 1, 30.0),
            wk("new-phone", "2024-12-30", 5, 600.0), // before the window
            wk("stranger", "2025-01-20", 1, 45.0),
        ];
        let last = vec![
            UidLast { user_id: "old-phone".into(), last_ms: Some(ms("2025-01-15T10:00:00Z")), memories: 7 },
            UidLast { user_id: "new-phone".into(), last_ms: Some(ms("2025-01-27T09:00:00Z")), memories: 6 },
            UidLast { user_id: "stranger".into(), last_ms: Some(ms("2025-01-21T09:00:00Z")), memories: 1 },
            UidLast { user_id: "only-fragments".into(), last_ms: None, memories: 2 },
        ];
        let rows = mentor_activity(&people, &per_week, &last, now, 3, 7);
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["Lucía", "only-fragments", "sam", "stranger"]);

        let lucia = &rows[0];
        assert_eq!(lucia.person_id.as_deref(), Some("lucia"));
        assert_eq!((lucia.memories, lucia.sessions, lucia.hours), (13, 3, 2.0));
        let weeks: Vec<(&str, &str, u32, f64)> =
            lucia.weeks.iter().map(|w| (w.week.as_str(), w.week_start.as_str(), w.sessions, w.hours)).collect();
        assert_eq!(weeks, [("2025-W03", "2025-01-13", 2, 1.5), ("2025-W04", "2025-01-20", 0, 0.0), ("2025-W05", "2025-01-27", 1, 0.5)]);
        assert_eq!(
            (lucia.last_session_ms, lucia.days_since_last_session, lucia.inactive),
            (Some(ms("2025-01-27T09:00:00Z")), Some(2), false)
        );

        let fragments = &rows[1];
        assert_eq!((fragments.person_id.as_deref(), fragments.days_since_last_session, fragments.inactive), (None, None, true));
        let sam = &rows[2];
        assert_eq!((sam.memories, sam.sessions, sam.inactive), (0, 0, true));
        let stranger = &rows[3];
        // 8 days since 21 Jan 09:00: quiet for a 7-day threshold.
        assert_eq!((stranger.days_since_last_session, stranger.inactive, stranger.hours), (Some(8), true, 0.75));
        assert!(!mentor_activity(&people, &per_week, &last, now, 3, 9)[3].inactive);
    }

    #[test]
    fn windows_end_with_this_week() {
        let now = ms("2025-01-29T12:00:00Z");
        let w = window(now, 2);
        assert_eq!(w, [ms("2025-01-20T00:00:00Z") / DAY_MS, ms("2025-01-27T00:00:00Z") / DAY_MS]);
        assert_eq!(window(now, 0).len(), 1);
    }
    #[test]
    fn a_narrow_key_sees_only_its_own_uids() {
        let person = |id: &str, uids: &[&str]| Person {
            id: id.into(),
            name: id.into(),
            cohort: None,
            mentees: vec!["Ana".into()],
            uids: uids.iter().map(|u| u.to_string()).collect(),
        };
        let people = vec![person("lucia", &["l-old", "l-new"]), person("marco", &["m-1"])];
        let unassigned = vec!["x-1".to_string(), "x-2".to_string()];
        let (all, loose) = narrow_directory(people.clone(), unassigned.clone(), &[]);
        assert_eq!((all.len(), loose.len()), (2, 2));
        let (mine, loose) = narrow_directory(people.clone(), unassigned.clone(), &["l-new".into(), "x-2".into()]);
        assert_eq!(mine, vec![person("lucia", &["l-new"])]);
        assert_eq!(loose, vec!["x-2".to_string()]);
        let (none, loose) = narrow_directory(people, unassigned, &["nobody".into()]);
        assert!(none.is_empty() && loose.is_empty());

        let weeks = vec![wk("l-new", "2025-01-13", 1, 30.0), wk("m-1", "2025-01-13", 2, 60.0)];
        let last = vec![
            UidLast { user_id: "l-new".into(), last_ms: Some(1), memories: 1 },
            UidLast { user_id: "m-1".into(), last_ms: Some(2), memories: 2 },
        ];
        let (w, l) = narrow_activity(weeks, last, &["m-1".into()]);
        assert_eq!((w.len(), w[0].user_id.as_str()), (1, "m-1"));
        assert_eq!((l.len(), l[0].user_id.as_str()), (1, "m-1"));
    }
}
