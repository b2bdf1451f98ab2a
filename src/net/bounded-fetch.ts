import type { Agent, IncomingMessage, RequestOptions } from 'node:http';
import { request as httpRequest } from 'node:http';
import { TrackerError } from './tracker-client-error.js';

/**
 * HTTP GET/POST to a tracker we do not control, bounded: the reply's size (refused past a cap,
 * before and while reading), the time it takes, and the redirects followed (a few, only to
 * http/https, a loop named as such).
 *
 * On node:http rather than `fetch`: loading fetch (undici and web streams) cost every `share` and
 * `get` ~35 ms of CPU and ~13 MB of memory at start, for a handful of small requests a minute.
 * node:https (TLS) is loaded only for an https tracker.
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

/** What a request sends beside its URL. */
export interface BoundedInit {
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  /** The whole request's time limit, redirects and body included (default TRACKER_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Connections kept alive between requests (default: none, a connection per request). */
  agent?: Agent;
  /** What the server is called in errors (default "tracker"). */
  label?: string;
  /** Aborts the request (and the reading of its reply). */
  signal?: AbortSignal;
}

const SCHEMES = new Set(['http:', 'https:']);

/**
 * Fetches `url`, following at most MAX_REDIRECTS redirects, and reads at most `maxBytes` of the
 * reply (a longer one is refused with a TrackerError saying so). The whole, redirects included,
 * takes at most TRACKER_TIMEOUT_MS (or `init.timeoutMs`).
 */
export async function boundedFetch(
  url: string,
  maxBytes: number,
  init: BoundedInit = {},
): Promise<BoundedReply> {
  if (init.label === undefined) return fetchBounded(url, maxBytes, init);
  try {
    return await fetchBounded(url, maxBytes, init);
  } catch (e) {
    if (!(e instanceof TrackerError)) throw e;
    throw new TrackerError(e.message.replace(/^tracker /, `${init.label} `));
  }
}

async function fetchBounded(url: string, maxBytes: number, init: BoundedInit): Promise<BoundedReply> {
  const seen = new Set<string>();
  let current = url;
  const deadline = Date.now() + (init.timeoutMs ?? TRACKER_TIMEOUT_MS);
  for (let hop = 0; ; hop++) {
    seen.add(current);
    const target = parseUrl(current);
    const res = await send(target, init, deadline, current);
    const location = res.headers.location;
    if (res.statusCode !== undefined && res.statusCode >= 300 && res.statusCode < 400 && location) {
      res.destroy();
      let next: URL;
      try {
        next = new URL(location, current);
      } catch {
        throw new TrackerError(`tracker ${originOf(current)} redirects to an address that is not a URL`);
      }
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
    return {
      status: res.statusCode ?? 0,
      body: await readCapped(res, maxBytes, current, deadline),
      url: current,
    };
  }
}

function parseUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TrackerError(`tracker ${url} unreachable: not a URL`);
  }
  if (!SCHEMES.has(u.protocol))
    throw new TrackerError(`tracker ${url} unreachable: ${u.protocol} is not http(s)`);
  return u;
}

/** Sends one request; resolves with the reply's head (its body still to read). */
async function send(target: URL, init: BoundedInit, deadline: number, url: string): Promise<IncomingMessage> {
  const request = target.protocol === 'https:' ? (await import('node:https')).request : httpRequest;
  const headers: Record<string, string | number> = { ...init.headers };
  const body = init.body === undefined ? undefined : Buffer.from(init.body);
  if (body !== undefined) headers['content-length'] = body.length;
  // A kept-alive agent serves its own scheme only (a redirect to the other one connects afresh).
  const agent = (init.agent as { protocol?: string } | undefined)?.protocol === target.protocol;
  const opts: RequestOptions = {
    method: init.method ?? 'GET',
    headers,
    agent: agent ? init.agent : false,
    signal: init.signal,
  };
  return new Promise((resolve, reject) => {
    const fail = (why: string) => reject(new TrackerError(`tracker ${originOf(url)} unreachable: ${why}`));
    const req = request(target, opts, (res) => {
      clearTimeout(timer);
      resolve(res);
    });
    const timer = setTimeout(
      () => req.destroy(new Error('no answer in time')),
      Math.max(0, deadline - Date.now()),
    );
    req.on('error', (e) => {
      clearTimeout(timer);
      fail(e.message);
    });
    req.end(body);
  });
}

function readCapped(
  res: IncomingMessage,
  maxBytes: number,
  url: string,
  deadline: number,
): Promise<Uint8Array> {
  const tooLarge = () =>
    new TrackerError(`tracker ${originOf(url)} answered more than ${maxBytes} bytes: refused`);
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    res.destroy();
    return Promise.reject(tooLarge());
  }
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let total = 0;
    let settled = false;
    const end = (e: TrackerError | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (e === null) resolve(Buffer.concat(parts, total));
      else {
        res.destroy();
        reject(e);
      }
    };
    const timer = setTimeout(
      () => end(new TrackerError(`tracker ${originOf(url)} reply cut short: no end in time`)),
      Math.max(0, deadline - Date.now()),
    );
    res.on('data', (chunk: Buffer) => {
      total += chunk.length;
      if (total > maxBytes) end(tooLarge());
      else parts.push(chunk);
    });
    res.on('end', () => end(null));
    res.on('error', (e) => end(new TrackerError(`tracker ${originOf(url)} reply cut short: ${e.message}`)));
    res.on('close', () => {
      if (!res.complete) end(new TrackerError(`tracker ${originOf(url)} reply cut short: connection closed`));
    });
  });
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}
