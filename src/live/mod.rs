//! Live updates for the dashboard: one Durable Object (`LiveHub`, binding `LIVE`) holds every
//! open dashboard's WebSocket through the hibernation API, and the memory webhook notifies it
//! after a new memory is stored, so it can broadcast a small event to them all.
//!
//! Routes under `/api/live`:
//! - `POST /api/live/ticket` (a key with `omi:read` or `omi:read:{uid}`): a one-minute ticket
//!   carrying the key and its scopes (`access::ticket`);
//! - `GET /api/live` (WebSocket upgrade): the ticket is offered as the subprotocol
//!   `r2d1-ticket.<ticket>` next to `r2d1-live` (never in the URL); a Bearer header works too
//!   for clients that can set one.
//!
//! Each socket keeps the key id and scopes it was opened with. At each broadcast the hub reads
//! which of its sockets' keys are no longer usable (one D1 query) and compares the bootstrap
//! sockets' `API_TOKEN` fingerprint with the current one: a mentor's socket gets only that
//! mentor's events, and a revoked key's (or a rotated `API_TOKEN`'s) socket is closed.
//!
//! Live updates are best effort by design: a hub that is down or missing never fails or slows
//! a webhook (the notification runs in `wait_until`), and the dashboard works without them.

pub mod ticket;

use serde_json::{json, Value};
use worker::{
    durable_object, DurableObject, Env, Headers, Method, Request, RequestInit, Response, ResponseBuilder, State, Stub, WebSocket,
    WebSocketIncomingMessage, WebSocketPair,
};

use crate::access::guard;
use crate::access::ticket::{self as access_ticket, deliver, Delivery, LiveGrant, Revocations, CLOSE_REVOKED};
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

/// The header the worker hands a socket's grant to the hub in. The hub is reachable only
/// through its binding, so nothing but the worker can set it.
const GRANT_HEADER: &str = "X-R2D1-Live-Grant";

/// `POST /api/live/ticket` (the router checked the key): a one-minute ticket carrying the
/// caller's key and scopes.
pub fn ticket(app: &App) -> Result<Response> {
    let principal = app.caller.principal.as_ref().ok_or_else(|| Error::Internal("ticket without a principal".into()))?;
    let secret = guard::ticket_secret(app)?;
    let grant = LiveGrant::for_principal(principal, &secret);
    let (ticket, expires) = access_ticket::issue(secret.as_bytes(), &grant, app.now_ms);
    http::ok(&json!({ "ticket": ticket, "expiresAt": expires, "protocol": ticket::PROTOCOL }))
}

/// `GET /api/live`: hands the WebSocket upgrade to the hub, with the grant the router checked.
pub async fn connect(req: Request, app: &App) -> Result<Response> {
    if !http::header(&req, "Upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket")) {
        return Err(Error::bad_request("upgrade_required", "GET /api/live is a WebSocket endpoint (Upgrade: websocket)"));
    }
    let grant = app.caller.live.as_ref().ok_or_else(|| Error::Internal("live socket without a grant".into()))?;
    let headers = Headers::new();
    headers.set("Upgrade", "websocket")?;
    if let Some(p) = http::header(&req, "Sec-WebSocket-Protocol") {
        headers.set("Sec-WebSocket-Protocol", &p)?;
    }
    headers.set(GRANT_HEADER, &grant.attachment())?;
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let forwarded = Request::new_with_init("https://live.r2d1/connect", &init)?;
    let stub = hub(&app.env)?;
    app.state.spend(1)?;
    crate::request::Counters::add(&app.state.counters.other_operations, 1);
    Ok(stub.fetch_with_request(forwarded).await?)
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

/// The hub. It keeps no state of its own: the runtime keeps the accepted sockets (and each
/// one's grant, as its attachment) across hibernation, and `get_websockets` finds them again
/// for each broadcast.
#[durable_object]
pub struct LiveHub {
    state: State,
    env: Env,
}

impl LiveHub {
    /// What has been revoked among the sockets' credentials, as of now.
    async fn revocations<'a>(&self, grants: &[LiveGrant], fingerprint: Option<&'a str>) -> Revocations<'a> {
        let ids: Vec<i64> = access_ticket::key_ids(grants).into_iter().collect();
        let mut unusable = std::collections::BTreeSet::new();
        if !ids.is_empty() {
            let now = worker::Date::now().as_millis() as i64;
            let usable = match crate::store::MetaStore::from_env(&self.env, std::rc::Rc::new(crate::request::RequestState::at_wall_clock()))
            {
                Ok(meta) => crate::access::repo::AccessRepo::new(meta).usable_keys(&ids, now).await,
                Err(e) => Err(e),
            };
            match usable {
                Ok(usable) => unusable.extend(ids.iter().copied().filter(|id| !usable.contains(id))),
                // Without D1 the hub cannot tell: it keeps every socket rather than drop them all.
                Err(e) => worker::console_warn!("r2d1 live: key check failed, sockets kept: {e}"),
            }
        }
        Revocations { unusable_keys: unusable, bootstrap_fingerprint: fingerprint }
    }
}

impl DurableObject for LiveHub {
    fn new(state: State, env: Env) -> Self {
        // Keep-alive pings are answered without waking the object.
        if let Ok(pair) = worker::worker_sys::WebSocketRequestResponsePair::new("ping", "pong") {
            state.set_websocket_auto_response(&pair);
        }
        LiveHub { state, env }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let upgrade = req.headers().get("Upgrade")?.is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
        if upgrade {
            let Some(grant) = req.headers().get(GRANT_HEADER)?.filter(|g| LiveGrant::from_attachment(g).is_some()) else {
                return Response::error("a socket needs its grant", 403);
            };
            let pair = WebSocketPair::new()?;
            self.state.accept_web_socket(&pair.server);
            pair.server.serialize_attachment(grant)?;
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
            let uid = serde_json::from_str::<Value>(&event).ok().and_then(|v| v["userId"].as_str().map(str::to_string)).unwrap_or_default();
            let sockets = self.state.get_websockets();
            let grants: Vec<Option<LiveGrant>> = sockets
                .iter()
                .map(|ws| ws.deserialize_attachment::<String>().ok().flatten().and_then(|a| LiveGrant::from_attachment(&a)))
                .collect();
            let known: Vec<LiveGrant> = grants.iter().flatten().cloned().collect();
            let fingerprint = self
                .env
                .secret("API_TOKEN")
                .map(|s| s.to_string())
                .ok()
                .or_else(|| self.env.var("API_TOKEN").map(|v| v.to_string()).ok())
                .filter(|t| !t.trim().is_empty())
                .map(|t| access_ticket::bootstrap_fingerprint(t.trim()));
            let revocations = self.revocations(&known, fingerprint.as_deref()).await;
            let (mut sent, mut skipped, mut closed) = (0, 0, 0);
            for (ws, grant) in sockets.iter().zip(&grants) {
                let delivery = grant.as_ref().map_or(Delivery::Close, |g| deliver(g, &uid, &revocations));
                match delivery {
                    Delivery::Send => {
                        if ws.send_with_str(&event).is_ok() {
                            sent += 1;
                        }
                    }
                    Delivery::Skip => skipped += 1,
                    Delivery::Close => {
                        if let Err(e) = ws.close(Some(CLOSE_REVOKED), Some("credential revoked")) {
                            worker::console_warn!("r2d1 live: closing a revoked socket failed: {e}");
                        }
                        closed += 1;
                    }
                }
            }
            if closed > 0 {
                worker::console_log!("r2d1 live: closed {closed} socket(s) whose credential was revoked");
            }
            return Response::from_json(&json!({ "sent": sent, "skipped": skipped, "closed": closed }));
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
