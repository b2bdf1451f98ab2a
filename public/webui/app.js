// swarmshare's web UI: the daemon's torrents, live through /api/v1/events, driven through its REST
// API (/api/v1, docs/daemon.md). Served by the daemon itself; nothing is fetched from elsewhere.
// Helpers (bytes, el, bits, drawGrid, drawAvailability) come from /shared/grid.js.

const API = '/api/v1';
const torrents = new Map(); // id -> the API's torrent summary
let sortKey = 'position';
let sortDir = 1;
let current = null; // the torrent page's id
let detailTimer = null;
let removing = null;

const $ = (id) => document.getElementById(id);

async function api(method, path, body, type) {
  const headers = {};
  let payload;
  if (body instanceof ArrayBuffer) {
    headers['content-type'] = type;
    payload = body;
  } else if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const res = await fetch(`${API}${path}`, { method, headers, body: payload });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.error?.message ?? `HTTP ${res.status}`);
  return data;
}

function rate(n) {
  return n > 0 ? `${bytes(n)}/s` : '–';
}

function eta(s) {
  if (s === null || s === undefined) return '∞';
  if (s === 0) return '–';
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d`;
}

function bar(progress, label) {
  const pct = Math.floor(progress * 1000) / 10;
  const b = el('span', { class: 'meter' }, el('span', {}));
  b.setAttribute('role', 'progressbar');
  b.setAttribute('aria-valuenow', String(pct));
  b.setAttribute('aria-valuemin', '0');
  b.setAttribute('aria-valuemax', '100');
  b.setAttribute('aria-label', label);
  b.firstChild.style.width = `${pct}%`;
  return el('span', { class: 'progress-cell' }, b, el('span', { class: 'pct' }, `${pct}%`));
}

function message(node, text, bad) {
  node.textContent = text;
  node.classList.toggle('bad', Boolean(bad));
}

// ---- the list -------------------------------------------------------------------------------

function sorted() {
  const list = [...torrents.values()];
  const key = (t) => (sortKey === 'eta' ? (t.eta ?? Number.MAX_SAFE_INTEGER) : t[sortKey]);
  return list.sort((a, b) => {
    const x = key(a);
    const y = key(b);
    const c = typeof x === 'string' ? x.localeCompare(y) : x - y;
    return (c || a.position - b.position) * sortDir;
  });
}

function actionButtons(t) {
  const running = t.state !== 'paused' && t.state !== 'error';
  const toggle = el('button', { type: 'button', class: 'small' }, running ? 'Pause' : 'Resume');
  toggle.setAttribute('data-action', running ? 'pause' : 'resume');
  toggle.setAttribute('aria-label', `${running ? 'Pause' : 'Resume'} ${t.name}`);
  toggle.addEventListener('click', () => act(t.id, running ? 'pause' : 'resume'));
  const rm = el('button', { type: 'button', class: 'small danger' }, 'Remove…');
  rm.setAttribute('data-action', 'remove');
  rm.setAttribute('aria-label', `Remove ${t.name}`);
  rm.addEventListener('click', () => askRemove(t));
  return el('td', { class: 'actions' }, toggle, ' ', rm);
}

function renderList() {
  const body = document.querySelector('#torrents tbody');
  body.replaceChildren(
    ...sorted().map((t) => {
      const link = el('a', { href: `#/t/${t.id}` }, t.name);
      const state = t.state === 'error' ? `error: ${t.error}` : t.state;
      return el(
        'tr',
        { 'data-id': t.id, 'data-state': t.state, 'data-progress': String(t.progress) },
        el('td', { class: 'name' }, link),
        el('td', { class: 'num wide' }, bytes(t.sizeWhenDone)),
        el('td', {}, bar(t.progress, `${t.name} progress`)),
        el('td', { class: `state ${t.state}` }, state),
        el('td', { class: 'num wide' }, rate(t.rateDownload)),
        el('td', { class: 'num wide' }, rate(t.rateUpload)),
        el('td', { class: 'num wide' }, String(t.peers)),
        el('td', { class: 'num wide' }, t.state === 'downloading' ? eta(t.eta) : '–'),
        actionButtons(t),
      );
    }),
  );
  $('no-torrents').hidden = torrents.size > 0;
  for (const b of document.querySelectorAll('#torrents th button')) {
    const th = b.parentElement;
    th.setAttribute(
      'aria-sort',
      b.dataset.sort === sortKey ? (sortDir > 0 ? 'ascending' : 'descending') : 'none',
    );
  }
  let down = 0;
  let up = 0;
  for (const t of torrents.values()) {
    down += t.rateDownload;
    up += t.rateUpload;
  }
  $('totals').textContent = `↓ ${rate(down)}  ↑ ${rate(up)}`;
}

for (const b of document.querySelectorAll('#torrents th button'))
  b.addEventListener('click', () => {
    if (sortKey === b.dataset.sort) sortDir = -sortDir;
    else {
      sortKey = b.dataset.sort;
      sortDir = 1;
    }
    renderList();
  });

async function refreshList() {
  const { torrents: list } = await api('GET', '/torrents');
  torrents.clear();
  for (const t of list) torrents.set(t.id, t);
  renderList();
}

function update(t) {
  torrents.set(t.id, t);
  renderList();
  if (current === t.id) renderSummary(t);
}

function connect() {
  const source = new EventSource(`${API}/events`);
  source.addEventListener('hello', () => {
    $('status').textContent = 'live';
    refreshList().catch((e) => message($('add-message'), e.message, true));
  });
  for (const kind of ['added', 'state', 'completed', 'error'])
    source.addEventListener(kind, (ev) => update(JSON.parse(ev.data)));
  source.addEventListener('progress', (ev) => {
    for (const t of JSON.parse(ev.data)) torrents.set(t.id, t);
    renderList();
    if (current !== null && torrents.has(current)) renderSummary(torrents.get(current));
  });
  source.addEventListener('removed', (ev) => {
    const { id } = JSON.parse(ev.data);
    torrents.delete(id);
    renderList();
    if (current === id) location.hash = '#/';
  });
  source.onerror = () => {
    $('status').textContent = 'reconnecting…';
  };
}

// ---- adding ---------------------------------------------------------------------------------

async function addLink(text) {
  const link = text.trim();
  if (link === '') throw new Error('paste a magnet link or the URL of a .torrent');
  const body = { paused: $('add-paused').checked };
  if (link.startsWith('magnet:')) body.magnet = link;
  else if (/^https?:\/\//i.test(link)) body.url = link;
  else throw new Error('a magnet link (magnet:?…) or an http(s) URL');
  return api('POST', '/torrents', body);
}

async function addFile(file) {
  const buf = await file.arrayBuffer();
  return api('POST', `/torrents?paused=${$('add-paused').checked}`, buf, 'application/x-bittorrent');
}

function added(r) {
  update(r.torrent);
  message($('add-message'), r.created ? `Added ${r.torrent.name}.` : `${r.torrent.name} is already here.`);
}

$('add-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const input = $('add-link');
  const button = $('add-button');
  button.disabled = true;
  message(
    $('add-message'),
    input.value.trim().startsWith('magnet:') ? 'Fetching its metadata from peers…' : 'Adding…',
  );
  try {
    added(await addLink(input.value));
    input.value = '';
  } catch (e) {
    message($('add-message'), `Not added: ${e.message}`, true);
  } finally {
    button.disabled = false;
  }
});

async function addFiles(files) {
  for (const f of files) {
    try {
      added(await addFile(f));
    } catch (e) {
      message($('add-message'), `${f.name} not added: ${e.message}`, true);
    }
  }
}

$('add-file').addEventListener('change', async (ev) => {
  await addFiles([...ev.target.files]);
  ev.target.value = '';
});
document.addEventListener('dragover', (ev) => {
  ev.preventDefault();
  document.body.classList.add('dropping');
});
document.addEventListener('dragleave', () => document.body.classList.remove('dropping'));
document.addEventListener('drop', (ev) => {
  ev.preventDefault();
  document.body.classList.remove('dropping');
  addFiles([...(ev.dataTransfer?.files ?? [])]);
});

// ---- pause, resume, remove, limits ------------------------------------------------------------

async function act(id, action) {
  try {
    update((await api('POST', `/torrents/${id}/${action}`)).torrent);
  } catch (e) {
    message($('add-message'), e.message, true);
  }
}

function askRemove(t) {
  removing = t;
  $('rm-name').textContent = t.name;
  $('rm-data').checked = false;
  $('rm-ok').textContent = 'Remove';
  $('remove-dialog').showModal();
}

$('rm-data').addEventListener('change', (ev) => {
  $('rm-ok').textContent = ev.target.checked ? 'Remove and delete files' : 'Remove';
});

$('remove-dialog').addEventListener('close', async () => {
  const t = removing;
  removing = null;
  if ($('remove-dialog').returnValue !== 'ok' || t === null) return;
  try {
    await api('DELETE', `/torrents/${t.id}?deleteData=${$('rm-data').checked}`);
    torrents.delete(t.id);
    renderList();
    if (current === t.id) location.hash = '#/';
  } catch (e) {
    message($('add-message'), e.message, true);
  }
});

async function loadLimits() {
  const { session } = await api('GET', '/session');
  const k = (v) => (v === null ? '' : String(Math.round(v / 1024)));
  $('limit-down').value = k(session.settings.downloadLimit);
  $('limit-up').value = k(session.settings.uploadLimit);
}

$('limits-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const v = (input) => (input.value.trim() === '' ? null : Math.round(Number(input.value) * 1024));
  try {
    await api('PATCH', '/session', { downloadLimit: v($('limit-down')), uploadLimit: v($('limit-up')) });
    message($('limits-message'), 'Saved.');
  } catch (e) {
    message($('limits-message'), e.message, true);
  }
});

// ---- a torrent's page -----------------------------------------------------------------------

function renderSummary(t) {
  $('t-name').textContent = t.name;
  const state = t.state === 'error' ? `error: ${t.error}` : t.state;
  $('t-summary').textContent =
    `${state} · ${(t.progress * 100).toFixed(1)}% of ${bytes(t.sizeWhenDone)} · ↓ ${rate(t.rateDownload)} ↑ ${rate(t.rateUpload)} · ${t.peers} peers · ${t.id}`;
  $('t-summary').setAttribute('data-state', t.state);
  const running = t.state !== 'paused' && t.state !== 'error';
  $('t-pause').hidden = !running;
  $('t-resume').hidden = running;
}

function renderFiles(d) {
  $('t-files')
    .querySelector('tbody')
    .replaceChildren(
      ...d.files.map((f) => {
        const wanted = el('input', { type: 'checkbox', checked: f.wanted });
        wanted.setAttribute('aria-label', `download ${f.path}`);
        wanted.addEventListener('change', () => setFile(d.id, { index: f.index, wanted: wanted.checked }));
        const pri = el(
          'select',
          {},
          ...['high', 'normal', 'low'].map((p) => el('option', { value: p, selected: f.priority === p }, p)),
        );
        pri.setAttribute('aria-label', `priority of ${f.path}`);
        pri.addEventListener('change', () => setFile(d.id, { index: f.index, priority: pri.value }));
        return el(
          'tr',
          { 'data-file': String(f.index) },
          el('td', {}, String(f.index)),
          el('td', { class: 'name' }, f.path),
          el('td', { class: 'num' }, bytes(f.size)),
          el('td', {}, bar(f.progress, `${f.path} progress`)),
          el('td', {}, wanted),
          el('td', {}, pri),
        );
      }),
    );
}

async function setFile(id, change) {
  try {
    update((await api('PATCH', `/torrents/${id}`, { files: [change] })).torrent);
    await refreshDetail();
  } catch (e) {
    message($('t-summary'), e.message, true);
  }
}

function renderPeers(d) {
  $('t-peers')
    .querySelector('tbody')
    .replaceChildren(
      ...d.peerList.map((p) =>
        el(
          'tr',
          { 'data-peer': p.address },
          el('td', {}, p.address),
          el('td', {}, p.client ?? '?'),
          el('td', {}, bar(p.progress, `${p.address} progress`)),
          el('td', { class: 'num' }, rate(p.rateDownload)),
          el('td', { class: 'num' }, rate(p.rateUpload)),
        ),
      ),
    );
  $('t-no-peers').hidden = d.peerList.length > 0;
}

function renderTrackers(d) {
  $('t-trackers')
    .querySelector('tbody')
    .replaceChildren(
      ...d.trackers.map((t) =>
        el(
          'tr',
          {},
          el('td', { class: 'name' }, t.url),
          el('td', { class: 'num' }, String(t.tier)),
          el('td', { class: t.error ? 'bad' : '' }, t.at === null ? 'not yet' : (t.error ?? 'ok')),
          el('td', { class: 'num' }, t.peers === null ? '–' : String(t.peers)),
          el('td', {}, t.at === null ? '–' : new Date(t.at).toLocaleTimeString()),
        ),
      ),
    );
}

/** At most 800 bars: each the rarest piece of its run (what holds a download back). */
function bucketed(a) {
  if (a.length <= 800) return a;
  const out = [];
  const per = a.length / 800;
  for (let i = 0; i < 800; i++) {
    let m = Number.MAX_SAFE_INTEGER;
    for (let j = Math.floor(i * per); j < Math.floor((i + 1) * per); j++) m = Math.min(m, a[j]);
    out.push(m);
  }
  return out;
}

function renderPieces(p, complete) {
  const rows = [
    { id: 'this torrent', chunks: p.have, fetching: p.inFlight, complete },
    ...p.peers.map((x) => ({ id: x.client ?? x.address, chunks: x.have, fetching: [], complete: false })),
  ];
  drawGrid(
    $('t-grid'),
    { pieces: p.pieces, peers: rows, totalPeers: p.totalPeers + 1 },
    $('t-grid-note'),
    'piece',
  );
  $('t-grid').setAttribute('data-have', String(p.haveCount));
  drawAvailability($('t-availability'), bucketed(p.availability ?? []));
}

async function refreshDetail() {
  if (current === null) return;
  const id = current;
  const [{ torrent: d }, pieces] = await Promise.all([
    api('GET', `/torrents/${id}`),
    api('GET', `/torrents/${id}/pieces`),
  ]);
  if (current !== id) return;
  renderSummary(d);
  renderFiles(d);
  renderPeers(d);
  renderTrackers(d);
  renderPieces(pieces, d.progress === 1);
}

$('t-pause').addEventListener('click', () => act(current, 'pause'));
$('t-resume').addEventListener('click', () => act(current, 'resume'));
$('t-remove').addEventListener('click', () => {
  const t = torrents.get(current);
  if (t) askRemove(t);
});

function route() {
  const m = /^#\/t\/([0-9a-f]{40})$/.exec(location.hash);
  current = m ? m[1] : null;
  $('list-view').hidden = current !== null;
  $('torrent-view').hidden = current === null;
  clearInterval(detailTimer);
  detailTimer = null;
  if (current !== null) {
    const tick = () => refreshDetail().catch((e) => message($('t-summary'), e.message, true));
    tick();
    detailTimer = setInterval(tick, 1000);
  }
}

window.addEventListener('hashchange', route);
route();
connect();
loadLimits().catch(() => {});
// The event stream says what changes; an idle seed sends none, so the list is re-read now and then.
setInterval(() => refreshList().catch(() => {}), 5000);
