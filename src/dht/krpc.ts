import bencode from 'bencode';
import { compactAddress, type PeerAddress, parseCompactPeers, parseIp } from '../core/ip.js';

/**
 * KRPC, the Mainline DHT's message format (BEP 5): bencoded dictionaries over UDP, a query
 * (`y: q`), a response (`y: r`) or an error (`y: e`), matched by transaction id (`t`). Pure codec
 * with named limits: packets in, typed messages or a reason out; messages in, bytes out.
 */

/** The largest packet we read (real ones stay under a typical 1,500-byte MTU). */
export const MAX_KRPC_PACKET = 2048;
/** Nodes we read from one `nodes` field at most (BEP 5 replies carry 8). */
export const MAX_NODES_READ = 16;
/** Peers we read from one `values` list at most. */
export const MAX_VALUES_READ = 100;
/** A token we accept at most this long (ours are 8 bytes; others use up to 20). */
export const MAX_TOKEN_LENGTH = 64;
/** A transaction id at most this long (clients use 2 to 4 bytes). */
export const MAX_TID_LENGTH = 16;

export type NodeId = Uint8Array;

/** A node as a compact node info gives it (BEP 5: 20-byte id, 4-byte IP, 2-byte port). */
export interface NodeInfo {
  id: NodeId;
  ip: string;
  port: number;
}

export type Query =
  | { q: 'ping'; id: NodeId }
  | { q: 'find_node'; id: NodeId; target: NodeId }
  | { q: 'get_peers'; id: NodeId; infoHash: Uint8Array }
  | {
      q: 'announce_peer';
      id: NodeId;
      infoHash: Uint8Array;
      port: number;
      token: Uint8Array;
      /** BEP 5: use the packet's source port rather than `port`. */
      impliedPort: boolean;
    };

export interface Response {
  id: NodeId;
  nodes?: NodeInfo[];
  values?: PeerAddress[];
  token?: Uint8Array;
}

export type KrpcMessage =
  | { y: 'q'; t: Uint8Array; query: Query; readOnly: boolean }
  | { y: 'r'; t: Uint8Array; r: Response }
  | { y: 'e'; t: Uint8Array; code: number; message: string };

/** BEP 5 error codes. */
export const KRPC_ERRORS = { generic: 201, server: 202, protocol: 203, methodUnknown: 204 } as const;

const bytes = (v: unknown): Uint8Array | null => (v instanceof Uint8Array ? v : null);
const id20 = (v: unknown): Uint8Array | null => {
  const b = bytes(v);
  return b !== null && b.length === 20 ? b : null;
};

/** Compact node infos (26 bytes each; a trailing partial entry is ignored), at most MAX_NODES_READ. */
export function decodeNodes(b: Uint8Array): NodeInfo[] {
  const out: NodeInfo[] = [];
  for (let i = 0; i + 26 <= b.length && out.length < MAX_NODES_READ; i += 26) {
    const [p] = parseCompactPeers(b.subarray(i + 20, i + 26), 6, 1);
    if (p !== undefined) out.push({ id: new Uint8Array(b.subarray(i, i + 20)), ip: p.ip, port: p.port });
  }
  return out;
}

/** A peer's compact form (6 bytes) when it is an IPv4 address, else null (BEP 5 values are IPv4). */
export function encodePeer(p: PeerAddress): Uint8Array | null {
  const ip = parseIp(p.ip);
  return ip === null || ip.family !== 4 ? null : Buffer.from(compactAddress(ip, p.port), 'latin1');
}

/** Compact node infos for IPv4 nodes (others are left out). */
export function encodeNodes(nodes: readonly NodeInfo[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const n of nodes) {
    const peer = encodePeer(n);
    if (peer !== null) parts.push(n.id, peer);
  }
  return Buffer.concat(parts);
}

/**
 * A packet as a KRPC message, or why not (too large, not bencoded, not a dictionary, a field
 * missing or of the wrong type). Unknown query methods decode as a `ping`-shaped failure so the
 * caller can answer 204 ("Method Unknown").
 */
export function decodeKrpc(
  packet: Uint8Array,
): KrpcMessage | { error: string; t?: Uint8Array; unknownMethod?: boolean } {
  if (packet.length > MAX_KRPC_PACKET)
    return { error: `packet of ${packet.length} bytes, over ${MAX_KRPC_PACKET}` };
  let d: unknown;
  try {
    d = bencode.decode(Buffer.from(packet.buffer, packet.byteOffset, packet.length));
  } catch {
    return { error: 'not bencoded' };
  }
  if (d === null || typeof d !== 'object' || Array.isArray(d) || d instanceof Uint8Array)
    return { error: 'not a dictionary' };
  const m = d as Record<string, unknown>;
  const t = bytes(m.t);
  if (t === null || t.length === 0 || t.length > MAX_TID_LENGTH) return { error: 'no usable transaction id' };
  const y = bytes(m.y);
  const kind = y === null ? '' : Buffer.from(y).toString('latin1');
  if (kind === 'q') return decodeQuery(m, t);
  if (kind === 'r') {
    const r = m.r as Record<string, unknown> | undefined;
    if (r === undefined || r === null || typeof r !== 'object' || Array.isArray(r) || r instanceof Uint8Array)
      return { error: 'response without r', t };
    const id = id20(r.id);
    if (id === null) return { error: 'response without a 20-byte id', t };
    const out: Response = { id };
    const nodes = bytes(r.nodes);
    if (nodes !== null) out.nodes = decodeNodes(nodes);
    if (Array.isArray(r.values)) {
      const values: PeerAddress[] = [];
      for (const v of r.values.slice(0, MAX_VALUES_READ)) {
        const b = bytes(v);
        if (b !== null && b.length === 6) values.push(...parseCompactPeers(b, 6, 1));
      }
      out.values = values;
    }
    const token = bytes(r.token);
    if (token !== null && token.length <= MAX_TOKEN_LENGTH) out.token = token;
    return { y: 'r', t, r: out };
  }
  if (kind === 'e') {
    const e = m.e;
    const code = Array.isArray(e) && typeof e[0] === 'number' ? e[0] : KRPC_ERRORS.generic;
    const msg =
      Array.isArray(e) && e[1] instanceof Uint8Array ? Buffer.from(e[1]).toString('utf8').slice(0, 200) : '';
    return { y: 'e', t, code, message: msg };
  }
  return { error: 'y is not q, r or e', t };
}

function decodeQuery(
  m: Record<string, unknown>,
  t: Uint8Array,
): KrpcMessage | { error: string; t: Uint8Array; unknownMethod?: boolean } {
  const qb = bytes(m.q);
  const q = qb === null ? '' : Buffer.from(qb).toString('latin1');
  const a = m.a as Record<string, unknown> | undefined;
  if (a === undefined || a === null || typeof a !== 'object' || Array.isArray(a) || a instanceof Uint8Array)
    return { error: 'query without arguments', t };
  const id = id20(a.id);
  if (id === null) return { error: 'query without a 20-byte id', t };
  // BEP 43: a read-only node asks but must not be added to routing tables.
  const readOnly = m.ro === 1;
  switch (q) {
    case 'ping':
      return { y: 'q', t, readOnly, query: { q: 'ping', id } };
    case 'find_node': {
      const target = id20(a.target);
      if (target === null) return { error: 'find_node without a 20-byte target', t };
      return { y: 'q', t, readOnly, query: { q: 'find_node', id, target } };
    }
    case 'get_peers': {
      const infoHash = id20(a.info_hash);
      if (infoHash === null) return { error: 'get_peers without a 20-byte info_hash', t };
      return { y: 'q', t, readOnly, query: { q: 'get_peers', id, infoHash } };
    }
    case 'announce_peer': {
      const infoHash = id20(a.info_hash);
      const token = bytes(a.token);
      const port = a.port;
      const impliedPort = a.implied_port === 1;
      if (infoHash === null) return { error: 'announce_peer without a 20-byte info_hash', t };
      if (token === null || token.length > MAX_TOKEN_LENGTH)
        return { error: 'announce_peer without a token', t };
      if (!impliedPort && (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535))
        return { error: 'announce_peer without a port from 1 to 65535', t };
      return {
        y: 'q',
        t,
        readOnly,
        query: {
          q: 'announce_peer',
          id,
          infoHash,
          token,
          port: typeof port === 'number' ? port : 0,
          impliedPort,
        },
      };
    }
    default:
      return { error: `unknown method '${q.slice(0, 40)}'`, t, unknownMethod: true };
  }
}

/** A query's bytes. */
export function encodeQuery(t: Uint8Array, query: Query, readOnly = false): Uint8Array {
  const a: Record<string, unknown> = { id: query.id };
  if (query.q === 'find_node') a.target = query.target;
  if (query.q === 'get_peers' || query.q === 'announce_peer') a.info_hash = query.infoHash;
  if (query.q === 'announce_peer') {
    a.port = query.port;
    a.token = query.token;
    if (query.impliedPort) a.implied_port = 1;
  }
  const d: Record<string, unknown> = { t, y: 'q', q: query.q, a };
  if (readOnly) d.ro = 1;
  return bencode.encode(d);
}

/** A response's bytes (`values` as a list of 6-byte strings, `nodes` compact). */
export function encodeResponse(t: Uint8Array, r: Response): Uint8Array {
  const body: Record<string, unknown> = { id: r.id };
  if (r.nodes !== undefined) body.nodes = encodeNodes(r.nodes);
  if (r.values !== undefined) body.values = r.values.map(encodePeer).filter((v) => v !== null);
  if (r.token !== undefined) body.token = r.token;
  return bencode.encode({ t, y: 'r', r: body });
}

export function encodeError(t: Uint8Array, code: number, message: string): Uint8Array {
  return bencode.encode({ t, y: 'e', e: [code, message] });
}
