//! Live-feed tickets that carry who opened the socket, so the hub can filter events by scope and
//! close sockets whose credential was revoked. Transport is `live::ticket`: the dashboard gets a ticket from
//! `POST /api/live/ticket` and offers it as the `r2d1-ticket.<ticket>` subprotocol
//! (`live::ticket::from_protocols`), within `live::ticket::TICKET_TTL_MS`.
//!
//! Ticket: `2.{expires_ms}.{who}.{scopes}.{mac}` where
//! - `who` is `k{key id}` for an API key, or `b{fingerprint}` for `API_TOKEN` (16 hex of a
//!   SHA-256 of the token: names which token without revealing it);
//! - `scopes` is the canonical scope string, base64url (a subprotocol value may not contain
//!   `:` or spaces);
//! - `mac` is hex HMAC-SHA256 over everything before it, keyed by the ticket secret.
//!
//! The hub stores `{who}.{scopes}` as the socket's attachment ([`LiveGrant::attachment`]). At
//! each broadcast it loads which of its sockets' key ids are no longer usable (one D1 query) and
//! the current `API_TOKEN` fingerprint, and [`deliver`] says, per socket: send, skip (not this
//! key's mentor), or close (revoked, expired, or `API_TOKEN` rotated).

use std::collections::BTreeSet;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::rule::{Credential, Principal};
use super::scope::{Capability, ScopeSet};
use super::secret::sha256_hex;
use crate::live::ticket::TICKET_TTL_MS;

const VERSION: &str = "2";
/// A ticket longer than this was not made by [`issue`] (64 scopes of 150 characters fit).
const MAX_TICKET_CHARS: usize = 16 * 1024;
/// WebSocket close code for "your credential no longer holds" (4000-4999: application codes).
pub const CLOSE_REVOKED: u16 = 4001;

/// Which credential opened a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opener {
    ApiKey { id: i64 },
    BootstrapToken { fingerprint: String },
}

/// What a socket was opened with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveGrant {
    pub opener: Opener,
    pub scopes: ScopeSet,
}

/// Names an `API_TOKEN` value without revealing it.
pub fn bootstrap_fingerprint(api_token: &str) -> String {
    sha256_hex(&format!("r2d1-bootstrap:{api_token}"))[..16].to_string()
}

impl LiveGrant {
    /// The grant for the caller of `POST /api/live/ticket`; `api_token` is the configured token
    /// (needed only when the caller is the bootstrap credential).
    pub fn for_principal(principal: &Principal, api_token: &str) -> LiveGrant {
        let opener = match &principal.credential {
            Credential::ApiKey { id, .. } => Opener::ApiKey { id: *id },
            Credential::BootstrapToken => Opener::BootstrapToken { fingerprint: bootstrap_fingerprint(api_token) },
        };
        LiveGrant { opener, scopes: principal.scopes.clone() }
    }

    /// `{who}.{scopes}`: the socket attachment, and the middle of a ticket.
    pub fn attachment(&self) -> String {
        let who = match &self.opener {
            Opener::ApiKey { id } => format!("k{id}"),
            Opener::BootstrapToken { fingerprint } => format!("b{fingerprint}"),
        };
        format!("{who}.{}", URL_SAFE_NO_PAD.encode(self.scopes.to_string()))
    }

    pub fn from_attachment(s: &str) -> Option<LiveGrant> {
        let (who, scopes) = s.split_once('.')?;
        let opener = if let Some(id) = who.strip_prefix('k') {
            let id: i64 = id.parse().ok()?;
            Opener::ApiKey { id }
        } else {
            let fp = who.strip_prefix('b')?;
            if fp.len() != 16 || !fp.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            Opener::BootstrapToken { fingerprint: fp.to_string() }
        };
        let scopes = String::from_utf8(URL_SAFE_NO_PAD.decode(scopes).ok()?).ok()?;
        Some(LiveGrant { opener, scopes: ScopeSet::parse(&scopes).ok()? })
    }
}

fn mac(secret: &[u8], signed: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(b"r2d1-live:");
    mac.update(signed.as_bytes());
    mac
}

/// A ticket for `grant`, valid until `now_ms + TICKET_TTL_MS`.
pub fn issue(secret: &[u8], grant: &LiveGrant, now_ms: i64) -> (String, i64) {
    let expires = now_ms.saturating_add(TICKET_TTL_MS);
    let signed = format!("{VERSION}.{expires}.{}", grant.attachment());
    let tag = hex::encode(mac(secret, &signed).finalize().into_bytes());
    (format!("{signed}.{tag}"), expires)
}

/// The grant a ticket carries, if it was issued with `secret` and has not expired.
pub fn verify(secret: &[u8], ticket: &str, now_ms: i64) -> Option<LiveGrant> {
    if ticket.len() > MAX_TICKET_CHARS {
        return None;
    }
    let (signed, tag) = ticket.rsplit_once('.')?;
    let mut parts = signed.splitn(3, '.');
    if parts.next()? != VERSION {
        return None;
    }
    let expires: i64 = parts.next()?.parse().ok()?;
    // An expiry further out than one TTL was not made by `issue`.
    if expires < now_ms || expires > now_ms.saturating_add(TICKET_TTL_MS) {
        return None;
    }
    let tag = hex::decode(tag).ok()?;
    mac(secret, signed).verify_slice(&tag).ok()?;
    LiveGrant::from_attachment(parts.next()?)
}

/// Which sockets' credentials no longer hold, as the hub learns before a broadcast.
#[derive(Debug, Clone, Default)]
pub struct Revocations<'a> {
    /// Key ids among the sockets' that are revoked, expired or deleted.
    pub unusable_keys: BTreeSet<i64>,
    /// The current `API_TOKEN`'s [`bootstrap_fingerprint`]; `None` when it is unset.
    pub bootstrap_fingerprint: Option<&'a str>,
}

/// The key ids to look up before a broadcast (`SELECT id FROM api_keys WHERE id IN (…) AND
/// usable`; ids not returned are unusable).
pub fn key_ids<'a>(grants: impl IntoIterator<Item = &'a LiveGrant>) -> BTreeSet<i64> {
    grants
        .into_iter()
        .filter_map(|g| match g.opener {
            Opener::ApiKey { id } => Some(id),
            Opener::BootstrapToken { .. } => None,
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Send,
    /// Not this socket's business (another mentor's memory).
    Skip,
    /// Close with [`CLOSE_REVOKED`]: the credential no longer holds.
    Close,
}

/// What to do with one socket for an event about mentor `event_uid`.
pub fn deliver(grant: &LiveGrant, event_uid: &str, revocations: &Revocations) -> Delivery {
    let holds = match &grant.opener {
        Opener::ApiKey { id } => !revocations.unusable_keys.contains(id),
        Opener::BootstrapToken { fingerprint } => revocations.bootstrap_fingerprint == Some(fingerprint.as_str()),
    };
    if !holds {
        Delivery::Close
    } else if grant.scopes.grants(Capability::OmiRead, Some(event_uid)) {
        Delivery::Send
    } else {
        Delivery::Skip
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::ticket::{from_protocols, TICKET_PROTOCOL_PREFIX};

    const SECRET: &[u8] = b"ticket-secret";

    fn key_grant(id: i64, scopes: &str) -> LiveGrant {
        LiveGrant { opener: Opener::ApiKey { id }, scopes: ScopeSet::parse(scopes).unwrap() }
    }

    #[test]
    fn tickets_carry_the_key_and_its_scopes() {
        let g = key_grant(42, "omi:read:alice apps:read");
        let (t, exp) = issue(SECRET, &g, 1_000);
        assert_eq!(exp, 1_000 + TICKET_TTL_MS);
        assert_eq!(verify(SECRET, &t, 1_000), Some(g.clone()));
        assert_eq!(verify(SECRET, &t, exp), Some(g));
        assert_eq!(verify(SECRET, &t, exp + 1), None);
        assert_eq!(verify(b"other", &t, 1_000), None);
        // A valid subprotocol token: no separators, found again among the offered protocols.
        assert!(t.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)), "{t}");
        assert_eq!(from_protocols(&format!("r2d1-live, {TICKET_PROTOCOL_PREFIX}{t}")), Some(t.as_str()));
    }

    #[test]
    fn the_bootstrap_token_is_named_by_fingerprint_only() {
        let g = LiveGrant::for_principal(&Principal::bootstrap(), "hunter2-hunter2");
        let (t, _) = issue(SECRET, &g, 0);
        assert!(!t.contains("hunter2"));
        assert_eq!(verify(SECRET, &t, 0), Some(g.clone()));
        assert_eq!(g.opener, Opener::BootstrapToken { fingerprint: bootstrap_fingerprint("hunter2-hunter2") });
        assert!(g.scopes.is_admin());
    }

    #[test]
    fn tampering_is_refused() {
        let (t, exp) = issue(SECRET, &key_grant(1, "omi:read:alice"), 0);
        let widened = t.replace(&URL_SAFE_NO_PAD.encode("omi:read:alice"), &URL_SAFE_NO_PAD.encode("omi:read"));
        assert_ne!(widened, t);
        assert_eq!(verify(SECRET, &widened, 0), None);
        assert_eq!(verify(SECRET, &t.replacen(".k1.", ".k2.", 1), 0), None);
        assert_eq!(verify(SECRET, &t.replacen(&exp.to_string(), &(exp - 1).to_string(), 1), 0), None);
        assert_eq!(verify(SECRET, &t.replacen('2', "1", 1), 0), None);
        for bad in ["", ".", "2.1.k1.YQ.", "2.x.k1.YQ.00", "1.60000.k1.YQ.00", &"2".repeat(MAX_TICKET_CHARS + 1)] {
            assert_eq!(verify(SECRET, bad, 0), None, "{bad:?}");
        }
        // The old format (expiry.mac) is not a v2 ticket.
        let old = format!("60000.{}", "ab".repeat(32));
        assert_eq!(verify(SECRET, &old, 0), None);
    }

    #[test]
    fn attachments_round_trip_and_refuse_garbage() {
        for g in [key_grant(7, "omi:read:a omi:read:b"), LiveGrant::for_principal(&Principal::bootstrap(), "t")] {
            assert_eq!(LiveGrant::from_attachment(&g.attachment()), Some(g));
        }
        for bad in ["", "k1", "kx.YQ", "bxyz.YQ", "z1.YQ", "k1.!!", "k1.eA"] {
            assert_eq!(LiveGrant::from_attachment(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn broadcasts_follow_scopes_and_close_revoked_sockets() {
        let alice = key_grant(1, "omi:read:alice");
        let all = key_grant(2, "omi:read");
        let apps = key_grant(3, "apps:read");
        let boot = LiveGrant::for_principal(&Principal::bootstrap(), "token-1");
        let fp = bootstrap_fingerprint("token-1");
        let ok = Revocations { unusable_keys: BTreeSet::new(), bootstrap_fingerprint: Some(&fp) };
        assert_eq!(deliver(&alice, "alice", &ok), Delivery::Send);
        assert_eq!(deliver(&alice, "bob", &ok), Delivery::Skip);
        assert_eq!(deliver(&all, "bob", &ok), Delivery::Send);
        assert_eq!(deliver(&apps, "bob", &ok), Delivery::Skip);
        assert_eq!(deliver(&boot, "bob", &ok), Delivery::Send);
        assert_eq!(key_ids([&alice, &all, &boot]), BTreeSet::from([1, 2]));

        let revoked = Revocations { unusable_keys: BTreeSet::from([1]), bootstrap_fingerprint: Some(&fp) };
        assert_eq!(deliver(&alice, "alice", &revoked), Delivery::Close);
        assert_eq!(deliver(&all, "alice", &revoked), Delivery::Send);
        let rotated_fp = bootstrap_fingerprint("token-2");
        let rotated = Revocations { unusable_keys: BTreeSet::new(), bootstrap_fingerprint: Some(&rotated_fp) };
        assert_eq!(deliver(&boot, "bob", &rotated), Delivery::Close);
        let unset = Revocations { unusable_keys: BTreeSet::new(), bootstrap_fingerprint: None };
        assert_eq!(deliver(&boot, "bob", &unset), Delivery::Close);
    }
}
