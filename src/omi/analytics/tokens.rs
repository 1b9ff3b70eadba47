//! Words of a transcript, in one pass over its characters and without the regex crate.
//!
//! A word is a run of letters and digits (any script: `ñ`, `é`, `ü` are letters; `¿ ¡ « » — …`
//! are not), lower-cased. An apostrophe (`'`, `’` or `ʼ`) between two letters stays inside the
//! word and is written `'`, so English contractions (`don't`, `we're`) are single words; one at
//! either end is dropped. A combining accent after a vowel or `n` is composed into one letter,
//! so a decomposed `está` counts as the same word as a precomposed one. Digits-only runs are
//! words for counting but never top words or topics.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::stopwords::{self, StopWord};

/// FNV-1a. The word counts hash every word of every transcript on ingest; SipHash's defence
/// against chosen-key flooding is not needed for a per-memory map dropped right away. Measured
/// on transcript words (3–10 bytes), this byte loop beat both SipHash and 8-bytes-at-a-time
/// multiply hashes by 2–3×.
pub struct WordHasher(u64);

impl Default for WordHasher {
    fn default() -> Self {
        WordHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for WordHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

pub type WordMap<K, V> = HashMap<K, V, BuildHasherDefault<WordHasher>>;

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '\u{2019}' | '\u{02bc}')
}

/// The precomposed letter for `base` followed by a combining acute, grave, tilde or diaeresis.
fn compose(base: char, mark: char) -> Option<char> {
    let row = match mark {
        '\u{0301}' => ['á', 'é', 'í', 'ó', 'ú', '\0'],
        '\u{0300}' => ['à', 'è', 'ì', 'ò', 'ù', '\0'],
        '\u{0308}' => ['ä', 'ë', 'ï', 'ö', 'ü', '\0'],
        '\u{0303}' => ['ã', '\0', '\0', 'õ', '\0', 'ñ'],
        _ => return None,
    };
    let i = "aeioun".find(base)?;
    Some(row[i]).filter(|c| *c != '\0')
}

/// Calls `word` with each lower-cased word of `text`, in order.
pub fn for_each_word(text: &str, mut word: impl FnMut(&str)) {
    for_each_token(text, |w, _| word(w));
}

/// Calls `token` with each lower-cased word of `text` and, when the word is spelled exactly so
/// in `text` (most words of a transcript are), that slice of `text`: a count keyed by it needs
/// no allocation. One reused buffer for the others.
pub fn for_each_token<'a>(text: &'a str, mut token: impl FnMut(&str, Option<&'a str>)) {
    let mut buf = String::with_capacity(32);
    // Where the word being read starts and ends in `text`.
    let (mut start, mut end) = (0, 0);
    // An apostrophe seen after a letter: kept only if another letter follows.
    let mut apostrophe = false;
    let mut emit = |buf: &mut String, start: usize, end: usize| {
        if !buf.is_empty() {
            let source = &text[start..end];
            token(buf, (source == buf.as_str()).then_some(source));
            buf.clear();
        }
    };
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_alphanumeric() {
            // Most of a transcript: a run of ASCII letters, copied in one go.
            let run = i;
            let mut upper = false;
            while i < bytes.len() && bytes[i].is_ascii_alphanumeric() {
                upper |= bytes[i].is_ascii_uppercase();
                i += 1;
            }
            if buf.is_empty() {
                start = run;
            }
            if apostrophe {
                buf.push('\'');
                apostrophe = false;
            }
            if upper {
                buf.extend(bytes[run..i].iter().map(|b| char::from(b.to_ascii_lowercase())));
            } else {
                buf.push_str(&text[run..i]);
            }
            end = i;
            continue;
        }
        if b.is_ascii() {
            if b == b'\'' && !buf.is_empty() && !apostrophe {
                apostrophe = true;
            } else {
                emit(&mut buf, start, end);
                apostrophe = false;
            }
            i += 1;
            continue;
        }
        let c = text[i..].chars().next().expect("i is on a char boundary");
        if c.is_alphanumeric() {
            if buf.is_empty() {
                start = i;
            }
            if apostrophe {
                buf.push('\'');
                apostrophe = false;
            }
            buf.extend(c.to_lowercase());
            end = i + c.len_utf8();
        } else if ('\u{0300}'..='\u{036f}').contains(&c) && !buf.is_empty() && !apostrophe {
            // A combining mark belongs to the letter before it.
            if let Some(composed) = buf.chars().next_back().and_then(|base| compose(base, c)) {
                buf.pop();
                buf.push(composed);
            }
            end = i + c.len_utf8();
        } else if is_apostrophe(c) && !buf.is_empty() && !apostrophe {
            apostrophe = true;
        } else {
            emit(&mut buf, start, end);
            apostrophe = false;
        }
        i += c.len_utf8();
    }
    emit(&mut buf, start, end);
}

/// `word` without accents on vowels (`á é í ó ú à è ì ò ù ä ë ï ö ü â ê î ô û`), `ñ` kept.
/// Borrowed when there is nothing to fold, which is every ASCII word.
pub fn fold_accents(word: &str) -> Cow<'_, str> {
    fn plain(c: char) -> Option<char> {
        Some(match c {
            'á' | 'à' | 'ä' | 'â' | 'ã' => 'a',
            'é' | 'è' | 'ë' | 'ê' => 'e',
            'í' | 'ì' | 'ï' | 'î' => 'i',
            'ó' | 'ò' | 'ö' | 'ô' | 'õ' => 'o',
            'ú' | 'ù' | 'ü' | 'û' => 'u',
            _ => return None,
        })
    }
    if word.is_ascii() || !word.chars().any(|c| plain(c).is_some()) {
        return Cow::Borrowed(word);
    }
    Cow::Owned(word.chars().map(|c| plain(c).unwrap_or(c)).collect())
}

/// The form a word is counted under in top words and topics, or `None` when it is not content:
/// a stop word, a digits-only run, a single letter. An English possessive `'s` is dropped
/// (`ana's` counts as `ana`) unless the whole word is a stop word (`it's`, `let's`).
pub fn content_form(word: &str) -> Option<&str> {
    content_form_of(word, stopwords::lookup(word))
}

/// [`content_form`] for a word already looked up.
pub fn content_form_of(word: &str, stop: StopWord) -> Option<&str> {
    if stop.any() {
        return None;
    }
    let stem = match word.strip_suffix("'s") {
        Some(stem) if stopwords::is_stop_word(stem) => return None,
        Some(stem) => stem,
        None => word,
    };
    let has_letter = if stem.is_ascii() { stem.bytes().any(|b| b.is_ascii_alphabetic()) } else { stem.chars().any(char::is_alphabetic) };
    if stem.chars().nth(1).is_none() || !has_letter {
        return None;
    }
    Some(stem)
}

/// Occurrences of each word. Keys borrow from the transcript when they can (see
/// [`for_each_token`]).
#[derive(Default)]
pub struct WordCounts<'a> {
    counts: WordMap<Cow<'a, str>, u32>,
    total: u32,
}

impl<'a> WordCounts<'a> {
    /// Counts `word`; `source` is the same word borrowed from the text, if there is one.
    pub fn add(&mut self, word: &str, source: Option<&'a str>) {
        self.total += 1;
        // `get_mut` with the borrowed word first: a key is only made for a new word.
        match self.counts.get_mut(word) {
            Some(n) => *n += 1,
            None => {
                let key = match source {
                    Some(s) => Cow::Borrowed(s),
                    None => Cow::Owned(word.to_owned()),
                };
                self.counts.insert(key, 1);
            }
        }
    }

    pub fn total(&self) -> u32 {
        self.total
    }

    pub fn unique(&self) -> u32 {
        self.counts.len() as u32
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, u32)> {
        self.counts.iter().map(|(w, n)| (w.as_ref(), *n))
    }
}

/// Count descending, then word ascending (by bytes).
fn by_rank(a: &(&str, u32), b: &(&str, u32)) -> std::cmp::Ordering {
    b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0))
}

/// The first `n` of distinct-word `pairs` in rank order. Selects before sorting: most words
/// of a transcript occur once, and fully sorting thousands of ties by bytes is the slow part.
pub fn top(mut pairs: Vec<(&str, u32)>, n: usize) -> Vec<(&str, u32)> {
    if n < pairs.len() {
        pairs.select_nth_unstable_by(n, by_rank);
        pairs.truncate(n);
    }
    pairs.sort_unstable_by(by_rank);
    pairs
}

/// `(word, count)` pairs merged by word, then the first `n` in rank order.
pub fn rank<'a>(pairs: impl IntoIterator<Item = (&'a str, u32)>, n: usize) -> Vec<(&'a str, u32)> {
    let mut pairs: Vec<(&str, u32)> = pairs.into_iter().collect();
    pairs.sort_unstable_by(|a, b| a.0.cmp(b.0));
    pairs.dedup_by(|later, kept| {
        if later.0 == kept.0 {
            kept.1 += later.1;
            true
        } else {
            false
        }
    });
    top(pairs, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for_each_word(text, |w| out.push(w.to_string()));
        out
    }

    #[test]
    fn words_spelled_as_in_the_text_are_lent_from_it() {
        let mut lent = Vec::new();
        for_each_token("Hola, qué tal's it’s man\u{0303}ana data", |w, source| lent.push((w.to_string(), source)));
        let lent: Vec<(&str, Option<&str>)> = lent.iter().map(|(w, s)| (w.as_str(), *s)).collect();
        assert_eq!(
            lent,
            [("hola", None), ("qué", Some("qué")), ("tal's", Some("tal's")), ("it's", None), ("mañana", None), ("data", Some("data"))]
        );
        let mut counts = WordCounts::default();
        for_each_token("data Data data", |w, source| counts.add(w, source));
        assert_eq!((counts.total(), counts.unique()), (3, 1));
        assert_eq!(counts.iter().collect::<Vec<_>>(), [("data", 3)]);
    }

    #[test]
    fn spanish_punctuation_accents_and_enye() {
        assert_eq!(words("¿Cómo estás? ¡Mañana AÑADIMOS el diseño!"), ["cómo", "estás", "mañana", "añadimos", "el", "diseño"]);
        assert_eq!(words("«Sí», dijo—pero… ¿qué?"), ["sí", "dijo", "pero", "qué"]);
        // Decomposed accents (e + U+0301, n + U+0303) give the same words as precomposed ones.
        assert_eq!(words("este\u{0301} man\u{0303}ana"), ["esté", "mañana"]);
    }

    #[test]
    fn english_contractions_stay_whole_and_quotes_go() {
        assert_eq!(words("Don't worry, we're fine."), ["don't", "worry", "we're", "fine"]);
        assert_eq!(words("It\u{2019}s Ana\u{2019}s deck"), ["it's", "ana's", "deck"]);
        assert_eq!(words("'quoted' students' rock''n"), ["quoted", "students", "rock", "n"]);
        assert_eq!(words("follow-up 3.5 Q4"), ["follow", "up", "3", "5", "q4"]);
        assert_eq!(words("  "), Vec::<String>::new());
    }

    #[test]
    fn folding_keeps_enye() {
        assert_eq!(fold_accents("también"), "tambien");
        assert_eq!(fold_accents("pingüino"), "pinguino");
        assert_eq!(fold_accents("año"), "año");
        assert!(matches!(fold_accents("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn content_forms() {
        assert_eq!(content_form("pricing"), Some("pricing"));
        assert_eq!(content_form("ana's"), Some("ana"));
        assert_eq!(content_form("let's"), None);
        assert_eq!(content_form("the"), None);
        assert_eq!(content_form("2025"), None);
        assert_eq!(content_form("x"), None);
        assert_eq!(content_form("q4"), Some("q4"));
        assert_eq!(content_form("diseño"), Some("diseño"));
    }

    #[test]
    fn ranking_merges_then_orders_by_count_then_word() {
        let ranked = rank([("b", 2), ("a", 2), ("c", 1), ("b", 1), ("d", 5)], 3);
        assert_eq!(ranked, [("d", 5), ("b", 3), ("a", 2)]);
        assert_eq!(rank([("b", 1), ("a", 1)], 10), [("a", 1), ("b", 1)]);
        assert!(rank([("a", 1)], 0).is_empty());
        // Selection then sort gives the same as a full sort, ties broken by word.
        let many: Vec<(String, u32)> = (0..500u32).map(|i| (format!("w{:03}", (i * 37) % 500), i % 7)).collect();
        let pairs: Vec<(&str, u32)> = many.iter().map(|(w, n)| (w.as_str(), *n)).collect();
        let mut sorted = pairs.clone();
        sorted.sort_by(by_rank);
        assert_eq!(top(pairs, 40), sorted[..40]);
    }
}
