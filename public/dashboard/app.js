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

// The grid fills the panel's width: one column per chunk while cells can be at least MIN_CELL px
// wide, else one column per run of chunks (coloured by the share of them held; the run's range in
// the tooltip). Rows are at least one line of label text tall, so labels never overlap.
const MIN_CELL = 3;
const MAX_CELL = 18;
const LABEL_FONT = '12px system-ui, sans-serif';
let gridLayout = null;

function mix(share) {
  // From "missing" (share 0) to "held" (share 1).
  const a = [0xe8, 0xe8, 0xe8];
  const b = [0x00, 0x72, 0xb2];
  const c = a.map((v, i) => Math.round(v + (b[i] - v) * share));
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}

function renderGrid(view) {
  const canvas = document.getElementById('grid');
  const wrap = canvas.parentElement;
  const n = Math.max(view.pieces, 0);
  const rows = view.peers.length;
  const g = canvas.getContext('2d');
  g.font = LABEL_FONT;
  const m = g.measureText('Mg');
  const textHeight = Math.ceil((m.fontBoundingBoxAscent ?? 10) + (m.fontBoundingBoxDescent ?? 3));
  const label = 96;
  const style = getComputedStyle(wrap);
  const inner = Math.max(
    200,
    wrap.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight),
  );
  const room = Math.max(MIN_CELL, inner - label);
  const group = Math.max(1, Math.ceil((n * MIN_CELL) / room));
  const cols = Math.max(1, Math.ceil(n / group));
  // Cells fill the width (wide ones for a few chunks); only their height is capped.
  const cellW = room / cols;
  const rowH = Math.max(textHeight + 2, Math.min(MAX_CELL, Math.floor(cellW)) + 2);
  const cellH = Math.max(3, Math.min(MAX_CELL, rowH - 2));
  canvas.width = Math.floor(inner);
  canvas.height = Math.max(1, rows * rowH);
  g.font = LABEL_FONT;
  g.textBaseline = 'middle';
  g.clearRect(0, 0, canvas.width, canvas.height);
  const labels = [];
  view.peers.forEach((p, r) => {
    const y = r * rowH;
    let text = p.id;
    while (text.length > 1 && g.measureText(text).width > label - 6) text = `${text.slice(0, -2)}…`;
    g.fillStyle = '#222';
    g.fillText(text, 2, y + rowH / 2);
    labels.push({ x: 2, y: y + (rowH - textHeight) / 2, w: g.measureText(text).width, h: textHeight });
    const held = p.chunks ? bits(p.chunks, n) : null;
    const fetching = new Set(p.fetching);
    for (let c = 0; c < cols; c++) {
      const from = c * group;
      const to = Math.min(n, from + group);
      let have = 0;
      let inFlight = false;
      for (let i = from; i < to; i++) {
        if (held === null ? p.complete : held[i]) have++;
        else if (fetching.has(i)) inFlight = true;
      }
      let colour = mix(have / (to - from));
      if (held === null && !p.complete) colour = COLOURS.unknown;
      else if (have === 0 && inFlight) colour = COLOURS.fetching;
      g.fillStyle = colour;
      const x = label + c * cellW;
      g.fillRect(x, y + (rowH - cellH) / 2, Math.max(1, cellW - (cellW >= 4 ? 1 : 0)), cellH);
    }
  });
  gridLayout = { label, cellW, rowH, group, cols, n, peers: view.peers };
  canvas.setAttribute('data-group', String(group));
  canvas.setAttribute('data-row-height', String(rowH));
  canvas.setAttribute('data-label-height', String(textHeight));
  canvas.setAttribute('data-labels', JSON.stringify(labels));
  const note = document.getElementById('grid-note');
  const parts = [];
  if (view.totalPeers > rows) parts.push(`Showing ${rows} of ${view.totalPeers} peers.`);
  if (group > 1) parts.push(`Each cell is a run of ${group} chunks, darker as more of them are held.`);
  note.textContent = parts.join(' ');
}

// The tooltip: which peer and which chunks the cell under the pointer stands for.
document.getElementById('grid').addEventListener('mousemove', (ev) => {
  const canvas = ev.currentTarget;
  const L = gridLayout;
  if (L === null) return;
  const r = canvas.getBoundingClientRect();
  const x = ((ev.clientX - r.left) * canvas.width) / r.width;
  const y = ((ev.clientY - r.top) * canvas.height) / r.height;
  const row = Math.floor(y / L.rowH);
  const col = Math.floor((x - L.label) / L.cellW);
  const p = L.peers[row];
  if (p === undefined || col < 0 || col >= L.cols) {
    canvas.title = '';
    return;
  }
  const from = col * L.group;
  const to = Math.min(L.n, from + L.group) - 1;
  canvas.title = from === to ? `${p.id}: chunk ${from}` : `${p.id}: chunks ${from}–${to}`;
});

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

// Throughput against a time axis in seconds. A live tracker sends its own per-second series (the
// last five minutes, kept whether or not a page was open); a replay has none, so the page keeps
// the points it received.
function renderThroughput(view) {
  let values;
  let everyS;
  if (view.history) {
    values = view.history.values;
    everyS = view.history.everyMs / 1000;
  } else {
    throughput.push(view.throughput);
    if (throughput.length > HISTORY) throughput.shift();
    values = throughput;
    everyS = 0.5;
  }
  const svg = document.getElementById('throughput');
  const ns = 'http://www.w3.org/2000/svg';
  const peak = Math.max(0, ...values);
  const scale = peak > 0 ? peak : 1;
  const span = Math.max(60, values.length * everyS);
  const left = 60;
  const xOf = (i) => left + ((800 - left) * (span - (values.length - 1 - i) * everyS)) / span;
  const yOf = (v) => 145 - (130 * v) / scale;
  const parts = [];
  const text = (x, y, t, anchor) => {
    const e = document.createElementNS(ns, 'text');
    e.setAttribute('x', String(x));
    e.setAttribute('y', String(y));
    e.setAttribute('class', 'axis');
    if (anchor) e.setAttribute('text-anchor', anchor);
    e.textContent = t;
    return e;
  };
  // Axis: seconds ago along the bottom, bytes/s at the top and bottom of the scale.
  for (let k = 0; k <= 4; k++) {
    const ago = Math.round((span * (4 - k)) / 4);
    parts.push(
      text(left + ((800 - left) * k) / 4, 158, ago === 0 ? 'now' : `-${ago} s`, k === 4 ? 'end' : 'middle'),
    );
  }
  parts.push(text(left - 4, 20, `${bytes(peak)}/s`, 'end'), text(left - 4, 148, '0', 'end'));
  const line = document.createElementNS(ns, 'polyline');
  line.setAttribute('class', 'line');
  line.setAttribute('points', values.map((v, i) => `${xOf(i).toFixed(1)},${yOf(v).toFixed(1)}`).join(' '));
  parts.push(line);
  svg.replaceChildren(...parts);
  const total = values.reduce((a, v) => a + v * everyS, 0);
  svg.setAttribute('data-points', String(values.length));
  svg.setAttribute('data-max', String(Math.round(peak)));
  svg.setAttribute('data-total', String(Math.round(total)));
  const now = values.length > 0 ? values[values.length - 1] : 0;
  const peakAgo = (values.length - 1 - values.lastIndexOf(peak)) * everyS;
  const window = `the last ${Math.round(values.length * everyS)} s`;
  document.getElementById('throughput-now').textContent =
    peak === 0
      ? `idle: nothing moved in ${window}`
      : `now ${bytes(now)}/s, peak ${bytes(peak)}/s ${peakAgo < 1 ? 'now' : `${Math.round(peakAgo)} s ago`}, ${bytes(total)} moved in ${window}`;
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
