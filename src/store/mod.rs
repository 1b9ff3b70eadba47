//! The storage core both workloads share.
//!
//! - [`blob`] (R2) and [`meta`] (D1): narrow adapters, the only code that touches the bindings;
//!   they count every operation per request and map D1's errors to typed ones in one place.
//! - [`kinds`]: every kind of object r2d1 writes, as data (prefix, workload, reference sources).
//! - [`object`]: one metadata convention, create-only or replace writes, one verified read.
//! - [`commit`]: R2 first, then one D1 batch fenced against the GC.
//! - [`gc`]: condemn → claim → delete → tombstone, for every prefix.
//! - [`jobs`]: the runner every scheduled job goes through, with its state in D1.
//! - [`consistency`]: rows against objects for every kind, merge-joined, resumable; [`checks`]:
//!   its walks persisted (what `/api/health` reports).
//! - [`usage`]: R2 operations by billing class, summed per day in D1.
//! - [`census`]: D1 bytes by table and R2 bytes by kind, for the storage report.

pub mod blob;
pub mod census;
pub mod checks;
pub mod commit;
pub mod consistency;
pub mod digest;
pub mod gc;
pub mod jobs;
pub mod kinds;
pub mod limiter;
pub mod meta;
pub mod object;
pub mod usage;

pub use blob::{BlobInfo, BlobMeta, BlobStore, PutOutcome, StoredBlob};
pub use kinds::Kind;
pub use meta::{MetaStore, Statement, Value};

use crate::request::Shared;

/// Both stores of one request.
pub struct Store {
    pub blobs: BlobStore,
    pub meta: MetaStore,
}

impl Store {
    pub fn request(&self) -> &Shared {
        self.meta.request()
    }
}
