// A task: what it runs, how it ended, where, its live output and its files.
import { Action, Badge, Failure, Time, duration, html, link, useLoad } from "../components.js";
import * as api from "../api.js";
import { Files, Tail } from "./files.js";

/** An ISO 8601 duration as Azure writes it; its "no limit" (about 29,000 years) as "unlimited". */
function limit(value) {
  return !value || value.startsWith("P10675199D") ? "unlimited" : value;
}

function Field({ name, children }) {
  return html`<tr><th>${name}</th><td>${children}</td></tr>`;
}

export function Task({ job, id, session, version }) {
  const base = `/jobs/${api.enc(job)}/tasks/${api.enc(id)}`;
  const task = useLoad(() => api.get(base), [base], version);
  if (task.error && !task.data) return html`<${Failure} error=${task.error} />`;
  if (!task.data) return html`<p class="loading">loading…</p>`;
  const t = task.data;
  const info = t.executionInfo || {};
  const constraints = t.constraints || {};
  const node = t.nodeInfo;
  const running = t.state === "running" || t.state === "preparing";
  return html`<h2>Task ${t.id} <${Badge} state=${t.state} /> <small>of job <a href=${link("jobs", job)}>${job}</a></small></h2>
    <div class="actions">
      <${Action} label="Terminate task" session=${session} confirm="Terminate task ${t.id}?" done=${task.reload}
        run=${() => api.act("POST", `${base}/terminate`)} />
    </div>
    <table class="fields"><tbody>
      <${Field} name="Command line"><code>${t.commandLine}</code><//>
      <${Field} name="Result">${info.result || "–"} ${info.exitCode !== undefined ? `(exit code ${info.exitCode})` : ""}<//>
      ${info.failureInfo ? html`<${Field} name="Failure"><${Failure} error=${info.failureInfo} /><//>` : null}
      <${Field} name="Node">${node ? html`<a href=${link("pools", node.poolId, "nodes", node.nodeId)}>${node.nodeId}</a> (pool ${node.poolId})` : "–"}<//>
      <${Field} name="Retries">${info.retryCount || 0} of ${constraints.maxTaskRetryCount ?? 0} · requeued ${info.requeueCount || 0}<//>
      <${Field} name="Constraints">wall clock ${limit(constraints.maxWallClockTime)} · retention ${limit(constraints.retentionTime)}
        · at most ${constraints.maxTaskRetryCount === -1 ? "unlimited" : constraints.maxTaskRetryCount ?? 0} retries<//>
      <${Field} name="Created"><${Time} value=${t.creationTime} /><//>
      <${Field} name="Started"><${Time} value=${info.startTime} /> · ran ${duration(info.startTime, info.endTime)}<//>
      <${Field} name="Ended"><${Time} value=${info.endTime} /><//>
      <${Field} name="Required slots">${t.requiredSlots}<//>
      <${Field} name="Environment">${(t.environmentSettings || []).length
        ? html`<ul class="env">${t.environmentSettings.map((e) => html`<li><code>${e.name}=${e.value}</code></li>`)}</ul>` : "–"}<//>
      ${t.dependsOn ? html`<${Field} name="Depends on"><code>${JSON.stringify(t.dependsOn)}</code><//>` : null}
      ${t.multiInstanceSettings ? html`<${Field} name="Instances">${t.multiInstanceSettings.numberOfInstances}<//>` : null}
    </tbody></table>
    ${node && t.state !== "active" ? html`
      <div class="tails">
        <${Tail} path=${`${base}/files/stdout.txt`} label="stdout.txt" follow=${running} />
        <${Tail} path=${`${base}/files/stderr.txt`} label="stderr.txt" follow=${running} />
      </div>
      <h3>Files of the task</h3>
      <${Files} base=${base} version=${version} />` : html`<p class="muted">The task has not run on a node yet.</p>`}`;
}
