// The management API on a dashboard session. The page's URL is
// /{routePrefix}/durabletask/dashboard/, so the session and API routes are its siblings.
// The key is sent once, in a header, to trade for a session token; only the token is kept
// (in this tab's sessionStorage), and it goes in a header too, never in a URL.

const TOKEN_KEY = "orchestration-dashboard-session";
const SESSION_URL = new URL("../dashboard-session", document.baseURI).pathname;
const API_BASE = new URL("../dashboard-api/", document.baseURI).pathname;

export class ApiError extends Error {
  constructor(status, body) {
    const title = (body && body.error) || `HTTP ${status}`;
    const detail = (body && body.detail) || "";
    super(detail ? `${title}: ${detail}` : title);
    this.status = status;
    this.body = body;
  }
}

export class SignInNeeded extends Error {}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
}

async function readBody(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { error: `HTTP ${response.status}`, detail: text.slice(0, 500) };
  }
}

// Trade a key (or nothing, when management is open) for a session token.
export async function signIn(key) {
  const headers = { Accept: "application/json" };
  if (key) headers["x-functions-key"] = key;
  const response = await fetch(SESSION_URL, {
    method: "POST",
    headers,
    credentials: "omit",
    cache: "no-store",
  });
  const body = await readBody(response);
  if (!response.ok) throw new ApiError(response.status, body);
  sessionStorage.setItem(TOKEN_KEY, body.token);
  return body;
}

function path(segments) {
  return segments.map((s) => encodeURIComponent(String(s))).join("/");
}

// Call a management route: `segments` like ["durabletask", "instances", id]. Answers
// { status, body, headers }; a non-2xx answer throws ApiError, a missing or expired session
// SignInNeeded.
export async function call(method, segments, { query, body, headers } = {}) {
  const current = token();
  if (!current) throw new SignInNeeded("Sign in to use the dashboard.");
  const url = new URL(API_BASE + path(segments), window.location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const one of Array.isArray(value) ? value : [value]) url.searchParams.append(name, one);
  }
  const init = {
    method,
    headers: { Accept: "application/json", "x-dashboard-session": current, ...(headers || {}) },
    credentials: "omit",
    cache: "no-store",
  };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(url, init);
  const answer = await readBody(response);
  if (response.status === 401) {
    signOut();
    throw new SignInNeeded((answer && answer.detail) || "The session has ended: sign in again.");
  }
  if (!response.ok) throw new ApiError(response.status, answer);
  return { status: response.status, body: answer, headers: response.headers };
}
