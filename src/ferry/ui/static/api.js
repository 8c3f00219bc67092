// The server's HTTP API as the pages use it (docs/ui-api.md): the token, errors, a server that
// went away (every read retries with backoff while a banner says so), and server-sent events read
// with fetch streaming (EventSource cannot send the Authorization header).

const TOKEN_KEY = "ferry.token";

export function getToken() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(token) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

/** The first URL carries ?token=…: keep it and take it out of the address bar (and history). */
export function takeTokenFromUrl() {
  const url = new URL(location.href);
  const token = url.searchParams.get("token");
  if (token) {
    setToken(token);
    url.searchParams.delete("token");
    history.replaceState(history.state, "", url.pathname + url.search + url.hash);
  }
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// ---- connectivity: one flag the banner follows ------------------------------------------------
let unreachable = false;
const listeners = new Set();

export function onConnectivity(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function setUnreachable(value) {
  if (unreachable === value) return;
  unreachable = value;
  for (const fn of listeners) fn(value);
}

export function isUnreachable() {
  return unreachable;
}

const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new DOMException("aborted", "AbortError"));
    });
  });

/** Delays between retries while the server is unreachable: 0.5 s doubling up to 8 s. */
export function backoff(attempt) {
  return Math.min(8000, 500 * 2 ** attempt);
}

// ---- navigation hook for 401 (set by the app) -------------------------------------------------
let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

function headers(extra) {
  const h = { ...extra };
  const token = getToken();
  if (token) h.Authorization = `Bearer ${token}`;
  return h;
}

async function errorOf(response) {
  let code = String(response.status);
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
    } else if (body && body.detail) {
      message = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    }
  } catch {
    /* not JSON: keep the status line */
  }
  return new ApiError(response.status, code, message);
}

/**
 * fetch under /api/v1 with the token. Network failures of reads retry with backoff (the banner
 * shows meanwhile); actions (retry: false) fail at once. 401 sends the page to the sign-in page.
 */
export async function request(path, { method = "GET", body, signal, retry = true, raw = false } = {}) {
  const init = { method, signal, headers: headers(body !== undefined ? { "Content-Type": "application/json" } : {}) };
  if (body !== undefined) init.body = JSON.stringify(body);
  for (let attempt = 0; ; attempt++) {
    let response;
    try {
      response = await fetch(`/api/v1${path}`, init);
    } catch (err) {
      if (err.name === "AbortError" || !retry) throw err;
      setUnreachable(true);
      await sleep(backoff(attempt), signal);
      continue;
    }
    if (response.status >= 502 && response.status <= 504 && retry) {
      setUnreachable(true); // a proxy in front of a server that is gone
      await sleep(backoff(attempt), signal);
      continue;
    }
    setUnreachable(false);
    if (response.status === 401) {
      onUnauthorized();
      throw await errorOf(response);
    }
    if (!response.ok) throw await errorOf(response);
    return raw ? response : response.json();
  }
}

export const get = (path, opts) => request(path, opts);
export const post = (path, body, opts) => request(path, { ...opts, method: "POST", body });

const IMAGE_TYPES = { png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg", gif: "image/gif", bmp: "image/bmp", webp: "image/webp", svg: "image/svg+xml", tif: "image/tiff", tiff: "image/tiff" };

/**
 * A run file as an object URL (images, downloads): fetched with the token, not by <img src>.
 * A file served as octet-stream gets its image type from its name (an SVG shows only so typed).
 */
export async function fileBlobUrl(runId, name, signal) {
  const response = await request(`/runs/${encodeURIComponent(runId)}/files/${name.split("/").map(encodeURIComponent).join("/")}`, { signal, raw: true });
  let blob = await response.blob();
  const type = IMAGE_TYPES[name.split(".").pop().toLowerCase()];
  if (type && (!blob.type || blob.type === "application/octet-stream")) blob = new Blob([blob], { type });
  return URL.createObjectURL(blob);
}

export async function download(runId, name) {
  const url = await fileBlobUrl(runId, name);
  const a = document.createElement("a");
  a.href = url;
  a.download = name.split("/").pop();
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// ---- server-sent events -----------------------------------------------------------------------

/** Parse an SSE byte stream into {event, data} objects (comments and ids ignored). */
export async function* parseSse(stream) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let event = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (!line || line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let text = colon < 0 ? "" : line.slice(colon + 1);
          if (text.startsWith(" ")) text = text.slice(1);
          if (field === "event") event = text;
          else if (field === "data") data.push(text);
        }
        if (data.length) yield { event, data: data.join("\n") };
      }
    }
  } finally {
    reader.releaseLock();
  }
}

/**
 * Follow a run's events until `end` or abort, reconnecting with backoff when the connection
 * drops. `handlers` = {status(row), log({name, offset, text}), metrics({names}), end()}; the log
 * offset advances with what arrived so a reconnect resumes where it stopped.
 */
export async function followRun(runId, { log = null, offset = 0, signal, handlers }) {
  let attempt = 0;
  for (;;) {
    const query = new URLSearchParams();
    if (log) {
      query.set("log", log);
      query.set("offset", String(offset));
    }
    const qs = query.toString();
    let ended = false;
    try {
      const response = await request(`/ui/runs/${encodeURIComponent(runId)}/events${qs ? `?${qs}` : ""}`, { signal, raw: true });
      attempt = 0;
      for await (const { event, data } of parseSse(response.body)) {
        let payload;
        try {
          payload = JSON.parse(data);
        } catch {
          continue;
        }
        if (event === "log" && payload.name === log) offset = payload.next_offset ?? payload.offset + new TextEncoder().encode(payload.text).length;
        if (event === "end") ended = true;
        handlers[event]?.(payload);
      }
    } catch (err) {
      if (err.name === "AbortError" || signal?.aborted) return;
      if (err instanceof ApiError) throw err;
      setUnreachable(true);
    }
    if (ended || signal?.aborted) return;
    await sleep(backoff(attempt++), signal).catch(() => {});
    if (signal?.aborted) return;
  }
}
