//! Omi mentorship logs: the webhooks Omi calls, and the queries, export, import and jobs over
//! what they stored.
//!
//! Pure core (no `worker`): [`keys`], [`payload`], [`signature`], [`cursor`], [`query`],
//! [`render`], [`analytics`], [`link`], [`tools`], [`programme`] (directory, activity,
//! archive layout). SQL: [`repo`], `programme::repo`. Domain: [`ingest`] (storing a memory),
//! [`maintenance`] (import, reconciliation, deleting a mentor, retention, rollups),
//! [`reanalyze`] (stale analytics). Jobs: [`jobs`]. HTTP: [`http`].

pub mod analytics;
pub mod content;
pub mod cursor;
pub mod keys;
pub mod legacy;
pub mod legacy_repo;
pub mod link;
pub mod payload;
pub mod programme;
pub mod query;
pub mod render;
pub mod reply;
pub mod repo;
pub mod signature;
pub mod tools;

pub mod http;
pub mod ingest;
pub mod jobs;
pub mod maintenance;
pub mod migration;
pub mod reanalyze;
