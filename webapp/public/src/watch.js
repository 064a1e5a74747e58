// Watch: hls.js through the region's edge, a scrub bar with storyboard previews, watch
// events, "more like this" and the viewer's refreshed recommendations.

import * as api from "./api.js";
import { WatchEvents, trackPlayback } from "./events.js";
import { fillFeed, listMeta } from "./home.js";
import { session } from "./session.js";
import { cueAt, loadStoryboard } from "./storyboard.js";
import { clear, duration, errorBox, grid, h } from "./ui.js";

let HlsModule = null;

async function loadHls() {
  if (!HlsModule) {
    try {
      HlsModule = (await import("../vendor/hls.mjs")).default;
    } catch {
      throw new api.ApiError(0, "The video player (hls.js) is not installed on this server: run scripts/setup.sh.");
    }
  }
  return HlsModule;
}

export async function watchView(el, videoId, context) {
  const { region, device } = context;
  let meta;
  try {
    meta = await api.video(videoId, region);
  } catch (err) {
    if (err.status === 404) {
      clear(el, errorBox(new Error("This video does not exist or is not ready to watch yet.")), h("p", {}, h("a", { href: "#/" }, "Back to the home page")));
      return null;
    }
    throw err;
  }

  const video = h("video", { controls: true, playsinline: true, preload: "auto", "data-testid": "player", poster: meta.thumbnails.large || meta.thumbnails.small || undefined });
  const playerError = h("div", { class: "player-error", "data-testid": "player-error" });
  const scrub = h("input", { type: "range", min: 0, max: 1000, value: 0, step: 1, class: "scrub", "aria-label": "Seek", "data-testid": "scrub" });
  const preview = h("div", { class: "preview", hidden: true, "data-testid": "storyboard-preview" }, h("div", { class: "tile" }), h("span", {}));
  const eventStatus = h("div", { class: "event-status muted", "data-testid": "event-status", dataset: { accepted: "0", sent: "0" } }, "No watch events sent yet.");
  const likeButton = h("button", { type: "button", "data-testid": "like" }, "Like");
  const relatedBox = h("section", { class: "side-list", "data-testid": "related" }, h("h3", {}, "More like this"), h("p", { class: "muted" }, "Loading…"));
  const recsBox = h("section", { class: "side-list", "data-testid": "watch-recs" });

  clear(
    el,
    h(
      "div",
      { class: "watch" },
      h(
        "div",
        { class: "watch-main" },
        h("div", { class: "player" }, video, playerError),
        h("div", { class: "scrubber" }, preview, scrub),
        h("h1", { "data-testid": "video-title" }, meta.title),
        h("div", { class: "muted" }, `${meta.view_count} views · ${meta.like_count} likes · ${duration(meta.duration_seconds)}`, " · ", `watching from ${region} on ${device}`),
        h("div", { class: "tags" }, meta.tags.map((t) => h("span", { class: "tag" }, `#${t}`))),
        meta.description ? h("p", { class: "description" }, meta.description) : null,
        h("div", { class: "actions" }, likeButton),
        eventStatus,
      ),
      h("aside", { class: "watch-side" }, relatedBox, recsBox),
    ),
  );

  const events = new WatchEvents({
    videoId: meta.video_id,
    region,
    device,
    onChange: (stats) => {
      eventStatus.dataset.accepted = String(stats.accepted);
      eventStatus.dataset.sent = String(stats.sent);
      const parts = [`Watch events: ${stats.accepted} accepted`];
      if (stats.rejected) parts.push(`${stats.rejected} refused (${stats.lastReason})`);
      if (stats.lastError) parts.push(`last send failed: ${stats.lastError}`);
      eventStatus.textContent = parts.join(" · ");
      eventStatus.classList.toggle("error-text", Boolean(stats.lastError || stats.rejected));
    },
    onAccepted: () => refreshRecs(),
  });
  likeButton.addEventListener("click", () => {
    events.push("like", video.currentTime);
    likeButton.disabled = true;
    likeButton.textContent = "Liked";
  });
  const untrack = trackPlayback(video, events);

  // The refreshed recommendations follow the session: reload them (at most every 2 s)
  // after events are accepted.
  let refreshTimer = null;
  let lastRefresh = 0;
  async function refreshRecs() {
    if (refreshTimer) return;
    const wait = Math.max(0, 2000 - (Date.now() - lastRefresh));
    refreshTimer = setTimeout(async () => {
      lastRefresh = Date.now();
      await fillFeed(recsBox, context, Boolean(session.current()), { title: "Recommended for you now", limit: 10 });
      recsBox.dataset.refreshedAt = String(lastRefresh);
      refreshTimer = null;
    }, wait);
  }

  // Player.
  let hls = null;
  const showPlayerError = (message) => clear(playerError, errorBox(new Error(message)));
  try {
    const Hls = await loadHls();
    if (Hls.isSupported()) {
      hls = new Hls({ capLevelToPlayerSize: true });
      hls.on(Hls.Events.ERROR, (_event, data) => {
        if (!data.fatal) return;
        if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
          hls.recoverMediaError();
          return;
        }
        const status = data.response && data.response.code ? ` (HTTP ${data.response.code})` : "";
        showPlayerError(`The stream could not be played from the ${region} edge: ${data.details}${status}.`);
      });
      hls.loadSource(meta.hls_url);
      hls.attachMedia(video);
    } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = meta.hls_url;
    } else {
      showPlayerError("This browser can play neither HLS nor Media Source streams.");
    }
  } catch (err) {
    showPlayerError(err.message);
  }
  autoplay(video);

  // Scrub bar and storyboard.
  const onTime = () => {
    if (video.duration && document.activeElement !== scrub) scrub.value = String(Math.round((video.currentTime / video.duration) * 1000));
  };
  video.addEventListener("timeupdate", onTime);
  let cues = [];
  if (meta.thumbnails.storyboard) {
    loadStoryboard(meta.thumbnails.storyboard)
      .then(async (loaded) => {
        // Fetch the sprite sheets once, up front: scrubbing then never shows an empty tile.
        const sheets = [...new Set(loaded.map((cue) => cue.url))];
        await Promise.allSettled(sheets.map((url) => preloadImage(url)));
        cues = loaded;
        el.querySelector(".scrubber").dataset.storyboard = String(cues.length);
      })
      .catch(() => {
        cues = [];
      });
  }
  const total = () => video.duration || meta.duration_seconds || 0;
  const showPreview = (fraction) => {
    const time = fraction * total();
    const cue = cueAt(cues, time);
    if (!cue) return;
    const tile = preview.firstChild;
    tile.style.width = `${cue.w}px`;
    tile.style.height = `${cue.h}px`;
    tile.style.backgroundImage = `url("${cue.url}")`;
    tile.style.backgroundPosition = `-${cue.x}px -${cue.y}px`;
    preview.lastChild.textContent = duration(time);
    preview.style.left = `calc(${(fraction * 100).toFixed(2)}% - ${cue.w / 2}px)`;
    preview.hidden = false;
    preview.dataset.cueStart = String(cue.start);
  };
  const hidePreview = () => {
    preview.hidden = true;
  };
  scrub.addEventListener("input", () => showPreview(Number(scrub.value) / 1000));
  scrub.addEventListener("change", () => {
    if (total()) video.currentTime = (Number(scrub.value) / 1000) * total();
    hidePreview();
  });
  scrub.addEventListener("pointermove", (e) => {
    const box = scrub.getBoundingClientRect();
    showPreview(Math.min(1, Math.max(0, (e.clientX - box.left) / box.width)));
  });
  scrub.addEventListener("pointerleave", hidePreview);

  // Side lists.
  api
    .related(meta.video_id, { region })
    .then((answer) => clear(relatedBox, h("h3", {}, "More like this"), listMeta(answer), grid((answer.items || []).filter((i) => i.video_id !== meta.video_id), "Nothing similar yet.")))
    .catch((err) => clear(relatedBox, h("h3", {}, "More like this"), errorBox(err, "Similar videos could not be loaded")));
  fillFeed(recsBox, context, Boolean(session.current()), { title: "Recommended for you now", limit: 10 });

  return () => {
    clearTimeout(refreshTimer);
    untrack();
    video.removeEventListener("timeupdate", onTime);
    events.close();
    if (hls) hls.destroy();
    video.removeAttribute("src");
    video.load();
  };
}

function preloadImage(url) {
  const image = new Image();
  image.src = url;
  return image.decode();
}

async function autoplay(video) {
  // Like other players: start at once with sound when the browser allows it, muted
  // otherwise (always allowed); the viewer unmutes with the controls.
  try {
    await video.play();
  } catch (err) {
    if (err.name !== "NotAllowedError") return;
    video.muted = true;
    try {
      await video.play();
    } catch {
      // the viewer presses play
    }
  }
}
