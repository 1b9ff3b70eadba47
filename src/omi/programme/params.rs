//! Query parameters of the programme's routes, validated into typed values (a bad value is a
//! 400 naming the parameter).

use crate::error::Error;
use crate::omi::query::{range, Params};

const DAY_MS: i64 = 86_400_000;
/// A mentor's analytics cover the last twelve weeks unless asked otherwise.
pub const DEFAULT_PERIOD_DAYS: i64 = 84;
pub const MAX_PERIOD_DAYS: i64 = 732;
pub const DEFAULT_TOP_WORDS: u32 = 10;
pub const MAX_TOP_WORDS: u32 = 50;
pub const DEFAULT_BATCHES: u32 = 20;

fn whole(p: &Params, name: &str, default: u32, min: u32, max: u32) -> Result<u32, Error> {
    match p.get(name) {
        None => Ok(default),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| Error::invalid_field(name, format!("must be a whole number from {min} to {max}"))),
    }
}

/// `[from, to)`: `from`/`to` as the log routes take them; by default the [`DEFAULT_PERIOD_DAYS`]
/// up to the end of today (UTC); at most [`MAX_PERIOD_DAYS`].
pub fn period(p: &Params, now_ms: i64) -> Result<(i64, i64), Error> {
    let (from, to) = range(p)?;
    let to = to.unwrap_or_else(|| (now_ms.div_euclid(DAY_MS) + 1) * DAY_MS);
    let from = from.unwrap_or(to - DEFAULT_PERIOD_DAYS * DAY_MS);
    if from >= to {
        return Err(Error::invalid_field("to", "must be after from"));
    }
    if to - from > MAX_PERIOD_DAYS * DAY_MS {
        return Err(Error::invalid_field("from", format!("the period may span at most {MAX_PERIOD_DAYS} days")));
    }
    Ok((from, to))
}

pub fn top_words(p: &Params) -> Result<u32, Error> {
    whole(p, "top", DEFAULT_TOP_WORDS, 1, MAX_TOP_WORDS)
}

/// `weeks` and `inactive_days` of the Mentors page.
pub fn activity(p: &Params) -> Result<(u32, u32), Error> {
    use super::activity::{DEFAULT_INACTIVE_DAYS, DEFAULT_WEEKS, MAX_INACTIVE_DAYS, MAX_WEEKS};
    Ok((whole(p, "weeks", DEFAULT_WEEKS, 1, MAX_WEEKS)?, whole(p, "inactive_days", DEFAULT_INACTIVE_DAYS, 1, MAX_INACTIVE_DAYS)?))
}

/// How many transcript batches a page reads: each is one R2 read, so at most what the
/// subrequest budget leaves after the page's D1 queries.
pub fn batches_per_page(p: &Params, budget: u32) -> Result<u32, Error> {
    let max = budget.saturating_sub(5).max(1);
    whole(p, "limit", DEFAULT_BATCHES.min(max), 1, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn periods_default_to_twelve_weeks_and_are_bounded() {
        let now = 1_736_942_400_000; // 2025-01-15T12:00Z
        let (from, to) = period(&params(&[]), now).unwrap();
        assert_eq!(to, 1_736_985_600_000); // 2025-01-16T00:00Z
        assert_eq!(to - from, 84 * DAY_MS);
        let (from, to) = period(&params(&[("from", "2025-01-01"), ("to", "2025-01-31")]), now).unwrap();
        assert_eq!((from, to), (1_735_689_600_000, 1_735_689_600_000 + 31 * DAY_MS));
        assert!(period(&params(&[("from", "2020-01-01"), ("to", "2025-01-01")]), now).unwrap_err().to_string().starts_with("from"));
        assert!(period(&params(&[("from", "2026-01-01")]), now).unwrap_err().to_string().starts_with("to"));
    }

    #[test]
    fn counts_are_checked() {
        assert_eq!(top_words(&params(&[])).unwrap(), 10);
        assert!(top_words(&params(&[("top", "0")])).is_err());
        assert_eq!(activity(&params(&[("weeks", "4"), ("inactive_days", "30")])).unwrap(), (4, 30));
        assert!(activity(&params(&[("weeks", "54")])).unwrap_err().to_string().starts_with("weeks"));
        assert_eq!(batches_per_page(&params(&[]), 50).unwrap(), 20);
        assert_eq!(batches_per_page(&params(&[]), 12).unwrap(), 7);
        assert!(batches_per_page(&params(&[("limit", "46")]), 50).is_err());
        assert_eq!(batches_per_page(&params(&[("limit", "45")]), 50).unwrap(), 45);
    }
}
