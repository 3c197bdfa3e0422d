// Pools: the list, and a pool with its node heat map, autoscale run, resize errors and actions.
import { Action, Badge, Failure, Table, Time, html, link, useLoad } from "../components.js";
import * as api from "../api.js";
import { useState } from "../vendor/htm-preact-standalone.module.js";

export function Pools({ version }) {
  const { data, error } = useLoad(() => api.all("/pools", { maxresults: 1000 }), [], version);
  const columns = [
    { key: "id", label: "Pool", render: (p) => html`<a href=${link("pools", p.id)}>${p.id}</a>` },
    { key: "state", label: "State", render: (p) => html`<${Badge} state=${p.state} /> <${Badge} state=${p.allocationState} />` },
    { key: "vmSize", label: "VM size" },
    { key: "currentDedicatedNodes", label: "Nodes (dedicated / low-priority)",
      render: (p) => `${p.currentDedicatedNodes} / ${p.currentLowPriorityNodes} (target ${p.targetDedicatedNodes} / ${p.targetLowPriorityNodes})` },
    { key: "taskSlotsPerNode", label: "Slots per node" },
    { key: "enableAutoScale", label: "Autoscale", render: (p) => (p.enableAutoScale ? "yes" : "no") },
    { key: "creationTime", label: "Created", render: (p) => html`<${Time} value=${p.creationTime} />` },
  ];
  return html`<h2>Pools</h2><${Failure} error=${error} />
    ${data ? html`<${Table} columns=${columns} rows=${data} rowKey=${(p) => p.id} empty="no pool yet" />` : null}`;
}

function HeatMap({ pool, nodes, session, reload }) {
  return html`<div class="heatmap" data-testid="heatmap">
    ${nodes.map((node) => html`<a class="tile state-${node.state}" href=${link("pools", pool, "nodes", node.id)}
      title="${node.id}: ${node.state}, ${node.runningTaskSlotsCount || 0} slot(s) in use">
      <span class="tile-slots">${node.runningTaskSlotsCount || 0}</span></a>`)}
  </div>`;
}

function Resize({ pool, session, done }) {
  const [dedicated, setDedicated] = useState(pool.targetDedicatedNodes);
  const [low, setLow] = useState(pool.targetLowPriorityNodes);
  if (session.role !== "operator" || pool.enableAutoScale) return null;
  return html`<span class="resize">
    <label>dedicated <input type="number" min="0" value=${dedicated} onInput=${(e) => setDedicated(+e.target.value)} /></label>
    <label>low-priority <input type="number" min="0" value=${low} onInput=${(e) => setLow(+e.target.value)} /></label>
    <${Action} label="Resize" session=${session} done=${done}
      run=${() => api.act("POST", `/pools/${api.enc(pool.id)}/resize`, { targetDedicatedNodes: dedicated, targetLowPriorityNodes: low })} />
  </span>`;
}

export function Pool({ id, session, version }) {
  const pool = useLoad(() => api.get(`/pools/${api.enc(id)}`), [id], version);
  const nodes = useLoad(() => api.all(`/pools/${api.enc(id)}/nodes`, { maxresults: 1000 }), [id], version);
  const reload = () => { pool.reload(); nodes.reload(); };
  if (pool.error && !pool.data) return html`<${Failure} error=${pool.error} />`;
  if (!pool.data) return html`<p class="loading">loading…</p>`;
  const p = pool.data;
  const run = p.autoScaleRun;
  const columns = [
    { key: "id", label: "Node", render: (n) => html`<a href=${link("pools", id, "nodes", n.id)}>${n.id}</a>` },
    { key: "state", label: "State", render: (n) => html`<${Badge} state=${n.state} />` },
    { key: "isDedicated", label: "Kind", render: (n) => (n.isDedicated ? "dedicated" : "low-priority") },
    { key: "runningTaskSlotsCount", label: "Slots in use", render: (n) => n.runningTaskSlotsCount || 0 },
    { key: "totalTasksRun", label: "Tasks run" },
    { key: "ipAddress", label: "Address" },
    { key: "actions", label: "", render: (n) => html`
      <${Action} label="Reboot" session=${session} done=${reload} confirm="Reboot ${n.id}? Its tasks go back to the queue."
        run=${() => api.act("POST", `/pools/${api.enc(id)}/nodes/${api.enc(n.id)}/reboot`, { nodeRebootOption: "requeue" })} />
      <${Action} label="Remove" danger session=${session} done=${reload} confirm="Remove ${n.id} from the pool?"
        run=${() => api.act("POST", `/pools/${api.enc(id)}/removenodes`, { nodeList: [n.id] })} />` },
  ];
  return html`<h2>Pool ${p.id} <${Badge} state=${p.state} /> <${Badge} state=${p.allocationState} /></h2>
    <p>${`${p.vmSize} · ${p.taskSlotsPerNode} slot(s) per node · target ${p.targetDedicatedNodes} dedicated, `
      + `${p.targetLowPriorityNodes} low-priority · created `}<${Time} value=${p.creationTime} /></p>
    <div class="actions">
      <${Resize} pool=${p} session=${session} done=${reload} />
      <${Action} label="Delete pool" danger session=${session} confirm="Delete pool ${p.id} and its nodes?"
        run=${() => api.act("DELETE", `/pools/${api.enc(id)}`)} done=${() => { location.hash = "#/pools"; }} />
    </div>
    ${(p.resizeErrors || []).map((e) => html`<${Failure} error=${e} />`)}
    ${p.enableAutoScale ? html`<section class="card wide"><h3>Autoscale</h3>
      <pre>${p.autoScaleFormula}</pre>
      ${run ? html`<p>last run <${Time} value=${run.timestamp} />: <code>${run.results || ""}</code></p>
        <${Failure} error=${run.error} />` : html`<p class="muted">not evaluated yet</p>`}</section>` : null}
    <h3>Nodes</h3>
    <${HeatMap} pool=${id} nodes=${nodes.data || []} />
    <${Table} columns=${columns} rows=${nodes.data || []} rowKey=${(n) => n.id} empty="no node" />`;
}
