//! What r2d1 says back to Omi (pure). Omi reads a 200 answer: for the real-time transcript
//! webhook a JSON `message` longer than 5 characters becomes a push notification on the
//! mentor's phone ("Webhook says …", for every batch, every few seconds), and for a marketplace
//! integration app a memory trigger's `message` becomes a chat message in the user's app.
//! Developer webhooks ignore the memory answer. So:
//!
//! - real-time transcript answers never carry a `message` (see [`PUSHABLE_MESSAGE_CHARS`]);
//! - the memory answer's `message` follows `OMI_REPLY_MESSAGE`: `auto` (the default) keeps it
//!   for developer webhooks, where it is documented and harmless, and leaves it out for
//!   deliveries signed with the integration app's secret; `on` always, `off` never.

/// Omi pushes a `message` longer than this many characters.
pub const PUSHABLE_MESSAGE_CHARS: usize = 5;

/// `OMI_REPLY_MESSAGE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplyMessage {
    /// Keep the message for developer webhooks, omit it for integration apps.
    #[default]
    Auto,
    On,
    Off,
}

impl ReplyMessage {
    pub fn parse(raw: Option<&str>) -> Result<ReplyMessage, String> {
        match raw.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("auto") => Ok(ReplyMessage::Auto),
            Some("on") | Some("true") | Some("1") | Some("yes") => Ok(ReplyMessage::On),
            Some("off") | Some("false") | Some("0") | Some("no") => Ok(ReplyMessage::Off),
            Some(other) => Err(format!("OMI_REPLY_MESSAGE must be auto, on or off, got {other:?}")),
        }
    }
}

/// Who sent a delivery, as far as its answer matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    /// A mentor's own developer webhook (token in the URL, or a per-mentor secret): Omi
    /// ignores the memory answer.
    DeveloperWebhook,
    /// A marketplace integration app, proven by the app-level signing secret: Omi shows the
    /// memory answer's `message` to the user as a chat message.
    IntegrationApp,
}

/// The `message` of a memory answer, if any.
pub fn memory_message(mode: ReplyMessage, sender: Sender, duplicate: bool) -> Option<&'static str> {
    let include = match mode {
        ReplyMessage::On => true,
        ReplyMessage::Off => false,
        ReplyMessage::Auto => sender == Sender::DeveloperWebhook,
    };
    include.then_some(if duplicate { "Memory already stored in R2" } else { "Memory stored in R2" })
}

/// Whether Omi would push this answer body to the mentor's phone (used by tests and as a
/// guard in the transcript handler's own tests).
pub fn is_pushable(answer: &serde_json::Value) -> bool {
    answer.get("message").and_then(serde_json::Value::as_str).is_some_and(|m| m.chars().count() > PUSHABLE_MESSAGE_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_setting_parses() {
        assert_eq!(ReplyMessage::parse(None), Ok(ReplyMessage::Auto));
        assert_eq!(ReplyMessage::parse(Some(" AUTO ")), Ok(ReplyMessage::Auto));
        assert_eq!(ReplyMessage::parse(Some("off")), Ok(ReplyMessage::Off));
        assert_eq!(ReplyMessage::parse(Some("on")), Ok(ReplyMessage::On));
        assert!(ReplyMessage::parse(Some("loud")).unwrap_err().contains("OMI_REPLY_MESSAGE"));
    }

    #[test]
    fn integration_apps_get_no_chat_message_by_default() {
        assert_eq!(memory_message(ReplyMessage::Auto, Sender::DeveloperWebhook, false), Some("Memory stored in R2"));
        assert_eq!(memory_message(ReplyMessage::Auto, Sender::DeveloperWebhook, true), Some("Memory already stored in R2"));
        assert_eq!(memory_message(ReplyMessage::Auto, Sender::IntegrationApp, false), None);
        assert_eq!(memory_message(ReplyMessage::On, Sender::IntegrationApp, false), Some("Memory stored in R2"));
        assert_eq!(memory_message(ReplyMessage::Off, Sender::DeveloperWebhook, false), None);
    }

    #[test]
    fn pushable_means_a_message_longer_than_five_characters() {
        assert!(is_pushable(&json!({"message": "stored"})));
        assert!(!is_pushable(&json!({"message": "ok"})));
        assert!(!is_pushable(&json!({"message": "ñññññ"})));
        assert!(!is_pushable(&json!({"success": true})));
        assert!(!is_pushable(&json!({"error": {"message": "a long error message"}})));
    }
}
