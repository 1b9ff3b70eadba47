//! The figures of two fixed mentors, one English and one Spanish, against values counted by
//! hand from the fixture transcripts (the counts are written out beside each assertion).

use serde_json::{json, Value};

use super::mentor::{mentor_analytics, MemoryFacts};
use super::*;
use crate::omi::payload::memory_from_value;

const ENGLISH: &str = include_str!("../../../tests/fixtures/omi/analytics_en.json");
const SPANISH: &str = include_str!("../../../tests/fixtures/omi/analytics_es.json");

fn memories(fixture: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(fixture).unwrap();
    v["memories"].as_array().unwrap().clone()
}

fn top(a: &MemoryAnalytics, n: usize) -> Vec<(&str, u32)> {
    a.top_words.iter().take(n).map(|w| (w.word.as_str(), w.count)).collect()
}

/// `(speaker, name, is_user, segments, talk_seconds, words)`.
type SpeakerRow<'a> = (&'a str, Option<&'a str>, bool, u32, f64, u32);

/// The speakers in their stored order.
fn speakers(a: &MemoryAnalytics) -> Vec<SpeakerRow<'_>> {
    a.speakers.iter().map(|s| (s.speaker.as_str(), s.name.as_deref(), s.is_user, s.segments, s.talk_seconds, s.words)).collect()
}

fn facts(fixture: &str) -> Vec<MemoryFacts> {
    memories(fixture).iter().map(|m| MemoryFacts::new(&memory_from_value(m).unwrap(), &analyze_memory(m, STORED_TOP_WORDS))).collect()
}

#[test]
fn english_pitch_review() {
    let a = analyze_memory(&memories(ENGLISH)[0], STORED_TOP_WORDS);
    // Words per segment: 11 + 12 + 16 + 9 + 6 = 54; repeated: the ×5, pricing ×4, pitch, deck,
    // i, customer, data ×2 each, so 54 - 4 - 3 - 5×1 = 42 distinct.
    assert_eq!((a.words, a.unique_words), (54, 42));
    // English stop words: let's, the×5, before, thanks, i×2, but, still, will, about, so, with,
    // can, from, our, we'll (curly apostrophe in the fixture) = 20 occurrences of 15 words.
    assert_eq!((a.english_stop_words, a.spanish_stop_words, a.language), (20, 0, Some(Lang::En)));
    assert_eq!((a.content_words, a.unique_content_words), (34, 27));
    assert_eq!(top(&a, 7), [("pricing", 4), ("customer", 2), ("data", 2), ("deck", 2), ("pitch", 2), ("ana", 1), ("ask", 1)]);
    // `friday's` counts as `friday`.
    assert!(a.top_words.iter().any(|w| w.word == "friday"));
    assert_eq!(a.top_words.len(), 25);
    assert_eq!(
        speakers(&a),
        [
            ("SPEAKER_00", None, true, 2, 25.0, 27),         // 0–10 and 25–40; 11 + 16 words
            ("SPEAKER_01", Some("Ana"), false, 2, 22.5, 18), // 10–25 and 48–55.5; 12 + 6
            ("SPEAKER_02", Some("Luis"), false, 1, 8.0, 9),  // 40–48
        ]
    );
    assert_eq!((a.talk_seconds, a.mentor_talk_seconds, a.mentee_talk_seconds), (55.5, 25.0, 30.5));
    assert_eq!(a.mentor_talk_share, Some(0.4505)); // 25 / 55.5 = 0.45045…
    assert_eq!((a.mentor_words, a.mentee_words), (27, 27));
    // Category, then title words (pitch, deck, review, ana), then the action items' words, the
    // first new one alphabetically among equals being `compare`.
    assert_eq!(a.topics, ["business", "pitch", "deck", "review", "ana", "compare"]);
}

#[test]
fn english_hiring_plan_uses_the_docs_spelling_speaker_id() {
    let a = analyze_memory(&memories(ENGLISH)[1], 5);
    // 7 + 10 + 7 = 24 words, `hire` twice: 23 distinct.
    assert_eq!((a.words, a.unique_words), (24, 23));
    // who's, your, going, to, be, an, we, can't, the, without, one, then, and.
    assert_eq!((a.english_stop_words, a.content_words, a.unique_content_words), (13, 11, 10));
    assert_eq!(top(&a, 5), [("hire", 2), ("app", 1), ("engineer", 1), ("first", 1), ("mobile", 1)]);
    // 18 s each: the tie goes to the speaker label.
    assert_eq!(speakers(&a), [("SPEAKER_00", None, true, 2, 18.0, 14), ("SPEAKER_01", Some("Ana"), false, 1, 18.0, 10)]);
    assert_eq!(a.mentor_talk_share, Some(0.5));
    assert_eq!(a.topics, ["entrepreneurship", "hiring", "first", "engineer", "draft", "job"]);
}

#[test]
fn english_check_in_groups_speakers_by_label_and_skips_other() {
    let a = analyze_memory(&memories(ENGLISH)[2], 5);
    // 6 + 11 + 5 = 22 words; interviews, offline, mode twice: 19 distinct.
    assert_eq!((a.words, a.unique_words), (22, 19));
    // how, did, the, go, done, and, was.
    assert_eq!((a.english_stop_words, a.content_words, a.unique_content_words), (7, 15, 12));
    assert_eq!(top(&a, 5), [("interviews", 2), ("mode", 2), ("offline", 2), ("build", 1), ("customer", 1)]);
    assert_eq!(speakers(&a), [("SPEAKER_02", Some("Luis"), false, 1, 300.0, 11), ("SPEAKER_00", None, true, 2, 240.0, 11)]);
    assert_eq!(a.mentor_talk_share, Some(0.4444)); // 240 / 540
                                                   // Category `other` is no topic; the title gives weekly, check; no action items; then top words.
    assert_eq!(a.topics, ["weekly", "check", "interviews", "mode", "offline", "build"]);
}

#[test]
fn english_mentor_over_the_period() {
    let m = mentor_analytics(&facts(ENGLISH), 5);
    // W03 (13–19 Jan): 45 min + the hour that began Sunday 23:30; W04: 9 min (5 s to 545 s of
    // transcript, as the memory has no start or finish).
    let weeks: Vec<(&str, &str, u32, f64, f64)> =
        m.weeks.iter().map(|w| (w.week.as_str(), w.week_start.as_str(), w.memories, w.seconds, w.hours)).collect();
    assert_eq!(weeks, [("2025-W03", "2025-01-13", 2, 6300.0, 1.75), ("2025-W04", "2025-01-20", 1, 540.0, 0.15)]);
    assert_eq!((m.memories, m.seconds, m.hours), (3, 6840.0, 1.9));
    // Mentor 25 + 18 + 240 = 283 s, mentees 30.5 + 18 + 300 = 348.5 s.
    assert_eq!((m.mentor_talk_seconds, m.mentee_talk_seconds, m.mentor_talk_share), (283.0, 348.5, Some(0.4481)));
    // pricing 4 + 1, customer 2 + 1, interviews 1 + 2, then the 2s alphabetically.
    let words: Vec<(&str, u32)> = m.top_words.iter().map(|w| (w.word.as_str(), w.count)).collect();
    assert_eq!(words, [("pricing", 5), ("customer", 3), ("interviews", 3), ("data", 2), ("deck", 2)]);
}

#[test]
fn spanish_prototype_review() {
    let a = analyze_memory(&memories(SPANISH)[0], STORED_TOP_WORDS);
    // 9 + 10 + 10 + 10 = 39 words; el ×4, prototipo, diseño, usuarios, con ×2: 32 distinct.
    assert_eq!((a.words, a.unique_words), (39, 32));
    // Spanish only: hola, cómo, va, el×4, de, la, bien, pero, todavía, los, con×2, esta, y, yo,
    // también, puedo, tengo = 21; `a` and `no` are in both lists and count for neither.
    assert_eq!((a.spanish_stop_words, a.english_stop_words, a.language), (21, 0, Some(Lang::Es)));
    assert_eq!((a.content_words, a.unique_content_words), (16, 13));
    assert_eq!(
        top(&a, 8),
        [("diseño", 2), ("prototipo", 2), ("usuarios", 2), ("aplicación", 1), ("ayudar", 1), ("cinco", 1), ("convence", 1), ("habla", 1)]
    );
    // Byte order puts `maría` before `mañana` (r < ñ) and keeps accents in the words shown.
    let ones: Vec<&str> = a.top_words[3..].iter().map(|w| w.word.as_str()).collect();
    assert_eq!(ones, ["aplicación", "ayudar", "cinco", "convence", "habla", "maría", "mañana", "muéstrales", "semana", "tiempo"]);
    assert_eq!(
        speakers(&a),
        [
            ("SPEAKER_00", None, true, 2, 15.5, 19),
            ("SPEAKER_01", Some("María"), false, 1, 14.0, 10),
            ("SPEAKER_02", Some("Jorge"), false, 1, 5.5, 10),
        ]
    );
    assert_eq!(a.mentor_talk_share, Some(0.4429)); // 15.5 / 35
    assert_eq!(a.topics, ["technology", "prototipo", "aplicación", "maría", "cinco", "entrevistar"]);
}

#[test]
fn spanish_finances_with_decomposed_accents() {
    let a = analyze_memory(&memories(SPANISH)[1], 5);
    // 6 + 9 + 7 = 22 words; el ×4, dinero, para, presupuesto ×2: 16 distinct. `an\u0303o` is
    // `año` and `esta\u0301` is the stop word `está`.
    assert_eq!((a.words, a.unique_words), (22, 16));
    // cuánto, para×2, el×4, está, conmigo.
    assert_eq!((a.spanish_stop_words, a.content_words, a.unique_content_words), (9, 13, 11));
    assert_eq!(top(&a, 5), [("dinero", 2), ("presupuesto", 2), ("año", 1), ("listo", 1), ("lunes", 1)]);
    assert_eq!(speakers(&a), [("SPEAKER_00", None, true, 2, 32.0, 13), ("SPEAKER_02", Some("Jorge"), false, 1, 30.0, 9)]);
    assert_eq!(a.mentor_talk_share, Some(0.5161)); // 32 / 62
    assert_eq!(a.topics, ["finance", "finanzas", "equipo", "guadalajara", "enviar", "jorge"]);
}

#[test]
fn spanish_mentor_over_the_period() {
    let m = mentor_analytics(&facts(SPANISH), 5);
    let weeks: Vec<(&str, u32, f64)> = m.weeks.iter().map(|w| (w.week.as_str(), w.memories, w.hours)).collect();
    assert_eq!(weeks, [("2025-W10", 1, 0.5), ("2025-W11", 1, 1.5)]);
    assert_eq!(m.hours, 2.0);
    // Mentor 15.5 + 32 = 47.5 s, mentees 19.5 + 30 = 49.5 s.
    assert_eq!((m.mentor_talk_seconds, m.mentee_talk_seconds, m.mentor_talk_share), (47.5, 49.5, Some(0.4897)));
    let words: Vec<&str> = m.top_words.iter().map(|w| w.word.as_str()).collect();
    assert_eq!(words, ["dinero", "diseño", "presupuesto", "prototipo", "usuarios"]);
}

#[test]
fn analytics_round_trip_through_json_for_d1() {
    let a = analyze_memory(&memories(SPANISH)[0], 3);
    let stored = serde_json::to_string(&a).unwrap();
    assert!(stored.contains(r#""language":"es""#));
    assert_eq!(serde_json::from_str::<MemoryAnalytics>(&stored).unwrap(), a);
}

#[test]
fn odd_segments_are_skipped_not_fatal() {
    let a = analyze_segments(
        &[
            json!("not an object"),
            json!({"text": 5, "speaker": "SPEAKER_01", "start": 1, "end": 0}),
            json!({"text": "Hola hola", "start": "x"}),
            json!({"text": "ok", "speaker": "Guest", "start": 0, "end": 2}),
        ],
        5,
    );
    assert_eq!(a.words, 3);
    assert_eq!(
        speakers(&a),
        [("Guest", None, false, 1, 2.0, 1), ("SPEAKER", None, false, 1, 0.0, 2), ("SPEAKER_01", None, false, 1, 0.0, 0)]
    );
    assert_eq!(a.mentor_talk_share, Some(0.0));
    let empty = analyze_memory(&json!({"id": "m", "created_at": "2025-01-01T00:00:00Z"}), 5);
    assert_eq!((empty.words, empty.language, empty.mentor_talk_share), (0, None, None));
    assert!(empty.topics.is_empty() && empty.speakers.is_empty());
}

#[test]
fn languages_from_codes_and_majorities() {
    assert_eq!(Lang::from_code("es-MX"), Some(Lang::Es));
    assert_eq!(Lang::from_code("EN"), Some(Lang::En));
    assert_eq!(Lang::from_code("pt"), None);
    assert_eq!(majority_language(3, 2), Lang::Es);
    assert_eq!(majority_language(2, 2), Lang::En);
}

/// Ingest runs this on every memory: a 100 KB transcript must stay far from a request's CPU
/// budget. Debug builds are ~10× slower than release, hence a loose bound; it catches a
/// quadratic slip, not a few percent.
#[test]
fn a_100_kb_transcript_is_quick() {
    let line = "Bueno, ¿qué tal el pitch? We'll review the customer interviews and pricing tiers mañana. ";
    let segments: Vec<Value> = (0..1200)
        .map(|i| json!({"text": format!("{line}word{}", i % 300), "speaker_id": i % 3, "is_user": i % 3 == 0, "start": i, "end": i + 1}))
        .collect();
    let bytes: usize = segments.iter().map(|s| s["text"].as_str().unwrap().len()).sum();
    assert!(bytes > 100_000, "{bytes}");
    let started = std::time::Instant::now();
    let a = analyze_segments(&segments, STORED_TOP_WORDS);
    let took = started.elapsed();
    assert_eq!(a.words, 1200 * 15);
    assert_eq!(a.speakers.len(), 3);
    assert!(took.as_millis() < 200, "{took:?}");
}
