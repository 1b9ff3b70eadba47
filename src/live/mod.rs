//! Live updates for the dashboard: one Durable Object (`LiveHub`, binding `LIVE`) holds every
//! open dashboard's WebSocket through the hibernation API, and the memory webhook notifies it
//! after a new memory is stored, so it can broadcast a small event to them all.
//!
//! Routes under `/api/live`:
//! - `POST /api/live/ticket` (Bearer `API_TOKEN`): a one-minute ticket for opening a socket;
//! - `GET /api/live` (WebSocket upgrade): the ticket is offered as the subprotocol
//!   `r2d1-ticket.<ticket>` next to `r2d1-live` (never in the URL); a Bearer header works too
//!   for clients that can set one.
//!
//! Live updates are best effort by design: a hub that is down or missing never fails or slows
//! a webhook (the notification runs in `wait_until`), and the dashboard works without them.

pub mod ticket;

use serde_json::{json, Value};
use worker::{
    durable_object, DurableObject, Env, Method, Request, RequestInit, Response, ResponseBuilder, State, Stub, WebSocket,
    WebSocketIncomingMessage, WebSocketPair,
};

use crate::error::{Error, Result};
use crate::http::{self, App};

/// The binding name in wrangler.toml (`[[durable_objects.bindings]]`).
pub const BINDING: &str = "LIVE";
/// Every dashboard shares one hub: the audience is a handful of coordinators, far below what
/// one object's sockets can carry.
const HUB_NAME: &str = "dashboard";

fn hub(env: &Env) -> Result<Stub> {
    let ns = env.durable_object(BINDING).map_err(|_| Error::NotConfigured(format!("the {BINDING} Durable Object binding is missing")))?;
    Ok(ns.get_by_name(HUB_NAME)?)
}

/// `POST /api/live/ticket` (the router checked the API token): a one-minute ticket.
pub fn ticket(app: &App) -> Result<Response> {
    let secret = app.config.api_token.as_ref().ok_or_else(|| Error::NotConfigured("API_TOKEN is not set".into()))?;
    let (ticket, expires) = ticket::issue(secret.expose(), app.now_ms);
    http::ok(&json!({ "ticket": ticket, "expiresAt": expires, "protocol": ticket::PROTOCOL }))
}

/// The access rule of `GET /api/live`: a ticket offered as a subprotocol, or the API token.
pub fn check_access(app: &App, req: &Request) -> Result<()> {
    let offered = http::header(req, "Sec-WebSocket-Protocol").unwrap_or_default();
    match ticket::from_protocols(&offered) {
        Some(t) => {
            let secret = app
                .config
                .api_token
                .as_ref()
                .ok_or_else(|| Error::NotConfigured("API_TOKEN is not set; the API stays closed until it is".into()))?;
            if !ticket::verify(secret.expose(), t, app.now_ms) {
                return Err(Error::Unauthorized("invalid or expired live ticket; get a new one from POST /api/live/ticket".into()));
            }
            Ok(())
        }
        None => http::require_api_token(&app.config, req),
    }
}

/// `GET /api/live`: hands the WebSocket upgrade to the hub.
pub async fn connect(req: Request, app: &App) -> Result<Response> {
    if !http::header(&req, "Upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket")) {
        return Err(Error::bad_request("upgrade_required", "GET /api/live is a WebSocket endpoint (Upgrade: websocket)"));
    }
    let stub = hub(&app.env)?;
    app.state.spend(1)?;
    crate::request::Counters::add(&app.state.counters.other_operations, 1);
    Ok(stub.fetch_with_request(req).await?)
}

/// Tells open dashboards about `event` after the response is sent. Never fails the caller:
/// problems are logged and the event is dropped.
pub fn announce(app: &App, event: Value) {
    let Some(ctx) = &app.ctx else { return };
    if let Err(e) = app.state.trip("live.notify") {
        worker::console_warn!("r2d1 live: not announcing: {e}");
        return;
    }
    let stub = match hub(&app.env) {
        Ok(stub) => stub,
        Err(e) => {
            worker::console_warn!("r2d1 live: not announcing: {e}");
            return;
        }
    };
    let body = event.to_string();
    // The call runs after the response but within this request's subrequests: counted now.
    crate::request::Counters::add(&app.state.counters.other_operations, 1);
    ctx.wait_until(async move {
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_body(Some(body.into()));
        let sent = match Request::new_with_init("https://live.r2d1/notify", &init) {
            Ok(req) => stub.fetch_with_request(req).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            worker::console_warn!("r2d1 live: announcing failed: {e}");
        }
    });
}

/// The hub. It keeps no state of its own: the runtime keeps the accepted sockets across
/// hibernation, and `get_websockets` finds them again for each broadcast.
#[durable_object]
pub struct LiveHub {
    state: State,
}

impl DurableObject for LiveHub {
    fn new(state: State, _env: Env) -> Self {
        // Keep-alive pings are answered without waking the object.
        if let Ok(pair) = worker::worker_sys::WebSocketRequestResponsePair::new("ping", "pong") {
            state.set_websocket_auto_response(&pair);
        }
        LiveHub { state }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let upgrade = req.headers().get("Upgrade")?.is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
        if upgrade {
            let pair = WebSocketPair::new()?;
            self.state.accept_web_socket(&pair.server);
            let _ = pair.server.send_with_str(json!({ "type": "hello", "clients": self.state.get_websockets().len() }).to_string());
            let mut builder = ResponseBuilder::new().with_status(101).with_websocket(pair.client);
            // A browser that offered subprotocols drops a handshake that selects none.
            if req.headers().get("Sec-WebSocket-Protocol")?.is_some() {
                builder = builder.with_header("Sec-WebSocket-Protocol", ticket::PROTOCOL)?;
            }
            return Ok(builder.empty());
        }
        if req.method() == Method::Post && req.path() == "/notify" {
            let event = req.text().await?;
            let sockets = self.state.get_websockets();
            let mut sent = 0;
            for ws in &sockets {
                if ws.send_with_str(&event).is_ok() {
                    sent += 1;
                }
            }
            return Response::from_json(&json!({ "sent": sent }));
        }
        Response::error("not found", 404)
    }

    async fn websocket_message(&self, ws: WebSocket, message: WebSocketIncomingMessage) -> worker::Result<()> {
        if let WebSocketIncomingMessage::String(s) = message {
            if s == "ping" {
                ws.send_with_str("pong")?;
            }
        }
        Ok(())
    }

    async fn websocket_close(&self, ws: WebSocket, code: usize, _reason: String, _was_clean: bool) -> worker::Result<()> {
        // Complete the closing handshake; 1005/1006 are reserved and cannot be sent back.
        let code = if code == 1005 || code == 1006 { 1000 } else { code as u16 };
        let _ = ws.close(Some(code), Some("closing"));
        Ok(())
    }

    async fn websocket_error(&self, _ws: WebSocket, _error: worker::Error) -> worker::Result<()> {
        Ok(())
    }
}
