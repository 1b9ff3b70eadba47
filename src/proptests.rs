//! Hostile input for the pure core: property tests that feed the parsers arbitrary bytes,
//! strings and JSON and require an answer (Ok or a 4xx error), never a panic. Well over
//! 100,000 cases in all (see `CASES`).

use proptest::prelude::*;
use serde_json::{json, Value};

use crate::files::path::{AppId, FilePath};
use crate::omi::cursor::Cursor;
use crate::omi::payload::{memory_from_value, parse_json, transcript_batch_from_value, unwrap_legacy};
use crate::omi::query::{logs_query, Params};
use crate::omi::{keys, signature};

const CASES: u32 = 20_000;

fn config() -> ProptestConfig {
    ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() }
}

/// Arbitrary JSON, biased towards the shapes Omi sends so that deep fields get exercised.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)),
        ".{0,12}".prop_map(Value::String),
        Just(json!("2025-01-02T03:04:05Z")),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::hash_map(
                prop_oneof![
                    Just("id".to_string()),
                    Just("created_at".to_string()),
                    Just("started_at".to_string()),
                    Just("finished_at".to_string()),
                    Just("transcript_segments".to_string()),
                    Just("structured".to_string()),
                    Just("title".to_string()),
                    Just("action_items".to_string()),
                    Just("completed".to_string()),
                    Just("text".to_string()),
                    Just("discarded".to_string()),
                    Just("memory".to_string()),
                    Just("segments".to_string()),
                    Just("session_id".to_string()),
                    Just("start".to_string()),
                    Just("end".to_string()),
                    "[a-z_]{1,8}",
                ],
                inner,
                0..8,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn assert_client_error(e: crate::error::Error) -> Result<(), TestCaseError> {
    prop_assert_eq!(e.status() / 100, 4, "{}", e);
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn payload_parser_never_panics_on_bytes(body in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(v) = parse_json(&body) {
            if let Err(e) = memory_from_value(&v) { assert_client_error(e)?; }
        }
    }

    #[test]
    fn payload_parser_never_panics_on_json(v in json_value()) {
        match memory_from_value(&v) {
            Ok(m) => { prop_assert!(keys::check_key_part(&m.id).is_ok()); prop_assert!(m.action_items_open <= m.action_items_total); }
            Err(e) => assert_client_error(e)?,
        }
        if let Err(e) = transcript_batch_from_value(v.clone()) { assert_client_error(e)?; }
        if let Ok(r) = unwrap_legacy(v) { let _ = memory_from_value(&r.memory); }
    }

    #[test]
    fn cursor_decoder_accepts_only_what_it_encodes(s in ".{0,80}", created in 0i64..i64::MAX, seq in 0i64..i64::MAX) {
        if let Some(c) = Cursor::decode(&s) {
            prop_assert_eq!(Cursor::decode(&c.encode()), Some(c));
        }
        let c = Cursor { created_ms: created, seq };
        prop_assert_eq!(Cursor::decode(&c.encode()), Some(c));
    }

    #[test]
    fn signature_parser_never_panics(header in ".{0,200}", t in any::<i64>(), body in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = signature::parse_header(&header);
        let _ = signature::verify("whsec_x", &header, "uid", &body, t);
        let good = format!("t={t},v1={}", signature::sign("whsec_x", t, "uid", &body));
        prop_assert!(signature::verify("whsec_x", &good, "uid", &body, t).is_ok());
    }

    #[test]
    fn query_parser_never_panics(pairs in prop::collection::vec((prop_oneof![
        Just("limit".to_string()), Just("cursor".to_string()), Just("from".to_string()), Just("to".to_string()),
        Just("category".to_string()), Just("q".to_string()), Just("userId".to_string()),
        Just("include_discarded".to_string()), Just("full".to_string())], ".{0,40}"), 0..6)) {
        if let Err(e) = logs_query(&Params::new(pairs)) { assert_client_error(e)?; }
    }

    #[test]
    fn key_parts_that_pass_are_safe_in_keys(s in ".{0,140}") {
        if keys::check_key_part(&s).is_ok() {
            let key = keys::memory_key(&s, &s, 1_700_000_000_000);
            prop_assert_eq!(keys::parse_memory_key(&key), Some((s.clone(), s.clone(), 1_700_000_000_000)));
            prop_assert!(!s.contains('/') && s != "." && s != "..");
        }
    }

    #[test]
    fn path_normaliser_never_lets_a_traversal_through(raw in prop_oneof![
        ".{0,60}",
        prop::collection::vec(prop_oneof![Just("..".to_string()), Just(".".to_string()), Just("".to_string()),
            Just("%2e%2e".to_string()), Just("%2F".to_string()), Just("%00".to_string()), Just("%ff".to_string()),
            Just("\\".to_string()), "[a-z]{1,6}"], 0..6).prop_map(|parts| parts.join("/")),
    ]) {
        match FilePath::parse(&raw) {
            Ok(p) => {
                let s = p.as_str();
                prop_assert!(!s.is_empty() && s.len() <= 1024 && !s.starts_with('/') && !s.contains('\0'));
                prop_assert!(s.split('/').all(|seg| !seg.is_empty() && seg != ".." && seg != "."), "{s:?}");
            }
            Err(e) => assert_client_error(e)?,
        }
        let segments: Vec<&str> = raw.split('/').collect();
        if let Ok(p) = FilePath::from_url_segments(&segments) {
            prop_assert!(p.as_str().split('/').all(|seg| !seg.is_empty() && seg != ".." && seg != "."));
        }
        if let Err(e) = AppId::parse(&raw) { assert_client_error(e)?; }
    }
}
