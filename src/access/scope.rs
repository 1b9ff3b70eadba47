//! Scopes: what a key may do, written as `capability[:target]`.
//!
//! | scope | grants |
//! |---|---|
//! | `admin` | everything, including key, invite and credential management and the audit log |
//! | `omi:read` / `omi:read:{uid}` | every mentor's / one mentor's logs, memories, versions, transcripts, day summaries, memory analytics, archives, exports with content (`include=`) and live events, and everything `omi:export` grants |
//! | `omi:export` / `omi:export:{uid}` | aggregates and bulk metadata: export, mentor list, stats, daily analytics, mentor analytics, the directory and the Mentors page's activity |
//! | `omi:write` | imports and mentor deletion (writes that do not come from Omi) |
//! | `apps:read` / `apps:read:{app}` | every app's / one app's files, versions, diffs, archives, settings |
//! | `apps:write` / `apps:write:{app}` | the same apps' writes (files, batches, versions, restores, settings), and reading them |
//! | `storage:admin` | storage maintenance over both workloads: migrate, rollback, GC, import of snapshots, report, consistency, reindex, reconcile, jobs |
//!
//! Why more than the issue's list: `omi:export:{uid}` exists so that every scopable capability
//! can name one target (a 403 can then always name the narrowest scope that would have
//! worked), and `omi:write` so that an import script (`scripts/migrate-omi-logs.mjs`) or a
//! mentor's erasure needs neither `admin` (which could mint keys) nor webhook credentials
//! (which only Omi should hold). `omi:read` implies `omi:export`: a reader can already page
//! through every memory with `full=1`, so withholding the export would protect nothing.
//!
//! A set of scopes is stored as one space-separated string (as OAuth writes them), in a
//! canonical order with implied scopes dropped, so equal grants are equal strings.

use std::collections::BTreeSet;
use std::fmt;

use crate::files::path::AppId;
use crate::omi::keys::check_key_part;

/// What a route needs, independent of which mentor or app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Capability {
    #[serde(rename = "admin")]
    Admin,
    #[serde(rename = "omi:read")]
    OmiRead,
    #[serde(rename = "omi:export")]
    OmiExport,
    #[serde(rename = "omi:write")]
    OmiWrite,
    #[serde(rename = "apps:read")]
    AppsRead,
    #[serde(rename = "apps:write")]
    AppsWrite,
    #[serde(rename = "storage:admin")]
    StorageAdmin,
}

/// What the target of a scopable capability names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// An Omi uid (`omi:…:{uid}`).
    Mentor,
    /// An app id (`apps:…:{app}`).
    App,
}

impl Capability {
    pub const ALL: [Capability; 7] = [
        Capability::Admin,
        Capability::OmiRead,
        Capability::OmiExport,
        Capability::OmiWrite,
        Capability::AppsRead,
        Capability::AppsWrite,
        Capability::StorageAdmin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Admin => "admin",
            Capability::OmiRead => "omi:read",
            Capability::OmiExport => "omi:export",
            Capability::OmiWrite => "omi:write",
            Capability::AppsRead => "apps:read",
            Capability::AppsWrite => "apps:write",
            Capability::StorageAdmin => "storage:admin",
        }
    }

    /// The kind of target this capability can be narrowed to, if it can.
    pub fn target_kind(self) -> Option<TargetKind> {
        match self {
            Capability::OmiRead | Capability::OmiExport => Some(TargetKind::Mentor),
            Capability::AppsRead | Capability::AppsWrite => Some(TargetKind::App),
            Capability::Admin | Capability::OmiWrite | Capability::StorageAdmin => None,
        }
    }

    /// Whether holding `self` (for some target) also grants `other` (for the same target).
    pub fn implies(self, other: Capability) -> bool {
        self == other
            || self == Capability::Admin
            || matches!((self, other), (Capability::OmiRead, Capability::OmiExport) | (Capability::AppsWrite, Capability::AppsRead))
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One scope: a capability, optionally narrowed to one mentor or app.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope {
    pub capability: Capability,
    /// `None`: every mentor or app. Only capabilities with a [`Capability::target_kind`] have one.
    pub target: Option<String>,
}

/// Why a scope string was refused; the message names the scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error(
        "unknown scope {0:?}; known: admin, omi:read[:uid], omi:export[:uid], omi:write, apps:read[:app], apps:write[:app], storage:admin"
    )]
    Unknown(String),
    #[error("scope {0:?} cannot be narrowed to one mentor or app")]
    NotNarrowable(String),
    #[error("scope {scope:?}: {why}")]
    BadTarget { scope: String, why: String },
    #[error("at most {MAX_SCOPES} scopes per key")]
    TooMany,
    #[error("a key needs at least one scope")]
    Empty,
}

/// More would only be a mistake (or a key that should have been `apps:read`); it also bounds the
/// size of the stored string and of live tickets.
pub const MAX_SCOPES: usize = 64;

impl Scope {
    pub fn all(capability: Capability) -> Scope {
        Scope { capability, target: None }
    }

    pub fn one(capability: Capability, target: impl Into<String>) -> Scope {
        Scope { capability, target: Some(target.into()) }
    }

    pub fn parse(raw: &str) -> Result<Scope, ScopeError> {
        let raw = raw.trim();
        for capability in Capability::ALL {
            let name = capability.as_str();
            if raw == name {
                return Ok(Scope::all(capability));
            }
            let Some(target) = raw.strip_prefix(name).and_then(|rest| rest.strip_prefix(':')) else { continue };
            let bad = |why: String| ScopeError::BadTarget { scope: raw.to_string(), why };
            match capability.target_kind() {
                None => return Err(ScopeError::NotNarrowable(raw.to_string())),
                Some(TargetKind::Mentor) => check_key_part(target).map_err(|why| bad(format!("uid {why}")))?,
                Some(TargetKind::App) => {
                    AppId::parse(target).map_err(|e| bad(e.to_string()))?;
                }
            }
            return Ok(Scope::one(capability, target));
        }
        Err(ScopeError::Unknown(raw.to_string()))
    }

    /// Whether this one scope grants `capability` over `target` (`None`: over everything).
    pub fn grants(&self, capability: Capability, target: Option<&str>) -> bool {
        if self.capability == Capability::Admin {
            return true;
        }
        self.capability.implies(capability)
            && match (&self.target, target) {
                (None, _) => true,
                (Some(mine), Some(wanted)) => mine == wanted,
                (Some(_), None) => false,
            }
    }

    /// Whether this scope grants everything `other` grants.
    pub fn covers(&self, other: &Scope) -> bool {
        self.grants(other.capability, other.target.as_deref())
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            None => f.write_str(self.capability.as_str()),
            Some(t) => write!(f, "{}:{t}", self.capability),
        }
    }
}

impl serde::Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// How far a set of scopes reaches for one capability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Every mentor or app (or an unnarrowable capability held).
    All,
    /// Only these targets (never empty).
    Only(BTreeSet<String>),
    Nothing,
}

/// A key's scopes: canonical (sorted, deduplicated, implied scopes dropped), never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeSet(Vec<Scope>);

impl ScopeSet {
    /// The bootstrap credential's grant (`API_TOKEN`).
    pub fn admin() -> ScopeSet {
        ScopeSet(vec![Scope::all(Capability::Admin)])
    }

    pub fn new(scopes: impl IntoIterator<Item = Scope>) -> Result<ScopeSet, ScopeError> {
        let unique: BTreeSet<Scope> = scopes.into_iter().collect();
        if unique.is_empty() {
            return Err(ScopeError::Empty);
        }
        if unique.len() > MAX_SCOPES {
            return Err(ScopeError::TooMany);
        }
        // Drop every scope another one covers (`omi:read:bob` under `omi:read`, everything
        // under `admin`); among equals BTreeSet already kept one.
        let kept: Vec<Scope> = unique.iter().filter(|s| !unique.iter().any(|other| other != *s && other.covers(s))).cloned().collect();
        Ok(ScopeSet(kept))
    }

    /// Parses scopes separated by spaces and/or commas (the stored form, or what a CLI user types).
    pub fn parse(raw: &str) -> Result<ScopeSet, ScopeError> {
        ScopeSet::parse_each(raw.split([' ', ',']).filter(|s| !s.trim().is_empty()))
    }

    /// Parses a list of scope strings (a JSON array in a create request).
    pub fn parse_each<'a>(raw: impl IntoIterator<Item = &'a str>) -> Result<ScopeSet, ScopeError> {
        let mut scopes = Vec::new();
        for s in raw {
            // Duplicates are tolerated, but not without bound: nothing is silently dropped.
            if scopes.len() == MAX_SCOPES * 4 {
                return Err(ScopeError::TooMany);
            }
            scopes.push(Scope::parse(s)?);
        }
        ScopeSet::new(scopes)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    pub fn is_admin(&self) -> bool {
        self.0.iter().any(|s| s.capability == Capability::Admin)
    }

    /// Whether some scope grants `capability` over `target` (`None`: over everything).
    pub fn grants(&self, capability: Capability, target: Option<&str>) -> bool {
        self.0.iter().any(|s| s.grants(capability, target))
    }

    /// Which targets the set reaches for `capability`.
    pub fn reach(&self, capability: Capability) -> Reach {
        if self.grants(capability, None) {
            return Reach::All;
        }
        let only: BTreeSet<String> = self.0.iter().filter(|s| s.capability.implies(capability)).filter_map(|s| s.target.clone()).collect();
        if only.is_empty() {
            Reach::Nothing
        } else {
            Reach::Only(only)
        }
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

impl serde::Serialize for ScopeSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(raw: &str) -> ScopeSet {
        ScopeSet::parse(raw).unwrap()
    }

    #[test]
    fn every_scope_round_trips() {
        for raw in [
            "admin",
            "omi:read",
            "omi:read:mentor-1",
            "omi:export",
            "omi:export:u.2",
            "omi:write",
            "apps:read",
            "apps:read:demo",
            "apps:write",
            "apps:write:my_app-2",
            "storage:admin",
        ] {
            assert_eq!(Scope::parse(raw).unwrap().to_string(), raw);
        }
    }

    #[test]
    fn bad_scopes_are_refused_with_a_reason() {
        assert!(matches!(Scope::parse("omi:delete"), Err(ScopeError::Unknown(_))));
        assert!(matches!(Scope::parse("omi"), Err(ScopeError::Unknown(_))));
        assert!(matches!(Scope::parse("adminx"), Err(ScopeError::Unknown(_))));
        assert!(matches!(Scope::parse("admin:bob"), Err(ScopeError::NotNarrowable(_))));
        assert!(matches!(Scope::parse("omi:write:bob"), Err(ScopeError::NotNarrowable(_))));
        assert!(matches!(Scope::parse("storage:admin:x"), Err(ScopeError::NotNarrowable(_))));
        for bad in ["omi:read:", "omi:read:a/b", "omi:read:..", "omi:read:a:b", "apps:read:.hidden", "apps:write:a b"] {
            assert!(matches!(Scope::parse(bad), Err(ScopeError::BadTarget { .. })), "{bad}");
        }
        let long = format!("omi:read:{}", "u".repeat(129));
        assert!(Scope::parse(&long).is_err());
        assert_eq!(ScopeSet::parse(" , "), Err(ScopeError::Empty));
        let many: Vec<String> = (0..=MAX_SCOPES).map(|i| format!("apps:read:a{i}")).collect();
        assert_eq!(ScopeSet::parse(&many.join(" ")), Err(ScopeError::TooMany));
        let repeated = format!("{} admin", "apps:read:a ".repeat(MAX_SCOPES * 4));
        assert_eq!(ScopeSet::parse(&repeated), Err(ScopeError::TooMany));
        assert_eq!(ScopeSet::parse(&"apps:read:a ".repeat(MAX_SCOPES)).unwrap().to_string(), "apps:read:a");
    }

    #[test]
    fn admin_implies_everything() {
        let admin = ScopeSet::admin();
        for c in Capability::ALL {
            assert!(admin.grants(c, None));
            assert!(admin.grants(c, Some("anyone")));
            assert_eq!(admin.reach(c), Reach::All);
        }
    }

    #[test]
    fn write_implies_read_and_read_implies_export_for_the_same_target() {
        let s = set("apps:write:demo omi:read:alice");
        assert!(s.grants(Capability::AppsRead, Some("demo")));
        assert!(s.grants(Capability::AppsWrite, Some("demo")));
        assert!(!s.grants(Capability::AppsRead, Some("other")));
        assert!(!s.grants(Capability::AppsRead, None));
        assert!(s.grants(Capability::OmiExport, Some("alice")));
        assert!(!s.grants(Capability::OmiExport, Some("bob")));
        assert!(!s.grants(Capability::OmiWrite, None));
        // Reading never implies writing.
        assert!(!set("apps:read").grants(Capability::AppsWrite, Some("demo")));
        assert!(!set("omi:export").grants(Capability::OmiRead, Some("alice")));
    }

    #[test]
    fn unscoped_grants_every_target() {
        let s = set("omi:read");
        assert!(s.grants(Capability::OmiRead, Some("anyone")));
        assert!(s.grants(Capability::OmiRead, None));
        assert!(!s.grants(Capability::AppsRead, Some("demo")));
    }

    #[test]
    fn reach_lists_the_targets_a_narrow_key_has() {
        let s = set("omi:read:alice omi:export:bob apps:write:demo");
        assert_eq!(s.reach(Capability::OmiRead), Reach::Only(["alice".to_string()].into()));
        assert_eq!(s.reach(Capability::OmiExport), Reach::Only(["alice".to_string(), "bob".to_string()].into()));
        assert_eq!(s.reach(Capability::AppsRead), Reach::Only(["demo".to_string()].into()));
        assert_eq!(s.reach(Capability::StorageAdmin), Reach::Nothing);
        assert_eq!(set("storage:admin").reach(Capability::StorageAdmin), Reach::All);
    }

    #[test]
    fn sets_are_canonical() {
        assert_eq!(set("omi:read:bob, omi:read omi:read:bob").to_string(), "omi:read");
        assert_eq!(set("apps:read:demo apps:write:demo").to_string(), "apps:write:demo");
        assert_eq!(set("omi:export:a omi:read:a omi:export:b").to_string(), "omi:read:a omi:export:b");
        assert_eq!(set("storage:admin admin apps:read").to_string(), "admin");
        assert_eq!(set("apps:read:b apps:read:a").to_string(), "apps:read:a apps:read:b");
        // The canonical string parses back to the same set.
        let s = set("omi:read:x apps:write:y storage:admin");
        assert_eq!(ScopeSet::parse(&s.to_string()).unwrap(), s);
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"["omi:read:x","apps:write:y","storage:admin"]"#);
    }
}
