//! `MetaStore`: the D1 database (`DB`) as the domain needs it.
//!
//! SQL is built as [`Statement`] values (pure, host-testable) and only executed here. Numbers
//! are bound as JS numbers, never BigInt, which D1 rejects; integers are therefore exact up to
//! 2^53, far beyond any size, count or millisecond timestamp we store.

use serde::de::DeserializeOwned;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, Env};

use crate::error::{Error, Result};
use crate::request::{Counters, Shared};

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Int(v as i64)
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Int(v as i64)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(v as i64)
    }
}
impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::Int(v as i64)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Real(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(v as i64)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Blob(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map(Into::into).unwrap_or(Value::Null)
    }
}

/// One SQL statement with its bound parameters (`?1`, `?2`, … or `?`).
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<Value>,
}

impl Statement {
    pub fn new(sql: impl Into<String>) -> Self {
        Statement { sql: sql.into(), params: Vec::new() }
    }

    pub fn bind(mut self, value: impl Into<Value>) -> Self {
        self.params.push(value.into());
        self
    }
}

/// Numbers the bare `?`s of `clause` from `first` on (`a = ? OR b = ?`, 3 → `a = ?3 OR b = ?4`),
/// for SQL assembled from optional filters.
pub fn numbered(clause: &str, first: usize) -> String {
    let mut out = String::with_capacity(clause.len() + 8);
    let mut n = first;
    for c in clause.chars() {
        if c == '?' {
            out.push_str(&format!("?{n}"));
            n += 1;
        } else {
            out.push(c);
        }
    }
    out
}

/// `stmt!("SELECT … WHERE a = ?1 AND b = ?2", a, b)`
#[macro_export]
macro_rules! stmt {
    ($sql:expr $(, $param:expr)* $(,)?) => {
        $crate::store::Statement::new($sql)$(.bind($param))*
    };
}

/// What a write did.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunInfo {
    pub changes: u64,
    pub last_row_id: Option<i64>,
}

pub struct MetaStore {
    db: D1Database,
    state: Shared,
}

fn to_js(value: &Value) -> JsValue {
    match value {
        Value::Null => JsValue::NULL,
        Value::Int(i) => JsValue::from_f64(*i as f64),
        Value::Real(f) => JsValue::from_f64(*f),
        Value::Text(s) => JsValue::from_str(s),
        // An ArrayBuffer binds as a BLOB (a JS array of numbers would not).
        Value::Blob(b) => js_sys::Uint8Array::from(b.as_slice()).buffer().into(),
    }
}

/// The constraint name of `gc_fence`'s CHECK (migrations/0006): SQLite names it in the error.
pub const FENCE_CONSTRAINT: &str = "gc_fence_tripped";

/// The constraint names of `app_quota_fence` (migrations/0009) and the quota each guards.
pub const QUOTA_CONSTRAINTS: [(&str, &str); 3] =
    [("app_quota_bytes", "bytes"), ("app_quota_files", "files"), ("app_quota_versions", "versions")];

/// D1's errors as the domain sees them, decided here once: the GC fence becomes
/// [`Error::Fenced`], the quota fence [`Error::QuotaExceeded`] (limits filled in by the
/// caller, which knows them), a UNIQUE or PRIMARY KEY violation [`Error::Conflict`], anything else a
/// retryable [`Error::Storage`]. No service matches error strings.
pub fn d1_error(sql: &str, e: impl std::fmt::Display) -> Error {
    let message = e.to_string();
    let head: String = sql.split_whitespace().take(6).collect::<Vec<_>>().join(" ");
    if message.contains(FENCE_CONSTRAINT) {
        Error::Fenced(format!("D1 `{head}…`: {message}"))
    } else if let Some((_, quota)) = QUOTA_CONSTRAINTS.iter().find(|(name, _)| message.contains(name)) {
        Error::QuotaExceeded { quota, limit: 0, current: 0, requested: 0, message: format!("app {quota} quota exceeded") }
    } else if message.contains("UNIQUE constraint failed")
        || message.contains("PRIMARY KEY constraint failed")
        || message.contains("FOREIGN KEY constraint failed")
    {
        // A foreign key fails when a concurrent request removed the row it names (a version
        // deleted while a tag was set on it): a conflict to retry, like a duplicate key.
        Error::Conflict(format!("a concurrent change got there first; retry ({message})"))
    } else {
        Error::Storage(format!("D1 `{head}…`: {message}"))
    }
}

impl MetaStore {
    pub fn from_env(env: &Env, state: Shared) -> Result<Self> {
        let db = env.d1("DB").map_err(|e| Error::NotConfigured(format!("D1 binding DB is missing: {e}")))?;
        Ok(MetaStore { db, state })
    }

    /// The request this store works for (clock, fault points, counters).
    pub fn request(&self) -> &Shared {
        &self.state
    }

    fn count_results(&self, results: &[worker::D1Result]) {
        let c = &self.state.counters;
        for r in results {
            if let Ok(Some(meta)) = r.meta() {
                Counters::add(&c.d1_rows_read, meta.rows_read.unwrap_or(0) as u64);
                Counters::add(&c.d1_rows_written, meta.rows_written.unwrap_or(0) as u64);
            }
        }
    }

    /// One round trip to D1 (a statement or a whole batch of `statements`), within the
    /// request's budget.
    fn call(&self, statements: usize) -> Result<()> {
        self.state.spend(statements as u64)?;
        Counters::add(&self.state.counters.d1_calls, 1);
        Ok(())
    }

    fn prepare(&self, stmt: &Statement) -> Result<D1PreparedStatement> {
        Counters::add(&self.state.counters.d1_statements, 1);
        let params: Vec<JsValue> = stmt.params.iter().map(to_js).collect();
        self.db.prepare(&stmt.sql).bind(&params).map_err(|e| d1_error(&stmt.sql, e))
    }

    /// Every row, deserialised into `T` (column names are field names).
    pub async fn all<T: DeserializeOwned>(&self, stmt: Statement) -> Result<Vec<T>> {
        self.state.trip("d1.read")?;
        self.call(1)?;
        let result = self.prepare(&stmt)?.all().await.map_err(|e| d1_error(&stmt.sql, e))?;
        if let Some(err) = result.error() {
            return Err(d1_error(&stmt.sql, err));
        }
        self.count_results(std::slice::from_ref(&result));
        result.results::<T>().map_err(|e| d1_error(&stmt.sql, e))
    }

    /// The first row, or `None`.
    pub async fn first<T: DeserializeOwned>(&self, stmt: Statement) -> Result<Option<T>> {
        self.state.trip("d1.read")?;
        self.call(1)?;
        self.prepare(&stmt)?.first::<T>(None).await.map_err(|e| d1_error(&stmt.sql, e))
    }

    /// Runs one write.
    pub async fn run(&self, stmt: Statement) -> Result<RunInfo> {
        self.state.trip("d1.write")?;
        self.call(1)?;
        let result = self.prepare(&stmt)?.run().await.map_err(|e| d1_error(&stmt.sql, e))?;
        self.count_results(std::slice::from_ref(&result));
        Ok(run_info(&result))
    }

    /// Runs the statements as one transaction: all of them apply, or none does (D1 `batch`).
    pub async fn batch(&self, stmts: Vec<Statement>) -> Result<Vec<RunInfo>> {
        if stmts.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.batch_results(stmts).await?.iter().map(Rows::info).collect())
    }

    /// Runs the statements as one batch (one round trip, one snapshot) and hands back each
    /// result to be read as its own row type.
    pub async fn batch_results(&self, stmts: Vec<Statement>) -> Result<Vec<Rows>> {
        if stmts.is_empty() {
            return Ok(Vec::new());
        }
        self.state.trip("d1.batch")?;
        self.call(stmts.len())?;
        let prepared = stmts.iter().map(|s| self.prepare(s)).collect::<Result<Vec<_>>>()?;
        // The error of a failed batch names no statement; the SQL of the first helps the log,
        // and the fence/constraint mapping reads the message itself.
        let results = self.db.batch(prepared).await.map_err(|e| d1_error(&stmts[0].sql, e))?;
        self.count_results(&results);
        Ok(results.into_iter().map(Rows).collect())
    }

    /// Like [`batch`](Self::batch) but returns each statement's rows, all of one type: for
    /// writes that end by reading what they decided, and for reads that must see one snapshot.
    pub async fn batch_rows<T: DeserializeOwned>(&self, stmts: Vec<Statement>) -> Result<Vec<Vec<T>>> {
        self.batch_results(stmts).await?.iter().map(Rows::rows).collect()
    }
}

/// One statement's result from [`MetaStore::batch_results`], read into whatever row type that
/// statement returns.
pub struct Rows(worker::D1Result);

impl Rows {
    pub fn rows<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        self.0.results::<T>().map_err(|e| Error::Storage(format!("D1 rows: {e}")))
    }

    /// What the statement changed (for writes).
    pub fn info(&self) -> RunInfo {
        run_info(&self.0)
    }

    /// The database's size after the statement, as D1 reports it (when it does).
    pub fn size_after(&self) -> Option<u64> {
        self.0.meta().ok().flatten().and_then(|m| m.size_after).map(|s| s as u64)
    }
}

fn run_info(result: &worker::D1Result) -> RunInfo {
    match result.meta() {
        Ok(Some(meta)) => RunInfo { changes: meta.changes.unwrap_or(0) as u64, last_row_id: meta.last_row_id },
        _ => RunInfo::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn d1_errors_are_typed_once() {
        assert!(matches!(d1_error("INSERT", "D1_ERROR: CHECK constraint failed: gc_fence_tripped: SQLITE_CONSTRAINT"), Error::Fenced(_)));
        assert!(matches!(d1_error("INSERT", "UNIQUE constraint failed: app_versions.app_id"), Error::Conflict(_)));
        assert!(matches!(d1_error("INSERT", "no such table: x"), Error::Storage(_)));
        assert!(matches!(d1_error("DELETE", "D1_ERROR: FOREIGN KEY constraint failed: SQLITE_CONSTRAINT"), Error::Conflict(_)));
        let q = d1_error("INSERT", "D1_ERROR: CHECK constraint failed: app_quota_versions: SQLITE_CONSTRAINT");
        assert!(matches!(q, Error::QuotaExceeded { quota: "versions", .. }), "{q:?}");
    }

    #[test]
    fn bare_placeholders_are_numbered_in_order() {
        assert_eq!(numbered("a = ? OR (b = ? AND c < ?)", 3), "a = ?3 OR (b = ?4 AND c < ?5)");
        assert_eq!(numbered("x IN (?, ?)", 1), "x IN (?1, ?2)");
        assert_eq!(numbered("d = 0", 7), "d = 0");
    }

    #[test]
    fn stmt_macro_binds_in_order() {
        let s = stmt!("SELECT ?1, ?2, ?3", 1i64, "two", Option::<String>::None);
        assert_eq!(s.params, vec![super::Value::Int(1), super::Value::Text("two".into()), super::Value::Null]);
    }
}
