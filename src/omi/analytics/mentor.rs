//! A mentor's figures over a period, merged from each memory's stored analytics: hours
//! mentored per ISO week, mentor/mentee talk-time share, top words.
//!
//! Hours come from memory durations (`finished_at - started_at`, else the transcript's span,
//! as `payload::Memory::duration_seconds` computes them). A memory belongs wholly to the ISO
//! week (Monday to Sunday, UTC) of its `started_at`, or of its `created_at` when it has no
//! start: a session from Sunday 23:30 to Monday 00:30 is an hour of the week it began in.
//!
//! Top words over a period are merged from each memory's stored top list
//! ([`super::STORED_TOP_WORDS`] long), not from every word: exact for the words that lead in
//! the memories they appear in, which are the ones a period's top list shows.

use chrono::{DateTime, Datelike, Duration, NaiveDate};
use serde::{Deserialize, Serialize};

use super::tokens::rank;
use super::{MemoryAnalytics, WordCount};
use crate::omi::payload::Memory;

/// Weeks between the first and the last are listed even when empty, unless there would be
/// more than this many (a bogus 1970 date next to a real one): then only weeks with memories.
const MAX_FILLED_WEEKS: i64 = 530;

/// What the period figures need from one memory: a row of D1, or a memory just analysed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryFacts {
    pub started_ms: Option<i64>,
    pub created_ms: i64,
    pub duration_seconds: Option<f64>,
    pub mentor_talk_seconds: f64,
    pub mentee_talk_seconds: f64,
    pub top_words: Vec<WordCount>,
}

impl MemoryFacts {
    pub fn new(memory: &Memory, analytics: &MemoryAnalytics) -> MemoryFacts {
        MemoryFacts {
            started_ms: memory.started_ms,
            created_ms: memory.created_ms,
            duration_seconds: memory.duration_seconds,
            mentor_talk_seconds: analytics.mentor_talk_seconds,
            mentee_talk_seconds: analytics.mentee_talk_seconds,
            top_words: analytics.top_words.clone(),
        }
    }

    /// The time that decides the memory's week.
    pub fn at_ms(&self) -> i64 {
        self.started_ms.unwrap_or(self.created_ms)
    }
}

/// An ISO 8601 week: `2025-W03` is Monday 13 to Sunday 19 January 2025.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IsoWeek {
    /// The Monday that starts it.
    pub monday: NaiveDate,
}

impl IsoWeek {
    /// The week of a UTC instant; `None` outside chrono's range.
    pub fn of_ms(ms: i64) -> Option<IsoWeek> {
        let date = DateTime::from_timestamp_millis(ms)?.date_naive();
        Some(IsoWeek::of_date(date))
    }

    pub fn of_date(date: NaiveDate) -> IsoWeek {
        IsoWeek { monday: date - Duration::days(i64::from(date.weekday().num_days_from_monday())) }
    }

    /// `2025-W03`; the year is the ISO year (30 December 2024 is in `2025-W01`).
    pub fn label(self) -> String {
        let w = self.monday.iso_week();
        format!("{:04}-W{:02}", w.year(), w.week())
    }

    pub fn next(self) -> IsoWeek {
        IsoWeek { monday: self.monday + Duration::days(7) }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeekHours {
    /// `2025-W03`.
    pub week: String,
    /// Its Monday, `2025-01-13`.
    pub week_start: String,
    pub memories: u32,
    pub seconds: f64,
    /// `seconds / 3600`, two decimals.
    pub hours: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MentorAnalytics {
    pub memories: u32,
    pub seconds: f64,
    /// Two decimals.
    pub hours: f64,
    /// Oldest first; the weeks between the first and the last are there with zero hours.
    pub weeks: Vec<WeekHours>,
    pub mentor_talk_seconds: f64,
    pub mentee_talk_seconds: f64,
    /// Mentor talk over all talk, 0..=1, four decimals; `None` when nobody talked.
    pub mentor_talk_share: Option<f64>,
    pub top_words: Vec<WordCount>,
}

fn hours(seconds: f64) -> f64 {
    (seconds / 36.0).round() / 100.0
}

fn usable(seconds: Option<f64>) -> f64 {
    seconds.filter(|s| s.is_finite() && *s > 0.0).unwrap_or(0.0)
}

/// Merges the memories of one mentor (the caller picks the period and the mentor's uids).
pub fn mentor_analytics(memories: &[MemoryFacts], top_n: usize) -> MentorAnalytics {
    let mut by_week: Vec<(IsoWeek, u32, f64)> = Vec::new();
    let (mut seconds, mut mentor_talk, mut mentee_talk) = (0.0, 0.0, 0.0);
    for m in memories {
        let duration = usable(m.duration_seconds);
        seconds += duration;
        mentor_talk += usable(Some(m.mentor_talk_seconds));
        mentee_talk += usable(Some(m.mentee_talk_seconds));
        if let Some(week) = IsoWeek::of_ms(m.at_ms()) {
            match by_week.binary_search_by(|(w, _, _)| w.cmp(&week)) {
                Ok(i) => {
                    by_week[i].1 += 1;
                    by_week[i].2 += duration;
                }
                Err(i) => by_week.insert(i, (week, 1, duration)),
            }
        }
    }

    let mut weeks = Vec::with_capacity(by_week.len());
    let span = match (by_week.first(), by_week.last()) {
        (Some(first), Some(last)) => (last.0.monday - first.0.monday).num_weeks(),
        _ => 0,
    };
    let mut push = |week: IsoWeek, memories: u32, seconds: f64| {
        weeks.push(WeekHours {
            week: week.label(),
            week_start: week.monday.format("%Y-%m-%d").to_string(),
            memories,
            seconds: (seconds * 1000.0).round() / 1000.0,
            hours: hours(seconds),
        })
    };
    if span <= MAX_FILLED_WEEKS {
        let mut filled = by_week.iter().peekable();
        let mut week = by_week.first().map(|w| w.0);
        while let (Some(current), Some(next)) = (week, filled.peek()) {
            if next.0 == current {
                push(current, next.1, next.2);
                filled.next();
            } else {
                push(current, 0, 0.0);
            }
            week = Some(current.next());
        }
    } else {
        for (week, n, s) in &by_week {
            push(*week, *n, *s);
        }
    }

    let words = rank(memories.iter().flat_map(|m| m.top_words.iter().map(|w| (w.word.as_str(), w.count))), top_n);
    let talk = mentor_talk + mentee_talk;
    MentorAnalytics {
        memories: memories.len() as u32,
        seconds: (seconds * 1000.0).round() / 1000.0,
        hours: hours(seconds),
        weeks,
        mentor_talk_seconds: (mentor_talk * 1000.0).round() / 1000.0,
        mentee_talk_seconds: (mentee_talk * 1000.0).round() / 1000.0,
        mentor_talk_share: (talk > 0.0).then(|| (mentor_talk / talk * 10_000.0).round() / 10_000.0),
        top_words: words.into_iter().map(|(word, count)| WordCount { word: word.to_string(), count }).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(iso: &str) -> i64 {
        crate::omi::payload::parse_time_str(iso).unwrap()
    }

    #[test]
    fn iso_weeks_across_year_ends() {
        assert_eq!(IsoWeek::of_ms(ms("2024-12-30T00:00:00Z")).unwrap().label(), "2025-W01");
        assert_eq!(IsoWeek::of_ms(ms("2021-01-03T23:59:59Z")).unwrap().label(), "2020-W53");
        assert_eq!(IsoWeek::of_ms(ms("2025-01-19T23:59:59Z")).unwrap().label(), "2025-W03");
        assert_eq!(IsoWeek::of_ms(ms("2025-01-20T00:00:00Z")).unwrap().label(), "2025-W04");
        // UTC decides: Monday 00:30 in Mexico City is still Sunday 06:30 UTC... of the same week;
        // Sunday 20:00 at UTC-6 is Monday 02:00 UTC, the next week.
        assert_eq!(IsoWeek::of_ms(ms("2025-01-19T20:00:00-06:00")).unwrap().label(), "2025-W04");
    }

    #[test]
    fn empty_weeks_between_are_listed_and_created_at_stands_in_for_started_at() {
        let facts = |started: Option<&str>, created: &str, minutes: f64| MemoryFacts {
            started_ms: started.map(ms),
            created_ms: ms(created),
            duration_seconds: Some(minutes * 60.0),
            mentor_talk_seconds: 0.0,
            mentee_talk_seconds: 0.0,
            top_words: vec![],
        };
        let m = mentor_analytics(
            &[facts(None, "2025-02-05T10:00:00Z", 90.0), facts(Some("2025-01-20T10:00:00Z"), "2025-02-20T10:00:00Z", 30.0)],
            5,
        );
        let weeks: Vec<(&str, u32, f64)> = m.weeks.iter().map(|w| (w.week.as_str(), w.memories, w.hours)).collect();
        assert_eq!(weeks, [("2025-W04", 1, 0.5), ("2025-W05", 0, 0.0), ("2025-W06", 1, 1.5)]);
        assert_eq!(m.weeks[1].week_start, "2025-01-27");
        assert_eq!((m.memories, m.hours, m.mentor_talk_share), (2, 2.0, None));
    }

    #[test]
    fn far_apart_weeks_are_not_filled_and_nothing_is_fine() {
        let facts = |at: &str| MemoryFacts {
            started_ms: Some(ms(at)),
            created_ms: ms(at),
            duration_seconds: Some(f64::NAN),
            mentor_talk_seconds: -1.0,
            mentee_talk_seconds: 0.0,
            top_words: vec![],
        };
        let m = mentor_analytics(&[facts("1971-01-01T00:00:00Z"), facts("2025-01-01T00:00:00Z")], 5);
        assert_eq!(m.weeks.len(), 2);
        assert_eq!(m.hours, 0.0);
        let none = mentor_analytics(&[], 5);
        assert!(none.weeks.is_empty());
        assert_eq!((none.memories, none.hours, none.mentor_talk_share), (0, 0.0, None));
    }
}
