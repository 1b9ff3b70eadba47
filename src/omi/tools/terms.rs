//! Search terms for a question asked by voice. Omi's assistant passes text like "what did I
//! promise Ana" or "Guadalajara team": the words that carry meaning are the content words
//! (stop words of English and Spanish dropped, `analytics::tokens::content_form`). The tools
//! first look for sessions with all of them, and when none has every word, with any of them,
//! so "the team from Guadalajara" still finds "el equipo de Guadalajara".
//!
//! Each term is a quoted FTS5 prefix term, so nothing the caller says is FTS syntax.

use crate::omi::analytics::tokens::{content_form, for_each_word};

/// More words than this in a spoken question add noise, not precision.
const MAX_TERMS: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchTerms {
    /// Every term (FTS5 implicit AND).
    pub all: String,
    /// Any term (`OR`), when there is more than one.
    pub any: Option<String>,
}

/// `None` when the text has no word at all.
pub fn search_terms(text: &str) -> Option<SearchTerms> {
    let (mut content, mut every) = (Vec::<String>::new(), Vec::<String>::new());
    for_each_word(text, |w| {
        if let Some(form) = content_form(w) {
            if !content.iter().any(|c| c == form) {
                content.push(form.to_string());
            }
        }
        if !every.iter().any(|c| c == w) {
            every.push(w.to_string());
        }
    });
    // A question made only of stop words ("who is he") still searches for what it says.
    let words = if content.is_empty() { every } else { content };
    let terms: Vec<String> = words.iter().take(MAX_TERMS).map(|w| format!("\"{}\"*", w.replace('"', ""))).collect();
    if terms.is_empty() {
        return None;
    }
    let any = (terms.len() > 1).then(|| terms.join(" OR "));
    Some(SearchTerms { all: terms.join(" "), any })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_words_become_quoted_prefix_terms() {
        let t = search_terms("What did I promise Ana's team?").unwrap();
        assert_eq!(t.all, "\"promise\"* \"ana\"* \"team\"*");
        assert_eq!(t.any.as_deref(), Some("\"promise\"* OR \"ana\"* OR \"team\"*"));
        let t = search_terms("el equipo de Guadalajara").unwrap();
        assert_eq!(t.all, "\"equipo\"* \"guadalajara\"*");
        assert_eq!(search_terms("Jorge").unwrap(), SearchTerms { all: "\"jorge\"*".into(), any: None });
    }

    #[test]
    fn syntax_is_text_and_stop_words_alone_still_search() {
        let t = search_terms("a\" OR title:* NEAR(x)").unwrap();
        assert!(!t.all.contains(':') && !t.all.contains('('), "{}", t.all);
        assert_eq!(search_terms("who is he").unwrap().all, "\"who\"* \"is\"* \"he\"*");
        assert_eq!(search_terms(" ¿? "), None);
        let long = "alpha beta gamma delta epsilon zeta eta theta iota kappa";
        assert_eq!(search_terms(long).unwrap().all.matches('*').count(), MAX_TERMS);
    }
}
