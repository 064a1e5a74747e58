// Home: sign in or register; the viewer's recommendations (or, anonymously, regional
// trending) as a grid with posters and why each video is there.

import * as api from "./api.js";
import { session } from "./session.js";
import { clear, errorBox, grid, h, when } from "./ui.js";

export async function homeView(el, context) {
  const signedIn = session.current();
  const feed = h("section", { class: "feed", "data-testid": "feed" }, h("p", { class: "muted" }, "Loading…"));
  clear(el, signedIn ? null : authPanel(), feed);
  await fillFeed(feed, context, Boolean(signedIn));
}

export async function fillFeed(section, context, signedIn, { title = null, limit = 20 } = {}) {
  const { region, device } = context;
  const parts = [];
  let answer = null;
  if (signedIn) {
    try {
      answer = await api.recommendations({ region, device, limit });
      parts.push(h("h2", {}, title || "Recommended for you"));
    } catch (err) {
      if (err.status === 401) return; // signed out meanwhile: the page re-renders
      parts.push(errorBox(err, "Your recommendations could not be loaded; showing what is trending instead"));
    }
  }
  if (!answer) {
    try {
      answer = await api.trending({ region, limit });
      parts.push(h("h2", {}, `Trending in ${region}`));
    } catch (err) {
      clear(section, ...parts, errorBox(err, "Trending videos could not be loaded"));
      return;
    }
  }
  parts.push(listMeta(answer));
  parts.push(grid(answer.items || [], "No videos to show yet: upload one on the Creator page."));
  clear(section, ...parts);
  section.dataset.region = answer.region || region;
  section.dataset.modelVersion = answer.model_version || "";
}

export function listMeta(answer) {
  const bits = [];
  if (answer.model_version) bits.push(`model ${answer.model_version}`);
  if (answer.generated_at) bits.push(`computed ${when(answer.generated_at)}`);
  return h(
    "div",
    { class: "meta" },
    bits.length ? h("span", { class: "muted", "data-testid": "model-version" }, bits.join(" · ")) : null,
    answer.degraded
      ? h("span", { class: "degraded", "data-testid": "degraded" }, answer.degraded === "cache" ? " · shown from a recent copy (the catalog is briefly unavailable)" : " · showing trending (the catalog is briefly unavailable)")
      : null,
  );
}

function authPanel() {
  const status = h("div", { class: "form-status" });
  const signInForm = h(
    "form",
    { class: "auth", "data-testid": "signin-form" },
    h("h2", {}, "Sign in"),
    h("label", {}, "Username or e-mail", h("input", { name: "username", autocomplete: "username", required: true })),
    h("label", {}, "Password", h("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
    h("button", { type: "submit" }, "Sign in"),
  );
  const registerForm = h(
    "form",
    { class: "auth", "data-testid": "register-form" },
    h("h2", {}, "New here? Register"),
    h("label", {}, "Username", h("input", { name: "username", autocomplete: "username", required: true, minlength: 3, maxlength: 32 })),
    h("label", {}, "E-mail", h("input", { name: "email", type: "email", autocomplete: "email", required: true })),
    h("label", {}, "Password (10+ characters, two kinds)", h("input", { name: "password", type: "password", autocomplete: "new-password", required: true, minlength: 10 })),
    h("button", { type: "submit" }, "Register"),
  );
  const busy = async (form, action) => {
    const button = form.querySelector("button");
    button.disabled = true;
    clear(status, h("p", { class: "muted" }, "Working…"));
    try {
      await action(new FormData(form));
      clear(status);
    } catch (err) {
      clear(status, errorBox(err));
    } finally {
      button.disabled = false;
    }
  };
  signInForm.addEventListener("submit", (e) => {
    e.preventDefault();
    busy(signInForm, (f) => api.signIn(f.get("username"), f.get("password")));
  });
  registerForm.addEventListener("submit", (e) => {
    e.preventDefault();
    busy(registerForm, (f) => api.register(f.get("username"), f.get("email"), f.get("password")));
  });
  return h("section", { class: "auth-panel" }, signInForm, registerForm, status);
}
