// swarmshare dashboard: subscribes to the tracker's live feed (/events, Server-Sent Events) and
// draws what it receives. It only reads; it never changes the tracker's state.

const HISTORY = 120; // throughput points kept (one per snapshot: a minute at 2 per second)
const COLOURS = { held: '#0072b2', fetching: '#e69f00', missing: '#e8e8e8', unknown: '#cc79a7' };

let selected = new URLSearchParams(location.search).get('swarm');
let source = null;
const throughput = [];

function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[u]}`;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

function bits(base64, n) {
  const raw = atob(base64);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (raw.charCodeAt(i >> 3) >> (7 - (i & 7))) & 1;
  return out;
}

// A demo's tracker also serves the run's report (/api/report) once the swarm has finished; a plain
// tracker answers 404, and the page stops asking.
let reportTimer = null;
async function pollReport() {
  let res;
  try {
    res = await fetch('/api/report');
  } catch {
    return;
  }
  if (res.status === 404) {
    clearInterval(reportTimer);
    return;
  }
  if (!res.ok) return;
  const { report } = await res.json();
  if (report) {
    renderReport(report);
    clearInterval(reportTimer);
  }
}

function seconds(ms) {
  return ms === null || ms === undefined ? '—' : `${(ms / 1000).toFixed(2)} s`;
}

function renderReport(r) {
  const box = document.getElementById('report');
  const done = r.peers.filter((p) => p.completed && p.verified).length;
  const ratio =
    r.ratioToBound === null
      ? ''
      : `, ${r.ratioToBound.toFixed(2)}x the lower bound (${seconds(r.lowerBoundMs)})`;
  box.replaceChildren(
    el('h2', {}, r.success ? 'Finished: every peer holds a verified copy' : 'Finished without every copy'),
    el(
      'p',
      {},
      `${done} of ${r.peers.length} peers hold ${r.file.name} (${bytes(r.file.size)}, ${r.file.pieces} chunks, SHA-256 checked); `,
      `last peer done in ${seconds(r.totalMs)}${ratio}; the origin uploaded ${(r.originUploadedBytes / r.file.size).toFixed(2)}x the file (strategy ${r.strategy}).`,
    ),
  );
  box.setAttribute('data-success', String(r.success));
  box.hidden = false;
}

function connect() {
  if (source) source.close();
  const url = selected ? `/events?swarm=${encodeURIComponent(selected)}` : '/events';
  source = new EventSource(url);
  source.addEventListener('snapshot', (ev) => render(JSON.parse(ev.data)));
  source.onopen = () => {
    document.getElementById('status').textContent = 'live';
  };
  source.onerror = () => {
    document.getElementById('status').textContent = 'reconnecting…';
  };
}

function select(id) {
  selected = id;
  throughput.length = 0;
  history.replaceState(null, '', `?swarm=${encodeURIComponent(id)}`);
  connect();
}

function renderSwarms(swarms) {
  const body = document.querySelector('#swarms tbody');
  body.replaceChildren(
    ...swarms.map((s) => {
      const tr = el(
        'tr',
        { class: `selectable${s.id === selected ? ' selected' : ''}`, 'data-swarm': s.id },
        el('td', {}, s.file ?? '(no name)'),
        el('td', { title: s.info_hash ?? '' }, s.info_hash ? `${s.info_hash.slice(0, 12)}…` : '-'),
        el('td', { class: 'num' }, s.size === null ? '-' : bytes(s.size)),
        el('td', { class: 'num' }, s.pieces === null ? '-' : String(s.pieces)),
        el('td', { class: 'num', 'data-seeds': String(s.seeds) }, String(s.seeds)),
        el('td', { class: 'num', 'data-leechers': String(s.leechers) }, String(s.leechers)),
        el('td', { class: 'num', 'data-completed': String(s.downloaded) }, String(s.downloaded)),
      );
      tr.addEventListener('click', () => select(s.id));
      return tr;
    }),
  );
  document.getElementById('no-swarms').hidden = swarms.length > 0;
  if (!selected && swarms.length > 0) select(swarms[0].id);
}

function renderGrid(view) {
  const canvas = document.getElementById('grid');
  const n = view.pieces;
  const rows = view.peers.length;
  const label = 90;
  const cell = Math.max(3, Math.min(18, Math.floor(1100 / Math.max(n, 1))));
  canvas.width = label + n * cell;
  canvas.height = rows * (cell + 2) + 2;
  const g = canvas.getContext('2d');
  g.clearRect(0, 0, canvas.width, canvas.height);
  g.font = '12px system-ui, sans-serif';
  g.textBaseline = 'middle';
  view.peers.forEach((p, r) => {
    const y = 1 + r * (cell + 2);
    g.fillStyle = '#222';
    g.fillText(p.id.length > 12 ? `${p.id.slice(0, 11)}…` : p.id, 2, y + cell / 2);
    const held = p.chunks ? bits(p.chunks, n) : null;
    const fetching = new Set(p.fetching);
    for (let i = 0; i < n; i++) {
      let c = COLOURS.missing;
      if (held === null) c = p.complete ? COLOURS.held : COLOURS.unknown;
      else if (held[i]) c = COLOURS.held;
      else if (fetching.has(i)) c = COLOURS.fetching;
      g.fillStyle = c;
      g.fillRect(label + i * cell, y, Math.max(1, cell - 1), cell);
    }
  });
  const note = document.getElementById('grid-note');
  note.textContent = view.totalPeers > rows ? `Showing ${rows} of ${view.totalPeers} peers.` : '';
}

function renderPeers(view) {
  const body = document.querySelector('#peers tbody');
  body.replaceChildren(
    ...view.peers.map((p) => {
      const pct = p.have === null ? null : view.pieces === 0 ? 100 : Math.floor((100 * p.have) / view.pieces);
      const bar = el('span', { class: 'progress' }, el('span', {}));
      bar.firstChild.style.width = `${pct ?? 0}%`;
      return el(
        'tr',
        { 'data-peer': p.id, 'data-progress': pct === null ? 'unknown' : String(pct) },
        el('td', {}, p.id),
        el('td', {}, p.address),
        el('td', { class: 'num' }, bar, pct === null ? '?' : `${pct}%`),
        el('td', { class: 'num' }, `${bytes(p.downRate)}/s`),
        el('td', { class: 'num' }, `${bytes(p.upRate)}/s`),
        el('td', {}, p.source === 'json' ? 'swarmshare' : 'BitTorrent'),
      );
    }),
  );
}

function renderTransfers(view) {
  const body = document.querySelector('#transfers tbody');
  body.replaceChildren(
    ...view.transfers.map((t) =>
      el(
        'tr',
        { 'data-from': t.from, 'data-to': t.to },
        el('td', {}, t.from),
        el('td', {}, t.to),
        el('td', { class: 'num' }, bytes(t.bytes)),
      ),
    ),
  );
}

function renderAvailability(view) {
  const svg = document.getElementById('availability');
  const a = view.availability;
  const max = Math.max(1, ...a);
  const w = 800 / Math.max(a.length, 1);
  svg.replaceChildren(
    ...a.map((v, i) => {
      const r = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
      const h = (110 * v) / max;
      r.setAttribute('class', 'bar');
      r.setAttribute('x', String(i * w));
      r.setAttribute('width', String(Math.max(0.5, w - 0.5)));
      r.setAttribute('y', String(118 - h));
      r.setAttribute('height', String(h));
      r.setAttribute('data-count', String(v));
      return r;
    }),
  );
}

function renderThroughput(view) {
  throughput.push(view.throughput);
  if (throughput.length > HISTORY) throughput.shift();
  const svg = document.getElementById('throughput');
  // The figures as measured: an idle swarm's peak is 0 (the scale alone needs a non-zero top).
  const peak = Math.max(0, ...throughput);
  const scale = peak > 0 ? peak : 1;
  const pts = throughput.map((v, i) => `${(i * 800) / (HISTORY - 1)},${155 - (150 * v) / scale}`).join(' ');
  const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
  line.setAttribute('class', 'line');
  line.setAttribute('points', pts);
  svg.replaceChildren(line);
  svg.setAttribute('data-points', String(throughput.length));
  svg.setAttribute('data-max', String(Math.round(peak)));
  document.getElementById('throughput-now').textContent =
    peak === 0
      ? 'idle: nothing moved in the last minute'
      : `now ${bytes(view.throughput)}/s, peak ${bytes(peak)}/s over the last minute`;
}

function render(data) {
  if (data.replay) {
    // A recorded simulation (swarmshare replay): virtual time instead of "live".
    const status = document.getElementById('status');
    status.textContent = `replay: ${(data.replay.timeMs / 1000).toFixed(1)} s virtual, frame ${data.replay.frame}/${data.replay.frames}`;
    status.setAttribute('data-frame', String(data.replay.frame));
    status.setAttribute('data-frames', String(data.replay.frames));
  }
  renderSwarms(data.swarms);
  const view = data.view;
  const section = document.getElementById('swarm');
  section.hidden = !view;
  if (!view) return;
  document.getElementById('swarm-title').textContent =
    `${view.file ?? view.id}: ${view.totalPeers} peers, ${view.pieces} chunks${view.size === null ? '' : `, ${bytes(view.size)}`}`;
  renderGrid(view);
  renderPeers(view);
  renderTransfers(view);
  renderAvailability(view);
  renderThroughput(view);
}

connect();
reportTimer = setInterval(pollReport, 2000);
pollReport();
