import bencode from 'bencode';
import { registerDashboard } from '../../src/dashboard/routes.js';
import { buildTracker, type TrackerClockDeps, type TrackerOpts } from '../../src/tracker-server/server.js';

/** A tracker with a hand-driven clock and a seeded RNG, for socket-free tests. */
export function testTracker(opts: TrackerOpts = {}) {
  const clock = { t: 1_000_000 };
  let seed = 42;
  let keys = 0;
  const deps: TrackerClockDeps = {
    now: () => clock.t,
    random: () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x80000000;
    },
    newKey: () => `key-${++keys}`,
  };
  const handle = buildTracker({ routes: registerDashboard, ...opts }, deps);
  // A shared registry (opts.sharedJson) catches up with its log first; requests wait for it.
  const ready = handle.shared?.start() ?? Promise.resolve();
  return { ...handle, clock, deps, ready };
}

export type TestTracker = ReturnType<typeof testTracker>;

export async function post(t: TestTracker, url: string, body: unknown, remoteAddress = '127.0.0.1') {
  await t.ready;
  const res = await t.app.inject({
    method: 'POST',
    url,
    remoteAddress,
    headers: { 'content-type': 'application/json' },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.statusCode, json: parseOrRaw(res.payload) };
}

/** The reply as JSON, or `{ raw }` when it is not JSON (so a test can say what came back). */
function parseOrRaw(payload: string): Record<string, any> {
  try {
    return JSON.parse(payload) as Record<string, any>;
  } catch {
    return { raw: payload };
  }
}

export async function get(t: TestTracker, url: string, remoteAddress = '127.0.0.1') {
  await t.ready;
  const res = await t.app.inject({ method: 'GET', url, remoteAddress });
  return { status: res.statusCode, json: res.json() as Record<string, any> };
}

/** Percent-encodes every byte, as BitTorrent clients do for binary values. */
export function pct(bytes: Buffer | string): string {
  const b = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
  return [...b].map((x) => `%${x.toString(16).padStart(2, '0')}`).join('');
}

export interface AnnounceArgs {
  infoHash: Buffer;
  peerId: string;
  port: number;
  left?: number;
  event?: string;
  numwant?: number;
  compact?: 0 | 1;
  noPeerId?: boolean;
  key?: string;
  ip?: string;
}

export function announceUrl(a: AnnounceArgs): string {
  const parts = [`info_hash=${pct(a.infoHash)}`, `peer_id=${pct(a.peerId)}`, `port=${a.port}`];
  parts.push('uploaded=0', 'downloaded=0', `left=${a.left ?? 100}`);
  if (a.event !== undefined) parts.push(`event=${a.event}`);
  if (a.numwant !== undefined) parts.push(`numwant=${a.numwant}`);
  if (a.compact !== undefined) parts.push(`compact=${a.compact}`);
  if (a.noPeerId) parts.push('no_peer_id=1');
  if (a.key !== undefined) parts.push(`key=${a.key}`);
  if (a.ip !== undefined) parts.push(`ip=${a.ip}`);
  return `/announce?${parts.join('&')}`;
}

export async function announce(t: TestTracker, a: AnnounceArgs, remoteAddress = '127.0.0.1') {
  const res = await t.app.inject({ method: 'GET', url: announceUrl(a), remoteAddress });
  return { status: res.statusCode, body: bencode.decode(res.rawPayload) as Record<string, any> };
}

/** Splits a compact peer string (BEP 23) into "ip:port" strings. */
export function compactPeers(buf: Uint8Array, size = 6): string[] {
  const out: string[] = [];
  for (let i = 0; i + size <= buf.length; i += size) {
    const ip =
      size === 6
        ? [...buf.subarray(i, i + 4)].join('.')
        : Buffer.from(buf.subarray(i, i + 16))
            .toString('hex')
            .replace(/(.{4})(?!$)/g, '$1:');
    out.push(`${ip}:${(buf[i + size - 2] as number) * 256 + (buf[i + size - 1] as number)}`);
  }
  return out;
}

export function peerIdOf(n: number): string {
  return `-SS0001-${String(n).padStart(12, '0')}`;
}

export function hashOf(n: number): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt32BE(n, 16);
  b[0] = 0xab;
  return b;
}
