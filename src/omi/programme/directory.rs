//! The mentor directory: people (mentors) with a name, a cohort and their mentees' names, and
//! the Omi uids that are theirs. A mentor who changes phone or account gets a new uid; the
//! directory is what makes those one person on the dashboard. A uid belongs to at most one
//! person: saving a person with a uid takes it from whoever had it.
//!
//! Pure: the request body read into a checked [`PersonInput`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;
use crate::omi::keys::check_key_part;

pub const MAX_NAME_CHARS: usize = 120;
pub const MAX_COHORT_CHARS: usize = 60;
pub const MAX_MENTEES: usize = 50;
/// More devices than this for one person is a mistake, not a mentor.
pub const MAX_UIDS: usize = 20;

/// A person as saved (`PUT /api/omi/directory/{personId}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonInput {
    pub name: String,
    pub cohort: Option<String>,
    pub mentees: Vec<String>,
    pub uids: Vec<String>,
}

/// A person id is a key part like a uid (`[A-Za-z0-9._-]`, 1-128): it appears in URLs.
pub fn check_person_id(id: &str) -> Result<(), Error> {
    check_key_part(id).map_err(|why| Error::invalid_field("personId", why))
}

/// One line of text: whitespace collapsed, no control characters, at most `max` characters.
fn line(value: &Value, field: &str, max: usize) -> Result<String, Error> {
    let Value::String(s) = value else { return Err(Error::invalid_field(field, "must be a string")) };
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().any(char::is_control) {
        return Err(Error::invalid_field(field, "must not contain control characters"));
    }
    if s.chars().count() > max {
        return Err(Error::invalid_field(field, format!("must be at most {max} characters")));
    }
    Ok(s)
}

fn list<'a>(obj: &'a serde_json::Map<String, Value>, key: &str, max: usize) -> Result<&'a [Value], Error> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) if a.len() <= max => Ok(a),
        Some(Value::Array(_)) => Err(Error::invalid_field(key, format!("may list at most {max}"))),
        Some(_) => Err(Error::invalid_field(key, "must be an array of strings")),
    }
}

/// `{"name": "…", "cohort": "…", "mentees": ["…"], "uids": ["…"]}`: a name is required, the
/// rest optional; duplicates are dropped (uids exactly, mentee names ignoring case).
pub fn parse_person(body: &Value) -> Result<PersonInput, Error> {
    let obj = body.as_object().ok_or_else(|| Error::bad_request("invalid_json", "body must be a JSON object"))?;
    let name = match obj.get("name") {
        None | Some(Value::Null) => return Err(Error::bad_request("missing_field", "name: is required")),
        Some(v) => line(v, "name", MAX_NAME_CHARS)?,
    };
    if name.is_empty() {
        return Err(Error::invalid_field("name", "must not be empty"));
    }
    let cohort = match obj.get("cohort") {
        None | Some(Value::Null) => None,
        Some(v) => Some(line(v, "cohort", MAX_COHORT_CHARS)?).filter(|c| !c.is_empty()),
    };
    let mut mentees: Vec<String> = Vec::new();
    for (i, v) in list(obj, "mentees", MAX_MENTEES)?.iter().enumerate() {
        let m = line(v, &format!("mentees[{i}]"), MAX_NAME_CHARS)?;
        if !m.is_empty() && !mentees.iter().any(|x| x.to_lowercase() == m.to_lowercase()) {
            mentees.push(m);
        }
    }
    let mut uids: Vec<String> = Vec::new();
    for (i, v) in list(obj, "uids", MAX_UIDS)?.iter().enumerate() {
        let field = format!("uids[{i}]");
        let Value::String(uid) = v else { return Err(Error::invalid_field(&field, "must be a string")) };
        check_key_part(uid).map_err(|why| Error::invalid_field(&field, why))?;
        if !uids.contains(uid) {
            uids.push(uid.clone());
        }
    }
    Ok(PersonInput { name, cohort, mentees, uids })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_person_is_read_and_tidied() {
        let p = parse_person(&json!({"name": "  Lucía   Pérez ", "cohort": "2025-A", "mentees": ["Ana", "ana", " Jorge "],
            "uids": ["uid-1", "uid-2", "uid-1"], "extra": true}))
        .unwrap();
        assert_eq!(
            p,
            PersonInput {
                name: "Lucía Pérez".into(),
                cohort: Some("2025-A".into()),
                mentees: vec!["Ana".into(), "Jorge".into()],
                uids: vec!["uid-1".into(), "uid-2".into()]
            }
        );
        let bare = parse_person(&json!({"name": "Sam", "cohort": " "})).unwrap();
        assert_eq!((bare.cohort, bare.mentees.len(), bare.uids.len()), (None, 0, 0));
    }

    #[test]
    fn bad_fields_are_named() {
        let many: Vec<String> = (0..21).map(|i| format!("u{i}")).collect();
        for (body, field) in [
            (json!({}), "name"),
            (json!({"name": ""}), "name"),
            (json!({"name": 5}), "name"),
            (json!({"name": "x".repeat(121)}), "name"),
            (json!({"name": "a\u{7}b"}), "name"),
            (json!({"name": "a", "cohort": 1}), "cohort"),
            (json!({"name": "a", "mentees": "Ana"}), "mentees"),
            (json!({"name": "a", "mentees": [1]}), "mentees[0]"),
            (json!({"name": "a", "uids": ["ok", "../x"]}), "uids[1]"),
            (json!({"name": "a", "uids": many}), "uids"),
        ] {
            let e = parse_person(&body).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(e.to_string().starts_with(field), "{body}: {e}");
        }
        assert_eq!(parse_person(&json!([1])).unwrap_err().code(), "invalid_json");
        assert!(check_person_id("lucia-perez").is_ok());
        assert!(check_person_id("a b").is_err());
    }
}
