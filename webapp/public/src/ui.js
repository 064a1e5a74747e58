// Small DOM helpers: elements are built with h(), never from HTML strings, so titles and
// server messages are always text.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key in el && typeof value !== "string") {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "";
  const total = Math.max(0, Math.round(seconds));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const secs = String(total % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${secs}` : `${minutes}:${secs}`;
}

export function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

export function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleString();
}

/** An error box: the message, and each field's reason when the server listed them. */
export function errorBox(error, prefix = "") {
  const fields = error && Array.isArray(error.errors) ? error.errors : [];
  return h(
    "div",
    { class: "error", role: "alert", "data-testid": "error" },
    prefix ? `${prefix}: ` : "",
    error && error.message ? error.message : String(error),
    fields.length
      ? h("ul", {}, fields.map((f) => h("li", {}, f.field ? `${f.field}: ${f.message}` : f.message)))
      : null,
  );
}

export const SOURCE_LABELS = {
  collaborative: "For you",
  "co-watch": "Watched together",
  content: "Similar topics",
  trending: "Trending",
  session: "From this session",
};

/** A video card of a recommendation-shaped item. */
export function videoCard(item) {
  const poster = item.poster_url
    ? h("img", {
        src: item.poster_url,
        alt: "",
        loading: "lazy",
        onerror: (event) => event.target.replaceWith(placeholder(item.title)),
      })
    : placeholder(item.title);
  return h(
    "a",
    {
      class: "card",
      href: `#/watch/${item.video_id}`,
      "data-testid": "video-card",
      dataset: { videoId: item.video_id, source: item.source || "" },
    },
    h("div", { class: "poster" }, poster, h("span", { class: "length" }, duration(item.duration_seconds))),
    h("div", { class: "card-title" }, item.title),
    item.source
      ? h(
          "div",
          { class: "why" },
          h("span", { class: `badge source-${item.source}`, "data-testid": "source" }, SOURCE_LABELS[item.source] || item.source),
          item.reason ? h("span", { class: "reason", "data-testid": "reason" }, item.reason) : null,
        )
      : null,
  );
}

function placeholder(title) {
  return h("div", { class: "placeholder", "aria-hidden": "true" }, (title || "?").trim().charAt(0).toUpperCase());
}

export function grid(items, empty = "Nothing here yet.") {
  if (!items.length) return h("p", { class: "muted", "data-testid": "empty" }, empty);
  return h("div", { class: "grid" }, items.map(videoCard));
}
