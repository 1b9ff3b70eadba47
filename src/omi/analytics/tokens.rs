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

use super::stopwords;

/// FNV-1a: the word counts hash short keys millions of times on ingest; SipHash's protection
/// against chosen-key flooding is not needed for a per-memory map that is dropped right away.
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
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

pub type FnvMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

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

/// Calls `word` with each lower-cased word of `text`, in order. One reused buffer: no
/// allocation per word.
pub fn for_each_word(text: &str, mut word: impl FnMut(&str)) {
    let mut buf = String::with_capacity(32);
    // An apostrophe seen after a letter: kept only if another letter follows.
    let mut apostrophe = false;
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            if apostrophe {
                buf.push('\'');
                apostrophe = false;
            }
            buf.push(c.to_ascii_lowercase());
        } else if c.is_ascii() {
            if is_apostrophe(c) && !buf.is_empty() && !apostrophe {
                apostrophe = true;
                continue;
            }
            if !buf.is_empty() {
                word(&buf);
                buf.clear();
            }
            apostrophe = false;
        } else if c.is_alphanumeric() {
            if apostrophe {
                buf.push('\'');
                apostrophe = false;
            }
            buf.extend(c.to_lowercase());
        } else if ('\u{0300}'..='\u{036f}').contains(&c) && !buf.is_empty() && !apostrophe {
            // A combining mark belongs to the letter before it.
            if let Some(composed) = buf.chars().next_back().and_then(|base| compose(base, c)) {
                buf.pop();
                buf.push(composed);
            }
        } else if is_apostrophe(c) && !buf.is_empty() && !apostrophe {
            apostrophe = true;
        } else {
            if !buf.is_empty() {
                word(&buf);
                buf.clear();
            }
            apostrophe = false;
        }
    }
    if !buf.is_empty() {
        word(&buf);
    }
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
    if stopwords::is_stop_word(word) {
        return None;
    }
    let stem = word.strip_suffix("'s").unwrap_or(word);
    if stem.chars().nth(1).is_none() || !stem.chars().any(char::is_alphabetic) || stopwords::is_stop_word(stem) {
        return None;
    }
    Some(stem)
}

/// Occurrences of each word.
#[derive(Default)]
pub struct WordCounts {
    counts: FnvMap<String, u32>,
    total: u32,
}

impl WordCounts {
    pub fn add(&mut self, word: &str) {
        self.total += 1;
        // `get_mut` with the borrowed word first: the key is only allocated for a new word.
        match self.counts.get_mut(word) {
            Some(n) => *n += 1,
            None => {
                self.counts.insert(word.to_owned(), 1);
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
        self.counts.iter().map(|(w, n)| (w.as_str(), *n))
    }
}

/// `(word, count)` pairs merged by word, sorted by count descending then word ascending (by
/// bytes), first `n` kept.
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
    pairs.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    pairs.truncate(n);
    pairs
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
    }
}
