// The Batch API as the dashboard calls it: same origin, the session cookie, the CSRF header.
export const API_VERSION = "2024-07-01.20.0";
const JSON_TYPE = "application/json; odata=minimalmetadata";
const HEADERS = { "x-openbatch-dashboard": "1" };

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function url(path, query = {}) {
  const params = new URLSearchParams({ "api-version": API_VERSION });
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(name, value);
  }
  return `${path}?${params}`;
}

async function send(method, target, { body, headers = {} } = {}) {
  // no-store: the API's answers carry Last-Modified, from which a browser would reuse them for a while
  const init = { method, headers: { ...HEADERS, ...headers }, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["content-type"] = JSON_TYPE;
  }
  const response = await fetch(target, init);
  if (!response.ok) {
    let code = "", message = response.statusText;
    try {
      const error = await response.json();
      code = error.code || "";
      message = (error.message && error.message.value) || error.error || message;
    } catch (_) { /* not JSON */ }
    throw new ApiError(response.status, code, message);
  }
  return response;
}

/** GET a Batch API resource as JSON. */
export async function get(path, query) {
  return (await send("GET", url(path, query))).json();
}

/** A page of a list: {items, next}; ``next`` is odata.nextLink (keyset paging). Only its path and query
 * are followed: behind a proxy that ends TLS the link may name http://, which an https page may not fetch. */
export async function page(pathOrLink, query) {
  let target = url(pathOrLink, query);
  if (pathOrLink.startsWith("http")) {
    const link = new URL(pathOrLink);
    target = link.pathname + link.search;
  }
  const data = await (await send("GET", target)).json();
  return { items: data.value || [], next: data["odata.nextLink"] || null };
}

/** Every item of a list, following nextLink, up to ``limit`` items. */
export async function all(path, query, limit = 5000) {
  const items = [];
  let next = null;
  do {
    const got = await page(next || path, next ? undefined : query);
    items.push(...got.items);
    next = got.next;
  } while (next && items.length < limit);
  return items;
}

/** POST (an action) or DELETE. */
export async function act(method, path, body) {
  return send(method, url(path), { body: method === "POST" ? (body || {}) : undefined });
}

/** The last ``bytes`` of a text file (stdout.txt, ...) of a task or node: {text, size}. */
export async function tail(path, bytes = 16384) {
  const head = await send("HEAD", url(path));
  const size = Number(head.headers.get("content-length") || 0);
  if (size === 0) return { text: "", size };
  const start = Math.max(0, size - bytes);
  const response = await send("GET", url(path), { headers: { "ocp-range": `bytes=${start}-${size - 1}` } });
  return { text: await response.text(), size, cut: start > 0 };
}

export async function session() {
  const response = await fetch("/ui/session", { credentials: "same-origin", cache: "no-store" });
  return response.ok ? response.json() : null;
}

export async function signIn(account, secret, kind) {
  const response = await fetch("/ui/session", {
    method: "POST", credentials: "same-origin",
    headers: { ...HEADERS, "content-type": "application/json" },
    body: JSON.stringify({ account, [kind]: secret }),
  });
  const data = await response.json();
  if (!response.ok) throw new ApiError(response.status, "", data.error);
  return data;
}

export async function signOut() {
  await fetch("/ui/session", { method: "DELETE", credentials: "same-origin", headers: HEADERS });
}

export const enc = encodeURIComponent;
