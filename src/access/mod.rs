//! Who may do what (issue 11). The pure core (no `worker` calls, host-tested):
//!
//! - [`scope`]: scopes (`omi:read:{uid}`, `apps:write:{app}`, …), sets of them, what implies what;
//! - [`rule`]: access rules as data and the authorization decision (allow, maybe with a forced
//!   filter; 401; 403 naming the scope);
//! - [`table`]: the rule of every route, one list for the router, the generated test and the
//!   README;
//! - [`api_key`]: `r2d1_{prefix}_{secret}` keys, stored as hashes, and their records;
//! - [`webhook`]: per-mentor webhook tokens and signing secrets (with rotation), the app's
//!   secret and the legacy shared token;
//! - [`enrollment`]: `OMI_ENROLLMENT`, invite codes, what to do with unenrolled uids;
//! - [`ticket`]: live-feed tickets that carry the key and its scopes, and the per-socket
//!   broadcast decision;
//! - [`audit`]: audit records, what is recorded, and the audit query's filters;
//! - [`secret`]: random bytes, base32, hashes and constant-time comparison;
//! - [`headers`]: what downloads and the dashboard send so stored content never runs as r2d1.
//!
//! Around it, like `omi/` and `files/`: [`repo`] (every SQL statement of keys, credentials,
//! invites, enrollment and the audit log; builders pure), [`guard`] (what the router runs before
//! a handler: authentication, webhook credentials, throttling, enrollment, the audit write) and
//! [`http`] (the routes: `/api/me`, `/api/admin/…`, the Omi auth-step page).

pub mod api_key;
pub mod audit;
pub mod enrollment;
pub mod guard;
pub mod headers;
pub mod http;
pub mod jobs;
pub mod repo;
pub mod rule;
pub mod scope;
pub mod secret;
pub mod table;
pub mod ticket;
pub mod webhook;
