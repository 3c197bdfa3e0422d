// A compute node: its state, what runs there, its whole file tree, and what an operator can do.
import { Action, Badge, Failure, Time, html, link, useLoad } from "../components.js";
import * as api from "../api.js";
import { Files } from "./files.js";

export function Node({ pool, node, session, version }) {
  const base = `/pools/${api.enc(pool)}/nodes/${api.enc(node)}`;
  const found = useLoad(() => api.get(base), [base], version);
  if (found.error && !found.data) return html`<${Failure} error=${found.error} />`;
  if (!found.data) return html`<p class="loading">loading…</p>`;
  const n = found.data;
  return html`<h2>Node ${n.id} <${Badge} state=${n.state} /> <small>of pool <a href=${link("pools", pool)}>${pool}</a></small></h2>
    <p>${`${n.isDedicated ? "dedicated" : "low-priority"} · ${n.ipAddress || ""} · ${n.runningTaskSlotsCount || 0} slot(s) in use · `
      + `${n.totalTasksRun || 0} task(s) run, ${n.totalTasksSucceeded || 0} succeeded · booted `}<${Time} value=${n.lastBootTime} /></p>
    <div class="actions">
      <${Action} label="Reboot" session=${session} confirm="Reboot ${n.id}? Its tasks go back to the queue." done=${found.reload}
        run=${() => api.act("POST", `${base}/reboot`, { nodeRebootOption: "requeue" })} />
      <${Action} label="Remove from pool" danger session=${session} confirm="Remove ${n.id} from pool ${pool}?"
        run=${() => api.act("POST", `/pools/${api.enc(pool)}/removenodes`, { nodeList: [n.id] })}
        done=${() => { location.hash = link("pools", pool); }} />
    </div>
    ${(n.errors || []).map((e) => html`<${Failure} error=${e} />`)}
    ${(n.recentTasks || []).length ? html`<h3>Recent tasks</h3><ul>${n.recentTasks.map((t) => html`<li>
      <a href=${link("jobs", t.jobId, "tasks", t.taskId)}>${t.jobId} / ${t.taskId}</a> <${Badge} state=${t.taskState} /></li>`)}</ul>` : null}
    <h3>Files</h3>
    <${Files} base=${base} version=${version} />`;
}
