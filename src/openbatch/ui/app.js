// The dashboard: sign-in, the live feed, a hash router over the views.
import { html, render, useEffect, useState } from "./vendor/htm-preact-standalone.module.js";
import * as api from "./api.js";
import { Overview } from "./views/overview.js";
import { Pools, Pool } from "./views/pools.js";
import { Jobs, Job } from "./views/jobs.js";
import { Task } from "./views/task.js";
import { Node } from "./views/node.js";

function route() {
  try {
    const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
    return parts.length ? parts : ["overview"];
  } catch (_) {   // a hash that is not valid percent-encoding
    return ["overview"];
  }
}

/** The live feed: the account's overview every second (server-sent events); ``version`` moves when it changes. */
function useLive(session, ended) {
  const [live, setLive] = useState({ overview: null, version: 0, connected: false });
  useEffect(() => {
    if (!session) return undefined;
    const source = new EventSource("/ui/events");
    let last = "";
    source.addEventListener("overview", (event) => {
      const overview = JSON.parse(event.data);
      const { rates, ...rest } = overview;
      const key = JSON.stringify(rest);
      setLive((old) => ({ overview, connected: true, version: key === last ? old.version : old.version + 1 }));
      last = key;
    });
    source.onerror = async () => {
      setLive((old) => ({ ...old, connected: false }));
      if (!(await api.session())) {   // the session ended (expired, or its token changed): sign in again
        source.close();
        ended();
      }
    };
    return () => source.close();
  }, [session]);
  return live;
}

function SignIn({ onIn }) {
  const [kind, setKind] = useState("key");
  const [error, setError] = useState(null);
  const submit = async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    try {
      onIn(await api.signIn(form.get("account"), form.get("secret"), kind));
    } catch (failure) {
      setError(failure.message);
    }
  };
  return html`<form class="signin" onSubmit=${submit}>
    <h1>openbatch</h1>
    <label>Account <input name="account" autocomplete="username" required value="openbatch" /></label>
    <label>${kind === "key" ? "Account key" : "Dashboard token"}
      <input name="secret" type="password" autocomplete="current-password" required /></label>
    <button type="submit">Sign in</button>
    <a href="#" onClick=${(e) => { e.preventDefault(); setKind(kind === "key" ? "token" : "key"); }}>
      ${kind === "key" ? "Sign in with a read-only dashboard token" : "Sign in with the account key"}</a>
    ${error ? html`<p class="error" role="alert">${error}</p>` : null}
  </form>`;
}

function App() {
  const [session, setSession] = useState(undefined);
  const [path, setPath] = useState(route());
  useEffect(() => {
    api.session().then(setSession);
    const moved = () => setPath(route());
    addEventListener("hashchange", moved);
    return () => removeEventListener("hashchange", moved);
  }, []);
  const live = useLive(session, () => setSession(null));
  if (session === undefined) return html`<p class="loading">loading…</p>`;
  if (session === null) return html`<${SignIn} onIn=${setSession} />`;
  const props = { session, live, version: live.version };
  const [view, ...ids] = path;
  let page;
  if (view === "pools" && ids.length === 3 && ids[1] === "nodes") page = html`<${Node} pool=${ids[0]} node=${ids[2]} ...${props} />`;
  else if (view === "pools" && ids.length) page = html`<${Pool} id=${ids[0]} ...${props} />`;
  else if (view === "pools") page = html`<${Pools} ...${props} />`;
  else if (view === "jobs" && ids.length === 3 && ids[1] === "tasks") page = html`<${Task} job=${ids[0]} id=${ids[2]} ...${props} />`;
  else if (view === "jobs" && ids.length) page = html`<${Job} id=${ids[0]} ...${props} />`;
  else if (view === "jobs") page = html`<${Jobs} ...${props} />`;
  else page = html`<${Overview} ...${props} />`;
  const tab = (name, label) => html`<a href="#/${name}" class=${view === name ? "current" : ""}>${label}</a>`;
  return html`<header>
      <span class="brand">openbatch</span>
      <nav>${tab("overview", "Overview")}${tab("pools", "Pools")}${tab("jobs", "Jobs")}</nav>
      <span class="who">
        <span class=${live.connected ? "live on" : "live"} title=${live.connected ? "live" : "reconnecting"}>●</span>
        ${session.account} (${session.role})
        <button class="link" onClick=${async () => { await api.signOut(); setSession(null); }}>sign out</button>
      </span>
    </header>
    <main>${page}</main>`;
}

render(html`<${App} />`, document.getElementById("app"));
