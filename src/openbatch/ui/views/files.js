// A file browser over the Files API (a task's directory, or a whole node's), with a file's tail.
import { Failure, Table, html, useLoad } from "../components.js";
import * as api from "../api.js";
import { useEffect, useRef, useState } from "../vendor/htm-preact-standalone.module.js";

/** The last 16 KB of a text file, looked at again every two seconds while ``follow`` holds. */
export function Tail({ path, follow, label }) {
  const [state, setState] = useState({ text: null, error: null });
  const shown = useRef(null);
  useEffect(() => {   // the newest lines in view, as a terminal shows them
    if (shown.current) shown.current.scrollTop = shown.current.scrollHeight;
  }, [state.text]);
  useEffect(() => {
    let live = true;
    let timer = null;
    const look = async () => {
      try {
        const got = await api.tail(path);
        if (live) setState({ text: got.text, cut: got.cut, size: got.size, error: null });
      } catch (error) {
        if (live) setState((old) => ({ ...old, error }));
      }
      if (live && follow) timer = setTimeout(look, 2000);
    };
    look();
    return () => { live = false; clearTimeout(timer); };
  }, [path, follow]);
  return html`<section class="tail">
    <h4>${label || path.split("/files/")[1]} ${state.size !== undefined ? html`<small>${state.size} bytes${follow ? ", live" : ""}</small>` : null}</h4>
    ${state.error ? html`<${Failure} error=${state.error} />` : null}
    <pre ref=${shown} data-testid="tail-${label || "file"}">${state.cut ? "…\n" : ""}${state.text ?? ""}</pre>
  </section>`;
}

export function Files({ base, version }) {
  const [open, setOpen] = useState(null);
  const { data, error } = useLoad(() => api.all(`${base}/files`, { recursive: "true" }, 2000), [base], version);
  const columns = [
    { key: "name", label: "Path", render: (f) => (f.isDirectory ? html`<span class="muted">${f.name}/</span>`
      : html`<a href="#" onClick=${(e) => { e.preventDefault(); setOpen(f.name); }}>${f.name}</a>`) },
    { key: "size", label: "Size", sort: (f) => (f.properties || {}).contentLength || 0,
      render: (f) => (f.isDirectory ? "" : (f.properties || {}).contentLength) },
    { key: "modified", label: "Modified", sort: (f) => (f.properties || {}).lastModified || "",
      render: (f) => ((f.properties || {}).lastModified ? new Date(f.properties.lastModified).toLocaleString() : "") },
  ];
  return html`<${Failure} error=${error} />
    ${data ? html`<${Table} columns=${columns} rows=${data} rowKey=${(f) => f.name} empty="no file" />` : null}
    ${open ? html`<${Tail} path=${`${base}/files/${open.split("/").map(api.enc).join("/")}`} label=${open} follow=${false} />` : null}`;
}
