import { TrackerError } from './tracker-client-error.js';

/**
 * HTTP GET/POST to a tracker we do not control, bounded: the reply's size (refused past a cap,
 * before and while reading), the time it takes, and the redirects followed (a few, only to
 * http/https, a loop named as such).
 */

/** A tracker that doesn't answer within this is treated as down (and retried with backoff). */
export const TRACKER_TIMEOUT_MS = 10_000;
/** Redirects followed per request: enough for http -> https or a moved tracker, not for a loop. */
export const MAX_REDIRECTS = 3;

export interface BoundedReply {
  status: number;
  body: Uint8Array;
  /** The URL that answered (after redirects). */
  url: string;
}

const SCHEMES = new Set(['http:', 'https:']);

/**
 * Fetches `url`, following at most MAX_REDIRECTS redirects, and reads at most `maxBytes` of the
 * reply (a longer one is refused with a TrackerError saying so).
 */
export async function boundedFetch(
  url: string,
  maxBytes: number,
  init: RequestInit = {},
): Promise<BoundedReply> {
  const seen = new Set<string>();
  let current = url;
  const signal = AbortSignal.timeout(TRACKER_TIMEOUT_MS);
  for (let hop = 0; ; hop++) {
    seen.add(current);
    let res: Response;
    try {
      res = await fetch(current, { ...init, redirect: 'manual', signal });
    } catch (e) {
      throw new TrackerError(`tracker ${originOf(current)} unreachable: ${(e as Error).message}`);
    }
    if (res.status >= 300 && res.status < 400 && res.headers.has('location')) {
      await res.body?.cancel();
      const next = new URL(res.headers.get('location') as string, current);
      if (!SCHEMES.has(next.protocol))
        throw new TrackerError(
          `tracker ${originOf(current)} redirects to ${next.protocol}// which we do not speak`,
        );
      if (seen.has(next.href)) throw new TrackerError(`tracker ${originOf(current)} redirects in a loop`);
      if (hop >= MAX_REDIRECTS)
        throw new TrackerError(`tracker ${originOf(url)} redirected more than ${MAX_REDIRECTS} times`);
      current = next.href;
      continue;
    }
    return { status: res.status, body: await readCapped(res, maxBytes, current), url: current };
  }
}

async function readCapped(res: Response, maxBytes: number, url: string): Promise<Uint8Array> {
  const tooLarge = () =>
    new TrackerError(`tracker ${originOf(url)} answered more than ${maxBytes} bytes: refused`);
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) {
    await res.body?.cancel();
    throw tooLarge();
  }
  if (res.body === null) return new Uint8Array(0);
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > maxBytes) {
        await reader.cancel();
        throw tooLarge();
      }
      parts.push(value);
    }
  } catch (e) {
    if (e instanceof TrackerError) throw e;
    throw new TrackerError(`tracker ${originOf(url)} reply cut short: ${(e as Error).message}`);
  }
  return Buffer.concat(parts, total);
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}
