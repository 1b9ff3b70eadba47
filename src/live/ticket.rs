//! How live tickets travel. Browsers cannot put an `Authorization` header on a WebSocket
//! handshake, and a token in the URL ends up in logs and history, so the dashboard trades its
//! Bearer credential for a short-lived ticket (`POST /api/live/ticket`) and offers it as a
//! `Sec-WebSocket-Protocol` value. What a ticket carries (the key and its scopes) and how it is
//! signed is `access::ticket`. Pure: tested on the host.

/// How long a ticket opens sockets for. A socket, once open, outlives its ticket.
pub const TICKET_TTL_MS: i64 = 60_000;
/// The subprotocol the server selects; the ticket rides beside it as `r2d1-ticket.<ticket>`.
pub const PROTOCOL: &str = "r2d1-live";
pub const TICKET_PROTOCOL_PREFIX: &str = "r2d1-ticket.";

/// The ticket among the comma-separated `Sec-WebSocket-Protocol` values, if one is offered.
pub fn from_protocols(header: &str) -> Option<&str> {
    header.split(',').map(str::trim).find_map(|p| p.strip_prefix(TICKET_PROTOCOL_PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ticket_is_found_among_protocols() {
        assert_eq!(from_protocols("r2d1-live, r2d1-ticket.5.ab"), Some("5.ab"));
        assert_eq!(from_protocols("r2d1-ticket.5.ab"), Some("5.ab"));
        assert_eq!(from_protocols("r2d1-live"), None);
        assert_eq!(from_protocols(""), None);
    }
}
