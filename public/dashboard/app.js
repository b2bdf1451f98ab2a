// swarmshare dashboard: subscribes to the tracker's live feed (/events, Server-Sent Events) and
// draws what it receives. It only reads; it never changes the tracker's state.

const HISTORY = 120; // throughput points kept (one per snapshot: a minute at 2 per second)

let selected = new URLSearchParams(location.search).get('swarm');
let source = null;
const throughput = [];

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
  drawGrid(document.getElementById('grid'), view, document.getElementById('grid-note'), 'chunk');
  renderPeers(view);
  renderTransfers(view);
  drawAvailability(document.getElementById('availability'), view.availability);
  renderThroughput(view);
}

connect();
reportTimer = setInterval(pollReport, 2000);
pollReport();
