// Small pieces the views share.
import { html, useEffect, useState } from "./vendor/htm-preact-standalone.module.js";

export { html };

export function Badge({ state }) {
  return html`<span class="badge state-${state}">${state}</span>`;
}

/** A stacked bar of task states: succeeded, failed, running, active. */
export function Progress({ counts }) {
  const { active = 0, running = 0, succeeded = 0, failed = 0, completed = 0 } = counts;
  const other = Math.max(0, completed - succeeded - failed);
  const total = active + running + completed;
  const part = (n, name) => n > 0
    ? html`<span class="bar-${name}" title="${n} ${name}" style=${{ width: `${(100 * n) / total}%` }}></span>` : null;
  return html`<div class="progress" title="${completed} of ${total} completed">
    ${total === 0 ? html`<span class="bar-empty"></span>` : null}
    ${part(succeeded, "succeeded")}${part(failed, "failed")}${part(other, "completed")}
    ${part(running, "running")}${part(active, "active")}
  </div>`;
}

export function Counts({ counts }) {
  const parts = [["active", counts.active], ["running", counts.running], ["succeeded", counts.succeeded ?? counts.completed]];
  if (counts.failed) parts.push(["failed", counts.failed]);
  return html`<span class="counts">${parts.map(([name, n], i) =>
    html`${i ? " · " : ""}<span class="c-${name}">${n} ${name}</span>`)}</span>`;
}

export function Time({ value }) {
  if (!value) return html`<span class="muted">–</span>`;
  const date = new Date(value);
  return html`<time datetime=${value} title=${value}>${date.toLocaleString()}</time>`;
}

export function duration(start, end) {
  if (!start) return "–";
  const ms = (end ? new Date(end) : new Date()) - new Date(start);
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60000);
  return minutes < 60 ? `${minutes} min ${Math.floor((ms % 60000) / 1000)} s`
    : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function Failure({ error }) {
  return error ? html`<div class="error" role="alert">${error.code ? `${error.code}: ` : ""}${error.message}</div>` : null;
}

/** A button that asks first, runs ``run`` and reports its error; hidden for a read-only session. */
export function Action({ label, confirm, run, session, danger = false, done }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  if (!session || session.role !== "operator") return null;
  const click = async () => {
    if (confirm && !window.confirm(confirm)) return;
    setBusy(true);
    setError(null);
    try {
      await run();
      if (done) done();
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  return html`<span class="action">
    <button class=${danger ? "danger" : ""} disabled=${busy} onClick=${click}>${busy ? "…" : label}</button>
    ${error ? html`<span class="error inline">${error.code || error.status}: ${error.message}</span>` : null}
  </span>`;
}

/** Loads ``load()`` now and again whenever ``version`` changes; {data, error, reload}. */
export function useLoad(load, deps, version) {
  const [state, setState] = useState({ data: null, error: null });
  const [again, setAgain] = useState(0);
  useEffect(() => {
    let live = true;
    load().then((data) => live && setState({ data, error: null }),
      (error) => live && setState((old) => ({ data: old.data, error })));
    return () => { live = false; };
  }, [...deps, version, again]);
  return { ...state, reload: () => setAgain((n) => n + 1) };
}

export function Table({ columns, rows, empty = "none", rowKey, sortable = true, onRow }) {
  const [sort, setSort] = useState(null);
  let shown = rows;
  if (sort) {
    const { key, dir } = sort;
    const column = columns.find((c) => c.key === key);
    const value = column.sort || ((row) => row[key]);
    shown = [...rows].sort((a, b) => {
      const x = value(a), y = value(b);
      return (x > y ? 1 : x < y ? -1 : 0) * dir;
    });
  }
  const order = (key) => setSort(sort && sort.key === key ? { key, dir: -sort.dir } : { key, dir: 1 });
  return html`<table>
    <thead><tr>${columns.map((c) => html`<th class=${sortable ? "sortable" : ""}
      onClick=${() => sortable && order(c.key)}>${c.label}${sort && sort.key === c.key ? (sort.dir > 0 ? " ▲" : " ▼") : ""}</th>`)}</tr></thead>
    <tbody>${shown.length === 0 ? html`<tr><td colspan=${columns.length} class="muted">${empty}</td></tr>` : null}
      ${shown.map((row) => html`<tr key=${rowKey(row)} class=${onRow ? "clickable" : ""}
        onClick=${onRow ? () => onRow(row) : null}>${columns.map((c) => html`<td>${c.render ? c.render(row) : row[c.key]}</td>`)}</tr>`)}
    </tbody>
  </table>`;
}

export function link(...parts) {
  return "#/" + parts.map(encodeURIComponent).join("/");
}
