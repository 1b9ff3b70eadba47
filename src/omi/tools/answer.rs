//! The text of a tool's answer, `{"result": "…"}`: what Omi's assistant reads back to the
//! mentor, so short (at most [`MAX_ANSWER_CHARS`] characters, a list cut with "…and N more")
//! and in the language of the mentor's logs.
//!
//! Inputs are plain structs the handler fills from D1; nothing here reads storage. Dates are
//! shown as UTC calendar days (`13 Jan 2025`, `13 ene 2025`), the same days the tools' date
//! parameters take.

use chrono::DateTime;
use serde_json::{json, Value};

use super::call::TimeRange;
use crate::omi::analytics::mentor::MentorAnalytics;
use crate::omi::analytics::Lang;

/// Long enough for five sessions with a line of summary each, short enough for a chat bubble.
pub const MAX_ANSWER_CHARS: usize = 800;
const MAX_TITLE_CHARS: usize = 80;
const MAX_OVERVIEW_CHARS: usize = 140;
const MAX_ITEM_CHARS: usize = 160;
/// With more weeks than this, the answer names the busiest week instead of listing them.
const MAX_LISTED_WEEKS: usize = 6;

/// A memory that matched a search or names a person.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryHit {
    pub title: Option<String>,
    /// `started_at`, else `created_at`.
    pub at_ms: i64,
    pub overview: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OpenActionItem {
    pub description: String,
    pub memory_title: Option<String>,
    pub memory_at_ms: i64,
    pub due_ms: Option<i64>,
}

pub fn result_body(text: &str) -> Value {
    json!({ "result": text })
}

/// Omi shows `{"error": "…"}` answers (sent with a 4xx/5xx) as the tool's failure.
pub fn error_body(text: &str) -> Value {
    json!({ "error": text })
}

const MONTHS_EN: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const MONTHS_ES: [&str; 12] = ["ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sep", "oct", "nov", "dic"];

fn date(lang: Lang, ms: i64) -> String {
    use chrono::Datelike;
    let Some(d) = DateTime::from_timestamp_millis(ms) else { return "?".to_string() };
    let months = match lang {
        Lang::En => MONTHS_EN,
        Lang::Es => MONTHS_ES,
    };
    format!("{} {} {}", d.day(), months[d.month0() as usize], d.year())
}

/// ` between 6 Jan 2025 and 12 Jan 2025`, ` since …`, ` until …` or nothing. `to_ms` is
/// exclusive, so the day shown is the one before it.
fn range_phrase(lang: Lang, range: &TimeRange) -> String {
    let from = range.from_ms.map(|f| date(lang, f));
    let to = range.to_ms.map(|t| date(lang, t - 1));
    match (lang, from, to) {
        (Lang::En, Some(f), Some(t)) => format!(" between {f} and {t}"),
        (Lang::En, Some(f), None) => format!(" since {f}"),
        (Lang::En, None, Some(t)) => format!(" until {t}"),
        (Lang::Es, Some(f), Some(t)) => format!(" entre el {f} y el {t}"),
        (Lang::Es, Some(f), None) => format!(" desde el {f}"),
        (Lang::Es, None, Some(t)) => format!(" hasta el {t}"),
        (_, None, None) => String::new(),
    }
}

/// One line of whitespace-collapsed text, at most `max` characters, cut at a word when it can.
fn clip(text: &str, max: usize) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() <= max {
        return text;
    }
    let cut: String = text.chars().take(max - 1).collect();
    let cut = match cut.rfind(' ') {
        Some(space) if space > cut.len() / 2 => &cut[..space],
        _ => &cut,
    };
    format!("{}…", cut.trim_end_matches([',', ';', ':', '.', ' ']))
}

fn title(lang: Lang, title: Option<&str>) -> String {
    match title.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => clip(t, MAX_TITLE_CHARS),
        None => match lang {
            Lang::En => "Untitled session".to_string(),
            Lang::Es => "Sesión sin título".to_string(),
        },
    }
}

fn plural<'a>(n: u32, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// `1.75`, `2`, `0.5`: two decimals at most, no trailing zeros.
fn number(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `head`, then as many `lines` as fit, then how many were left out of `total`.
fn listed(lang: Lang, head: String, lines: impl IntoIterator<Item = String>, total: usize) -> String {
    let more = |n: usize| match lang {
        Lang::En => format!("\n…and {n} more."),
        Lang::Es => format!("\n…y {n} más."),
    };
    let mut out = head;
    let mut used = out.chars().count();
    let mut shown = 0;
    for line in lines {
        let line_chars = line.chars().count() + 1;
        let left_after = total.saturating_sub(shown + 1);
        let reserve = if left_after > 0 { more(left_after).chars().count() } else { 0 };
        if used + line_chars + reserve > MAX_ANSWER_CHARS {
            break;
        }
        out.push('\n');
        out.push_str(&line);
        used += line_chars;
        shown += 1;
    }
    if shown < total {
        out.push_str(&more(total - shown));
    }
    out
}

fn hit_line(lang: Lang, hit: &MemoryHit) -> String {
    let mut line = format!("- {} · {}", date(lang, hit.at_ms), title(lang, hit.title.as_deref()));
    if let Some(overview) = hit.overview.as_deref().map(str::trim).filter(|o| !o.is_empty()) {
        line.push_str(": ");
        line.push_str(&clip(overview, MAX_OVERVIEW_CHARS));
    }
    line
}

/// `hits` newest first; `total` counts every match (at least `hits.len()`).
pub fn search_answer(lang: Lang, query: &str, range: &TimeRange, hits: &[MemoryHit], total: usize) -> String {
    let total = total.max(hits.len());
    let (q, r) = (clip(query, 60), range_phrase(lang, range));
    if total == 0 {
        return match lang {
            Lang::En => format!("No sessions match \"{q}\"{r} in your logs."),
            Lang::Es => format!("No encontré sesiones sobre «{q}»{r} en tus registros."),
        };
    }
    let n = total as u32;
    let head = match lang {
        Lang::En => format!("Found {n} {} matching \"{q}\"{r}:", plural(n, "session", "sessions")),
        Lang::Es => format!("Encontré {n} {} sobre «{q}»{r}:", plural(n, "sesión", "sesiones")),
    };
    listed(lang, head, hits.iter().map(|h| hit_line(lang, h)), total)
}

/// `hits` newest first; `total` counts every session with the person.
pub fn sessions_answer(lang: Lang, person: &str, range: &TimeRange, hits: &[MemoryHit], total: usize) -> String {
    let total = total.max(hits.len());
    let (p, r) = (clip(person, 60), range_phrase(lang, range));
    let Some(last) = hits.iter().map(|h| h.at_ms).max() else {
        return match lang {
            Lang::En => format!("I found no sessions with {p}{r} in your logs."),
            Lang::Es => format!("No encontré sesiones con {p}{r} en tus registros."),
        };
    };
    let n = total as u32;
    let head = match lang {
        Lang::En => format!("You met {p} in {n} {}{r}; the last was on {}:", plural(n, "session", "sessions"), date(lang, last)),
        Lang::Es => format!("Te reuniste con {p} en {n} {}{r}; la última fue el {}:", plural(n, "sesión", "sesiones"), date(lang, last)),
    };
    listed(lang, head, hits.iter().map(|h| hit_line(lang, h)), total)
}

/// `items` newest first; `total` counts every open item.
pub fn action_items_answer(lang: Lang, items: &[OpenActionItem], total: usize) -> String {
    let total = total.max(items.len());
    if total == 0 {
        return match lang {
            Lang::En => "You have no open action items.".to_string(),
            Lang::Es => "No tienes tareas pendientes.".to_string(),
        };
    }
    let n = total as u32;
    let head = match lang {
        Lang::En => format!("You have {n} open action {}:", plural(n, "item", "items")),
        Lang::Es => format!("Tienes {n} {}:", plural(n, "tarea pendiente", "tareas pendientes")),
    };
    let lines = items.iter().map(|item| {
        let (what, from, when) =
            (clip(&item.description, MAX_ITEM_CHARS), title(lang, item.memory_title.as_deref()), date(lang, item.memory_at_ms));
        let due = item.due_ms.map(|d| date(lang, d));
        match (lang, due) {
            (Lang::En, Some(due)) => format!("- {what} (from \"{from}\", {when}; due {due})"),
            (Lang::En, None) => format!("- {what} (from \"{from}\", {when})"),
            (Lang::Es, Some(due)) => format!("- {what} (de «{from}», {when}; vence el {due})"),
            (Lang::Es, None) => format!("- {what} (de «{from}», {when})"),
        }
    });
    listed(lang, head, lines, total)
}

/// `figures` are the mentor's memories in `range` (both ends set by `call::parse_call`).
pub fn hours_answer(lang: Lang, range: &TimeRange, figures: &MentorAnalytics) -> String {
    let r = range_phrase(lang, range);
    let n = figures.memories;
    if n == 0 {
        return match lang {
            Lang::En => format!("You have no mentoring sessions logged{r}."),
            Lang::Es => format!("No tienes sesiones de mentoría registradas{r}."),
        };
    }
    let hours = number(figures.hours);
    let one_hour = figures.hours == 1.0;
    let mut out = match lang {
        Lang::En => {
            format!("You mentored {hours} {} in {n} {}{r}.", if one_hour { "hour" } else { "hours" }, plural(n, "session", "sessions"))
        }
        Lang::Es => {
            format!("Diste {hours} {} de mentoría en {n} {}{r}.", if one_hour { "hora" } else { "horas" }, plural(n, "sesión", "sesiones"))
        }
    };
    if let Some(share) = figures.mentor_talk_share {
        let pct = (share * 100.0).round();
        out.push_str(&match lang {
            Lang::En => format!(" You did {pct}% of the talking."),
            Lang::Es => format!(" Hablaste el {pct}% del tiempo."),
        });
    }
    let weeks = &figures.weeks;
    if weeks.len() > 1 && weeks.len() <= MAX_LISTED_WEEKS {
        let list: Vec<String> = weeks.iter().map(|w| format!("{} {} h", w.week, number(w.hours))).collect();
        out.push_str(&match lang {
            Lang::En => format!(" By week: {}.", list.join(", ")),
            Lang::Es => format!(" Por semana: {}.", list.join(", ")),
        });
    } else if let Some(busiest) =
        weeks.iter().filter(|_| weeks.len() > MAX_LISTED_WEEKS).max_by(|a, b| a.seconds.total_cmp(&b.seconds).then(b.week.cmp(&a.week)))
    {
        out.push_str(&match lang {
            Lang::En => format!(" Busiest week: {} ({} h).", busiest.week, number(busiest.hours)),
            Lang::Es => format!(" Semana con más horas: {} ({} h).", busiest.week, number(busiest.hours)),
        });
    }
    clip_answer(out)
}

fn clip_answer(text: String) -> String {
    if text.chars().count() <= MAX_ANSWER_CHARS {
        text
    } else {
        clip(&text, MAX_ANSWER_CHARS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::omi::analytics::mentor::{mentor_analytics, MemoryFacts};
    use crate::omi::payload::parse_time_str;

    fn ms(iso: &str) -> i64 {
        parse_time_str(iso).unwrap()
    }

    fn january() -> TimeRange {
        TimeRange { from_ms: Some(ms("2025-01-01T00:00:00Z")), to_ms: Some(ms("2025-02-01T00:00:00Z")) }
    }

    fn hit(title: &str, at: &str, overview: &str) -> MemoryHit {
        MemoryHit { title: Some(title.into()), at_ms: ms(at), overview: Some(overview.into()) }
    }

    #[test]
    fn search_in_both_languages() {
        let hits =
            [hit("Pitch Deck Review with Ana", "2025-01-13T10:00:00Z", "Ana's deck is nearly ready;\n the pricing slide needs data.")];
        assert_eq!(
            search_answer(Lang::En, "pricing", &january(), &hits, 1),
            "Found 1 session matching \"pricing\" between 1 Jan 2025 and 31 Jan 2025:\n\
             - 13 Jan 2025 · Pitch Deck Review with Ana: Ana's deck is nearly ready; the pricing slide needs data."
        );
        let hits = [hit("Finanzas del equipo", "2025-03-12T18:00:00Z", "Presupuesto para seis meses.")];
        assert_eq!(
            search_answer(Lang::Es, "presupuesto", &TimeRange::default(), &hits, 2),
            "Encontré 2 sesiones sobre «presupuesto»:\n- 12 mar 2025 · Finanzas del equipo: Presupuesto para seis meses.\n…y 1 más."
        );
        assert_eq!(search_answer(Lang::En, "x", &TimeRange::default(), &[], 0), "No sessions match \"x\" in your logs.");
        let since = TimeRange { from_ms: Some(ms("2025-03-01T00:00:00Z")), to_ms: None };
        assert_eq!(search_answer(Lang::Es, "x", &since, &[], 0), "No encontré sesiones sobre «x» desde el 1 mar 2025 en tus registros.");
    }

    #[test]
    fn long_lists_stay_under_the_limit_and_say_how_many_more() {
        let long = "word ".repeat(100);
        let hits: Vec<MemoryHit> = (1..=9).map(|d| hit(&long, &format!("2025-01-0{d}T10:00:00Z"), &long)).collect();
        for lang in [Lang::En, Lang::Es] {
            let text = search_answer(lang, "word", &january(), &hits, 40);
            assert!(text.chars().count() <= MAX_ANSWER_CHARS, "{}", text.chars().count());
            let shown = text.lines().filter(|l| l.starts_with("- ")).count();
            assert!(shown >= 3, "{text}");
            let more = match lang {
                Lang::En => format!("…and {} more.", 40 - shown),
                Lang::Es => format!("…y {} más.", 40 - shown),
            };
            assert!(text.ends_with(&more), "{text}");
            assert!(text.lines().all(|l| l.chars().count() < 260));
        }
    }

    #[test]
    fn sessions_with_a_person() {
        let hits = [
            hit("Hiring the first engineer", "2025-01-19T23:30:00Z", "Ana plans to hire a mobile engineer first."),
            hit("Pitch Deck Review with Ana", "2025-01-13T10:00:00Z", ""),
        ];
        assert_eq!(
            sessions_answer(Lang::En, "Ana", &TimeRange::default(), &hits, 2),
            "You met Ana in 2 sessions; the last was on 19 Jan 2025:\n\
             - 19 Jan 2025 · Hiring the first engineer: Ana plans to hire a mobile engineer first.\n\
             - 13 Jan 2025 · Pitch Deck Review with Ana"
        );
        assert_eq!(
            sessions_answer(Lang::Es, "el equipo de Guadalajara", &TimeRange::default(), &[], 0),
            "No encontré sesiones con el equipo de Guadalajara en tus registros."
        );
        let one = [MemoryHit { title: None, at_ms: ms("2025-03-12T18:00:00Z"), overview: None }];
        assert_eq!(
            sessions_answer(Lang::Es, "Jorge", &TimeRange::default(), &one, 1),
            "Te reuniste con Jorge en 1 sesión; la última fue el 12 mar 2025:\n- 12 mar 2025 · Sesión sin título"
        );
    }

    #[test]
    fn open_action_items() {
        let items = [
            OpenActionItem {
                description: "Compare three pricing tiers with customer data".into(),
                memory_title: Some("Pitch Deck Review with Ana".into()),
                memory_at_ms: ms("2025-01-13T10:00:00Z"),
                due_ms: Some(ms("2025-01-17T00:00:00Z")),
            },
            OpenActionItem {
                description: "Draft the engineer job post".into(),
                memory_title: None,
                memory_at_ms: ms("2025-01-19T23:30:00Z"),
                due_ms: None,
            },
        ];
        assert_eq!(
            action_items_answer(Lang::En, &items, 2),
            "You have 2 open action items:\n\
             - Compare three pricing tiers with customer data (from \"Pitch Deck Review with Ana\", 13 Jan 2025; due 17 Jan 2025)\n\
             - Draft the engineer job post (from \"Untitled session\", 19 Jan 2025)"
        );
        assert_eq!(
            action_items_answer(Lang::Es, &items[..1], 1),
            "Tienes 1 tarea pendiente:\n\
             - Compare three pricing tiers with customer data (de «Pitch Deck Review with Ana», 13 ene 2025; vence el 17 ene 2025)"
        );
        assert_eq!(action_items_answer(Lang::Es, &[], 0), "No tienes tareas pendientes.");
    }

    fn facts(at: &str, minutes: f64, mentor: f64, mentee: f64) -> MemoryFacts {
        MemoryFacts {
            started_ms: Some(ms(at)),
            created_ms: ms(at),
            duration_seconds: Some(minutes * 60.0),
            mentor_talk_seconds: mentor,
            mentee_talk_seconds: mentee,
            top_words: vec![],
        }
    }

    #[test]
    fn hours_for_a_period() {
        let figures = mentor_analytics(
            &[
                facts("2025-01-13T10:00:00Z", 45.0, 25.0, 30.5),
                facts("2025-01-19T23:30:00Z", 60.0, 18.0, 18.0),
                facts("2025-01-21T09:00:00Z", 9.0, 240.0, 300.0),
            ],
            5,
        );
        assert_eq!(
            hours_answer(Lang::En, &january(), &figures),
            "You mentored 1.9 hours in 3 sessions between 1 Jan 2025 and 31 Jan 2025. You did 45% of the talking. \
             By week: 2025-W03 1.75 h, 2025-W04 0.15 h."
        );
        assert_eq!(
            hours_answer(Lang::Es, &january(), &figures),
            "Diste 1.9 horas de mentoría en 3 sesiones entre el 1 ene 2025 y el 31 ene 2025. Hablaste el 45% del tiempo. \
             Por semana: 2025-W03 1.75 h, 2025-W04 0.15 h."
        );
        let one = mentor_analytics(&[facts("2025-01-13T10:00:00Z", 60.0, 0.0, 0.0)], 5);
        assert_eq!(hours_answer(Lang::En, &january(), &one), "You mentored 1 hour in 1 session between 1 Jan 2025 and 31 Jan 2025.");
        let none = mentor_analytics(&[], 5);
        assert_eq!(
            hours_answer(Lang::Es, &january(), &none),
            "No tienes sesiones de mentoría registradas entre el 1 ene 2025 y el 31 ene 2025."
        );
    }

    #[test]
    fn a_year_names_its_busiest_week() {
        let many: Vec<MemoryFacts> = (0..10)
            .map(|i| facts(&format!("2025-0{}-0{}T10:00:00Z", 1 + 2 * (i / 5), 1 + i % 5), if i == 7 { 180.0 } else { 30.0 }, 0.0, 0.0))
            .collect();
        let figures = mentor_analytics(&many, 5);
        let text = hours_answer(Lang::En, &TimeRange::default(), &figures);
        // 1–5 Jan is 2025-W01 (2.5 h); 3–5 Mar is 2025-W10: 3 h + 2 × 30 min.
        assert!(text.ends_with("Busiest week: 2025-W10 (4 h)."), "{text}");
    }

    #[test]
    fn bodies() {
        assert_eq!(result_body("hi"), json!({"result": "hi"}));
        assert_eq!(error_body("no"), json!({"error": "no"}));
    }
}
