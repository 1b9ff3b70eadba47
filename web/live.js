// The live feed: trades the Bearer token for a one-minute ticket, opens /api/live with the
// ticket as a WebSocket subprotocol (never in the URL), and reconnects by itself with backoff.
// The page works without it: it only adds events on top of what the API already serves.
import { request, token } from "./api.js";

export function startLive({ onEvent, onStatus }) {
  let ws = null;
  let timer = null;
  let ping = null;
  let attempt = 0;
  let stopped = false;

  const schedule = () => {
    if (stopped) return;
    onStatus("offline");
    clearTimeout(timer);
    const delay = Math.min(15_000, 500 * 2 ** attempt) + Math.random() * 300;
    attempt += 1;
    timer = setTimeout(connect, delay);
  };

  async function connect() {
    if (stopped || !token.get()) return;
    clearTimeout(timer);
    onStatus("connecting");
    let ticket;
    try {
      const res = await request("/api/live/ticket", { method: "POST", quiet401: true });
      ({ ticket } = await res.json());
    } catch {
      return schedule();
    }
    if (stopped) return;
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/live`;
    try {
      ws = new WebSocket(url, ["r2d1-live", `r2d1-ticket.${ticket}`]);
    } catch {
      return schedule();
    }
    ws.onopen = () => {
      attempt = 0;
      onStatus("live");
      clearInterval(ping);
      ping = setInterval(() => ws && ws.readyState === 1 && ws.send("ping"), 25_000);
    };
    ws.onmessage = (e) => {
      if (typeof e.data !== "string" || e.data === "pong") return;
      try {
        const event = JSON.parse(e.data);
        if (event && event.type === "memory") onEvent(event);
      } catch {
        /* not ours */
      }
    };
    ws.onclose = () => {
      clearInterval(ping);
      ws = null;
      schedule();
    };
  }

  const kick = () => {
    if (!ws && !stopped) {
      attempt = 0;
      connect();
    }
  };
  window.addEventListener("online", kick);
  document.addEventListener("visibilitychange", () => document.visibilityState === "visible" && kick());
  connect();

  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      clearInterval(ping);
      if (ws) ws.close(1000, "signed out");
      window.removeEventListener("online", kick);
    },
  };
}
