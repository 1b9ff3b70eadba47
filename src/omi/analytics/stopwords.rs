//! English and Spanish stop words: the words a mentorship conversation is made of whatever its
//! subject (articles, pronouns, auxiliaries, connectors, greetings and spoken fillers), left out
//! of top words and topics and counted to guess a transcript's language.
//!
//! Written for spoken transcripts rather than prose: fillers such as `yeah`, `okay`, `um`,
//! `bueno`, `pues`, `vale` are in. Both lists are stored accent-folded (`tambien`, `mas`, `que`)
//! and a word is looked up folded, so `también` and a transcript's accentless `tambien` are
//! both found. `ñ` is a letter of its own and is kept. The lists stay sorted for review; lookups
//! go through one hash table built on first use (one probe instead of two binary searches, for
//! every distinct word of every memory).
//! English contractions are whole words (`don't`); the tokenizer writes every apostrophe as `'`.

use std::sync::OnceLock;

use super::tokens::{fold_accents, WordMap};

pub const ENGLISH: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "against",
    "ago",
    "ah",
    "all",
    "almost",
    "along",
    "already",
    "also",
    "although",
    "always",
    "am",
    "among",
    "an",
    "and",
    "another",
    "any",
    "anybody",
    "anyone",
    "anything",
    "anyway",
    "are",
    "aren't",
    "around",
    "as",
    "at",
    "away",
    "back",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "can't",
    "cannot",
    "could",
    "couldn't",
    "did",
    "didn't",
    "do",
    "does",
    "doesn't",
    "doing",
    "don't",
    "done",
    "down",
    "during",
    "each",
    "either",
    "else",
    "enough",
    "even",
    "ever",
    "every",
    "everybody",
    "everyone",
    "everything",
    "few",
    "for",
    "from",
    "further",
    "get",
    "gets",
    "getting",
    "go",
    "goes",
    "going",
    "gonna",
    "got",
    "gotta",
    "had",
    "hadn't",
    "has",
    "hasn't",
    "have",
    "haven't",
    "having",
    "he",
    "he'd",
    "he'll",
    "he's",
    "her",
    "here",
    "here's",
    "hers",
    "herself",
    "hey",
    "hi",
    "him",
    "himself",
    "his",
    "hmm",
    "how",
    "how's",
    "however",
    "i",
    "i'd",
    "i'll",
    "i'm",
    "i've",
    "if",
    "in",
    "into",
    "is",
    "isn't",
    "it",
    "it'd",
    "it'll",
    "it's",
    "its",
    "itself",
    "just",
    "kind",
    "know",
    "let",
    "let's",
    "like",
    "lot",
    "lots",
    "maybe",
    "me",
    "might",
    "mine",
    "more",
    "most",
    "much",
    "must",
    "my",
    "myself",
    "need",
    "needs",
    "never",
    "no",
    "nobody",
    "nor",
    "not",
    "nothing",
    "now",
    "of",
    "off",
    "oh",
    "ok",
    "okay",
    "on",
    "once",
    "one",
    "only",
    "or",
    "other",
    "others",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "please",
    "pretty",
    "quite",
    "rather",
    "really",
    "right",
    "said",
    "same",
    "say",
    "says",
    "see",
    "she",
    "she'd",
    "she'll",
    "she's",
    "should",
    "shouldn't",
    "so",
    "some",
    "somebody",
    "someone",
    "something",
    "sometimes",
    "somewhat",
    "sort",
    "still",
    "such",
    "sure",
    "than",
    "thank",
    "thanks",
    "that",
    "that's",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "there's",
    "these",
    "they",
    "they'd",
    "they'll",
    "they're",
    "they've",
    "thing",
    "things",
    "think",
    "this",
    "those",
    "though",
    "through",
    "thus",
    "till",
    "to",
    "too",
    "toward",
    "towards",
    "uh",
    "um",
    "under",
    "until",
    "up",
    "upon",
    "us",
    "very",
    "wanna",
    "was",
    "wasn't",
    "way",
    "we",
    "we'd",
    "we'll",
    "we're",
    "we've",
    "well",
    "went",
    "were",
    "weren't",
    "what",
    "what's",
    "whatever",
    "when",
    "when's",
    "where",
    "where's",
    "whether",
    "which",
    "while",
    "who",
    "who's",
    "whom",
    "whose",
    "why",
    "why's",
    "will",
    "with",
    "within",
    "without",
    "won't",
    "would",
    "wouldn't",
    "yeah",
    "yes",
    "yet",
    "you",
    "you'd",
    "you'll",
    "you're",
    "you've",
    "your",
    "yours",
    "yourself",
    "yourselves",
];

pub const SPANISH: &[&str] = &[
    "a", "aca", "ademas", "adios", "ahi", "ahora", "al", "algo", "alguien", "algun", "alguna", "algunas", "alguno", "algunos", "alla",
    "alli", "ante", "antes", "aquel", "aquella", "aquellas", "aquellos", "aqui", "asi", "aun", "aunque", "bajo", "bastante", "bien",
    "bueno", "cada", "casi", "como", "con", "conmigo", "contigo", "contra", "cosa", "cosas", "creo", "cual", "cuales", "cuando", "cuanto",
    "cuantos", "de", "decir", "del", "desde", "despues", "dice", "digo", "dijo", "donde", "dos", "durante", "e", "eh", "el", "ella",
    "ellas", "ello", "ellos", "en", "entonces", "entre", "era", "eran", "eras", "eres", "es", "esa", "esas", "ese", "eso", "esos", "esta",
    "estaba", "estaban", "estado", "estamos", "estan", "estar", "estas", "este", "esto", "estos", "estoy", "estuvo", "fue", "fueron",
    "fui", "gracias", "ha", "habia", "habian", "hace", "hacemos", "hacen", "hacer", "haces", "hacia", "hago", "han", "has", "hasta", "hay",
    "he", "hemos", "hizo", "hola", "hubo", "la", "las", "le", "les", "lo", "los", "luego", "mas", "me", "mejor", "mi", "mia", "mias",
    "mientras", "mio", "mios", "mis", "mismo", "mismos", "mm", "mucha", "muchas", "mucho", "muchos", "muy", "nada", "nadie", "ni",
    "ninguna", "ninguno", "no", "nos", "nosotras", "nosotros", "nuestra", "nuestras", "nuestro", "nuestros", "nunca", "o", "ok", "okey",
    "os", "otra", "otras", "otro", "otros", "para", "pero", "poco", "por", "porque", "pos", "puede", "pueden", "puedo", "pues", "que",
    "quien", "quienes", "se", "sea", "sean", "segun", "ser", "sera", "si", "sido", "siempre", "sin", "sino", "sobre", "sois", "solo",
    "somos", "son", "soy", "su", "sus", "suya", "suyo", "tal", "tambien", "tampoco", "tan", "tanto", "te", "tenemos", "tener", "tenga",
    "tengo", "tenia", "tenido", "ti", "tiene", "tienen", "tienes", "toda", "todas", "todavia", "todo", "todos", "tras", "tu", "tus",
    "tuve", "tuya", "tuyo", "u", "un", "una", "unas", "uno", "unos", "usted", "ustedes", "va", "vale", "vamos", "van", "varios", "vas",
    "vaya", "ver", "vez", "vosotros", "voy", "y", "ya", "yo",
];

/// Which lists a word is in. A word in both (`a`, `no`, `me`, `he`) says nothing about language.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StopWord {
    pub english: bool,
    pub spanish: bool,
}

impl StopWord {
    pub fn any(self) -> bool {
        self.english || self.spanish
    }
}

fn table() -> &'static WordMap<&'static str, StopWord> {
    static TABLE: OnceLock<WordMap<&'static str, StopWord>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = WordMap::with_capacity_and_hasher(ENGLISH.len() + SPANISH.len(), Default::default());
        for w in ENGLISH {
            table.entry(*w).or_insert_with(StopWord::default).english = true;
        }
        for w in SPANISH {
            table.entry(*w).or_insert_with(StopWord::default).spanish = true;
        }
        table
    })
}

/// Looks `word` up in both lists; `word` is lower-case, accents are folded here.
pub fn lookup(word: &str) -> StopWord {
    table().get(fold_accents(word).as_ref()).copied().unwrap_or_default()
}

pub fn is_stop_word(word: &str) -> bool {
    lookup(word).any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_sorted_unique_lower_case_and_folded() {
        for list in [ENGLISH, SPANISH] {
            for pair in list.windows(2) {
                assert!(pair[0].as_bytes() < pair[1].as_bytes(), "{:?} must sort before {:?}", pair[0], pair[1]);
            }
            for w in list {
                assert_eq!(w.to_lowercase(), *w);
                assert_eq!(fold_accents(w), *w, "{w} must be stored folded");
            }
        }
        assert!((150..=300).contains(&ENGLISH.len()), "{}", ENGLISH.len());
        assert!((150..=300).contains(&SPANISH.len()), "{}", SPANISH.len());
    }

    #[test]
    fn accented_and_accentless_spellings_match() {
        for w in ["también", "tambien", "más", "qué", "está", "él", "sí", "después", "cómo"] {
            assert!(lookup(w).spanish, "{w}");
        }
        assert_eq!(lookup("the"), StopWord { english: true, spanish: false });
        assert_eq!(lookup("don't"), StopWord { english: true, spanish: false });
        assert_eq!(lookup("no"), StopWord { english: true, spanish: true });
        assert!(!is_stop_word("mentor"));
        assert!(!is_stop_word("año"));
        assert!(!is_stop_word("pricing"));
    }
}
