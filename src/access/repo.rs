//! Access control in D1 (migrations/0007_access.sql): every SQL statement of keys, mentor
//! credentials, invites, enrollment and the audit log. Statement builders are pure (host-tested);
//! [`AccessRepo`] executes them through `MetaStore`.

use serde::Deserialize;

use super::api_key::{KeyRecord, KeySpec, NewKey};
use super::audit::{AuditFilter, AuditRecord, Outcome};
use super::enrollment::{InviteRecord, InviteSpec};
use super::scope::ScopeSet;
use super::webhook::{CredentialKind, MentorCredential};
use crate::error::{Error, Result};
use crate::stmt;
use crate::store::{MetaStore, Statement, Value as Param};

/// D1 binds at most 100 parameters per statement; id lists are cut below that.
const MAX_IDS_PER_STATEMENT: usize = 90;

// --- API keys ---------------------------------------------------------------------------------

const KEY_COLUMNS: &str = "id, prefix, hash, name, scopes, created_at, expires_at, last_used_at, revoked_at";

/// A row of `api_keys` as stored (scopes unparsed, hash included: never serialised).
#[derive(Debug, Clone, Deserialize)]
pub struct KeyRow {
    pub id: i64,
    pub prefix: String,
    pub hash: String,
    pub name: String,
    pub scopes: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl KeyRow {
    /// The record, or `None` for a row whose scopes no longer parse (written by a later
    /// version, or edited by hand): such a key authenticates nobody.
    pub fn record(&self) -> Option<KeyRecord> {
        let scopes = ScopeSet::parse(&self.scopes).ok()?;
        Some(KeyRecord {
            id: self.id,
            prefix: self.prefix.clone(),
            name: self.name.clone(),
            scopes,
            created_at: self.created_at,
            expires_at: self.expires_at,
            last_used_at: self.last_used_at,
            revoked_at: self.revoked_at,
        })
    }
}

pub fn key_by_prefix(prefix: &str) -> Statement {
    stmt!(format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE prefix = ?1"), prefix)
}

pub fn insert_key(key: &NewKey, spec: &KeySpec, now: i64, created_by: &str) -> Statement {
    stmt!(
        format!(
            "INSERT INTO api_keys (prefix, hash, name, scopes, created_at, created_by, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING {KEY_COLUMNS}"
        ),
        key.prefix.as_str(),
        key.hash.as_str(),
        spec.name.as_str(),
        spec.scopes.to_string(),
        now,
        created_by,
        spec.expires_at
    )
}

/// Newest first; a deployment has tens of keys, the cap only bounds a mistake.
pub fn list_keys() -> Statement {
    stmt!(format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at DESC, id DESC LIMIT 1000"))
}

/// Revokes once: a second revoke keeps the first time. Returns the row (none: unknown prefix).
pub fn revoke_key(prefix: &str, now: i64) -> Statement {
    stmt!(format!("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE prefix = ?1 RETURNING {KEY_COLUMNS}"), prefix, now)
}

/// `last_used_at`, at most once per resolution (the condition makes concurrent touches one).
pub fn touch_key(id: i64, now: i64, resolution_ms: i64) -> Statement {
    stmt!(
        "UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at <= ?3)",
        id,
        now,
        now.saturating_sub(resolution_ms)
    )
}

/// Which of `ids` are still usable keys (not revoked, not expired), for the live hub's
/// broadcast; one statement per 90 ids.
pub fn usable_key_ids(ids: &[i64], now: i64) -> Vec<Statement> {
    ids.chunks(MAX_IDS_PER_STATEMENT)
        .map(|chunk| {
            let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("?{}", i + 2)).collect();
            let mut s = Statement::new(format!(
                "SELECT id FROM api_keys WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?1) AND id IN ({})",
                placeholders.join(", ")
            ))
            .bind(now);
            for id in chunk {
                s = s.bind(*id);
            }
            s
        })
        .collect()
}

#[derive(Debug, Deserialize)]
pub struct IdRow {
    pub id: i64,
}

// --- mentor webhook credentials -----------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
pub struct CredentialRow {
    pub id: i64,
    pub uid: String,
    pub kind: String,
    pub material: String,
    pub created_at: i64,
    pub retires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

pub fn kind_name(kind: CredentialKind) -> &'static str {
    match kind {
        CredentialKind::Token => "token",
        CredentialKind::SigningSecret => "signingSecret",
    }
}

impl CredentialRow {
    pub fn credential(&self) -> Option<MentorCredential> {
        let kind = match self.kind.as_str() {
            "token" => CredentialKind::Token,
            "signingSecret" => CredentialKind::SigningSecret,
            _ => return None,
        };
        Some(MentorCredential {
            id: self.id,
            uid: self.uid.clone(),
            kind,
            material: self.material.clone(),
            created_at: self.created_at,
            retires_at: self.retires_at,
            revoked_at: self.revoked_at,
        })
    }
}

const CREDENTIAL_COLUMNS: &str = "id, uid, kind, material, created_at, retires_at, revoked_at, last_used_at";

/// The uid's credentials that can still verify something at `now` (the webhook's lookup).
pub fn live_credentials(uid: &str, now: i64) -> Statement {
    stmt!(
        format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM mentor_credentials \
             WHERE uid = ?1 AND revoked_at IS NULL AND (retires_at IS NULL OR retires_at > ?2) ORDER BY id"
        ),
        uid,
        now
    )
}

/// Every credential of a uid, for the admin (material never leaves the repository).
pub fn all_credentials(uid: &str) -> Statement {
    stmt!(format!("SELECT {CREDENTIAL_COLUMNS} FROM mentor_credentials WHERE uid = ?1 ORDER BY id DESC LIMIT 200"), uid)
}

/// Adds a credential, retires the ones it replaces (`retirements`) and enrolls the uid (an
/// admin issuing a credential for a uid is an enrollment), in one batch; the last statement
/// returns the new row.
pub fn add_credential(uid: &str, kind: CredentialKind, material: &str, now: i64, retire: &[(i64, i64)], label: &str) -> Vec<Statement> {
    let mut stmts: Vec<Statement> = retire
        .iter()
        .map(|(id, at)| {
            stmt!(
                "UPDATE mentor_credentials SET retires_at = ?3 WHERE id = ?1 AND uid = ?2 AND (retires_at IS NULL OR retires_at > ?3)",
                *id,
                uid,
                *at
            )
        })
        .collect();
    stmts.push(enroll(uid, label, "credential", None, now));
    stmts.push(stmt!("DELETE FROM enrollment_requests WHERE uid = ?1", uid));
    stmts.push(stmt!(
        format!("INSERT INTO mentor_credentials (uid, kind, material, created_at) VALUES (?1, ?2, ?3, ?4) RETURNING {CREDENTIAL_COLUMNS}"),
        uid,
        kind_name(kind),
        material,
        now
    ));
    stmts
}

pub fn revoke_credential(uid: &str, id: i64, now: i64) -> Statement {
    stmt!(
        format!(
            "UPDATE mentor_credentials SET revoked_at = COALESCE(revoked_at, ?3) WHERE uid = ?1 AND id = ?2 RETURNING {CREDENTIAL_COLUMNS}"
        ),
        uid,
        id,
        now
    )
}

pub fn touch_credential(id: i64, now: i64, resolution_ms: i64) -> Statement {
    stmt!(
        "UPDATE mentor_credentials SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at <= ?3)",
        id,
        now,
        now.saturating_sub(resolution_ms)
    )
}

// --- invites and enrollment ---------------------------------------------------------------

const INVITE_COLUMNS: &str = "id, label, max_uses, uses, expires_at, created_at, revoked_at";

#[derive(Debug, Clone, Deserialize)]
pub struct InviteRow {
    pub id: i64,
    pub label: String,
    pub max_uses: i64,
    pub uses: i64,
    pub expires_at: i64,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

impl InviteRow {
    pub fn record(&self) -> InviteRecord {
        InviteRecord {
            id: self.id,
            label: self.label.clone(),
            max_uses: u32::try_from(self.max_uses).unwrap_or(0),
            uses: u32::try_from(self.uses).unwrap_or(u32::MAX),
            expires_at: self.expires_at,
            created_at: self.created_at,
            revoked_at: self.revoked_at,
        }
    }
}

pub fn insert_invite(code_hash: &str, spec: &InviteSpec, now: i64, created_by: &str) -> Statement {
    stmt!(
        format!(
            "INSERT INTO invites (code_hash, label, max_uses, expires_at, created_at, created_by) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING {INVITE_COLUMNS}"
        ),
        code_hash,
        spec.label.as_str(),
        spec.max_uses,
        spec.expires_at,
        now,
        created_by
    )
}

pub fn list_invites() -> Statement {
    stmt!(format!("SELECT {INVITE_COLUMNS} FROM invites ORDER BY created_at DESC, id DESC LIMIT 500"))
}

pub fn invite_by_hash(code_hash: &str) -> Statement {
    stmt!(format!("SELECT {INVITE_COLUMNS} FROM invites WHERE code_hash = ?1"), code_hash)
}

pub fn revoke_invite(id: i64, now: i64) -> Statement {
    stmt!(format!("UPDATE invites SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1 RETURNING {INVITE_COLUMNS}"), id, now)
}

fn enroll(uid: &str, label: &str, via: &str, invite_id: Option<i64>, now: i64) -> Statement {
    stmt!(
        "INSERT INTO enrollments (uid, label, via, invite_id, enrolled_at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (uid) DO NOTHING",
        uid,
        label,
        via,
        invite_id,
        now
    )
}

/// Redeems an invite for `uid` in one transaction: the enrollment is inserted only while the
/// invite is usable (not revoked, not expired, uses left), and the use is counted only if this
/// batch inserted it, so a single-use code redeemed twice at once links one uid. An uid that is
/// already enrolled keeps its enrollment and does not use the code up. The last statement reads
/// the uid's enrollment back.
pub fn redeem_invite(invite_id: i64, uid: &str, now: i64) -> Vec<Statement> {
    vec![
        stmt!(
            "INSERT INTO enrollments (uid, label, via, invite_id, enrolled_at) \
             SELECT ?1, label, 'invite', id, ?2 FROM invites \
             WHERE id = ?3 AND revoked_at IS NULL AND expires_at > ?2 AND uses < max_uses \
             ON CONFLICT (uid) DO NOTHING",
            uid,
            now,
            invite_id
        ),
        stmt!(
            "UPDATE invites SET uses = uses + 1 WHERE id = ?3 \
             AND EXISTS (SELECT 1 FROM enrollments WHERE uid = ?1 AND invite_id = ?3 AND enrolled_at = ?2 AND via = 'invite')",
            uid,
            now,
            invite_id
        ),
        stmt!("DELETE FROM enrollment_requests WHERE uid = ?1 AND EXISTS (SELECT 1 FROM enrollments WHERE uid = ?1)", uid),
        enrollment_of(uid),
    ]
}

/// An admin enrolls a uid (`POST /api/admin/enrollment/{uid}`).
pub fn admin_enroll(uid: &str, label: &str, now: i64) -> Vec<Statement> {
    vec![enroll(uid, label, "admin", None, now), stmt!("DELETE FROM enrollment_requests WHERE uid = ?1", uid), enrollment_of(uid)]
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct EnrollmentRow {
    pub uid: String,
    pub label: String,
    pub via: String,
    pub invite_id: Option<i64>,
    pub enrolled_at: i64,
}

pub fn enrollment_of(uid: &str) -> Statement {
    stmt!("SELECT uid, label, via, invite_id, enrolled_at FROM enrollments WHERE uid = ?1", uid)
}

pub fn list_enrollments() -> Statement {
    stmt!("SELECT uid, label, via, invite_id, enrolled_at FROM enrollments ORDER BY enrolled_at DESC, uid LIMIT 2000")
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct RequestRow {
    pub uid: String,
    pub deliveries: i64,
    pub first_at: i64,
    pub last_at: i64,
}

pub fn list_requests() -> Statement {
    stmt!("SELECT uid, deliveries, first_at, last_at FROM enrollment_requests ORDER BY last_at DESC, uid LIMIT 2000")
}

/// Counts a dropped delivery of an unenrolled uid.
pub fn record_request(uid: &str, now: i64) -> Statement {
    stmt!(
        "INSERT INTO enrollment_requests (uid, deliveries, first_at, last_at) VALUES (?1, 1, ?2, ?2) \
         ON CONFLICT (uid) DO UPDATE SET deliveries = deliveries + 1, last_at = MAX(last_at, ?2)",
        uid,
        now
    )
}

/// What `GET /api/omi/setup` needs about a uid, in one statement.
pub fn setup_state(uid: &str) -> Statement {
    stmt!(
        "SELECT EXISTS (SELECT 1 FROM enrollments WHERE uid = ?1) AS enrolled, \
           (EXISTS (SELECT 1 FROM omi_memories WHERE user_id = ?1) \
             OR EXISTS (SELECT 1 FROM omi_transcript_batches WHERE user_id = ?1) \
             OR EXISTS (SELECT 1 FROM omi_day_summaries WHERE user_id = ?1)) AS delivered",
        uid
    )
}

#[derive(Debug, Deserialize)]
pub struct SetupRow {
    pub enrolled: i64,
    pub delivered: i64,
}

#[derive(Debug, Deserialize)]
pub struct Flag {
    pub n: i64,
}

pub fn is_enrolled(uid: &str) -> Statement {
    stmt!("SELECT EXISTS (SELECT 1 FROM enrollments WHERE uid = ?1) AS n", uid)
}

// --- audit log ------------------------------------------------------------------------------

pub fn insert_audit(r: &AuditRecord) -> Statement {
    stmt!(
        "INSERT INTO audit_log (at_ms, key_prefix, method, route, target, outcome, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        r.at_ms,
        r.key_prefix.clone(),
        r.method.as_str(),
        r.route.as_str(),
        r.target.as_str(),
        r.outcome.as_str(),
        i64::from(r.status)
    )
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuditRow {
    pub id: i64,
    pub at_ms: i64,
    pub key_prefix: Option<String>,
    pub method: String,
    pub route: String,
    pub target: String,
    pub outcome: String,
    pub status: i64,
}

/// One page, newest first, one row more than the limit (to know whether another page exists).
pub fn audit_page(f: &AuditFilter) -> Statement {
    let mut clauses: Vec<String> = Vec::new();
    let mut params: Vec<Param> = Vec::new();
    let mut add = |clause: &str, values: Vec<Param>| {
        clauses.push(crate::store::meta::numbered(clause, params.len() + 1));
        params.extend(values);
    };
    if let Some(s) = f.since {
        add("at_ms >= ?", vec![s.into()]);
    }
    if let Some(u) = f.until {
        add("at_ms < ?", vec![u.into()]);
    }
    if let Some(k) = &f.key_prefix {
        add("key_prefix = ?", vec![k.into()]);
    }
    if let Some(r) = &f.route {
        add("route = ?", vec![r.into()]);
    }
    if let Some(o) = f.outcome {
        add("outcome = ?", vec![o.as_str().into()]);
    }
    if let Some(c) = f.cursor {
        add("(at_ms < ? OR (at_ms = ? AND id < ?))", vec![c.created_ms.into(), c.created_ms.into(), c.seq.into()]);
    }
    let filters = if clauses.is_empty() { String::new() } else { format!(" WHERE {}", clauses.join(" AND ")) };
    params.push((i64::from(f.limit) + 1).into());
    Statement {
        sql: format!(
            "SELECT id, at_ms, key_prefix, method, route, target, outcome, status FROM audit_log{filters} \
             ORDER BY at_ms DESC, id DESC LIMIT ?{}",
            params.len()
        ),
        params,
    }
}

/// Deletes up to `limit` rows older than `cutoff` (the retention job repeats it within its budget).
pub fn audit_retention(cutoff: i64, limit: u32) -> Statement {
    stmt!("DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at_ms < ?1 ORDER BY at_ms LIMIT ?2)", cutoff, limit)
}

impl AuditRow {
    pub fn outcome(&self) -> Outcome {
        Outcome::from_status(u16::try_from(self.status).unwrap_or(500))
    }
}

// --- the repository ----------------------------------------------------------------------------

pub struct AccessRepo {
    meta: MetaStore,
}

fn first_row<T: serde::de::DeserializeOwned>(rows: Option<&crate::store::meta::Rows>) -> Result<Option<T>> {
    Ok(rows.map(|r| r.rows::<T>()).transpose()?.and_then(|r| r.into_iter().next()))
}

impl AccessRepo {
    pub fn new(meta: MetaStore) -> Self {
        AccessRepo { meta }
    }

    pub fn meta(&self) -> &MetaStore {
        &self.meta
    }

    pub async fn key(&self, prefix: &str) -> Result<Option<KeyRow>> {
        self.meta.first(key_by_prefix(prefix)).await
    }

    pub async fn create_key(&self, key: &NewKey, spec: &KeySpec, now: i64, created_by: &str) -> Result<KeyRow> {
        self.meta
            .first(insert_key(key, spec, now, created_by))
            .await?
            .ok_or_else(|| Error::Storage("the new key's row was not returned".into()))
    }

    pub async fn keys(&self) -> Result<Vec<KeyRow>> {
        self.meta.all(list_keys()).await
    }

    pub async fn revoke_key(&self, prefix: &str, now: i64) -> Result<Option<KeyRow>> {
        self.meta.first(revoke_key(prefix, now)).await
    }

    pub async fn usable_keys(&self, ids: &[i64], now: i64) -> Result<Vec<i64>> {
        let rows: Vec<Vec<IdRow>> = self.meta.batch_rows(usable_key_ids(ids, now)).await?;
        Ok(rows.into_iter().flatten().map(|r| r.id).collect())
    }

    pub async fn live_credentials(&self, uid: &str, now: i64) -> Result<Vec<CredentialRow>> {
        self.meta.all(live_credentials(uid, now)).await
    }

    pub async fn credentials(&self, uid: &str) -> Result<Vec<CredentialRow>> {
        self.meta.all(all_credentials(uid)).await
    }

    pub async fn add_credential(
        &self,
        uid: &str,
        kind: CredentialKind,
        material: &str,
        now: i64,
        retire: &[(i64, i64)],
        label: &str,
    ) -> Result<CredentialRow> {
        let results = self.meta.batch_results(add_credential(uid, kind, material, now, retire, label)).await?;
        first_row(results.last())?.ok_or_else(|| Error::Storage("the new credential's row was not returned".into()))
    }

    pub async fn revoke_credential(&self, uid: &str, id: i64, now: i64) -> Result<Option<CredentialRow>> {
        self.meta.first(revoke_credential(uid, id, now)).await
    }

    pub async fn create_invite(&self, code_hash: &str, spec: &InviteSpec, now: i64, created_by: &str) -> Result<InviteRow> {
        self.meta
            .first(insert_invite(code_hash, spec, now, created_by))
            .await?
            .ok_or_else(|| Error::Storage("the new invite's row was not returned".into()))
    }

    pub async fn invites(&self) -> Result<Vec<InviteRow>> {
        self.meta.all(list_invites()).await
    }

    pub async fn invite(&self, code_hash: &str) -> Result<Option<InviteRow>> {
        self.meta.first(invite_by_hash(code_hash)).await
    }

    pub async fn revoke_invite(&self, id: i64, now: i64) -> Result<Option<InviteRow>> {
        self.meta.first(revoke_invite(id, now)).await
    }

    /// The uid's enrollment after the redemption (its own, or one it already had).
    pub async fn redeem(&self, invite_id: i64, uid: &str, now: i64) -> Result<Option<EnrollmentRow>> {
        let results = self.meta.batch_results(redeem_invite(invite_id, uid, now)).await?;
        first_row(results.last())
    }

    pub async fn admin_enroll(&self, uid: &str, label: &str, now: i64) -> Result<Option<EnrollmentRow>> {
        let results = self.meta.batch_results(admin_enroll(uid, label, now)).await?;
        first_row(results.last())
    }

    pub async fn enrollment(&self, uid: &str) -> Result<Option<EnrollmentRow>> {
        self.meta.first(enrollment_of(uid)).await
    }

    pub async fn is_enrolled(&self, uid: &str) -> Result<bool> {
        Ok(self.meta.first::<Flag>(is_enrolled(uid)).await?.is_some_and(|f| f.n != 0))
    }

    pub async fn enrollments(&self) -> Result<(Vec<EnrollmentRow>, Vec<RequestRow>)> {
        let results = self.meta.batch_results(vec![list_enrollments(), list_requests()]).await?;
        let enrolled = results.first().map(|r| r.rows()).transpose()?.unwrap_or_default();
        let asking = results.get(1).map(|r| r.rows()).transpose()?.unwrap_or_default();
        Ok((enrolled, asking))
    }

    pub async fn record_request(&self, uid: &str, now: i64) -> Result<()> {
        self.meta.run(record_request(uid, now)).await.map(|_| ())
    }

    /// `(enrolled, has delivered anything)`.
    pub async fn setup_state(&self, uid: &str) -> Result<(bool, bool)> {
        let row: Option<SetupRow> = self.meta.first(setup_state(uid)).await?;
        Ok(row.map(|r| (r.enrolled != 0, r.delivered != 0)).unwrap_or((false, false)))
    }

    pub async fn audit(&self, f: &AuditFilter) -> Result<Vec<AuditRow>> {
        self.meta.all(audit_page(f)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::api_key::CreateKeyRequest;
    use crate::omi::cursor::Cursor;

    fn count_params(sql: &str) -> usize {
        let mut max = 0;
        let bytes = sql.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            if *b == b'?' {
                let digits: String = sql[i + 1..].chars().take_while(|c| c.is_ascii_digit()).collect();
                max = max.max(digits.parse::<usize>().unwrap_or(0));
            }
        }
        max
    }

    #[test]
    fn every_statement_binds_what_it_names() {
        let key = NewKey::from_random(&[3; 37]);
        let spec = CreateKeyRequest { name: "k".into(), scopes: vec!["admin".into()], expires_in_days: None }.validate(0).unwrap();
        let invite = InviteSpec { label: "Ana".into(), max_uses: 1, expires_at: 9 };
        let mut all = vec![
            key_by_prefix("abcdefgh"),
            insert_key(&key, &spec, 1, "API_TOKEN"),
            list_keys(),
            revoke_key("abcdefgh", 1),
            touch_key(1, 2, 3),
            live_credentials("u", 1),
            all_credentials("u"),
            revoke_credential("u", 1, 2),
            touch_credential(1, 2, 3),
            insert_invite("h", &invite, 1, "x"),
            list_invites(),
            invite_by_hash("h"),
            revoke_invite(1, 2),
            list_enrollments(),
            list_requests(),
            record_request("u", 1),
            setup_state("u"),
            is_enrolled("u"),
            audit_retention(1, 2),
        ];
        all.extend(add_credential("u", CredentialKind::Token, "m", 1, &[(1, 2), (3, 4)], "u"));
        all.extend(redeem_invite(1, "u", 2));
        all.extend(admin_enroll("u", "l", 1));
        all.extend(usable_key_ids(&(0..200).collect::<Vec<_>>(), 5));
        for s in all {
            assert_eq!(count_params(&s.sql), s.params.len(), "{}", s.sql);
            assert!(s.params.len() <= 100, "{}", s.sql);
        }
    }

    #[test]
    fn usable_key_lookups_stay_under_the_parameter_limit() {
        let ids: Vec<i64> = (1..=200).collect();
        let stmts = usable_key_ids(&ids, 7);
        assert_eq!(stmts.len(), 3);
        assert_eq!(stmts.iter().map(|s| s.params.len() - 1).sum::<usize>(), 200);
        assert!(usable_key_ids(&[], 7).is_empty());
    }

    #[test]
    fn the_audit_page_binds_each_filter_once_in_order() {
        let f = AuditFilter {
            since: Some(10),
            until: Some(20),
            key_prefix: Some("abcdefgh".into()),
            route: Some("/api/admin/keys".into()),
            outcome: Some(Outcome::Denied),
            cursor: Some(Cursor { created_ms: 15, seq: 4 }),
            limit: 50,
        };
        let s = audit_page(&f);
        assert_eq!(count_params(&s.sql), s.params.len());
        assert!(s.sql.contains("(at_ms < ?6 OR (at_ms = ?7 AND id < ?8))"), "{}", s.sql);
        assert_eq!(s.params.last(), Some(&Param::Int(51)));
        let bare = audit_page(&AuditFilter::parse(vec![]).unwrap());
        assert!(!bare.sql.contains("WHERE"));
        assert_eq!(bare.params, vec![Param::Int(51)]);
    }

    #[test]
    fn rows_become_records_or_nothing() {
        let row = KeyRow {
            id: 1,
            prefix: "abcdefgh".into(),
            hash: "h".into(),
            name: "n".into(),
            scopes: "omi:read:alice".into(),
            created_at: 0,
            expires_at: None,
            last_used_at: None,
            revoked_at: None,
        };
        assert_eq!(row.record().unwrap().scopes.to_string(), "omi:read:alice");
        assert!(KeyRow { scopes: "omi:fly".into(), ..row }.record().is_none());
        let cred = CredentialRow {
            id: 1,
            uid: "u".into(),
            kind: "signingSecret".into(),
            material: "whsec_x".into(),
            created_at: 0,
            retires_at: None,
            revoked_at: None,
            last_used_at: None,
        };
        assert_eq!(cred.credential().unwrap().kind, CredentialKind::SigningSecret);
        assert!(CredentialRow { kind: "password".into(), ..cred }.credential().is_none());
    }
}
