// The staff socket, kept alive for a whole shift: reconnects by itself with backoff and jitter,
// reports its state for the always-visible indicator, and pings so that a link that died silently
// (a laptop lid, a Wi-Fi hand-over) is noticed in seconds rather than when the next patron writes.

const PING_EVERY_MS = 15000;
const PONG_WITHIN_MS = 10000;
const MAX_DELAY_MS = 30000;

export class StaffSocket {
  constructor(path, { onFrame, onState }) {
    this.url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
    this.onFrame = onFrame;
    this.onState = onState;
    this.ws = null;
    this.attempt = 0;
    this.stopped = false;
    this.retryTimer = null;
    this.pingTimer = null;
    this.lastFrameAt = 0;
    this.state = "connecting";
    window.addEventListener("online", () => this.retryNow());
  }

  start() {
    this.stopped = false;
    this.open();
  }

  setState(state, detail = {}) {
    this.state = state;
    this.onState(state, detail);
  }

  open() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.setState(this.attempt ? "reconnecting" : "connecting", { attempt: this.attempt });
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (e) {
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.lastFrameAt = Date.now();
      this.startPings();
    };
    ws.onmessage = (event) => {
      this.lastFrameAt = Date.now();
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      if (frame.type === "hello") {
        // Only a hello proves the server took us back: then the backoff starts over.
        this.attempt = 0;
        this.setState("connected");
      }
      this.onFrame(frame);
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.stopPings();
      if (event.code === 4401) {
        this.stopped = true;
        this.setState("signed-out");
        return;
      }
      if (event.code === 4403) {
        this.stopped = true;
        this.setState("forbidden");
        return;
      }
      if (!this.stopped) this.scheduleRetry(event.code === 4429 ? 4 : 1);
    };
  }

  scheduleRetry(factor = 1) {
    this.attempt += 1;
    const base = Math.min(MAX_DELAY_MS, 500 * 2 ** Math.min(this.attempt - 1, 6)) * factor;
    const delay = Math.min(MAX_DELAY_MS * factor, base * (0.75 + Math.random() * 0.5));
    const at = Date.now() + delay;
    this.setState(navigator.onLine === false ? "offline" : "reconnecting", { attempt: this.attempt, retryAt: at });
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  retryNow() {
    if (this.stopped || this.ws) return;
    this.open();
  }

  startPings() {
    this.stopPings();
    this.pingTimer = setInterval(() => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
      const sentAt = Date.now();
      this.send({ type: "ping" });
      setTimeout(() => {
        if (this.ws && this.lastFrameAt < sentAt) this.drop(); // no answer: the link is dead
      }, PONG_WITHIN_MS);
    }, PING_EVERY_MS);
  }

  stopPings() {
    clearInterval(this.pingTimer);
    this.pingTimer = null;
  }

  get isOpen() {
    return !!this.ws && this.ws.readyState === WebSocket.OPEN && this.state === "connected";
  }

  send(frame) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  // Close the current connection as a network failure would; the socket comes back by itself.
  drop() {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    this.stopPings();
    try {
      ws.close();
    } catch (e) {
      /* already closing */
    }
    if (!this.stopped) this.scheduleRetry();
  }
}
