// Which task ran on which node, when: one lane per node, one row in it per task running at once (its
// slots), one bar per task (its latest attempt).
import { Failure, html, link, useLoad } from "../components.js";
import * as api from "../api.js";

const LIMIT = 2000;
const ROW = 12;
const GAP = 8;
const LABEL = 170;
const WIDTH = 900;

/** A node id that fits its lane's label (tvmps_<hash>_d: the start and the end). */
function short(node) {
  return node.length > 22 ? `${node.slice(0, 12)}…${node.slice(-8)}` : node;
}

/** The node's bars in rows: each goes in the first row free when it starts. */
function pack(bars) {
  const ends = [];
  for (const bar of [...bars].sort((a, b) => a.start - b.start)) {
    let row = ends.findIndex((end) => end <= bar.start);
    if (row < 0) row = ends.push(0) - 1;
    ends[row] = bar.end;
    bar.row = row;
  }
  return Math.max(1, ends.length);
}

export function Timeline({ job, version }) {
  const { data, error } = useLoad(() => api.all(`/jobs/${api.enc(job)}/tasks`,
    { $select: "id,state,nodeInfo,executionInfo", maxresults: 1000 }, LIMIT), [job], version);
  if (error) return html`<${Failure} error=${error} />`;
  if (!data) return html`<p class="loading">loading…</p>`;
  const ran = data.filter((t) => t.nodeInfo && t.executionInfo && t.executionInfo.startTime);
  if (!ran.length) return html`<p class="muted">no task has started yet</p>`;
  const now = Date.now();
  const bars = ran.map((t) => ({
    id: t.id, node: t.nodeInfo.nodeId, state: t.state, failed: t.executionInfo.result === "failure",
    start: new Date(t.executionInfo.startTime).getTime(),
    end: t.executionInfo.endTime ? new Date(t.executionInfo.endTime).getTime() : now,
  }));
  const nodes = [...new Set(bars.map((b) => b.node))].sort();
  const lanes = [];
  let top = 0;
  for (const node of nodes) {
    const rows = pack(bars.filter((b) => b.node === node));
    lanes.push({ node, top, rows });
    top += rows * ROW + GAP;
  }
  const laneOf = Object.fromEntries(lanes.map((lane) => [lane.node, lane]));
  const from = Math.min(...bars.map((b) => b.start));
  const to = Math.max(...bars.map((b) => b.end), from + 1);
  const x = (time) => LABEL + ((WIDTH - LABEL - 10) * (time - from)) / (to - from);
  const height = top + 20;
  return html`<p class="muted">${ran.length} task(s) on ${nodes.length} node(s), over ${((to - from) / 1000).toFixed(1)} s
      ${data.length >= LIMIT ? ` (the first ${LIMIT} tasks)` : ""}</p>
    <svg class="timeline" data-testid="timeline" viewBox="0 0 ${WIDTH} ${height}" width="100%">
      ${lanes.map((lane) => html`<g>
        <text x="4" y=${lane.top + 11} class="lane-label"><title>${lane.node}</title>${short(lane.node)}</text>
        <line x1=${LABEL} x2=${WIDTH - 10} y1=${lane.top + lane.rows * ROW + GAP / 2} y2=${lane.top + lane.rows * ROW + GAP / 2}
          class="lane-line" /></g>`)}
      ${bars.map((b) => html`<a href=${link("jobs", job, "tasks", b.id)}>
        <rect x=${x(b.start)} y=${laneOf[b.node].top + b.row * ROW + 1} height=${ROW - 2}
          width=${Math.max(2, x(b.end) - x(b.start))}
          class=${b.state !== "completed" ? "bar-running" : b.failed ? "bar-failed" : "bar-succeeded"}>
          <title>${b.id} on ${b.node}: ${((b.end - b.start) / 1000).toFixed(2)} s</title></rect></a>`)}
      <text x=${LABEL} y=${height - 4} class="axis">${new Date(from).toLocaleTimeString()}</text>
      <text x=${WIDTH - 10} y=${height - 4} class="axis" text-anchor="end">+${((to - from) / 1000).toFixed(1)} s</text>
    </svg>`;
}
