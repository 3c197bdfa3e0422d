// Overview: pools, nodes by state, jobs, tasks by state, and throughput now (from the live feed).
import { Badge, Progress, Table, html, link } from "../components.js";

function Card({ title, children }) {
  return html`<section class="card"><h3>${title}</h3>${children}</section>`;
}

function StateList({ counts }) {
  const entries = Object.entries(counts || {}).filter(([, n]) => n > 0);
  if (!entries.length) return html`<p class="muted">none</p>`;
  return html`<ul class="states">${entries.map(([state, n]) => html`<li><${Badge} state=${state} /> ${n}</li>`)}</ul>`;
}

export function Overview({ live }) {
  const overview = live.overview;
  if (!overview) return html`<p class="loading">waiting for the live feed…</p>`;
  const rates = overview.rates || { completed: 0, started: 0 };
  const columns = [
    { key: "id", label: "Pool", render: (p) => html`<a href=${link("pools", p.id)}>${p.id}</a>` },
    { key: "state", label: "State", render: (p) => html`<${Badge} state=${p.allocationState === "steady" ? p.state : p.allocationState} />` },
    { key: "nodes", label: "Nodes", sort: (p) => Object.values(p.nodes).reduce((a, b) => a + b, 0),
      render: (p) => html`<${StateList} counts=${p.nodes} />` },
    { key: "slots", label: "Slots in use", sort: (p) => p.usedSlots, render: (p) => `${p.usedSlots} / ${p.slots}` },
    { key: "tasks", label: "Tasks", sort: (p) => p.tasks.running,
      render: (p) => html`<${Progress} counts=${{ ...p.tasks, succeeded: p.succeeded, failed: p.failed }} />
        <small>${p.tasks.active} active · ${p.tasks.running} running · ${p.tasks.completed} completed</small>` },
  ];
  return html`<div class="overview">
    <div class="cards">
      <${Card} title="Tasks"><${StateList} counts=${overview.tasks} /><//>
      <${Card} title="Throughput now">
        <p class="big" data-testid="throughput">${rates.completed.toFixed(1)} <small>tasks/s completed</small></p>
        <p>${rates.started.toFixed(1)} tasks/s started</p><//>
      <${Card} title="Nodes"><${StateList} counts=${overview.nodes} /><//>
      <${Card} title="Jobs"><${StateList} counts=${overview.jobs} /><//>
    </div>
    <h2>Pools</h2>
    <${Table} columns=${columns} rows=${overview.pools} rowKey=${(p) => p.id} empty="no pool yet" />
  </div>`;
}
