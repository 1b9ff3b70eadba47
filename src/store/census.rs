//! What both stores hold, measured for the storage report (issue 13).
//!
//! - **D1 by table**: every table's rows and the bytes of their values (SQLite's storage size
//!   of each value: 1-8 bytes for an integer by magnitude, 8 for a real, the length of text and
//!   blobs), and every index's entries and key bytes (a partial index counts only the rows its
//!   `WHERE` keeps). Three round trips, whatever the schema: the table list, the columns of
//!   every table and index (`PRAGMA table_info` / `index_info`), then one sum per table and
//!   index. It reads every row, which is what an estimate from row sizes costs; the report is
//!   an operator's page, not a hot path. D1's own file size (`meta.size_after`) comes with it.
//! - **R2 by kind**: a walk of the whole bucket's listing (1,000 objects per Class A list),
//!   summing objects and stored bytes per object kind (`store::kinds`); resumable (the
//!   `storage.census` job), with the totals of the last complete pass kept in `r2_census`.
//!
//! The SQL-building pieces are pure and unit-tested.

use std::collections::BTreeMap;

use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::jobs::{Job, JobInput, JobOutcome};
use super::kinds::Kind;
use super::{MetaStore, Statement, Store};
use crate::app::App;
use crate::error::Result;
use crate::stmt;

/// One D1 table's size facts (see `files::costs::D1Table`, which prices them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TableSize {
    pub name: String,
    pub rows: u64,
    pub payload_bytes: u64,
    pub index_entries: u64,
    pub index_key_bytes: u64,
}

/// `name` as an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// SQL for the bytes SQLite stores for column `col` of a row: the record format's sizes.
pub fn value_bytes_sql(col: &str) -> String {
    let c = quote_ident(col);
    format!(
        "(CASE typeof({c}) WHEN 'null' THEN 0 WHEN 'real' THEN 8 WHEN 'integer' THEN (CASE \
         WHEN {c} BETWEEN -128 AND 127 THEN 1 WHEN {c} BETWEEN -32768 AND 32767 THEN 2 \
         WHEN {c} BETWEEN -8388608 AND 8388607 THEN 3 WHEN {c} BETWEEN -2147483648 AND 2147483647 THEN 4 \
         WHEN {c} BETWEEN -140737488355328 AND 140737488355327 THEN 6 ELSE 8 END) \
         ELSE length(CAST({c} AS BLOB)) END)"
    )
}

/// The sum of [`value_bytes_sql`] over `cols` (0 for none).
pub fn row_bytes_sql(cols: &[String]) -> String {
    if cols.is_empty() {
        return "0".into();
    }
    cols.iter().map(|c| value_bytes_sql(c)).collect::<Vec<_>>().join(" + ")
}

/// The `WHERE` of a partial index's `CREATE INDEX` statement, if it has one.
pub fn partial_where(create_sql: &str) -> Option<&str> {
    // The column list is the first parenthesis after ` ON `; the WHERE, if any, follows it.
    let on = create_sql.to_ascii_uppercase().find(" ON ")?;
    let open = on + create_sql[on..].find('(')?;
    let mut depth = 0usize;
    let mut close = None;
    for (i, c) in create_sql[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(open + i);
                    break;
                }
            }
            _ => {}
        }
    }
    let tail = &create_sql[close? + 1..];
    let at = tail.to_ascii_uppercase().find("WHERE")?;
    let cond = tail[at + 5..].trim().trim_end_matches(';').trim();
    (!cond.is_empty()).then_some(cond)
}

#[derive(Debug, Clone, Deserialize)]
struct MasterRow {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    tbl_name: String,
    sql: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct ColumnRow {
    name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct SumRow {
    n: u64,
    b: u64,
}

/// Every table (virtual tables aside: their shadow tables hold the data) with its size, and
/// D1's reported database size when the binding gives one.
pub async fn d1_tables(meta: &MetaStore) -> Result<(Vec<TableSize>, Option<u64>)> {
    let master: Vec<MasterRow> = meta
        .all(stmt!(
            "SELECT type, name, tbl_name, sql FROM sqlite_master
             WHERE (type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'
                    AND COALESCE(sql, '') NOT LIKE 'CREATE VIRTUAL TABLE%')
                OR type = 'index'
             ORDER BY type DESC, name"
        ))
        .await?;
    let tables: Vec<&MasterRow> = master.iter().filter(|m| m.kind == "table").collect();
    let indexes: Vec<&MasterRow> = master.iter().filter(|m| m.kind == "index" && tables.iter().any(|t| t.name == m.tbl_name)).collect();
    if tables.is_empty() {
        return Ok((Vec::new(), None));
    }
    let mut pragmas: Vec<Statement> =
        tables.iter().map(|t| Statement::new(format!("PRAGMA table_info({})", quote_ident(&t.name)))).collect();
    pragmas.extend(indexes.iter().map(|i| Statement::new(format!("PRAGMA index_info({})", quote_ident(&i.name)))));
    let columns: Vec<Vec<ColumnRow>> = meta.batch_rows(pragmas).await?;
    let names = |rows: &Vec<ColumnRow>| rows.iter().filter_map(|c| c.name.clone()).collect::<Vec<String>>();

    let mut sums: Vec<Statement> = Vec::new();
    for (t, cols) in tables.iter().zip(&columns) {
        sums.push(Statement::new(format!(
            "SELECT COUNT(*) AS n, COALESCE(SUM({}), 0) AS b FROM {}",
            row_bytes_sql(&names(cols)),
            quote_ident(&t.name)
        )));
    }
    for (i, cols) in indexes.iter().zip(&columns[tables.len()..]) {
        let filter = i.sql.as_deref().and_then(partial_where).map(|w| format!(" WHERE {w}")).unwrap_or_default();
        sums.push(Statement::new(format!(
            "SELECT COUNT(*) AS n, COALESCE(SUM({}), 0) AS b FROM {}{filter}",
            row_bytes_sql(&names(cols)),
            quote_ident(&i.tbl_name)
        )));
    }
    let results = meta.batch_results(sums).await?;
    let reported = results.first().and_then(|r| r.size_after());
    let sum = |i: usize| -> Result<SumRow> { Ok(results[i].rows::<SumRow>()?.into_iter().next().unwrap_or_default()) };
    let mut out: Vec<TableSize> = Vec::with_capacity(tables.len());
    for (n, t) in tables.iter().enumerate() {
        let s = sum(n)?;
        out.push(TableSize { name: t.name.clone(), rows: s.n, payload_bytes: s.b, ..TableSize::default() });
    }
    for (n, i) in indexes.iter().enumerate() {
        let s = sum(tables.len() + n)?;
        if let Some(t) = out.iter_mut().find(|t| t.name == i.tbl_name) {
            t.index_entries += s.n;
            t.index_key_bytes += s.b;
        }
    }
    Ok((out, reported))
}

// ---------------------------------------------------------------------------------------------
// R2, by kind

/// The census name of the kind a key belongs to (`other` for keys of no kind).
pub fn kind_name(key: &str) -> &'static str {
    Kind::of_key(key).map(Kind::name).unwrap_or("other")
}

/// Objects and stored bytes of one kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindTotal {
    pub kind: String,
    pub objects: u64,
    pub bytes: u64,
}

/// The census as the report shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct R2Census {
    /// Per kind (and `total`), from the last complete pass; empty before the first.
    pub kinds: Vec<KindTotal>,
    pub complete_at: Option<i64>,
    /// A pass is under way (its partial totals are not shown).
    pub in_progress: bool,
}

/// Folds a page of `(key, stored size)` into per-kind totals, with `total`.
pub fn tally<'a>(objects: impl IntoIterator<Item = (&'a str, u64)>) -> BTreeMap<&'static str, (u64, u64)> {
    let mut out: BTreeMap<&'static str, (u64, u64)> = BTreeMap::new();
    for (key, size) in objects {
        for k in [kind_name(key), "total"] {
            let e = out.entry(k).or_default();
            e.0 += 1;
            e.1 += size;
        }
    }
    out
}

fn add_next(kind: &str, objects: u64, bytes: u64, now: i64) -> Statement {
    stmt!(
        "INSERT INTO r2_census (pass, kind, objects, bytes, started_at) VALUES ('next', ?1, ?2, ?3, ?4)
         ON CONFLICT (pass, kind) DO UPDATE SET objects = objects + ?2, bytes = bytes + ?3",
        kind,
        objects,
        bytes,
        now
    )
}

/// Ends a pass: its totals become the current ones.
fn complete_pass(now: i64) -> Vec<Statement> {
    vec![
        add_next("total", 0, 0, now),
        stmt!("DELETE FROM r2_census WHERE pass = 'current'"),
        stmt!("UPDATE r2_census SET pass = 'current', finished_at = ?1 WHERE pass = 'next'", now),
    ]
}

/// Walks the listing from `cursor` (a new pass when `None`) until it ends or `deadline_ms`;
/// returns where to continue (`None`: the pass completed).
pub async fn walk(store: &Store, cursor: Option<String>, deadline_ms: i64) -> Result<(Option<String>, u64)> {
    let now = store.request().now();
    if cursor.is_none() {
        store.meta.run(stmt!("DELETE FROM r2_census WHERE pass = 'next'")).await?;
    }
    let mut cursor = cursor;
    let mut scanned = 0u64;
    loop {
        let page = store.blobs.list_page("", cursor.take(), 1000).await?;
        scanned += page.objects.len() as u64;
        let totals = tally(page.objects.iter().map(|o| (o.key.as_str(), o.size)));
        let mut stmts: Vec<Statement> = totals.iter().map(|(k, (n, b))| add_next(k, *n, *b, now)).collect();
        match page.cursor {
            None => {
                stmts.extend(complete_pass(store.request().now()));
                store.meta.batch(stmts).await?;
                return Ok((None, scanned));
            }
            Some(c) => {
                store.meta.batch(stmts).await?;
                cursor = Some(c);
                if store.request().now() >= deadline_ms {
                    return Ok((cursor, scanned));
                }
            }
        }
    }
}

pub async fn read(meta: &MetaStore) -> Result<R2Census> {
    #[derive(Deserialize)]
    struct Row {
        pass: String,
        kind: String,
        objects: u64,
        bytes: u64,
        finished_at: Option<i64>,
    }
    let rows: Vec<Row> = meta.all(stmt!("SELECT pass, kind, objects, bytes, finished_at FROM r2_census ORDER BY kind")).await?;
    let mut out = R2Census::default();
    for r in rows {
        if r.pass == "current" {
            out.complete_at = out.complete_at.max(r.finished_at);
            out.kinds.push(KindTotal { kind: r.kind, objects: r.objects, bytes: r.bytes });
        } else {
            out.in_progress = true;
        }
    }
    Ok(out)
}

pub static JOB: Job = Job {
    name: "storage.census",
    what: "counts R2 objects and bytes by kind (a resumable walk of the bucket's listing) for the storage report",
    min_interval_ms: 6 * 3_600_000,
    run: run_job,
};

fn run_job<'a>(app: &'a App, input: JobInput) -> LocalBoxFuture<'a, Result<JobOutcome>> {
    Box::pin(async move {
        let (cursor, scanned) = walk(&app.store()?, input.cursor, input.deadline_ms).await?;
        Ok(JobOutcome { report: json!({ "scanned": scanned, "complete": cursor.is_none() }), cursor })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_sized_as_sqlite_stores_them() {
        let sql = value_bytes_sql("size_bytes");
        assert!(sql.starts_with("(CASE typeof(\"size_bytes\")"));
        assert!(sql.contains("length(CAST(\"size_bytes\" AS BLOB))"));
        assert_eq!(row_bytes_sql(&[]), "0");
        assert_eq!(row_bytes_sql(&["a".into(), "b".into()]).matches("typeof").count(), 2);
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
    }

    #[test]
    fn partial_indexes_keep_their_where() {
        assert_eq!(partial_where("CREATE INDEX a ON t (r2_key) WHERE r2_key IS NOT NULL"), Some("r2_key IS NOT NULL"));
        assert_eq!(partial_where("CREATE INDEX IF NOT EXISTS a ON t (x, y)"), None);
        assert_eq!(partial_where("create index a on t (x) where (x > 1);"), Some("(x > 1)"));
    }

    #[test]
    fn a_page_is_tallied_by_kind_with_a_total() {
        let sha = "a".repeat(64);
        let blob = format!("apps/demo/blobs/{sha}");
        let t = tally([
            (blob.as_str(), 100),
            ("apps/demo/snapshots/3-abcd.json", 10),
            ("mobil3-mentorships/by-user/u/2024/01/m-1.json", 7),
            ("stray.txt", 1),
        ]);
        assert_eq!(t["app_blob"], (1, 100));
        assert_eq!(t["snapshot"], (1, 10));
        assert_eq!(t["memory"], (1, 7));
        assert_eq!(t["other"], (1, 1));
        assert_eq!(t["total"], (4, 118));
    }

    #[test]
    fn completing_a_pass_swaps_it_in_with_a_total_row() {
        let stmts = complete_pass(5);
        assert!(stmts[0].sql.contains("ON CONFLICT (pass, kind) DO UPDATE"));
        assert!(stmts[1].sql.contains("pass = 'current'"));
        assert!(stmts[2].sql.starts_with("UPDATE r2_census SET pass = 'current'"));
    }
}
