import bencode from 'bencode';
import { type CompactSize, type PeerAddress, parseCompactPeers, parseIp } from '../core/ip.js';

/**
 * Peer exchange messages (BEP 11, `ut_pex`): a bencoded dictionary of compact address lists,
 * `added` / `added.f` / `dropped` for IPv4 (6 bytes each) and `added6` / `added6.f` / `dropped6`
 * for IPv6 (18 bytes each). Pure codec with named limits; the policy (what to send, how often,
 * what to do with what arrives) is swarm/pex.ts's.
 */

/** A PEX message read at most: a full one (50 added and 50 dropped of each family) is ~3 KiB. */
export const MAX_PEX_MESSAGE = 16 * 1024;
/** Addresses we take from one list of one message at most (BEP 11 senders stop at 50). */
export const MAX_PEX_READ = 100;
/** Addresses we put in one list of one message at most (BEP 11: 50). */
export const MAX_PEX_SEND = 50;

/** `added.f` flags (BEP 11). */
export const PEX_ENCRYPTION = 0x01;
export const PEX_SEED = 0x02;
export const PEX_CONNECTABLE = 0x10;

export interface PexPeer extends PeerAddress {
  /** PEX_* flags (0 when the sender gave none). */
  flags: number;
}

export interface PexMessage {
  added: PexPeer[];
  dropped: PeerAddress[];
}

/**
 * A PEX message to send: at most MAX_PEX_SEND of each family in each list (the rest is the
 * caller's to send next time). Addresses that are not IP literals are left out.
 */
export function encodePex(added: readonly PexPeer[], dropped: readonly PeerAddress[]): Uint8Array {
  const d: Record<string, Uint8Array> = {};
  const put = (key: string, peers: readonly (PeerAddress & { flags?: number })[], withFlags: boolean) => {
    for (const family of [4, 6] as const) {
      const addrs: number[] = [];
      const flags: number[] = [];
      for (const p of peers) {
        const ip = parseIp(p.ip);
        if (ip === null || ip.family !== family || flags.length >= MAX_PEX_SEND) continue;
        addrs.push(...ip.bytes, p.port >>> 8, p.port & 0xff);
        flags.push(p.flags ?? 0);
      }
      const k = family === 4 ? key : `${key}6`;
      d[k] = Uint8Array.from(addrs);
      if (withFlags) d[`${k}.f`] = Uint8Array.from(flags);
    }
  };
  put('added', added, true);
  put('dropped', dropped, false);
  return bencode.encode(d);
}

/**
 * A PEX message we received, or why it is refused (too large, not a dictionary, lists that are
 * not strings or not whole addresses). Each list is read up to MAX_PEX_READ addresses; unusable
 * addresses (port 0, unspecified, broadcast, multicast) are skipped.
 */
export function decodePex(payload: Uint8Array): PexMessage | string {
  if (payload.length > MAX_PEX_MESSAGE)
    return `PEX message of ${payload.length} bytes, over ${MAX_PEX_MESSAGE}`;
  let d: unknown;
  try {
    d = bencode.decode(Buffer.from(payload));
  } catch {
    return 'PEX message is not bencoded';
  }
  if (d === null || typeof d !== 'object' || Array.isArray(d) || d instanceof Uint8Array)
    return 'PEX message is not a dictionary';
  const dict = d as Record<string, unknown>;
  const out: PexMessage = { added: [], dropped: [] };
  for (const [key, size] of [
    ['added', 6],
    ['added6', 18],
    ['dropped', 6],
    ['dropped6', 18],
  ] as [string, CompactSize][]) {
    const list = dict[key];
    if (list === undefined) continue;
    if (!(list instanceof Uint8Array) || list.length % size !== 0)
      return `PEX '${key}' is not a list of ${size}-byte addresses`;
    const flags = dict[`${key}.f`];
    const f = flags instanceof Uint8Array ? flags : null;
    // Flags belong to entries by position, so the unusable ones are skipped here, not by the parser.
    const n = Math.min(list.length / size, MAX_PEX_READ);
    for (let i = 0; i < n; i++) {
      const [p] = parseCompactPeers(list.subarray(i * size, (i + 1) * size), size, 1);
      if (p === undefined) continue;
      if (key.startsWith('added')) out.added.push({ ...p, flags: f?.[i] ?? 0 });
      else out.dropped.push(p);
    }
  }
  return out;
}
