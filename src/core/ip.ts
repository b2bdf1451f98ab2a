/**
 * IP address literals, parsed without node:net so the tracker core stays pure.
 * `compactAddress` gives the BEP 23 / BEP 7 compact form: 4 or 16 address bytes then a 2-byte port,
 * as a latin1 string (cheap to keep per peer and to concatenate into a reply).
 */
export type IpFamily = 4 | 6;

export interface ParsedIp {
  family: IpFamily;
  /** Canonical text: dotted quad, or the IPv6 text as given in lowercase. IPv4-mapped IPv6 becomes IPv4. */
  text: string;
  bytes: number[];
}

export function parseIPv4(s: string): number[] | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^[0-9]{1,3}$/.test(p)) return null;
    const n = Number(p);
    if (n > 255 || (p.length > 1 && p[0] === '0')) return null;
    out.push(n);
  }
  return out;
}

export function parseIPv6(input: string): number[] | null {
  let s = input;
  const zone = s.indexOf('%');
  if (zone !== -1) return null; // zone ids are link-local only: never useful to a remote peer
  if (s.length > 45 || s.length < 2) return null;
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  if (s.indexOf('.', lastColon) !== -1) {
    const v4 = parseIPv4(s.slice(lastColon + 1));
    if (v4 === null) return null;
    tail = v4;
    s = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const parseGroups = (h: string): number[] | null => {
    if (h === '') return [];
    const groups = h.split(':');
    const out: number[] = [];
    for (const g of groups) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(Number.parseInt(g, 16));
    }
    return out;
  };
  const head = parseGroups(halves[0] as string);
  const rest = halves.length === 2 ? parseGroups(halves[1] as string) : [];
  if (head === null || rest === null) return null;
  let groups: number[];
  if (halves.length === 2) {
    const missing = 8 - head.length - rest.length;
    if (missing < 1) return null;
    groups = [...head, ...new Array<number>(missing).fill(0), ...rest];
  } else {
    if (head.length !== 8) return null;
    groups = head;
  }
  const bytes: number[] = [];
  for (const g of groups) bytes.push(g >>> 8, g & 0xff);
  if (tail.length === 4) bytes.splice(12, 4, ...tail);
  return bytes;
}

export function parseIp(s: string): ParsedIp | null {
  const v4 = parseIPv4(s);
  if (v4 !== null) return { family: 4, text: v4.join('.'), bytes: v4 };
  const v6 = parseIPv6(s);
  if (v6 === null) return null;
  const mapped = v6.slice(0, 10).every((b) => b === 0) && v6[10] === 0xff && v6[11] === 0xff;
  if (mapped) {
    const b = v6.slice(12);
    return { family: 4, text: b.join('.'), bytes: b };
  }
  return { family: 6, text: s.toLowerCase(), bytes: v6 };
}

/** A compact address's IP (latin1, 6 or 18 characters with the port) as text; IPv6 with `::`. */
export function compactIp(c: string): string {
  if (c.length === 6) return `${c.charCodeAt(0)}.${c.charCodeAt(1)}.${c.charCodeAt(2)}.${c.charCodeAt(3)}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((c.charCodeAt(i) << 8) | c.charCodeAt(i + 1)).toString(16));
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}

/** A compact address's port. */
export const compactPort = (c: string): number =>
  (c.charCodeAt(c.length - 2) << 8) | c.charCodeAt(c.length - 1);

export function compactAddress(ip: ParsedIp, port: number): string {
  return String.fromCharCode(...ip.bytes, port >>> 8, port & 0xff);
}

/** An address or a CIDR range (`10.0.0.0/8`, `::1`, `fd00::/8`). */
export interface IpRange {
  family: IpFamily;
  bytes: number[];
  prefix: number;
}

/** Parses `a.b.c.d`, `a.b.c.d/n`, an IPv6 literal or `v6/n`; null when it is none of these. */
export function parseRange(s: string): IpRange | null {
  const slash = s.indexOf('/');
  const ip = parseIp(slash === -1 ? s : s.slice(0, slash));
  if (ip === null) return null;
  const max = ip.family === 4 ? 32 : 128;
  if (slash === -1) return { family: ip.family, bytes: ip.bytes, prefix: max };
  const p = s.slice(slash + 1);
  if (!/^[0-9]{1,3}$/.test(p)) return null;
  // An IPv4-mapped range (::ffff:a.b.c.d/n) counts as the IPv4 range it maps.
  const prefix = Number(p) - (ip.family === 4 && parseIPv4(s.slice(0, slash)) === null ? 96 : 0);
  if (prefix < 0 || prefix > max) return null;
  return { family: ip.family, bytes: ip.bytes, prefix };
}

export function inRange(ip: ParsedIp, r: IpRange): boolean {
  if (ip.family !== r.family) return false;
  let bits = r.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((ip.bytes[i] as number) & mask) !== ((r.bytes[i] as number) & mask)) return false;
  }
  return true;
}

/** A set of addresses and ranges. */
export class AddressSet {
  readonly ranges: readonly IpRange[];

  /** Throws a RangeError naming the first entry that is not an address or range. */
  constructor(entries: readonly string[]) {
    this.ranges = entries.map((e) => {
      const r = parseRange(e.trim());
      if (r === null) throw new RangeError(`'${e}' is not an IP address or CIDR range`);
      return r;
    });
  }

  has(ip: string): boolean {
    const p = parseIp(ip);
    return p !== null && this.ranges.some((r) => inRange(p, r));
  }
}

/**
 * A peer address worth dialling, in canonical form, or null: an IP literal (no host names: a
 * tracker could make us resolve anything), a port from 1 to 65535, not the unspecified address,
 * not broadcast, not multicast.
 */
export function usablePeerAddress(ip: string, port: number): string | null {
  if (!Number.isInteger(port) || port < 1 || port > 65535) return null;
  const p = parseIp(ip);
  if (p === null) return null;
  const b = p.bytes;
  if (b.every((x) => x === 0)) return null;
  if (p.family === 4) {
    if (b.every((x) => x === 255)) return null;
    if (((b[0] as number) & 0xf0) === 0xe0) return null;
  } else if (b[0] === 0xff) return null;
  return p.text;
}

/**
 * `host:port` or `[IPv6]:port` split in two (the host not checked further), or null: no port, a
 * port outside 1-65535, an unbracketed IPv6 address.
 */
export function splitHostPort(text: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(text.trim());
  if (m === null) return null;
  const port = Number(m[3]);
  return port >= 1 && port <= 65535 ? { host: (m[1] ?? m[2]) as string, port } : null;
}

/** A peer's address as trackers, PEX and the DHT give it. */
export interface PeerAddress {
  ip: string;
  port: number;
}

/** Bytes of a compact peer address: IPv4 (BEP 23) or IPv6 (BEP 7). */
export type CompactSize = 6 | 18;

/**
 * Peers from a compact list (BEP 23: 6 bytes each; BEP 7: 18), at most `max`; unusable addresses
 * (port 0, unspecified, broadcast, multicast) are skipped.
 */
export function parseCompactPeers(buf: Uint8Array, size: CompactSize, max: number): PeerAddress[] {
  const out: PeerAddress[] = [];
  for (let i = 0; i + size <= buf.length && out.length < max; i += size) {
    let ip: string;
    if (size === 6) ip = `${buf[i]}.${buf[i + 1]}.${buf[i + 2]}.${buf[i + 3]}`;
    else {
      const groups: string[] = [];
      for (let k = 0; k < 16; k += 2)
        groups.push((((buf[i + k] as number) << 8) | (buf[i + k + 1] as number)).toString(16));
      ip = groups.join(':');
    }
    const port = ((buf[i + size - 2] as number) << 8) | (buf[i + size - 1] as number);
    const usable = usablePeerAddress(ip, port);
    if (usable !== null) out.push({ ip: usable, port });
  }
  return out;
}
