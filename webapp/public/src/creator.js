// Creator: a resumable tus upload (progress, pause, resume, survives a reload), and the
// creator's videos with their status and failure reason, title and tags editable.

import * as api from "./api.js";
import { session } from "./session.js";
import { bytes, clear, errorBox, h, when } from "./ui.js";

const CHUNK = 8 * 1024 * 1024; // at least S3's 5 MiB part minimum: no parked tails
const POLL_MS = 3000;

export async function creatorView(el) {
  if (!session.current()) {
    clear(el, h("p", { "data-testid": "signin-needed" }, "Sign in on the ", h("a", { href: "#/" }, "home page"), " to upload and manage your videos."));
    return null;
  }
  const list = h("section", { class: "my-videos", "data-testid": "my-videos" }, h("p", { class: "muted" }, "Loading your videos…"));
  const uploader = uploadPanel(() => refresh());
  clear(el, h("h1", {}, "Creator"), uploader.el, list);

  let timer = null;
  let stopped = false;
  let rows = [];
  let cursor = null;
  async function refresh() {
    clearTimeout(timer);
    try {
      const page = await api.myVideos(null);
      rows = page.items;
      cursor = page.next_cursor;
      renderList();
    } catch (err) {
      if (err.status === 401) return;
      clear(list, h("h2", {}, "Your videos"), errorBox(err, "Your videos could not be loaded"));
    }
    // Follow videos through processing without a reload.
    if (!stopped && rows.some((v) => v.status === "uploading" || v.status === "processing")) {
      timer = setTimeout(refresh, POLL_MS);
    }
  }
  async function more() {
    try {
      const page = await api.myVideos(cursor);
      rows = rows.concat(page.items);
      cursor = page.next_cursor;
      renderList();
    } catch (err) {
      list.append(errorBox(err, "More videos could not be loaded"));
    }
  }
  function renderList() {
    clear(
      list,
      h("h2", {}, "Your videos"),
      rows.length
        ? h("table", { class: "videos" },
            h("thead", {}, h("tr", {}, h("th", {}, ""), h("th", {}, "Title and tags"), h("th", {}, "Status"), h("th", {}, "Uploaded"), h("th", {}, ""))),
            h("tbody", {}, rows.map((v) => videoRow(v, (updated) => {
              rows = rows.map((r) => (r.video_id === updated.video_id ? updated : r));
              renderList();
            }))))
        : h("p", { class: "muted", "data-testid": "empty" }, "No videos yet: upload your first one above."),
      cursor ? h("button", { type: "button", onclick: more }, "Show older videos") : null,
    );
  }
  await refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
    uploader.dispose();
  };
}

const STATUS_TEXT = {
  uploading: "Uploading",
  processing: "Processing",
  processed: "Ready",
  failed: "Failed",
};

function videoRow(v, onSaved) {
  const poster = v.thumbnails && v.thumbnails.small ? h("img", { src: v.thumbnails.small, alt: "", loading: "lazy" }) : h("div", { class: "placeholder small" }, "");
  const cell = h("td", { class: "title-cell" });
  const showText = () =>
    clear(
      cell,
      v.status === "processed" ? h("a", { href: `#/watch/${v.video_id}`, "data-testid": "title" }, v.title) : h("span", { "data-testid": "title" }, v.title),
      h("div", { class: "tags" }, v.tags.map((t) => h("span", { class: "tag" }, `#${t}`))),
    );
  showText();
  const edit = h("button", { type: "button", "data-testid": "edit" }, "Edit");
  edit.addEventListener("click", () => {
    const title = h("input", { name: "title", value: v.title, maxlength: 200, required: true, "data-testid": "edit-title" });
    const tags = h("input", { name: "tags", value: v.tags.join(", "), placeholder: "comma, separated", "data-testid": "edit-tags" });
    const status = h("div");
    const form = h("form", { class: "edit" }, title, tags, h("button", { type: "submit", "data-testid": "save" }, "Save"), h("button", { type: "button", class: "link", onclick: showText }, "Cancel"), status);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const changes = {};
      if (title.value !== v.title) changes.title = title.value;
      const newTags = tags.value.split(",").map((t) => t.trim()).filter(Boolean);
      if (newTags.join(",") !== v.tags.join(",")) changes.tags = newTags;
      if (!Object.keys(changes).length) return showText();
      try {
        onSaved(await api.editVideo(v.video_id, changes));
      } catch (err) {
        clear(status, errorBox(err, "Not saved"));
      }
    });
    clear(cell, form);
    title.focus();
  });
  return h(
    "tr",
    { "data-testid": "video-row", dataset: { videoId: v.video_id, status: v.status } },
    h("td", { class: "thumb" }, poster),
    cell,
    h(
      "td",
      {},
      h("span", { class: `status status-${v.status}`, "data-testid": "status" }, STATUS_TEXT[v.status] || v.status),
      v.failure_reason ? h("div", { class: "error-text", "data-testid": "failure-reason" }, v.failure_reason) : null,
    ),
    h("td", { class: "muted" }, when(v.uploaded_at)),
    h("td", {}, edit),
  );
}

function uploadPanel(onUploaded) {
  const file = h("input", { type: "file", accept: "video/*", required: true, "data-testid": "upload-file" });
  const title = h("input", { name: "title", maxlength: 200, placeholder: "defaults to the file name", "data-testid": "upload-title" });
  const tags = h("input", { name: "tags", placeholder: "comma, separated", "data-testid": "upload-tags" });
  const description = h("textarea", { name: "description", rows: 2, maxlength: 5000 });
  const start = h("button", { type: "submit", "data-testid": "upload-start" }, "Upload");
  const pause = h("button", { type: "button", disabled: true, "data-testid": "upload-pause" }, "Pause");
  const resume = h("button", { type: "button", disabled: true, "data-testid": "upload-resume" }, "Resume");
  const progress = h("progress", { max: 100, value: 0, "data-testid": "upload-progress" });
  const status = h("div", { class: "upload-status", "data-testid": "upload-status" });
  const form = h(
    "form",
    { class: "upload", "data-testid": "upload-form" },
    h("h2", {}, "Upload a video"),
    h("label", {}, "Video file", file),
    h("label", {}, "Title", title),
    h("label", {}, "Tags", tags),
    h("label", {}, "Description", description),
    h("div", { class: "actions" }, start, pause, resume),
    progress,
    status,
  );
  let upload = null;
  const say = (...parts) => clear(status, ...parts);

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const tus = window.tus;
    if (!tus || !tus.isSupported) {
      say(errorBox(new Error("The upload client (tus-js-client) is not installed on this server: run scripts/setup.sh.")));
      return;
    }
    const chosen = file.files[0];
    if (!chosen) return say(errorBox(new Error("Choose a video file first.")));
    const metadata = { filename: chosen.name, filetype: chosen.type || "application/octet-stream" };
    for (const [key, input] of [["title", title], ["tags", tags], ["description", description]]) {
      if (input.value.trim()) metadata[key] = input.value.trim();
    }
    upload = new tus.Upload(chosen, {
      endpoint: `${api.config.upload_url}/files/`,
      chunkSize: CHUNK,
      retryDelays: [0, 1000, 3000, 5000, 10000],
      metadata,
      removeFingerprintOnSuccess: true,
      // Tokens are short-lived; always send the current one.
      onBeforeRequest: (req) => {
        const token = session.token();
        if (token) req.setHeader("Authorization", `Bearer ${token}`);
      },
      onShouldRetry: (err, attempt, options) => {
        const code = err.originalResponse ? err.originalResponse.getStatus() : 0;
        if ([400, 401, 403, 404, 410, 413, 415].includes(code)) return false;
        return attempt < options.retryDelays.length;
      },
      onProgress: (sent, total) => {
        progress.value = total ? Math.floor((sent / total) * 100) : 0;
        say(`Uploading: ${progress.value}% (${bytes(sent)} of ${bytes(total)})`);
      },
      onSuccess: () => {
        progress.value = 100;
        say(h("span", { "data-testid": "upload-done" }, `Uploaded ${chosen.name}: processing has started. It appears below and turns Ready when its stream is published.`));
        pause.disabled = resume.disabled = true;
        start.disabled = false;
        form.reset();
        onUploaded();
      },
      onError: (err) => {
        pause.disabled = resume.disabled = true;
        start.disabled = false;
        say(errorBox(new Error(uploadError(err)), "Upload failed"));
      },
    });
    start.disabled = true;
    pause.disabled = false;
    resume.disabled = true;
    // Carry on where an interrupted upload of the same file stopped (even after a reload).
    try {
      const previous = await upload.findPreviousUploads();
      if (previous.length) {
        upload.resumeFromPreviousUpload(previous[0]);
        say("Resuming your earlier upload of this file…");
      } else {
        say("Starting…");
      }
    } catch {
      say("Starting…");
    }
    upload.start();
    setTimeout(onUploaded, 1000); // the new video shows up as "Uploading"
  });
  pause.addEventListener("click", async () => {
    if (!upload) return;
    pause.disabled = true;
    await upload.abort(); // keeps the upload: the server holds every byte it received
    resume.disabled = false;
    say(`Paused at ${progress.value}%. Resume carries on from the server's offset.`);
  });
  resume.addEventListener("click", () => {
    if (!upload) return;
    resume.disabled = true;
    pause.disabled = false;
    say("Resuming…");
    upload.start();
  });
  return {
    el: form,
    dispose: () => {
      if (upload) upload.abort();
    },
  };
}

function uploadError(err) {
  const response = err.originalResponse;
  if (response) {
    const code = response.getStatus();
    let detail = "";
    try {
      const body = JSON.parse(response.getBody() || "{}");
      detail = body.detail || body.title || "";
    } catch {
      detail = "";
    }
    if (code === 401) return "your sign-in expired: sign in again, then choose the file again to resume.";
    if (detail) return `${detail} (HTTP ${code})`;
    return `the upload service answered HTTP ${code}.`;
  }
  return `the upload service could not be reached (${err.message}).`;
}
