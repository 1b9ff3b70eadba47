//! What makes two deliveries of a memory "the same content", whatever their bytes (pure).
//!
//! The webhook stores Omi's wire bytes (compact JSON from Python); an import stores a memory
//! someone else serialised again (the old app's `JSON.stringify`, an export, `serde_json`).
//! Those bytes differ for the same memory: key order, whitespace, escapes, and numbers (Python
//! writes `12.0` where JavaScript writes `12`). The byte hash still names the object and is what
//! reads verify; the *content hash* defined here is what deduplicates versions, so the same
//! memory arriving by webhook and by import is one version, not two.
//!
//! The canonical form: objects with keys sorted (by UTF-8 bytes), no whitespace, strings as
//! `serde_json` escapes them, every number as the IEEE double it denotes (integral values below
//! 2^53 written as integers, others in `serde_json`'s shortest form). At the top level the keys
//! that only say *whose* memory it is (`uid`, `userId`, `user_id`) are left out: an NDJSON
//! import record carries its mentor inside the memory, Omi's delivery carries it in the URL.

use serde_json::Value;

use crate::store::digest::sha256_hex;

/// Top-level keys that attribute a memory rather than describe it.
const ATTRIBUTION_KEYS: [&str; 3] = ["uid", "userId", "user_id"];

/// Integers a double holds exactly.
const EXACT_INTEGER_LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53

/// Hex SHA-256 of the canonical form of `memory`.
pub fn content_sha256(memory: &Value) -> String {
    sha256_hex(&canonical_bytes(memory))
}

/// The canonical form of a memory (attribution keys left out at the top level).
pub fn canonical_bytes(memory: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    match memory {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().filter(|k| !ATTRIBUTION_KEYS.contains(&k.as_str())).collect();
            keys.sort();
            write_object(&mut out, keys.into_iter().map(|k| (k, &map[k])));
        }
        other => write_value(&mut out, other),
    }
    out
}

fn write_object<'a>(out: &mut Vec<u8>, entries: impl Iterator<Item = (&'a String, &'a Value)>) {
    out.push(b'{');
    for (i, (k, v)) in entries.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(out, k);
        out.push(b':');
        write_value(out, v);
    }
    out.push(b'}');
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    // serde_json's escaping: deterministic, and what both sides are parsed back into anyway.
    out.extend(serde_json::to_vec(s).unwrap_or_default());
}

fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            write_object(out, keys.into_iter().map(|k| (k, &map[k])));
        }
    }
}

fn write_number(out: &mut Vec<u8>, n: &serde_json::Number) {
    let x = n.as_f64().unwrap_or(f64::NAN);
    if x.is_finite() && x.fract() == 0.0 && x.abs() < EXACT_INTEGER_LIMIT {
        out.extend((x as i64).to_string().into_bytes());
    } else if let Some(f) = serde_json::Number::from_f64(x) {
        out.extend(f.to_string().into_bytes());
    } else {
        // Not reachable from parsed JSON (it has no NaN or infinity); keep the text.
        out.extend(n.to_string().into_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn the_same_memory_serialised_by_python_and_javascript_has_one_content_hash() {
        // Python's json.dumps(separators=(",", ":"), ensure_ascii=False), in the backend's order.
        let python = r#"{"id":"m1","created_at":"2025-01-01T00:00:00+00:00","transcript_segments":[{"text":"¿Qué tal? \"hi\"","start":0.0,"end":12.5,"speaker_id":1}],"structured":{"title":"Plan","emoji":"🧭"},"discarded":false,"x":1e-05}"#;
        // What JavaScript's JSON.stringify made of it in the old app's wrapper (pretty, 12.0 → 12).
        let javascript = "{\n  \"id\": \"m1\",\n  \"created_at\": \"2025-01-01T00:00:00+00:00\",\n  \"transcript_segments\": [\n    {\"text\": \"\\u00bfQu\\u00e9 tal? \\\"hi\\\"\", \"start\": 0, \"end\": 12.5, \"speaker_id\": 1}\n  ],\n  \"structured\": {\"emoji\": \"\\ud83e\\udded\", \"title\": \"Plan\"},\n  \"discarded\": false,\n  \"x\": 0.00001\n}";
        // serde_json's own re-serialisation (sorted keys), as imports stored it.
        let rust = serde_json::to_string(&parse(python)).unwrap();
        let h = content_sha256(&parse(python));
        assert_eq!(content_sha256(&parse(javascript)), h);
        assert_eq!(content_sha256(&parse(&rust)), h);
        assert_ne!(sha256_hex(python.as_bytes()), sha256_hex(rust.as_bytes()), "the byte hashes differ: that is the point");
    }

    #[test]
    fn attribution_keys_are_left_out_only_at_the_top() {
        let wire = json!({"id": "m1", "created_at": "2025-01-01T00:00:00Z"});
        let record = json!({"id": "m1", "created_at": "2025-01-01T00:00:00Z", "uid": "alice", "userId": "alice"});
        assert_eq!(content_sha256(&wire), content_sha256(&record));
        let nested = json!({"id": "m1", "created_at": "2025-01-01T00:00:00Z", "structured": {"uid": "x"}});
        assert_ne!(content_sha256(&wire), content_sha256(&nested));
    }

    #[test]
    fn changed_content_changes_the_hash() {
        let a = json!({"id": "m1", "structured": {"title": "a"}});
        let b = json!({"id": "m1", "structured": {"title": "b"}});
        assert_ne!(content_sha256(&a), content_sha256(&b));
        // Types matter: "1" is not 1, null is not absent.
        assert_ne!(content_sha256(&json!({"a": "1"})), content_sha256(&json!({"a": 1})));
        assert_ne!(content_sha256(&json!({"a": null})), content_sha256(&json!({})));
    }

    #[test]
    fn canonical_numbers() {
        let c = |s: &str| String::from_utf8(canonical_bytes(&parse(s))).unwrap();
        assert_eq!(
            c(r#"{"b":1.0,"a":-0.0,"c":2.5,"d":1e21,"e":12345678901234567890}"#),
            r#"{"a":0,"b":1,"c":2.5,"d":1e+21,"e":1.2345678901234567e+19}"#
        );
        assert_eq!(c("[1, 2.50, 3e0]"), "[1,2.5,3]");
    }
}
