//! Short-lived tickets for the live WebSocket. Browsers cannot put an `Authorization` header on
//! a WebSocket handshake, and a token in the URL ends up in logs and history, so the dashboard
//! trades its Bearer token for a ticket (`POST /api/live/ticket`) and offers it as a
//! `Sec-WebSocket-Protocol` value. Pure: tested on the host.
//!
//! A ticket is `<expiry ms>.<hex HMAC-SHA256(API_TOKEN, "r2d1-live:" + expiry)>`: nothing is
//! stored, any isolate can check it, and rotating `API_TOKEN` revokes every ticket.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::auth::tokens_match;

/// How long a ticket opens sockets for. A socket, once open, outlives its ticket.
pub const TICKET_TTL_MS: i64 = 60_000;
/// The subprotocol the server selects; the ticket rides beside it as `r2d1-ticket.<ticket>`.
pub const PROTOCOL: &str = "r2d1-live";
pub const TICKET_PROTOCOL_PREFIX: &str = "r2d1-ticket.";

fn mac_hex(secret: &str, expires_ms: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(format!("r2d1-live:{expires_ms}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A ticket valid until `now_ms + TICKET_TTL_MS`.
pub fn issue(secret: &str, now_ms: i64) -> (String, i64) {
    let expires = now_ms + TICKET_TTL_MS;
    (format!("{expires}.{}", mac_hex(secret, expires)), expires)
}

/// Whether `ticket` was issued with `secret` and has not expired (constant-time MAC check).
pub fn verify(secret: &str, ticket: &str, now_ms: i64) -> bool {
    let Some((expires, mac)) = ticket.split_once('.') else { return false };
    let Ok(expires) = expires.parse::<i64>() else { return false };
    // An expiry further out than one TTL was not made by `issue`.
    if expires < now_ms || expires > now_ms + TICKET_TTL_MS {
        return false;
    }
    tokens_match(mac, &mac_hex(secret, expires))
}

/// The ticket among the comma-separated `Sec-WebSocket-Protocol` values, if one is offered.
pub fn from_protocols(header: &str) -> Option<&str> {
    header.split(',').map(str::trim).find_map(|p| p.strip_prefix(TICKET_PROTOCOL_PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tickets_verify_until_they_expire() {
        let (t, exp) = issue("secret", 1_000);
        assert_eq!(exp, 1_000 + TICKET_TTL_MS);
        assert!(verify("secret", &t, 1_000));
        assert!(verify("secret", &t, exp));
        assert!(!verify("secret", &t, exp + 1));
        assert!(!verify("other", &t, 1_000));
    }

    #[test]
    fn forged_or_malformed_tickets_fail() {
        let (t, exp) = issue("secret", 0);
        let (_, mac) = t.split_once('.').unwrap();
        // Moving the expiry invalidates the MAC.
        assert!(!verify("secret", &format!("{}.{mac}", exp + 1), 0));
        // A far-future expiry is refused even before the MAC is checked.
        assert!(!verify("secret", &format!("{}.{mac}", exp * 100), 0));
        for bad in ["", ".", "abc", "12.", ".ff", "x.y"] {
            assert!(!verify("secret", bad, 0), "{bad:?}");
        }
    }

    #[test]
    fn the_ticket_is_found_among_protocols() {
        assert_eq!(from_protocols("r2d1-live, r2d1-ticket.5.ab"), Some("5.ab"));
        assert_eq!(from_protocols("r2d1-ticket.5.ab"), Some("5.ab"));
        assert_eq!(from_protocols("r2d1-live"), None);
        assert_eq!(from_protocols(""), None);
    }
}
