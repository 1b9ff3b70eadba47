//! Who may do what (issue 11): the pure core of access control. Nothing here calls `worker`;
//! the router, the repositories and the live hub call into it.
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
//! - [`secret`]: random bytes, base32, hashes and constant-time comparison.

pub mod api_key;
pub mod audit;
pub mod enrollment;
pub mod rule;
pub mod scope;
pub mod secret;
pub mod table;
pub mod ticket;
pub mod webhook;
