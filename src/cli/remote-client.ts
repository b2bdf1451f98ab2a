import { readFile } from 'node:fs/promises';
import { type Command, Option } from 'commander';

/** The remote commands' client of a running daemon's API (`--api URL`, or SWARMSHARE_API). */

export const DEFAULT_API = 'http://127.0.0.1:9080';

export function apiOption(): Option {
  return new Option('--api <url>', 'the daemon API (user:password@ in the URL for basic auth)').default(
    process.env.SWARMSHARE_API ?? DEFAULT_API,
    'SWARMSHARE_API, else http://127.0.0.1:9080',
  );
}

export function withApi(cmd: Command): Command {
  return cmd.addOption(apiOption());
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Calls the API; a daemon that does not answer, or an error reply, throws with a clear message. */
export async function call<T>(api: string, method: string, path: string, body?: unknown): Promise<T> {
  const u = new URL(api);
  const headers: Record<string, string> = {};
  if (u.username !== '' || u.password !== '') {
    headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
    u.username = '';
    u.password = '';
  }
  let payload: string | Blob | undefined;
  if (body instanceof Uint8Array) {
    headers['content-type'] = 'application/x-bittorrent';
    payload = new Blob([Uint8Array.from(body)]);
  } else if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let res: Response;
  try {
    res = await fetch(new URL(path, u), {
      method,
      headers,
      body: payload,
      signal: AbortSignal.timeout(90_000),
    });
  } catch (e) {
    const why = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
    throw new Error(
      `no daemon answers at ${u.origin} (${why}): start one with 'swarmshare daemon', or give --api`,
    );
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`${u.origin} answered ${res.status} with something that is not the daemon's JSON`);
  }
  if (!res.ok) {
    const err = (json as { error?: { code?: string; message?: string } }).error;
    throw new ApiError(
      res.status,
      err?.code ?? 'ERR_INTERNAL',
      `${err?.message ?? `HTTP ${res.status}`} (${err?.code ?? res.status})`,
    );
  }
  return json as T;
}

/** What `ls` and `show` read of a torrent. */
export interface TorrentRow {
  id: string;
  name: string;
  state: string;
  progress: number;
  size: number;
  downloaded: number;
  uploaded: number;
  rateDownload: number;
  rateUpload: number;
  peers: number;
  eta: number | null;
  error: string | null;
}

/** The ids `refs` name: each an id or a unique prefix, or `all`. */
export async function targets(api: string, refs: string[]): Promise<TorrentRow[]> {
  const { torrents } = await call<{ torrents: TorrentRow[] }>(api, 'GET', '/api/v1/torrents');
  if (refs.includes('all')) return torrents;
  return refs.map((r) => {
    const matches = torrents.filter((t) => t.id.startsWith(r.toLowerCase()));
    if (matches.length === 0) throw new Error(`no torrent ${r}`);
    if (matches.length > 1)
      throw new Error(`${r} is the start of ${matches.length} torrents' ids: give more of it`);
    return matches[0] as TorrentRow;
  });
}

export async function readBytes(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** A command that POSTs one action (pause, resume) to each torrent named. */
export function registerTorrentAction(
  program: Command,
  o: { name: 'pause' | 'resume' | 'recheck'; description: string; done: string },
): void {
  withApi(
    program
      .command(o.name)
      .description(o.description)
      .argument('<ids...>', "ids, unique starts of ids, or 'all'"),
  ).action(async (refs: string[], flags: { api: string }) => {
    for (const t of await targets(flags.api, refs)) {
      await call(flags.api, 'POST', `/api/v1/torrents/${t.id}/${o.name}`);
      console.log(`${o.done}: ${t.id.slice(0, 12)} ${t.name}`);
    }
  });
}
