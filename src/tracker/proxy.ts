import { type AddressSet, parseIp, splitHostPort } from '../core/ip.js';

/**
 * The client behind trusted reverse proxies. A request that comes from a trusted proxy names the
 * client in `X-Forwarded-For`, each proxy appending the address it got the request from; reading
 * from the right, the first address that is not itself a trusted proxy is the client. A request
 * from anyone else is taken at its socket's address, whatever its headers say (they are the
 * sender's to forge).
 */

/** Forwarded addresses looked at, at most (a longer chain is not one of ours). */
export const MAX_FORWARDED_HOPS = 32;

/** The text of one X-Forwarded-For entry as an address: `a.b.c.d`, `a.b.c.d:port`, `v6`, `[v6]:port`. */
function entryAddress(entry: string): string | null {
  return parseIp(splitHostPort(entry)?.host ?? entry.trim().replace(/^\[(.*)\]$/, '$1'))?.text ?? null;
}

/**
 * The client's address for a request that reached us from `socketAddress` with `forwardedFor`
 * (the header's value, possibly several joined by commas). A malformed entry ends the walk: the
 * request is then the hop's that passed it on (the nearest trusted proxy).
 */
export function clientAddress(
  socketAddress: string,
  forwardedFor: string | string[] | undefined,
  trusted: AddressSet | null,
): string {
  const socket = parseIp(socketAddress)?.text ?? socketAddress;
  if (trusted === null || forwardedFor === undefined || !trusted.has(socket)) return socket;
  const entries = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',');
  let client = socket;
  for (let i = entries.length - 1, n = 0; i >= 0 && n < MAX_FORWARDED_HOPS; i--, n++) {
    const a = entryAddress(entries[i] as string);
    if (a === null) return client;
    client = a;
    if (!trusted.has(a)) return a;
  }
  return client;
}
