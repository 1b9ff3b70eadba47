//! What a memory's transcript says about a mentorship session: words, top words, who talked and
//! for how long, the mentor's share, the language and the topics. Computed at ingest from the
//! parsed payload, stored in D1 as [`MemoryAnalytics`] (JSON and a few columns), recomputed by
//! reindex when [`ANALYTICS_VERSION`] changes. Per mentor over a period, [`mentor`] merges the
//! stored figures into hours per ISO week, talk-time share and top words.
//!
//! Pure: no `worker` calls. Ingest runs it on every memory, so it is one pass over the
//! transcript's characters with one reused word buffer; only new distinct words allocate.
//!
//! Who is who: Omi marks the wearer's segments `is_user: true`. In this programme the wearer
//! is the mentor, so `is_user` talk is the mentor's and every other speaker is a mentee.

pub mod mentor;
pub mod stopwords;
pub mod tokens;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::payload::normalise_category;
use tokens::{content_form, content_form_of, for_each_token, for_each_word, rank, top, WordCounts, WordMap};

/// Bumped whenever a figure would come out differently for the same memory (a stop word
/// added, a rule changed), so reindex knows which stored analytics are stale.
pub const ANALYTICS_VERSION: u32 = 1;

/// How many top words to keep per memory. A mentor's top words over a period are merged from
/// these, so the stored list is longer than any list shown.
pub const STORED_TOP_WORDS: usize = 25;

/// At most this many topics per memory.
pub const MAX_TOPICS: usize = 6;

/// A language r2d1 answers in and guesses transcripts to be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    En,
    Es,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Es => "es",
        }
    }

    /// `es`/`en` (any case, with or without a region like `es-MX`); anything else is `None`.
    pub fn from_code(code: &str) -> Option<Lang> {
        let base = code.split(['-', '_']).next().unwrap_or("");
        if base.eq_ignore_ascii_case("es") {
            Some(Lang::Es)
        } else if base.eq_ignore_ascii_case("en") {
            Some(Lang::En)
        } else {
            None
        }
    }
}

/// The language to answer a mentor in: the language most of their memories were guessed to
/// be in; English on a tie or when nothing is known.
pub fn majority_language(spanish_memories: u32, english_memories: u32) -> Lang {
    if spanish_memories > english_memories {
        Lang::Es
    } else {
        Lang::En
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WordCount {
    pub word: String,
    pub count: u32,
}

/// One speaker's part of a transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpeakerStats {
    /// `SPEAKER_00`, `SPEAKER_01`, … (from `speaker_id`/`speakerId`, else the `speaker` label).
    pub speaker: String,
    /// The name Omi attached to the speaker (`speaker_name`), when it knows the person.
    pub name: Option<String>,
    /// Some of this speaker's segments are the wearer's: the mentor.
    pub is_user: bool,
    pub segments: u32,
    /// Sum of `end - start` over the speaker's segments.
    pub talk_seconds: f64,
    pub words: u32,
}

/// The figures of one memory (or one real-time transcript). Stored in D1 as this JSON
/// (`omi_memories.analytics_json`) and served as it is, so the names are the API's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryAnalytics {
    /// [`ANALYTICS_VERSION`] when computed.
    pub version: u32,
    /// Every word, stop words included.
    pub words: u32,
    /// Distinct words, stop words included.
    pub unique_words: u32,
    /// Words that count for top words: no stop words, numbers or single letters.
    pub content_words: u32,
    pub unique_content_words: u32,
    /// Guessed from stop words found in only one of the two lists; `None` on a tie.
    pub language: Option<Lang>,
    pub english_stop_words: u32,
    pub spanish_stop_words: u32,
    /// Sum of every segment's `end - start`.
    pub talk_seconds: f64,
    pub mentor_talk_seconds: f64,
    pub mentee_talk_seconds: f64,
    /// Mentor talk over all talk, 0..=1, four decimals; `None` when nobody talked.
    pub mentor_talk_share: Option<f64>,
    pub mentor_words: u32,
    pub mentee_words: u32,
    /// Most talk first, then by `speaker`.
    pub speakers: Vec<SpeakerStats>,
    /// Count descending, then word ascending (by bytes).
    pub top_words: Vec<WordCount>,
    /// See [`analyze_memory`].
    pub topics: Vec<String>,
}

/// How a segment names its speaker, borrowed: a key is only made a `String` once per speaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SpeakerKey<'a> {
    Id(i64),
    Label(&'a str),
    Unknown,
}

impl SpeakerKey<'_> {
    fn of(segment: &serde_json::Map<String, Value>) -> SpeakerKey<'_> {
        let id = segment.get("speaker_id").or_else(|| segment.get("speakerId")).and_then(Value::as_i64);
        if let Some(id) = id {
            return SpeakerKey::Id(id);
        }
        match segment.get("speaker").and_then(Value::as_str) {
            // The label Omi derives the id from: `SPEAKER_01` is the same speaker as id 1.
            Some(label) => match label.strip_prefix("SPEAKER_").and_then(|n| n.parse().ok()) {
                Some(id) => SpeakerKey::Id(id),
                None => SpeakerKey::Label(label),
            },
            None => SpeakerKey::Unknown,
        }
    }

    fn name(self) -> String {
        match self {
            SpeakerKey::Id(id) => format!("SPEAKER_{id:02}"),
            SpeakerKey::Label(label) => label.to_string(),
            SpeakerKey::Unknown => "SPEAKER".to_string(),
        }
    }
}

struct SpeakerTally<'a> {
    key: SpeakerKey<'a>,
    name: Option<&'a str>,
    is_user: bool,
    segments: u32,
    talk_seconds: f64,
    words: u32,
}

/// Rounds to milliseconds: sums of seconds like `2.1 + 0.2` are stored as `2.3`, not
/// `2.3000000000000003`.
fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

fn segment_seconds(segment: &serde_json::Map<String, Value>) -> f64 {
    let time = |k: &str| segment.get(k).and_then(Value::as_f64).filter(|t| t.is_finite());
    match (time("start"), time("end")) {
        (Some(start), Some(end)) if end > start => end - start,
        _ => 0.0,
    }
}

/// Figures of a list of transcript segments (`text`, `speaker`, `speaker_id`/`speakerId`,
/// `speaker_name`, `is_user`, `start`, `end`). Segments that are not objects and fields of the
/// wrong type are skipped, not errors: the payload was validated before, and real-time
/// batches are best effort. `topics` is empty; [`analyze_memory`] fills it.
pub fn analyze_segments(segments: &[Value], top_n: usize) -> MemoryAnalytics {
    let mut counts = WordCounts::default();
    let mut speakers: Vec<SpeakerTally> = Vec::new();
    let (mut mentor_talk, mut mentee_talk, mut mentor_words, mut mentee_words) = (0.0, 0.0, 0u32, 0u32);

    for segment in segments.iter().filter_map(Value::as_object) {
        let key = SpeakerKey::of(segment);
        let is_user = segment.get("is_user").and_then(Value::as_bool).unwrap_or(false);
        let seconds = segment_seconds(segment);
        let before = counts.total();
        if let Some(text) = segment.get("text").and_then(Value::as_str) {
            for_each_token(text, |w, source| counts.add(w, source));
        }
        let words = counts.total() - before;

        // A handful of speakers per memory: a linear search beats hashing.
        let i = match speakers.iter().position(|s| s.key == key) {
            Some(i) => i,
            None => {
                speakers.push(SpeakerTally { key, name: None, is_user: false, segments: 0, talk_seconds: 0.0, words: 0 });
                speakers.len() - 1
            }
        };
        let tally = &mut speakers[i];
        tally.segments += 1;
        tally.talk_seconds += seconds;
        tally.words += words;
        tally.is_user |= is_user;
        if tally.name.is_none() {
            tally.name = segment.get("speaker_name").and_then(Value::as_str).map(str::trim).filter(|n| !n.is_empty());
        }
        if is_user {
            mentor_talk += seconds;
            mentor_words += words;
        } else {
            mentee_talk += seconds;
            mentee_words += words;
        }
    }

    // One look-up per distinct word: the language tallies and the content forms.
    let (mut english, mut spanish) = (0u32, 0u32);
    let mut content: Vec<(&str, u32)> = Vec::with_capacity(counts.unique() as usize);
    let mut possessives: Vec<(&str, u32)> = Vec::new();
    for (word, n) in counts.iter() {
        let stop = stopwords::lookup(word);
        match (stop.english, stop.spanish) {
            (true, false) => english += n,
            (false, true) => spanish += n,
            _ => {}
        }
        match content_form_of(word, stop) {
            Some(form) if form.len() < word.len() => possessives.push((form, n)),
            Some(form) => content.push((form, n)),
            None => {}
        }
    }
    // `ana's` joins `ana`: the only way two distinct words share a form.
    if !possessives.is_empty() {
        let mut index: WordMap<&str, usize> = content.iter().enumerate().map(|(i, (w, _))| (*w, i)).collect();
        for (form, n) in possessives {
            match index.get(form) {
                Some(&i) => content[i].1 += n,
                None => {
                    index.insert(form, content.len());
                    content.push((form, n));
                }
            }
        }
    }
    let content_words: u32 = content.iter().map(|(_, n)| n).sum();
    let unique_content_words = content.len() as u32;
    let ranked = top(content, top_n);
    let language = match english.cmp(&spanish) {
        std::cmp::Ordering::Greater => Some(Lang::En),
        std::cmp::Ordering::Less => Some(Lang::Es),
        std::cmp::Ordering::Equal => None,
    };

    let mut speakers: Vec<SpeakerStats> = speakers
        .into_iter()
        .map(|s| SpeakerStats {
            speaker: s.key.name(),
            name: s.name.map(str::to_string),
            is_user: s.is_user,
            segments: s.segments,
            talk_seconds: round_ms(s.talk_seconds),
            words: s.words,
        })
        .collect();
    speakers.sort_by(|a, b| b.talk_seconds.total_cmp(&a.talk_seconds).then_with(|| a.speaker.cmp(&b.speaker)));

    let talk = mentor_talk + mentee_talk;
    MemoryAnalytics {
        version: ANALYTICS_VERSION,
        words: counts.total(),
        unique_words: counts.unique(),
        content_words,
        unique_content_words,
        language,
        english_stop_words: english,
        spanish_stop_words: spanish,
        talk_seconds: round_ms(talk),
        mentor_talk_seconds: round_ms(mentor_talk),
        mentee_talk_seconds: round_ms(mentee_talk),
        mentor_talk_share: (talk > 0.0).then(|| (mentor_talk / talk * 10_000.0).round() / 10_000.0),
        mentor_words,
        mentee_words,
        speakers,
        top_words: ranked.into_iter().map(|(word, count)| WordCount { word: word.to_string(), count }).collect(),
        topics: Vec::new(),
    }
}

/// Figures of a memory payload (already validated by `payload::memory_from_value`).
///
/// Topics, in this order, without repeats, at most [`MAX_TOPICS`]:
/// 1. the category (`structured.category`, normalised), unless it is `other`;
/// 2. the title's content words, in title order;
/// 3. the action items' content words, most frequent first (then alphabetical);
/// 4. the transcript's top words.
///
/// Content words are words that are not stop words, numbers or single letters, lower-cased,
/// possessive `'s` dropped.
pub fn analyze_memory(memory: &Value, top_n: usize) -> MemoryAnalytics {
    let segments = memory.get("transcript_segments").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    let mut analytics = analyze_segments(segments, top_n.max(MAX_TOPICS));

    let structured = memory.get("structured");
    let field = |k: &str| structured.and_then(|s| s.get(k));
    let mut topics: Vec<String> = Vec::with_capacity(MAX_TOPICS);
    let mut add = |topic: &str| {
        if topics.len() < MAX_TOPICS && !topics.iter().any(|t| t == topic) {
            topics.push(topic.to_string());
        }
    };

    let category = normalise_category(field("category").and_then(Value::as_str));
    if category != "other" {
        add(&category);
    }
    if let Some(title) = field("title").and_then(Value::as_str) {
        for_each_word(title, |w| {
            if let Some(form) = content_form(w) {
                add(form);
            }
        });
    }
    let mut item_words = WordCounts::default();
    for item in field("action_items").and_then(Value::as_array).into_iter().flatten() {
        if let Some(text) = item.get("description").and_then(Value::as_str) {
            for_each_word(text, |w| {
                if let Some(form) = content_form(w) {
                    item_words.add(form, None);
                }
            });
        }
    }
    for (word, _) in rank(item_words.iter(), MAX_TOPICS) {
        add(word);
    }
    for w in &analytics.top_words {
        add(&w.word);
    }
    analytics.topics = topics;
    analytics.top_words.truncate(top_n);
    analytics
}

#[cfg(test)]
mod tests;
