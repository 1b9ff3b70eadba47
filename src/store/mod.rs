//! Narrow adapters over the two bindings. Domain code talks to these, never to `worker::Bucket`
//! or `worker::D1Database` directly, so every R2 and D1 call has one place that states its
//! contract (and one place where tests can trip a fault).

pub mod blob;
pub mod limiter;
pub mod meta;

pub use blob::{BlobInfo, BlobMeta, BlobStore, PutOutcome, StoredBlob};
pub use meta::{MetaStore, Statement, Value};
