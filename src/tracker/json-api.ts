import type { Bitfield } from '../core/bitfield.js';
import { SwarmshareError } from '../core/errors.js';
import { displayPeerId, isInfoHashHex, parseDisplayedPeerId } from '../core/ids.js';
import { compactAddress, type ParsedIp, parseIp } from '../core/ip.js';
import type { ChunkSetInput, Client, PeerRecord, PeerStats, Swarm, SwarmRegistry } from './registry.js';

/**
 * The original's four endpoints as pure handlers: validated input in, a JSON-ready object out,
 * or a SwarmshareError thrown. docs/tracker.md documents the shapes.
 */

export type ChunkValue =
  | number[]
  | {
      chunks?: number[];
      bitfield?: string;
      pieces?: number;
      size?: number;
      name?: string;
      info_hash?: string;
    };

export interface RegisterBody {
  peer_id: string;
  wire_id?: string;
  ip?: string;
  port: number;
  files?: Record<string, ChunkValue>;
  key?: string;
}

export interface UpdateBody {
  peer_id: string;
  key: string;
  file?: string;
  info_hash?: string;
  chunks?: number[];
  bitfield?: string;
  pieces?: number;
  size?: number;
  ip?: string;
  port?: number;
  stats?: Partial<PeerStats>;
}

export interface DeregisterBody {
  peer_id: string;
  key: string;
}

export interface GetPeersQuery {
  file: string;
  exclude?: string;
  numwant?: number;
  format?: 'list' | 'bitfield';
}

export interface GetPeersPeer {
  ip: string;
  port: number;
  source: 'json' | 'announce';
  complete: boolean;
  chunks?: number[] | null;
  bitfield?: string | null;
}

export interface GetPeersReply {
  file: string | null;
  info_hash: string | null;
  pieces: number | null;
  size: number | null;
  seeds: number;
  leechers: number;
  total_peers: number;
  peers: Record<string, GetPeersPeer>;
}

export interface JsonApiEvents {
  /** `excluded`: 1 when the asker itself was left out of the list. */
  onAvailability?(swarm: Swarm, peers: PeerRecord[], excluded: number): void;
}

function addressOf(ip: string | undefined, remote: string): ParsedIp {
  const text = ip ?? remote;
  const parsed = parseIp(text);
  if (parsed === null) throw new SwarmshareError('ERR_BAD_IP', `'${text}' is not an IPv4 or IPv6 address`);
  return parsed;
}

function chunkInput(v: ChunkValue): ChunkSetInput {
  if (Array.isArray(v)) return { chunks: v };
  return { chunks: v.chunks, bitfield: v.bitfield, pieces: v.pieces, size: v.size, name: v.name };
}

/** The swarm a JSON peer's file reference names when it writes (register, update). */
function swarmForWrite(
  reg: SwarmRegistry,
  ref: string,
  infoHash: string | undefined,
  client: Client,
  now: number,
): Swarm {
  if (infoHash !== undefined) {
    if (!isInfoHashHex(infoHash))
      throw new SwarmshareError('ERR_BAD_INFO_HASH', 'info_hash must be 40 hex characters');
    return reg.infoHashSwarm(infoHash, true, now) as Swarm;
  }
  if (isInfoHashHex(ref)) return reg.infoHashSwarm(ref, true, now) as Swarm;
  const named = reg.nameSwarm(ref, false, now);
  if (named !== undefined) return named;
  // A file the peer already shares under that name (it registered it with its info hash).
  let own: Swarm | undefined;
  let count = 0;
  for (const s of client.swarms) {
    if (s.name === ref) {
      own = s;
      count++;
    }
  }
  if (own !== undefined && count === 1) return own;
  return reg.nameSwarm(ref, true, now) as Swarm;
}

function putChunks(
  reg: SwarmRegistry,
  swarm: Swarm,
  client: Client,
  input: ChunkSetInput,
  now: number,
): PeerRecord {
  let s = swarm;
  let p = s.peers.get(client.peerId);
  if (p !== undefined && !p.isJson) {
    // The same id announced before: the JSON registration, which has a key, takes the record over.
    reg.removePeer(s, p);
    p = undefined;
  }
  if (p === undefined) {
    if (!reg.swarms.has(s.id)) s = swarmForRef(reg, s, now);
    p = reg.addPeer(s, client.peerId, compactAddress(client.ip, client.port), client.key, true, now);
    client.swarms.add(s);
  }
  reg.touch(p, now);
  reg.setChunks(s, p, input);
  return p;
}

/** A swarm that emptied out (its last peer was the one now taking it over) is made again. */
function swarmForRef(reg: SwarmRegistry, s: Swarm, now: number): Swarm {
  if (s.infoHash !== null) return reg.infoHashSwarm(s.infoHash, true, now) as Swarm;
  return reg.nameSwarm(s.id.slice(5), true, now) as Swarm;
}

function authenticate(reg: SwarmRegistry, peerId: string, key: string): Client {
  const c = reg.clients.get(peerId);
  if (c === undefined) throw new SwarmshareError('ERR_UNKNOWN_PEER', `peer '${peerId}' is not registered`);
  if (c.key !== key) throw new SwarmshareError('ERR_WRONG_KEY', `wrong key for peer '${peerId}'`);
  return c;
}

/**
 * `key`: the secret a new client gets (default: a fresh one from the registry's deps). Instances
 * that replay one log of operations (tracker/json-log.ts) pass the one chosen when it was written.
 */
export function register(
  reg: SwarmRegistry,
  body: RegisterBody,
  remoteIp: string,
  now: number,
  key?: string,
) {
  const ip = addressOf(body.ip, remoteIp);
  const files = body.files ?? {};
  const refs = Object.keys(files);
  if (refs.length > reg.limits.maxFilesPerRegister) {
    throw new SwarmshareError(
      'ERR_VALIDATION',
      `at most ${reg.limits.maxFilesPerRegister} files per registration`,
    );
  }
  const existing = reg.clients.get(body.peer_id);
  if (existing !== undefined) {
    if (body.key !== existing.key) {
      throw new SwarmshareError(
        'ERR_PEER_ID_TAKEN',
        `peer id '${body.peer_id}' is registered already; re-register with its key, or pick another id`,
      );
    }
    reg.dropClient(existing, 'deregistered');
  }
  const client: Client = {
    peerId: body.peer_id,
    wireId: body.wire_id?.toLowerCase() ?? null,
    key: existing?.key ?? key ?? reg.deps.newKey(),
    ip,
    port: body.port,
    lastSeen: now,
    swarms: new Set(),
  };
  reg.clients.set(client.peerId, client);
  const echoed: Record<string, number[]> = {};
  try {
    for (const ref of refs) {
      const v = files[ref] as ChunkValue;
      const infoHash = Array.isArray(v) ? undefined : v.info_hash;
      const input = chunkInput(v);
      if (infoHash !== undefined && input.name === undefined && !isInfoHashHex(ref)) input.name = ref;
      const s = swarmForWrite(reg, ref, infoHash, client, now);
      echoed[ref] = (putChunks(reg, s, client, input, now).chunks as Bitfield).indices();
    }
  } catch (e) {
    reg.clients.delete(client.peerId);
    for (const s of client.swarms) {
      const p = s.peers.get(client.peerId);
      if (p !== undefined) reg.removePeer(s, p);
    }
    throw e;
  }
  reg.events.onPeerRegistered?.(client, echoed);
  return {
    peer_id: client.peerId,
    ip: ip.text,
    port: client.port,
    files: echoed,
    key: client.key,
    interval: reg.limits.intervalSec,
  };
}

export function update(reg: SwarmRegistry, body: UpdateBody, remoteIp: string, now: number) {
  const client = authenticate(reg, body.peer_id, body.key);
  client.lastSeen = now;
  if (body.port !== undefined || body.ip !== undefined) {
    const ip = body.ip !== undefined ? addressOf(body.ip, remoteIp) : client.ip;
    client.ip = ip;
    client.port = body.port ?? client.port;
    for (const s of client.swarms) {
      const p = s.peers.get(client.peerId);
      if (p !== undefined) reg.setAddress(p, ip, client.port);
    }
  }
  const hasChunks = body.chunks !== undefined || body.bitfield !== undefined;
  if (body.file === undefined) {
    if (hasChunks || body.info_hash !== undefined || body.stats !== undefined) {
      throw new SwarmshareError('ERR_VALIDATION', 'chunks, bitfield, info_hash and stats need file');
    }
    return { ok: true, interval: reg.limits.intervalSec };
  }
  const s = swarmForWrite(reg, body.file, body.info_hash, client, now);
  const input: ChunkSetInput = {
    chunks: body.chunks,
    bitfield: body.bitfield,
    pieces: body.pieces,
    size: body.size,
    name: body.info_hash !== undefined && !isInfoHashHex(body.file) ? body.file : undefined,
  };
  const existing = s.peers.get(client.peerId);
  let p: PeerRecord;
  if (!hasChunks && existing !== undefined && existing.isJson) {
    // Only stats (or a heartbeat for this file): the chunk set stays as it was.
    p = existing;
    reg.touch(p, now);
  } else {
    if (!hasChunks) input.chunks = [];
    p = putChunks(reg, s, client, input, now);
  }
  if (body.stats !== undefined) {
    p.stats = {
      uploaded: body.stats.uploaded ?? p.stats?.uploaded ?? 0,
      downloaded: body.stats.downloaded ?? p.stats?.downloaded ?? 0,
      fetching: body.stats.fetching ?? [],
      from: body.stats.from ?? p.stats?.from ?? {},
    };
  }
  const swarm = reg.swarmById(s.id) as Swarm;
  return {
    ok: true,
    file: swarm.name,
    info_hash: swarm.infoHash,
    chunks: (p.chunks as Bitfield).count,
    pieces: swarm.pieces,
    complete: p.complete,
    interval: reg.limits.intervalSec,
  };
}

export function deregister(reg: SwarmRegistry, body: DeregisterBody) {
  const client = authenticate(reg, body.peer_id, body.key);
  const files = client.swarms.size;
  reg.dropClient(client, 'deregistered');
  return { ok: true, peer_id: body.peer_id, left_swarms: files };
}

export function getPeers(reg: SwarmRegistry, q: GetPeersQuery, events: JsonApiEvents = {}): GetPeersReply {
  const s = reg.resolve(q.file);
  const numwant = Math.min(q.numwant ?? reg.limits.defaultGetPeers, reg.limits.maxNumwant);
  const exclude = q.exclude !== undefined ? parseDisplayedPeerId(q.exclude) : null;
  const chosen =
    s.list.length <= numwant + 1
      ? s.list.filter((p) => p.peerId !== exclude)
      : reg.sample(s, numwant, exclude);
  const picked = chosen.slice(0, numwant);
  const peers: Record<string, GetPeersPeer> = {};
  for (const p of picked) {
    const entry: GetPeersPeer = { ip: p.ip, port: p.port, source: p.source, complete: p.complete };
    if (q.format === 'bitfield')
      entry.bitfield = p.chunks === null ? null : bitfieldBase64(p.chunks, s.pieces);
    else entry.chunks = p.chunks === null ? null : p.chunks.indices();
    peers[displayPeerId(p.peerId)] = entry;
  }
  events.onAvailability?.(s, picked, exclude !== null && s.peers.has(exclude) ? 1 : 0);
  return {
    file: s.name,
    info_hash: s.infoHash,
    pieces: s.pieces,
    size: s.size,
    seeds: s.seeds,
    leechers: s.list.length - s.seeds,
    total_peers: s.list.length,
    peers,
  };
}

function bitfieldBase64(b: Bitfield, pieces: number | null): string {
  const sized = pieces !== null && pieces !== b.length ? b.resized(pieces) : b;
  return Buffer.from(sized.bytes).toString('base64');
}
