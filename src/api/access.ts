import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/**
 * Who may use the API (SECURITY.md): with `auth`, HTTP basic credentials; the Host header must
 * name localhost, the address we listen on or an allowed name (a DNS-rebinding page cannot reach
 * us under its own name); a state-changing request sent by a browser must come from our own origin
 * (CSRF). Requests without an Origin header (curl, the CLI) are not browser requests.
 */

export interface AccessOpts {
  /** `user:password` for HTTP basic auth; none on loopback by default. */
  auth?: string;
  /** The address the API listens on. */
  host: string;
  /** More names the Host header may carry (a reverse proxy's, a LAN name). */
  allowedHosts?: readonly string[];
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function checkAccess(
  req: IncomingMessage,
  o: AccessOpts,
): { code: 'ERR_UNAUTHORIZED' | 'ERR_FORBIDDEN'; message: string } | null {
  const host = hostName(req.headers.host ?? '');
  const allowed = new Set([
    'localhost',
    '127.0.0.1',
    '::1',
    stripBrackets(o.host),
    ...(o.allowedHosts ?? []),
  ]);
  if (!allowed.has(host))
    return {
      code: 'ERR_FORBIDDEN',
      message: `Host ${host || '(none)'} is not this daemon's (--api-allowed-host)`,
    };
  if (o.auth !== undefined && !authorized(req.headers.authorization, o.auth))
    return { code: 'ERR_UNAUTHORIZED', message: 'credentials required (HTTP basic)' };
  const origin = req.headers.origin;
  if (!SAFE_METHODS.has(req.method ?? 'GET')) {
    if (
      origin !== undefined &&
      origin !== `http://${req.headers.host}` &&
      origin !== `https://${req.headers.host}`
    )
      return { code: 'ERR_FORBIDDEN', message: `cross-origin request from ${origin} refused` };
    if (origin === undefined && req.headers['sec-fetch-site'] === 'cross-site')
      return { code: 'ERR_FORBIDDEN', message: 'cross-site request refused' };
  }
  return null;
}

/** The host name of a Host header, without its port ("[::1]:9080" -> "::1"). */
function hostName(h: string): string {
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(h);
  if (v6) return (v6[1] as string).toLowerCase();
  return h.replace(/:\d+$/, '').toLowerCase();
}

const stripBrackets = (h: string) => h.replace(/^\[|\]$/g, '').toLowerCase();

function authorized(header: string | undefined, want: string): boolean {
  if (header === undefined || !header.startsWith('Basic ')) return false;
  const got = Buffer.from(Buffer.from(header.slice(6), 'base64').toString('utf8'));
  const expected = Buffer.from(want);
  return got.length === expected.length && timingSafeEqual(got, expected);
}
