// The signed-in viewer (token in sessionStorage: it lasts one tab and 15 minutes) and the
// viewer's region and device (localStorage: they are preferences).

const TOKEN_KEY = "vidflow.session";
const PREFS_KEY = "vidflow.prefs";
const listeners = new Set();

function read(storage, key) {
  try {
    return JSON.parse(storage.getItem(key) || "null");
  } catch {
    return null;
  }
}

export const session = {
  current() {
    const value = read(sessionStorage, TOKEN_KEY);
    if (!value || !value.token) return null;
    if (value.expires_at && Date.now() > value.expires_at) return null;
    return value;
  },
  token() {
    const value = this.current();
    return value ? value.token : null;
  },
  signIn(username, token, expiresIn) {
    // A little early, so a request never leaves with a token about to expire.
    const expires_at = Date.now() + Math.max(0, expiresIn - 15) * 1000;
    sessionStorage.setItem(TOKEN_KEY, JSON.stringify({ username, token, expires_at }));
    notify("signin");
  },
  signOut(reason = "signout") {
    sessionStorage.removeItem(TOKEN_KEY);
    notify(reason);
  },
  onChange(fn) {
    listeners.add(fn);
    return () => listeners.delete(fn);
  },
};

function notify(reason) {
  for (const fn of listeners) fn(reason);
}

export const prefs = {
  get() {
    return { region: null, device: null, ...(read(localStorage, PREFS_KEY) || {}) };
  },
  set(changes) {
    localStorage.setItem(PREFS_KEY, JSON.stringify({ ...this.get(), ...changes }));
  },
};

/** A random UUID, also where crypto.randomUUID is missing (plain-http origins). */
export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
