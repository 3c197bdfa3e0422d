// Jobs: the list with live task progress; a job with its task table, prep/release status and timeline.
import { Action, Badge, Counts, Failure, Progress, Table, Time, duration, html, link, useLoad } from "../components.js";
import * as api from "../api.js";
import { useEffect, useState } from "../vendor/htm-preact-standalone.module.js";
import { Timeline } from "./timeline.js";

export function Jobs({ version }) {
  const [state, setState] = useState("");
  const { data, error } = useLoad(() => api.get("/openbatch/jobprogress", { maxresults: 200, state }), [state], version);
  const columns = [
    { key: "id", label: "Job", render: (j) => html`<a href=${link("jobs", j.id)}>${j.id}</a>` },
    { key: "state", label: "State", render: (j) => html`<${Badge} state=${j.state} />` },
    { key: "poolId", label: "Pool", render: (j) => (j.poolId ? html`<a href=${link("pools", j.poolId)}>${j.poolId}</a>` : "–") },
    { key: "progress", label: "Tasks", sort: (j) => j.taskCounts.completed,
      render: (j) => html`<${Progress} counts=${j.taskCounts} /><small><${Counts} counts=${j.taskCounts} /></small>` },
    { key: "priority", label: "Priority" },
    { key: "creationTime", label: "Created", render: (j) => html`<${Time} value=${j.creationTime} />` },
  ];
  return html`<h2>Jobs</h2>
    <div class="filters"><label>state <select value=${state} onChange=${(e) => setState(e.target.value)}>
      ${["", "active", "disabled", "terminating", "completed", "deleting"].map((s) => html`<option value=${s}>${s || "any"}</option>`)}
    </select></label> <small class="muted">the 200 newest</small></div>
    <${Failure} error=${error} />
    ${data ? html`<${Table} columns=${columns} rows=${data.value} rowKey=${(j) => j.id} empty="no job" />` : null}`;
}

const FILTERS = {
  "": null,
  active: "state eq 'active'",
  preparing: "state eq 'preparing'",
  running: "state eq 'running'",
  completed: "state eq 'completed'",
  failed: "executionInfo/result eq 'failure'",
  succeeded: "executionInfo/result eq 'success'",
};
const TASK_FIELDS = "id,state,executionInfo,nodeInfo,creationTime,commandLine";

/** One page of the job's tasks at a time (keyset: odata.nextLink), filtered by state and id prefix. */
function Tasks({ job, version }) {
  const [state, setState] = useState("");
  const [prefix, setPrefix] = useState("");
  const [pages, setPages] = useState([null]);   // the links of the pages seen: back goes one up
  const where = pages[pages.length - 1];
  const filter = [FILTERS[state], prefix ? `startswith(id,'${prefix.replaceAll("'", "''")}')` : null]
    .filter(Boolean).join(" and ");
  useEffect(() => setPages([null]), [state, prefix]);
  const { data, error } = useLoad(() => api.page(where || `/jobs/${api.enc(job)}/tasks`,
    where ? undefined : { maxresults: 100, $filter: filter, $select: TASK_FIELDS }), [job, where, filter], version);
  const info = (t) => t.executionInfo || {};
  const columns = [
    { key: "id", label: "Task", render: (t) => html`<a href=${link("jobs", job, "tasks", t.id)}>${t.id}</a>` },
    { key: "state", label: "State", render: (t) => html`<${Badge} state=${t.state === "completed" ? (info(t).result === "failure" ? "failed" : "succeeded") : t.state} />` },
    { key: "exit", label: "Exit code", sort: (t) => info(t).exitCode ?? -1, render: (t) => info(t).exitCode ?? "–" },
    { key: "node", label: "Node", sort: (t) => (t.nodeInfo || {}).nodeId || "",
      render: (t) => (t.nodeInfo ? html`<a href=${link("pools", t.nodeInfo.poolId, "nodes", t.nodeInfo.nodeId)}>${t.nodeInfo.nodeId}</a>` : "–") },
    { key: "retries", label: "Retries", sort: (t) => info(t).retryCount || 0, render: (t) => info(t).retryCount || 0 },
    { key: "start", label: "Started", sort: (t) => info(t).startTime || "", render: (t) => html`<${Time} value=${info(t).startTime} />` },
    { key: "took", label: "Took", sort: (t) => (info(t).startTime ? new Date(info(t).endTime || Date.now()) - new Date(info(t).startTime) : -1),
      render: (t) => duration(info(t).startTime, info(t).endTime) },
  ];
  return html`<div class="filters">
      <label>state <select value=${state} onChange=${(e) => setState(e.target.value)}>
        ${Object.keys(FILTERS).map((s) => html`<option value=${s}>${s || "any"}</option>`)}</select></label>
      <label>id starts with <input value=${prefix} onInput=${(e) => setPrefix(e.target.value)} placeholder="task id" /></label>
    </div>
    <${Failure} error=${error} />
    ${data ? html`<${Table} columns=${columns} rows=${data.items} rowKey=${(t) => t.id} empty="no task" />` : null}
    <div class="pager">
      <button disabled=${pages.length < 2} onClick=${() => setPages(pages.slice(0, -1))}>◀ previous</button>
      <span>page ${pages.length}</span>
      <button disabled=${!data || !data.next} onClick=${() => setPages([...pages, data.next])}>next ▶</button>
    </div>`;
}

function PrepRelease({ job, version }) {
  const { data, error } = useLoad(() => api.all(`/jobs/${api.enc(job)}/jobpreparationandreleasetaskstatus`), [job], version);
  const part = (r, name) => r[name] || {};
  const columns = [
    { key: "nodeId", label: "Node", render: (r) => html`<a href=${link("pools", r.poolId, "nodes", r.nodeId)}>${r.nodeId}</a>` },
    { key: "prep", label: "Preparation", sort: (r) => part(r, "jobPreparationTaskExecutionInfo").state,
      render: (r) => { const p = part(r, "jobPreparationTaskExecutionInfo"); return p.state ? html`<${Badge} state=${p.state} /> exit ${p.exitCode ?? "–"} · ${p.retryCount || 0} retries` : "–"; } },
    { key: "release", label: "Release", sort: (r) => part(r, "jobReleaseTaskExecutionInfo").state || "",
      render: (r) => { const p = part(r, "jobReleaseTaskExecutionInfo"); return p.state ? html`<${Badge} state=${p.state} /> exit ${p.exitCode ?? "–"}` : "–"; } },
  ];
  return html`<${Failure} error=${error} />
    ${data ? html`<${Table} columns=${columns} rows=${data} rowKey=${(r) => r.nodeId} empty="no node ran this job's preparation or release task" />` : null}`;
}

export function Job({ id, session, version }) {
  const [tab, setTab] = useState("tasks");
  const job = useLoad(() => api.get(`/jobs/${api.enc(id)}`), [id], version);
  const counts = useLoad(() => api.get(`/jobs/${api.enc(id)}/taskcounts`), [id], version);
  if (job.error && !job.data) return html`<${Failure} error=${job.error} />`;
  if (!job.data) return html`<p class="loading">loading…</p>`;
  const j = job.data;
  const c = counts.data ? counts.data.taskCounts : null;
  const pool = (j.executionInfo || {}).poolId || (j.poolInfo || {}).poolId;
  const tabButton = (name, label) => html`<button class=${tab === name ? "tab current" : "tab"} onClick=${() => setTab(name)}>${label}</button>`;
  return html`<h2>Job ${j.id} <${Badge} state=${j.state} /></h2>
    <p>${"pool "}${pool ? html`<a href=${link("pools", pool)}>${pool}</a>` : "–"}${` · priority ${j.priority} · created `}<${Time}
      value=${j.creationTime} />${(j.executionInfo || {}).terminateReason ? ` · ended: ${j.executionInfo.terminateReason}` : ""}</p>
    ${c ? html`<div data-testid="job-progress"><${Progress} counts=${c} /><${Counts} counts=${c} /></div>` : null}
    <div class="actions">
      <${Action} label="Terminate job" session=${session} confirm="Terminate job ${j.id}? Its running tasks end."
        run=${() => api.act("POST", `/jobs/${api.enc(id)}/terminate`, { terminateReason: "dashboard" })} done=${job.reload} />
      <${Action} label="Delete job" danger session=${session} confirm="Delete job ${j.id} and its tasks?"
        run=${() => api.act("DELETE", `/jobs/${api.enc(id)}`)} done=${() => { location.hash = "#/jobs"; }} />
    </div>
    <div class="tabs">${tabButton("tasks", "Tasks")}${tabButton("prep", "Preparation & release")}${tabButton("timeline", "Timeline")}</div>
    ${tab === "tasks" ? html`<${Tasks} job=${id} version=${version} />` : null}
    ${tab === "prep" ? html`<${PrepRelease} job=${id} version=${version} />` : null}
    ${tab === "timeline" ? html`<${Timeline} job=${id} version=${version} />` : null}`;
}
