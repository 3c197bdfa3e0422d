// Which task ran on which node, when: one lane per node, one bar per task (its latest attempt).
import { Failure, html, link, useLoad } from "../components.js";
import * as api from "../api.js";

const LIMIT = 2000;
const LANE = 18;
const LABEL = 160;
const WIDTH = 900;

/** A node id that fits its lane's label (tvmps_<hash>_d: the start and the end). */
function short(node) {
  return node.length > 22 ? `${node.slice(0, 12)}…${node.slice(-8)}` : node;
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
    id: t.id, node: t.nodeInfo.nodeId, pool: t.nodeInfo.poolId, state: t.state,
    failed: t.executionInfo.result === "failure",
    start: new Date(t.executionInfo.startTime).getTime(),
    end: t.executionInfo.endTime ? new Date(t.executionInfo.endTime).getTime() : now,
  }));
  const nodes = [...new Set(bars.map((b) => b.node))].sort();
  const from = Math.min(...bars.map((b) => b.start));
  const to = Math.max(...bars.map((b) => b.end), from + 1);
  const x = (time) => LABEL + ((WIDTH - LABEL - 10) * (time - from)) / (to - from);
  const height = nodes.length * LANE + 24;
  return html`<p class="muted">${ran.length} task(s) on ${nodes.length} node(s), over ${((to - from) / 1000).toFixed(1)} s
      ${data.length >= LIMIT ? ` (the first ${LIMIT} tasks)` : ""}</p>
    <svg class="timeline" data-testid="timeline" viewBox="0 0 ${WIDTH} ${height}" width="100%">
      ${nodes.map((node, i) => html`<g>
        <text x="4" y=${i * LANE + 13} class="lane-label"><title>${node}</title>${short(node)}</text>
        <line x1=${LABEL} x2=${WIDTH - 10} y1=${i * LANE + LANE} y2=${i * LANE + LANE} class="lane-line" /></g>`)}
      ${bars.map((b) => html`<a href=${link("jobs", job, "tasks", b.id)}>
        <rect x=${x(b.start)} y=${nodes.indexOf(b.node) * LANE + 3} height=${LANE - 6}
          width=${Math.max(2, x(b.end) - x(b.start))}
          class=${b.state !== "completed" ? "bar-running" : b.failed ? "bar-failed" : "bar-succeeded"}>
          <title>${b.id} on ${b.node}: ${((b.end - b.start) / 1000).toFixed(2)} s</title></rect></a>`)}
      <text x=${LABEL} y=${height - 6} class="axis">${new Date(from).toLocaleTimeString()}</text>
      <text x=${WIDTH - 10} y=${height - 6} class="axis" text-anchor="end">${new Date(to).toLocaleTimeString()}</text>
    </svg>`;
}
