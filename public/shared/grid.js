// Shared by the tracker's dashboard and the daemon's web UI (classic script, loaded first): number
// formatting, element building, bitfields, the piece grid and the availability bars.

const COLOURS = { held: '#0072b2', fetching: '#e69f00', missing: '#e8e8e8', unknown: '#cc79a7' };

// biome-ignore lint/correctness/noUnusedVariables: used by the page's own script, loaded after this one
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

// biome-ignore lint/correctness/noUnusedVariables: used by the page's own script, loaded after this one
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

// The grid fills the panel's width: one column per chunk while cells can be at least MIN_CELL px
// wide, else one column per run of chunks (coloured by the share of them held; the run's range in
// the tooltip). Rows are at least one line of label text tall, so labels never overlap.
const MIN_CELL = 3;
const MAX_CELL = 18;
const LABEL_FONT = '12px system-ui, sans-serif';

function mix(share) {
  // From "missing" (share 0) to "held" (share 1).
  const a = [0xe8, 0xe8, 0xe8];
  const b = [0x00, 0x72, 0xb2];
  const c = a.map((v, i) => Math.round(v + (b[i] - v) * share));
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}

/**
 * Draws rows of pieces on `canvas`: view = { pieces, peers: [{ id, chunks (base64 bitfield, or
 * null: unknown), fetching: [indexes], complete }], totalPeers }. `note` says what a cell stands
 * for; `unit` names a piece in the tooltip ('chunk' on the tracker's dashboard, 'piece' in the
 * daemon's UI).
 */
// biome-ignore lint/correctness/noUnusedVariables: used by the page's own script, loaded after this one
function drawGrid(canvas, view, note, unit) {
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
  canvas.gridLayout = { label, cellW, rowH, group, cols, n, peers: view.peers, unit };
  if (!canvas.hasTooltip) {
    canvas.addEventListener('mousemove', gridTooltip);
    canvas.hasTooltip = true;
  }
  canvas.setAttribute('data-group', String(group));
  canvas.setAttribute('data-row-height', String(rowH));
  canvas.setAttribute('data-label-height', String(textHeight));
  canvas.setAttribute('data-labels', JSON.stringify(labels));
  const parts = [];
  if (view.totalPeers > rows) parts.push(`Showing ${rows} of ${view.totalPeers} peers.`);
  if (group > 1) parts.push(`Each cell is a run of ${group} ${unit}s, darker as more of them are held.`);
  note.textContent = parts.join(' ');
}

// The tooltip: which peer and which chunks the cell under the pointer stands for.
function gridTooltip(ev) {
  const canvas = ev.currentTarget;
  const L = canvas.gridLayout;
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
  canvas.title = from === to ? `${p.id}: ${L.unit} ${from}` : `${p.id}: ${L.unit}s ${from}–${to}`;
}

/** Bars on `svg` (viewBox 0 0 800 120): how many peers hold each piece. */
// biome-ignore lint/correctness/noUnusedVariables: used by the page's own script, loaded after this one
function drawAvailability(svg, a) {
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
