// HTTP calls to the viewer API (this origin) and the upload API (config.upload_url).
// Every failure becomes an ApiError with a sentence a person can act on.

import { session } from "./session.js";

export class ApiError extends Error {
  constructor(status, message, errors = []) {
    super(message);
    this.status = status;
    this.errors = errors;
  }
}

export const config = { upload_url: "", regions: [], devices: [], default_region: "us-east" };

export async function loadConfig() {
  const { data } = await request("config.json");
  Object.assign(config, data);
  return config;
}

const STATUS_HINTS = {
  401: "Your sign-in has expired or is not valid: sign in again.",
  403: "You are not allowed to do that.",
  404: "Not found.",
  429: "Too many attempts: wait a little and try again.",
  503: "The service is busy or briefly unavailable: try again in a moment.",
};

/**
 * fetch() with JSON in and out. auth: "required" sends the token (and fails at once
 * without one), "optional" sends it when signed in, false never.
 */
export async function request(url, { method = "GET", body, auth = false, keepalive = false } = {}) {
  const headers = { Accept: "application/json, application/problem+json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const token = auth ? session.token() : null;
  if (auth === "required" && !token) throw new ApiError(401, "Sign in first.");
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      keepalive,
    });
  } catch (err) {
    const where = url.startsWith("http") ? new URL(url).host : "the server";
    throw new ApiError(0, `Could not reach ${where} (${err.message}). Check that the service is running.`);
  }
  const type = response.headers.get("content-type") || "";
  let data = null;
  if (type.includes("json")) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    if (response.status === 401 && token) session.signOut("expired");
    const detail = data && (data.detail || data.title);
    const message = typeof detail === "string" && detail ? detail : STATUS_HINTS[response.status] || `HTTP ${response.status}`;
    throw new ApiError(response.status, message, (data && data.errors) || []);
  }
  return { data, headers: response.headers, status: response.status };
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") q.set(key, String(value));
  }
  const text = q.toString();
  return text ? `?${text}` : "";
}

// --- accounts (upload API) -----------------------------------------------------------

export async function signIn(username, password) {
  const { data } = await request(`${config.upload_url}/v1/auth/token`, {
    method: "POST",
    body: { username, password },
  });
  session.signIn(username.trim().toLowerCase(), data.access_token, data.expires_in);
}

export async function register(username, email, password) {
  await request(`${config.upload_url}/v1/accounts`, { method: "POST", body: { username, email, password } });
  await signIn(username, password);
}

// --- viewer API ------------------------------------------------------------------------

/** A recommendation-shaped list and whether the answer was degraded. */
async function list(url, auth) {
  const { data, headers } = await request(url, { auth });
  return { ...data, degraded: headers.get("X-Vidflow-Degraded") };
}

export const recommendations = ({ region, device, limit = 20 }) =>
  list(`/v1/me/recommendations${query({ limit, region, device })}`, "required");
export const trending = ({ region, limit = 20 }) => list(`/v1/trending${query({ region, limit })}`, false);
export const related = (videoId, { region, limit = 12 }) =>
  list(`/v1/videos/${encodeURIComponent(videoId)}/related${query({ region, limit })}`, false);

export async function video(videoId, region) {
  return (await request(`/v1/videos/${encodeURIComponent(videoId)}${query({ region })}`)).data;
}

export async function myVideos(cursor) {
  return (await request(`/v1/me/videos${query({ limit: 20, cursor })}`, { auth: "required" })).data;
}

export async function editVideo(videoId, changes) {
  return (await request(`/v1/videos/${encodeURIComponent(videoId)}`, { method: "PATCH", body: changes, auth: "required" })).data;
}

export async function postEvents(events, { keepalive = false } = {}) {
  return (await request("/v1/events", { method: "POST", body: { events }, auth: "optional", keepalive })).data;
}
