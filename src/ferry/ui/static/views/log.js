// The Log tab: the last 256 KB of the chosen log, then new bytes as they arrive on the run's
// event stream; "Load earlier" pages back through a huge log (never the whole thing at once).
import { html, useEffect, useRef, useState } from "../vendor/htm-preact-standalone.module.js";
import { followRun, get } from "../api.js";
import { ErrorBox, fmtBytes, isTerminal } from "../common.js";

const PAGE = 262144;
const MAX_SHOWN = 4 * 1024 * 1024; // characters kept on the page while following

/** The main log: user_logs/std_log.txt, else rank 0's, else the first one listed. */
function defaultLog(logs) {
  const names = logs.map((l) => l.name);
  return names.find((n) => /(^|\/)std_log\.txt$/.test(n)) || names.find((n) => /std_log_rank_0+\.txt$/.test(n)) || names.find((n) => /driver_log/.test(n)) || names[0] || "user_logs/std_log.txt";
}

const encoder = new TextEncoder();

/**
 * A page that starts inside the log begins at its first whole line (a tail read from the
 * middle of a line would show half of it); returns the page's new start and text.
 */
function fromLineStart(offset, text) {
  if (offset === 0) return { offset, text };
  const cut = text.indexOf("\n");
  if (cut < 0 || cut === text.length - 1) return { offset, text };
  return { offset: offset + encoder.encode(text.slice(0, cut + 1)).length, text: text.slice(cut + 1) };
}

export function LogTab({ runId, detail, onStatus, onMetrics }) {
  const logs = detail.logs || [];
  const [name, setName] = useState(() => defaultLog(logs));
  const [text, setText] = useState("");
  const [start, setStart] = useState(0); // byte offset of the first byte shown
  const [end, setEnd] = useState(0); // byte offset after the last byte shown
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState(null);
  const [follow, setFollow] = useState(true);
  const [ended, setEnded] = useState(isTerminal(detail.run.status));
  const pre = useRef(null);

  useEffect(() => {
    if (!logs.some((l) => l.name === name) && logs.length) setName(defaultLog(logs));
  }, [logs.map((l) => l.name).join("\n")]);

  useEffect(() => {
    const controller = new AbortController();
    const { signal } = controller;
    setText("");
    setEnd(0);
    setLoaded(false);
    setError(null);
    (async () => {
      let next = 0;
      const known = logs.some((l) => l.name === name);
      if (known) {
        const page = await get(`/ui/runs/${encodeURIComponent(runId)}/log?name=${encodeURIComponent(name)}&offset=-1&limit=${PAGE}`, { signal });
        const whole = fromLineStart(page.offset, page.text);
        setText(whole.text);
        setStart(whole.offset);
        next = page.next_offset;
        setEnd(next);
      }
      setLoaded(true);
      if (isTerminal(detail.run.status) && known) return;
      setEnded(false);
      await followRun(runId, {
        log: name,
        offset: next,
        signal,
        handlers: {
          status: onStatus,
          metrics: onMetrics,
          log: (chunk) => {
            if (chunk.name !== name) return;
            setEnd(chunk.next_offset ?? chunk.offset + encoder.encode(chunk.text).length);
            setText((t) => {
              const joined = t + chunk.text;
              return joined.length > MAX_SHOWN ? joined.slice(joined.length - MAX_SHOWN) : joined;
            });
          },
          end: () => setEnded(true),
        },
      });
      setEnded(true);
    })().catch((err) => err.name === "AbortError" || setError(err));
    return () => controller.abort();
  }, [runId, name]);

  useEffect(() => {
    if (follow && pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [text, follow]);

  const earlier = async () => {
    const from = Math.max(0, start - PAGE);
    try {
      const page = await get(`/ui/runs/${encodeURIComponent(runId)}/log?name=${encodeURIComponent(name)}&offset=${from}&limit=${start - from}`);
      const whole = fromLineStart(from, page.text);
      setText((t) => whole.text + t);
      setStart(whole.offset);
      setFollow(false);
    } catch (err) {
      setError(err);
    }
  };
  const onScroll = (event) => {
    const el = event.currentTarget;
    setFollow(el.scrollHeight - el.scrollTop - el.clientHeight < 24);
  };
  const size = Math.max(end, logs.find((l) => l.name === name)?.size || 0);

  return html`<section class="log" data-testid="log">
    <div class="toolbar">
      ${logs.length > 1
        ? html`<label>Log <select data-testid="log-select" value=${name} onChange=${(e) => setName(e.target.value)}>${logs.map((l) => html`<option value=${l.name}>${l.name}</option>`)}</select></label>`
        : html`<code>${name}</code>`}
      <span class="muted" data-testid="log-size">${fmtBytes(size)}</span>
      ${start > 0 && html`<button type="button" data-testid="load-earlier" onClick=${earlier}>Load earlier (${fmtBytes(start)} before)</button>`}
      <label><input type="checkbox" checked=${follow} onChange=${(e) => setFollow(e.target.checked)} /> Follow</label>
      <span class="muted" data-testid="log-state">${ended ? "complete" : html`<span class="live-dot" aria-hidden="true"></span> live`}</span>
    </div>
    <${ErrorBox} error=${error} />
    <pre class="logtext" ref=${pre} onScroll=${onScroll} tabindex="0" aria-label=${`Log ${name}`} data-testid="log-text" data-start=${start}>${loaded ? text || (ended ? "(empty)" : "Waiting for output…") : "Loading…"}</pre>
  </section>`;
}
