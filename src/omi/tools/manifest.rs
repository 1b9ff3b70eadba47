//! The chat-tools manifest Omi reads from `/.well-known/omi-tools.json`:
//! `{"tools": [{name, description, endpoint, method, parameters, auth_required, status_message}]}`.
//!
//! The descriptions are read by Omi's language model to decide when to call a tool and what
//! to pass, so they say what the tool answers and give examples of questions, in English and
//! Spanish since mentors ask in both.

use serde::Serialize;
use serde_json::{json, Value};

use super::call::{Period, Tool, DEFAULT_LIMIT, MAX_ACTION_ITEMS, MAX_LIMIT, MAX_TEXT_CHARS};

/// The manifest's path on r2d1.
pub const MANIFEST_PATH: &str = "/.well-known/omi-tools.json";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Manifest {
    pub tools: Vec<ToolSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolSpec {
    pub name: &'static str,
    pub description: &'static str,
    /// Absolute when the manifest is built with an origin, else a path.
    pub endpoint: String,
    pub method: &'static str,
    /// JSON Schema: `{type: object, properties, required}`.
    pub parameters: Value,
    /// Omi only offers the tool to users who completed the app's setup (linked their uid).
    pub auth_required: bool,
    /// Shown to the mentor while the call runs.
    pub status_message: &'static str,
}

fn range_properties() -> Value {
    json!({
        "from": {"type": "string", "format": "date", "description": "First day to include, YYYY-MM-DD (UTC). Omit for no lower bound."},
        "to": {"type": "string", "format": "date", "description": "Last day to include, YYYY-MM-DD (UTC). Omit for no upper bound."}
    })
}

fn limit_property(default: u32, max: u32) -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": max, "default": default, "description": "How many to list at most."})
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

fn spec(tool: Tool) -> (&'static str, Value, &'static str) {
    match tool {
        Tool::SearchLogs => (
            "Search the user's own mentorship session logs (titles, summaries and transcripts) for words, a topic or a \
             promise, optionally within a date range. Use for questions like \"what did I promise Ana last week?\", \"when \
             did we talk about pricing?\", \"¿qué le prometí a Ana?\". Returns the matching sessions, newest first, with \
             date and summary.",
            json!({
                "type": "object",
                "properties": merge(json!({
                    "query": {"type": "string", "maxLength": MAX_TEXT_CHARS, "description": "Words to look for, e.g. \"Ana promise\" or \"pricing\"."},
                    "limit": limit_property(DEFAULT_LIMIT, MAX_LIMIT)
                }), range_properties()),
                "required": ["query"]
            }),
            "Searching your mentorship logs…",
        ),
        Tool::OpenActionItems => (
            "List the user's open (not completed) action items from their mentorship sessions, newest first, with the \
             session each came from. Use for \"my open action items\", \"what do I still have to do?\", \"¿qué tengo \
             pendiente?\".",
            json!({
                "type": "object",
                "properties": {"limit": limit_property(10, MAX_ACTION_ITEMS)},
                "required": []
            }),
            "Checking your action items…",
        ),
        Tool::SessionsWith => (
            "Summarize the user's mentorship sessions with one person or team (matched by name in speakers, titles, \
             summaries and transcripts): how many, the last one, and what each was about. Use for \"when did I last meet \
             the team from Guadalajara?\", \"summarize my sessions with Ana\", \"¿cuándo vi a Jorge?\".",
            json!({
                "type": "object",
                "properties": merge(json!({
                    "person": {"type": "string", "maxLength": MAX_TEXT_CHARS, "description": "The person's or team's name, e.g. \"Ana\" or \"Guadalajara team\"."},
                    "limit": limit_property(DEFAULT_LIMIT, MAX_LIMIT)
                }), range_properties()),
                "required": ["person"]
            }),
            "Looking up your sessions…",
        ),
        Tool::MentoringHours => (
            "How many hours the user mentored in a period, with the number of sessions, hours per week and how much of \
             the talking the user did. Use for \"how many hours did I mentor this month?\", \"¿cuántas horas de mentoría \
             di la semana pasada?\". Give either a period or from/to dates; the default is this month.",
            json!({
                "type": "object",
                "properties": merge(json!({
                    "period": {"type": "string", "enum": Period::NAMES, "description": "A calendar period in UTC; weeks start on Monday."}
                }), range_properties()),
                "required": []
            }),
            "Adding up your mentoring hours…",
        ),
    }
}

/// The manifest. `origin` (`https://r2d1.example.org`, no trailing `/`) makes endpoints
/// absolute, which Omi resolves without depending on the app's home URL; `None` leaves paths.
pub fn manifest(origin: Option<&str>, auth_required: bool) -> Manifest {
    let origin = origin.unwrap_or("").trim_end_matches('/');
    Manifest {
        tools: Tool::ALL
            .into_iter()
            .map(|tool| {
                let (description, parameters, status_message) = spec(tool);
                ToolSpec {
                    name: tool.name(),
                    description,
                    endpoint: format!("{origin}{}", tool.path()),
                    method: tool.method(),
                    parameters,
                    auth_required,
                    status_message,
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_lists_the_four_tools_in_omis_format() {
        let v = serde_json::to_value(manifest(Some("https://r2d1.example.org/"), true)).unwrap();
        let tools = v["tools"].as_array().unwrap();
        let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["search_mentorship_logs", "list_open_action_items", "summarize_sessions_with", "mentoring_hours"]);
        for t in tools {
            let keys: Vec<&String> = t.as_object().unwrap().keys().collect();
            assert_eq!(keys.len(), 7, "{t}");
            assert!(t["endpoint"].as_str().unwrap().starts_with("https://r2d1.example.org/api/omi/tools/"));
            assert!(["GET", "POST"].contains(&t["method"].as_str().unwrap()));
            assert_eq!(t["parameters"]["type"], "object");
            assert_eq!(t["auth_required"], true);
            // Every required parameter is declared.
            for r in t["parameters"]["required"].as_array().unwrap() {
                assert!(t["parameters"]["properties"].get(r.as_str().unwrap()).is_some(), "{t}");
            }
            assert!(t["description"].as_str().unwrap().len() > 80);
        }
        assert_eq!(tools[0]["parameters"]["required"], json!(["query"]));
        assert!(tools[0]["parameters"]["properties"]["from"].is_object());
        assert_eq!(tools[3]["parameters"]["properties"]["period"]["enum"].as_array().unwrap().len(), Period::NAMES.len());
        assert_eq!(manifest(None, false).tools[3].endpoint, "/api/omi/tools/hours");
    }
}
