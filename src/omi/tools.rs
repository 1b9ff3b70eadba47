//! Omi chat tools, the pure parts: a mentor asks their Omi "what did I promise Ana last week?"
//! and Omi's assistant calls r2d1.
//!
//! - [`signature_v2`]: the `v2` request signature Omi puts on tool calls when the app has a
//!   signing secret (the whole request is signed: method, path, query, body).
//! - [`manifest`]: `/.well-known/omi-tools.json`, the tools Omi's assistant may call.
//! - [`call`]: a tool call's body or query turned into a typed [`call::ToolCall`].
//! - [`answer`]: the `{"result": "…"}` text, short and in the language of the mentor's logs.
//! - [`terms`]: a spoken question's words as full-text search terms.
//!
//! The D1 reads between a call and its answer belong to the handler; every one of them must
//! filter on the calling uid ([`call::ToolCall::uid`]), which the signature covers.

pub mod answer;
pub mod call;
pub mod manifest;
pub mod signature_v2;
pub mod terms;
