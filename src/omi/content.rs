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

use std::io::{self, Write};

use serde_json::Value;
use sha2::{Digest, Sha256};

#[cfg(test)]
use crate::store::digest::sha256_hex;

/// Top-level keys that attribute a memory rather than describe it.
const ATTRIBUTION_KEYS: [&str; 3] = ["uid", "userId", "user_id"];

/// Integers a double holds exactly.
const EXACT_INTEGER_LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53

/// Hex SHA-256 of the canonical form of `memory`, hashed as it is written: the canonical bytes
/// are never held (an 8 MB memory of photos would need another 8 MB, more while the buffer
/// grows; issue 16's peak-memory figure).
pub fn content_sha256(memory: &Value) -> String {
    let mut hasher = Hashing(Sha256::new());
    write_canonical(&mut hasher, memory);
    hex::encode(hasher.0.finalize())
}

/// The canonical form of a memory (attribution keys left out at the top level).
pub fn canonical_bytes(memory: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    write_canonical(&mut out, memory);
    out
}

/// An `io::Write` that only feeds a SHA-256.
struct Hashing(Sha256);

impl Write for Hashing {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// Writing to a `Vec` or a hasher cannot fail: the `io::Result`s below are ignored on purpose.

fn write_canonical(out: &mut impl Write, memory: &Value) {
    match memory {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().filter(|k| !ATTRIBUTION_KEYS.contains(&k.as_str())).collect();
            keys.sort();
            write_object(out, keys.into_iter().map(|k| (k, &map[k])));
        }
        other => write_value(out, other),
    }
}

fn write_object<'a>(out: &mut impl Write, entries: impl Iterator<Item = (&'a String, &'a Value)>) {
    let _ = out.write_all(b"{");
    for (i, (k, v)) in entries.enumerate() {
        if i > 0 {
            let _ = out.write_all(b",");
        }
        write_string(out, k);
        let _ = out.write_all(b":");
        write_value(out, v);
    }
    let _ = out.write_all(b"}");
}

fn write_string(out: &mut impl Write, s: &str) {
    // serde_json's escaping: deterministic, and what both sides are parsed back into anyway.
    // Written through, not into a temporary copy of the string (a photo's base64 is megabytes).
    let _ = serde_json::to_writer(out, s);
}

fn write_value(out: &mut impl Write, v: &Value) {
    match v {
        Value::Null => {
            let _ = out.write_all(b"null");
        }
        Value::Bool(b) => {
            let _ = out.write_all(if *b { b"true" } else { b"false" });
        }
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            let _ = out.write_all(b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    let _ = out.write_all(b",");
                }
                write_value(out, item);
            }
            let _ = out.write_all(b"]");
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            write_object(out, keys.into_iter().map(|k| (k, &map[k])));
        }
    }
}

fn write_number(out: &mut impl Write, n: &serde_json::Number) {
    let x = n.as_f64().unwrap_or(f64::NAN);
    let _ = if x.is_finite() && x.fract() == 0.0 && x.abs() < EXACT_INTEGER_LIMIT {
        write!(out, "{}", x as i64)
    } else if let Some(f) = serde_json::Number::from_f64(x) {
        write!(out, "{f}")
    } else {
        // Not reachable from parsed JSON (it has no NaN or infinity); keep the text.
        write!(out, "{n}")
    };
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

    #[test]
    fn the_streamed_hash_is_the_hash_of_the_canonical_bytes() {
        let photos: Vec<Value> = (0..3).map(|i| json!({"id": i, "base64": "QUJD".repeat(10_000), "description": "a \"q\" é\n"})).collect();
        for v in [
            json!({"id": "m1", "uid": "a", "photos": photos, "x": [1.5, -0.0, 1e21, null, true, false], "structured": {"b": {}, "a": []}}),
            json!([1, "two", {"z": 1, "y": 2}]),
            json!("just a string"),
        ] {
            assert_eq!(content_sha256(&v), sha256_hex(&canonical_bytes(&v)), "{v}");
        }
    }
}
