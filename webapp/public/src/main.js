// The app shell: header (navigation, region and device switch, account), hash routes
// (#/, #/watch/<id>, #/creator) and the view's lifetime (each view returns a cleanup).

import { config, loadConfig } from "./api.js";
import { prefs, session } from "./session.js";
import { clear, errorBox, h } from "./ui.js";
import { homeView } from "./home.js";
import { watchView } from "./watch.js";
import { creatorView } from "./creator.js";

const view = document.getElementById("view");
let cleanup = null;

export const context = {
  get region() {
    return prefs.get().region || config.default_region;
  },
  get device() {
    return prefs.get().device || guessDevice();
  },
  notify(message) {
    const box = document.getElementById("notice");
    box.textContent = message || "";
    box.hidden = !message;
  },
};

function guessDevice() {
  if (matchMedia("(pointer: coarse)").matches && screen.width < 900) return "phone";
  return "desktop";
}

function fillSelect(select, values, current, onChange) {
  clear(select, values.map((v) => h("option", { value: v, selected: v === current }, v)));
  select.onchange = () => onChange(select.value);
}

function renderAccount() {
  const box = document.getElementById("account");
  const who = session.current();
  if (who) {
    clear(
      box,
      h("span", { "data-testid": "signed-in-as" }, who.username),
      h("button", { type: "button", class: "link", onclick: () => session.signOut() }, "Sign out"),
    );
  } else {
    clear(box, h("a", { href: "#/" }, "Sign in"));
  }
}

function route() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const watch = hash.match(/^\/watch\/([^/?#]+)$/);
  if (watch) return { name: "watch", render: (el) => watchView(el, decodeURIComponent(watch[1]), context) };
  if (hash === "/creator") return { name: "creator", render: (el) => creatorView(el, context) };
  return { name: "home", render: (el) => homeView(el, context) };
}

async function render() {
  if (cleanup) {
    try {
      cleanup();
    } catch {
      // a view that failed to clean up must not block the next one
    }
    cleanup = null;
  }
  context.notify("");
  const current = route();
  for (const link of document.querySelectorAll("[data-nav]")) {
    link.classList.toggle("active", link.dataset.nav === current.name);
  }
  clear(view);
  view.dataset.view = current.name;
  try {
    cleanup = (await current.render(view)) || null;
  } catch (err) {
    clear(view, errorBox(err, "This page could not be shown"));
  }
}

async function start() {
  try {
    await loadConfig();
  } catch (err) {
    clear(view, errorBox(err, "The app could not load its settings"));
    return;
  }
  fillSelect(document.getElementById("region"), config.regions, context.region, (region) => {
    prefs.set({ region });
    render();
  });
  fillSelect(document.getElementById("device"), config.devices, context.device, (device) => {
    prefs.set({ device });
    render();
  });
  renderAccount();
  session.onChange((reason) => {
    renderAccount();
    if (reason === "expired") context.notify("Your sign-in expired: sign in again.");
    if (reason !== "expired") render();
  });
  window.addEventListener("hashchange", render);
  await render();
}

start();
