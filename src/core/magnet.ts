/**
 * Magnet URIs (BEP 9): `magnet:?xt=urn:btih:<40 hex | 32 base32>&dn=<name>&tr=<tracker>&x.pe=<host:port>`,
 * and `ws=<url>` web seeds (BEP 19).
 * Pure: text in, fields out, or an error that says what is wrong.
 */

import { splitHostPort } from './ip.js';
import { webSeedUrls } from './metainfo.js';

export interface Magnet {
  /** The info hash, 20 bytes. */
  infoHash: Uint8Array;
  infoHashHex: string;
  /** `dn`: the display name, when given. */
  name: string | null;
  /** `tr`: trackers, each its own tier, in order, without repeats. */
  trackers: string[];
  /** `x.pe`: peers to dial directly (`host:port`, `[v6]:port`). */
  peers: { host: string; port: number }[];
  /** `xl`: the exact length, when given. */
  length: number | null;
  /** `ws`: web seeds (BEP 19), http(s) URLs. */
  webSeeds: string[];
}

/** Parameters of one magnet read at most (a magnet is a short link; more is not one of ours). */
export const MAX_MAGNET_PARAMS = 200;

export class MagnetError extends Error {
  readonly code = 'ERR_BAD_TORRENT' as const;
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function base32(s: string): Uint8Array | null {
  const out = new Uint8Array(20);
  let bits = 0;
  let value = 0;
  let n = 0;
  for (const ch of s.toUpperCase()) {
    const v = BASE32.indexOf(ch);
    if (v === -1) return null;
    value = (value << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (value >>> bits) & 0xff;
    }
  }
  return n === 20 ? out : null;
}

export function isMagnet(text: string): boolean {
  return text.slice(0, 8).toLowerCase() === 'magnet:?';
}

export function parseMagnet(text: string): Magnet {
  if (!isMagnet(text)) throw new MagnetError('not a magnet link (it starts with magnet:?)');
  let infoHash: Uint8Array | null = null;
  let name: string | null = null;
  let length: number | null = null;
  const trackers: string[] = [];
  const peers: Magnet['peers'] = [];
  const webSeeds: string[] = [];
  const params = text.slice(8).split('&');
  if (params.length > MAX_MAGNET_PARAMS) throw new MagnetError(`more than ${MAX_MAGNET_PARAMS} parameters`);
  for (const p of params) {
    const eq = p.indexOf('=');
    if (eq <= 0) continue;
    const key = p.slice(0, eq).toLowerCase();
    let value: string;
    try {
      value = decodeURIComponent(p.slice(eq + 1).replace(/\+/g, ' '));
    } catch {
      throw new MagnetError(`parameter ${key} is not valid percent-encoding`);
    }
    if (key === 'xt') {
      const m = /^urn:btih:(.+)$/i.exec(value);
      if (m === null) continue; // another kind of hash (btmh: BitTorrent v2) we do not speak
      const h = m[1] as string;
      if (/^[0-9a-f]{40}$/i.test(h)) infoHash = Uint8Array.from(Buffer.from(h, 'hex'));
      else if (h.length === 32) infoHash = base32(h);
      if (infoHash === null)
        throw new MagnetError(`'${h}' is not an info hash (40 hex or 32 base32 characters)`);
    } else if (key === 'dn') name = value;
    else if (key === 'xl') {
      const n = Number(value);
      if (Number.isSafeInteger(n) && n >= 0) length = n;
    } else if (key === 'tr') {
      if (value !== '' && !trackers.includes(value)) trackers.push(value);
    } else if (key === 'ws') {
      webSeeds.push(value);
    } else if (key === 'x.pe') {
      const peer = splitHostPort(value);
      if (peer === null) throw new MagnetError(`x.pe '${value}' is not host:port`);
      peers.push(peer);
    }
  }
  if (infoHash === null)
    throw new MagnetError('the magnet link has no BitTorrent info hash (xt=urn:btih:...)');
  return {
    infoHash,
    infoHashHex: Buffer.from(infoHash).toString('hex'),
    name,
    trackers,
    peers,
    length,
    webSeeds: webSeedUrls(webSeeds),
  };
}
