import { Bitfield } from '../core/bitfield.js';
import { isSwarmshareError, SwarmshareError } from '../core/errors.js';
import { parseIp } from '../core/ip.js';
import {
  type DeregisterBody,
  deregister,
  type RegisterBody,
  register,
  type UpdateBody,
  update,
} from './json-api.js';
import type { Client, PeerStats, Swarm, SwarmRegistry } from './registry.js';

/**
 * The JSON API's writes as operations, for tracker instances that share one registry: each
 * instance appends its writes to one ordered log (tracker-server/redis-log.ts keeps it in Redis) and every
 * instance applies every operation, in log order, to its own registry. Applying is deterministic
 * (the time and a new client's key travel in the operation; nothing random is drawn), so the
 * instances' registries stay equal, refusals included: an operation refused at one is refused at
 * all, with the same error. Reads (get_peers, the dashboard) are served from the local copy.
 *
 * A snapshot of the JSON side of a registry lets an instance start (or catch up after a gap in the
 * log) without replaying the log from its beginning.
 */

export type JsonOp =
  | { t: 'register'; body: RegisterBody; remote: string; now: number; key: string }
  | { t: 'update'; body: UpdateBody; remote: string; now: number }
  | { t: 'deregister'; body: DeregisterBody }
  | { t: 'expire'; now: number };

/** What applying an operation gave: the handler's reply, or its refusal (a SwarmshareError's parts). */
export type OpResult =
  | { ok: true; value: unknown }
  | { ok: false; code: SwarmshareError['code']; message: string; details?: Record<string, unknown> };

export function applyOp(reg: SwarmRegistry, op: JsonOp): OpResult {
  try {
    switch (op.t) {
      case 'register':
        return { ok: true, value: register(reg, op.body, op.remote, op.now, op.key) };
      case 'update':
        return { ok: true, value: update(reg, op.body, op.remote, op.now) };
      case 'deregister':
        return { ok: true, value: deregister(reg, op.body) };
      case 'expire':
        return { ok: true, value: reg.expire(op.now) };
    }
  } catch (e) {
    if (!isSwarmshareError(e)) throw e;
    const r: OpResult = { ok: false, code: e.code, message: e.message };
    if (e.details !== undefined) r.details = { ...e.details };
    return r;
  }
}

/** The reply an OpResult stands for: its value, or its refusal thrown again. */
export function unwrap(r: OpResult): unknown {
  if (r.ok) return r.value;
  throw new SwarmshareError(r.code, r.message, r.details);
}

// ---- snapshots ---------------------------------------------------------------

interface SnapPeer {
  id: string;
  compact: string;
  chunks: [number, string] | null;
  left: number;
  key: string | null;
  seen: number;
  stats: PeerStats | null;
}

interface SnapSwarm {
  id: string;
  infoHash: string | null;
  name: string | null;
  pieces: number | null;
  declared: boolean;
  size: number | null;
  downloaded: number;
  createdAt: number;
  peers: SnapPeer[];
}

interface SnapClient {
  peerId: string;
  wireId: string | null;
  key: string;
  ip: string;
  port: number;
  lastSeen: number;
  swarms: string[];
}

export interface RegistrySnapshot {
  v: 1;
  epochMs: number | null;
  swarms: SnapSwarm[];
  clients: SnapClient[];
}

/** The JSON API's side of a registry (its clients and their peers) as plain data. */
export function snapshotOf(reg: SwarmRegistry): RegistrySnapshot {
  const swarms: SnapSwarm[] = [];
  for (const s of reg.swarms.values()) {
    const peers: SnapPeer[] = [];
    for (const p of s.list) {
      if (!p.isJson) continue;
      peers.push({
        id: p.peerId,
        compact: p.compact,
        chunks: p.chunks === null ? null : [p.chunks.length, Buffer.from(p.chunks.bytes).toString('base64')],
        left: p.leftState,
        key: p.key,
        seen: p.seen,
        stats: p.stats,
      });
    }
    if (peers.length === 0) continue;
    swarms.push({
      id: s.id,
      infoHash: s.infoHash,
      name: s.name,
      pieces: s.pieces,
      declared: s.piecesDeclared,
      size: s.size,
      downloaded: s.downloaded,
      createdAt: s.createdAt,
      peers,
    });
  }
  const clients: SnapClient[] = [...reg.clients.values()].map((c) => ({
    peerId: c.peerId,
    wireId: c.wireId,
    key: c.key,
    ip: c.ip.text,
    port: c.port,
    lastSeen: c.lastSeen,
    swarms: [...c.swarms].map((s) => s.id),
  }));
  return { v: 1, epochMs: reg.epochMs, swarms, clients };
}

/**
 * Loads a snapshot into an empty registry (one that has seen no JSON client). Throws on a
 * snapshot that does not hold together (the caller then starts from the log's beginning).
 */
export function restoreSnapshot(reg: SwarmRegistry, snap: RegistrySnapshot): void {
  if (snap.v !== 1) throw new Error(`unknown snapshot version ${String(snap.v)}`);
  reg.epochMs = snap.epochMs;
  const byId = new Map<string, Swarm>();
  for (const ss of snap.swarms) {
    const s =
      ss.infoHash !== null
        ? (reg.infoHashSwarm(ss.infoHash, true, ss.createdAt) as Swarm)
        : (reg.nameSwarm(ss.id.slice(5), true, ss.createdAt) as Swarm);
    byId.set(ss.id, s);
    s.size = ss.size;
    s.downloaded = ss.downloaded;
    s.pieces = ss.pieces;
    s.piecesDeclared = ss.declared;
    for (const sp of ss.peers) {
      const p = reg.addPeer(s, sp.id, sp.compact, sp.key, true, ss.createdAt);
      p.seen = sp.seen;
      p.leftState = sp.left;
      p.stats = sp.stats;
      if (sp.chunks !== null) {
        const [length, b64] = sp.chunks;
        p.chunks = new Bitfield(length, new Uint8Array(Buffer.from(b64, 'base64')));
      }
    }
    reg.settleRestored(s, ss.name);
  }
  for (const sc of snap.clients) {
    const ip = parseIp(sc.ip);
    if (ip === null) throw new Error(`snapshot: bad address ${sc.ip}`);
    const c: Client = {
      peerId: sc.peerId,
      wireId: sc.wireId,
      key: sc.key,
      ip,
      port: sc.port,
      lastSeen: sc.lastSeen,
      swarms: new Set(),
    };
    for (const id of sc.swarms) {
      const s = byId.get(id);
      if (s !== undefined) c.swarms.add(s);
    }
    reg.clients.set(c.peerId, c);
  }
}
