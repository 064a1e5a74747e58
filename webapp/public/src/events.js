// Watch events of one playback (one session_id): play once, a heartbeat every 10 s of
// playback, pause, seek, complete, like. Posted to /v1/events in small batches; a failed
// post is retried with the same event ids (the API counts a resent event once), so
// nothing is lost and nothing is counted twice.

import * as api from "./api.js";
import { uuid } from "./session.js";

const MAX_POSITION = 12 * 3600;
const BATCH = 100;

export class WatchEvents {
  constructor({ videoId, region, device, onChange = () => {}, onAccepted = () => {} }) {
    Object.assign(this, { videoId, region, device, onChange, onAccepted });
    this.sessionId = uuid();
    this.queue = [];
    this.sending = false;
    this.retryDelay = 0;
    this.timer = null;
    this.stats = { sent: 0, accepted: 0, rejected: 0, lastError: null, lastReason: null };
  }

  push(type, position) {
    const pos = Number.isFinite(position) ? Math.min(Math.max(position, 0), MAX_POSITION) : 0;
    this.queue.push({
      event_id: uuid(),
      event_type: type,
      video_id: this.videoId,
      session_id: this.sessionId,
      client_ts: new Date().toISOString(),
      position_seconds: Math.round(pos * 1000) / 1000,
      region: this.region,
      device: this.device,
    });
    this.schedule(type === "heartbeat" ? 300 : 50);
  }

  schedule(delay) {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flush();
    }, delay);
  }

  async flush({ keepalive = false } = {}) {
    if (this.sending || !this.queue.length) return;
    this.sending = true;
    const batch = this.queue.slice(0, BATCH);
    try {
      const result = await api.postEvents(batch, { keepalive });
      this.queue.splice(0, batch.length);
      this.stats.sent += batch.length;
      this.stats.accepted += result.accepted.length;
      this.stats.rejected += result.rejected.length;
      this.stats.lastReason = result.rejected.length ? result.rejected[0].reason : null;
      this.stats.lastError = null;
      this.retryDelay = 0;
      if (result.accepted.length) this.onAccepted(result.accepted.length);
    } catch (err) {
      // 4xx other than 401/408/429 will not get better by resending: report and drop.
      const retryable = [0, 401, 408, 429].includes(err.status) || err.status >= 500;
      this.stats.lastError = retryable ? `${err.message} (will retry)` : err.message;
      if (retryable) {
        this.retryDelay = Math.min(30000, this.retryDelay ? this.retryDelay * 2 : 1000);
      } else {
        this.queue.splice(0, batch.length);
      }
    } finally {
      this.sending = false;
      this.onChange(this.stats);
    }
    if (this.queue.length) this.schedule(this.retryDelay || 50);
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    // keepalive lets the last batch leave even as the page goes away.
    this.flush({ keepalive: true });
  }
}

/** Wires a <video> to a WatchEvents. Returns a function that unhooks it. */
export function trackPlayback(video, events) {
  let started = false;
  let ended = false;
  let played = 0;
  let last = null;
  let seeking = false;
  const on = (name, fn) => {
    video.addEventListener(name, fn);
    return () => video.removeEventListener(name, fn);
  };
  const offs = [
    on("playing", () => {
      if (!started) {
        started = true;
        events.push("play", video.currentTime);
      }
      ended = false;
      last = video.currentTime;
    }),
    on("timeupdate", () => {
      if (video.paused || seeking) return;
      const now = video.currentTime;
      const delta = last === null ? 0 : now - last;
      last = now;
      if (delta > 0 && delta < 2) {
        played += delta;
        if (played >= 10) {
          played -= 10;
          events.push("heartbeat", now);
        }
      }
    }),
    on("pause", () => {
      if (started && !video.ended && !seeking) events.push("pause", video.currentTime);
    }),
    on("seeking", () => {
      seeking = true;
    }),
    on("seeked", () => {
      seeking = false;
      last = video.currentTime;
      if (started) events.push("seek", video.currentTime);
    }),
    on("ended", () => {
      if (!ended) {
        ended = true;
        events.push("complete", video.duration || video.currentTime);
      }
    }),
  ];
  return () => offs.forEach((off) => off());
}
