import { randomBytes } from 'node:crypto';
import { readFile, stat, statfs } from 'node:fs/promises';
import { connect } from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isSwarmshareError } from '../core/errors.js';
import { isMagnet } from '../core/magnet.js';
import { MAX_TORRENT_BYTES } from '../core/metainfo.js';
import type { Session } from '../session/session.js';
import type { FilePriority, TorrentEntry } from '../session/torrent-entry.js';
import { type AddBody, addTorrent } from './add.js';
import {
  type FieldContext,
  fieldsObject,
  knownFields,
  SPEED_K,
  sessionStats,
  torrentFields,
} from './transmission-fields.js';

/**
 * Transmission's RPC (its rpc-spec, version 17) over one session, at /transmission/rpc on the
 * API's port: the tools that speak it (transmission-remote, its web client and phone remotes,
 * Sonarr, Radarr, FlexGet through `transmission-rpc`) drive swarmshare's daemon. A façade: it maps
 * Transmission's names, numbers and units onto the session's calls and adds no behaviour of its
 * own (docs/daemon.md lists what is served).
 *
 * Conventions kept: a request without the current `X-Transmission-Session-Id` gets 409 with the
 * id (a page on another site cannot forge the header); basic auth as the rest of the API; replies
 * `{"result": "success" | error text, "arguments": {...}, "tag": n}`.
 */

export const RPC_VERSION = 17;
/** The oldest protocol whose clients we answer as they expect (Transmission 4 says 14). */
export const RPC_VERSION_MINIMUM = 14;
/** Transmission 4.0's rpc-version-semver. */
export const RPC_VERSION_SEMVER = '5.3.0';
export const SESSION_ID_HEADER = 'x-transmission-session-id';
/** `recently-active` means within this long (Transmission: 60 s). */
export const RECENTLY_ACTIVE_MS = 60_000;
/** Largest request: a .torrent of MAX_TORRENT_BYTES in base64, and room for the rest. */
const MAX_RPC_BODY = Math.ceil((MAX_TORRENT_BYTES * 4) / 3) + 64 * 1024;
/** A port test dials our own listener within this long. */
const PORT_TEST_MS = 3000;
/** What a limit set while disabled is until set (Transmission's default, kB/s). */
const DEFAULT_LIMIT_K = 100;

type Args = Record<string, unknown>;
type Method = (a: Args) => Promise<Args>;

/** An error answered as the `result` string. */
class RpcError extends Error {}

export interface RpcOpts {
  metadataTimeoutMs?: number;
}

export function registerTransmissionRpc(app: FastifyInstance, session: Session, opts: RpcOpts): void {
  const sessionId = randomBytes(24).toString('base64url');
  const rpc = new TransmissionRpc(session, opts);
  app.addHook('onClose', async () => rpc.close());
  app.register(async (scope) => {
    // Bodies are read raw and parsed here: a client's content type varies, and bad JSON is answered
    // in the RPC's own form.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: MAX_RPC_BODY }, (_r, body, done) =>
      done(null, body),
    );
    const handler = async (req: FastifyRequest, reply: FastifyReply) => {
      reply.header('x-transmission-session-id', sessionId);
      if (req.headers[SESSION_ID_HEADER] !== sessionId)
        return reply
          .status(409)
          .type('text/html; charset=utf-8')
          .send(`<h1>409: Conflict</h1><p>Your request had an invalid session-id header.</p>`);
      if (req.method !== 'POST')
        return reply.status(405).send({ result: 'send a POST with a JSON request', arguments: {} });
      return rpc.answer(Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0), reply);
    };
    for (const url of ['/transmission/rpc', '/transmission/rpc/'])
      scope.route({ method: ['GET', 'POST'], url, schema: { hide: true }, bodyLimit: MAX_RPC_BODY, handler });
  });
}

class TransmissionRpc {
  readonly #s: Session;
  readonly #opts: RpcOpts;
  readonly #ctx: FieldContext;
  /** Limits set while disabled, kB/s, remembered as Transmission does (this run only). */
  readonly #sessionLimits = { down: DEFAULT_LIMIT_K, up: DEFAULT_LIMIT_K };
  /** Each torrent's bytes moved when the RPC started (`current-stats`). */
  readonly #baseline = new Map<string, { down: number; up: number }>();
  /** Torrents' numbers by info hash, and the ones removed lately (`recently-active`). */
  readonly #numbers = new Map<string, number>();
  #removed: { id: number; at: number }[] = [];
  readonly #methods: Record<string, Method>;
  readonly #onAdded = (e: TorrentEntry) => this.#numbers.set(e.id, e.rpcId);
  readonly #onRemoved = (hash: string) => {
    const id = this.#numbers.get(hash);
    this.#numbers.delete(hash);
    const now = this.#s.clock.now();
    this.#removed = this.#removed.filter((r) => now - r.at < RECENTLY_ACTIVE_MS);
    if (id !== undefined) this.#removed.push({ id, at: now });
  };

  constructor(session: Session, opts: RpcOpts) {
    this.#s = session;
    this.#opts = opts;
    this.#ctx = { session, remembered: new Map() };
    for (const e of session.torrents.values()) {
      this.#baseline.set(e.id, { down: e.downloaded, up: e.uploaded });
      this.#numbers.set(e.id, e.rpcId);
    }
    session.on('added', this.#onAdded);
    session.on('removed', this.#onRemoved);
    const each = (f: (e: TorrentEntry) => Promise<unknown>) => async (a: Args) => {
      for (const e of this.#select(a.ids, false)) await f(e);
      return {};
    };
    this.#methods = {
      'session-get': async (a) => this.#sessionGet(a),
      'session-set': async (a) => this.#sessionSet(a),
      'session-stats': async () => sessionStats(this.#s, this.#baseline),
      'torrent-add': async (a) => this.#torrentAdd(a),
      'torrent-get': async (a) => this.#torrentGet(a),
      'torrent-set': async (a) => this.#torrentSet(a),
      'torrent-start': each((e) => this.#s.resume(e.id)),
      'torrent-start-now': each((e) => this.#s.resume(e.id)),
      'torrent-stop': each((e) => this.#s.pause(e.id)),
      'torrent-verify': each((e) => this.#s.recheck(e.id)),
      'torrent-remove': async (a) => {
        const del = optBool(a, 'delete-local-data') ?? false;
        for (const e of this.#select(a.ids, false)) await this.#s.remove(e.id, del);
        return {};
      },
      'free-space': async (a) => freeSpace(a),
      'port-test': async () => ({ 'port-is-open': await this.#portTest() }),
    };
  }

  close(): void {
    this.#s.off('added', this.#onAdded);
    this.#s.off('removed', this.#onRemoved);
  }

  async answer(body: Buffer, reply: FastifyReply): Promise<FastifyReply> {
    let req: { method?: unknown; arguments?: unknown; tag?: unknown };
    try {
      req = JSON.parse(body.toString('utf8'));
      if (typeof req !== 'object' || req === null || Array.isArray(req)) throw new Error('not an object');
    } catch {
      return reply.status(400).send({ result: 'the request is not a JSON object', arguments: {} });
    }
    const tag = typeof req.tag === 'number' ? { tag: req.tag } : {};
    const send = (result: string, args: Args) => reply.send({ result, arguments: args, ...tag });
    const method = typeof req.method === 'string' ? this.#methods[req.method] : undefined;
    if (method === undefined || !Object.hasOwn(this.#methods, req.method as string))
      return send('method name not recognized', {});
    const a = req.arguments ?? {};
    if (typeof a !== 'object' || a === null || Array.isArray(a))
      return send('arguments must be an object', {});
    try {
      return send('success', await method(a as Args));
    } catch (e) {
      if (e instanceof RpcError || isSwarmshareError(e)) return send((e as Error).message, {});
      throw e;
    }
  }

  /** The torrents `ids` names: absent, every one; a number, a hash, a list of both, `recently-active`. */
  #select(ids: unknown, recentAllowed: boolean): TorrentEntry[] {
    const all = [...this.#s.torrents.values()].sort((a, b) => a.rpcId - b.rpcId);
    if (ids === undefined) return all;
    if (ids === 'recently-active') {
      if (!recentAllowed) throw new RpcError('recently-active is for torrent-get only');
      const since = this.#s.clock.now() - RECENTLY_ACTIVE_MS;
      return all.filter((e) => e.activityAt >= since || e.addedAt >= since || e.checking);
    }
    const list = Array.isArray(ids) ? ids : [ids];
    const numbers = new Set<number>();
    const hashes = new Set<string>();
    for (const x of list) {
      if (typeof x === 'number' && Number.isSafeInteger(x)) numbers.add(x);
      else if (typeof x === 'string' && /^[0-9a-fA-F]{40}$/.test(x)) hashes.add(x.toLowerCase());
      else throw new RpcError(`invalid id ${JSON.stringify(x)}: give torrent ids or 40-hex hashes`);
    }
    return all.filter((e) => numbers.has(e.rpcId) || hashes.has(e.id));
  }

  async #torrentGet(a: Args): Promise<Args> {
    const fields = a.fields;
    if (!Array.isArray(fields) || !fields.every((f) => typeof f === 'string'))
      throw new RpcError('no fields specified: give fields as a list of names');
    const known = knownFields(fields as string[]);
    const torrents = this.#select(a.ids, true);
    const format = a.format ?? 'objects';
    if (format !== 'objects' && format !== 'table') throw new RpcError('format is "objects" or "table"');
    const out: Args =
      format === 'table'
        ? { torrents: [known, ...torrents.map((e) => torrentFields(e, known, this.#ctx))] }
        : { torrents: torrents.map((e) => fieldsObject(e, known, this.#ctx)) };
    if (a.ids === 'recently-active') {
      const since = this.#s.clock.now() - RECENTLY_ACTIVE_MS;
      out.removed = this.#removed.filter((r) => r.at >= since).map((r) => r.id);
    }
    return out;
  }

  async #torrentAdd(a: Args): Promise<Args> {
    const downloadDir = optString(a, 'download-dir');
    if (downloadDir !== undefined && !isAbsolute(downloadDir))
      throw new RpcError('download directory path is not absolute');
    const paused = optBool(a, 'paused') ?? false;
    const labels = optLabels(a);
    let body: AddBody;
    if (typeof a.metainfo === 'string') {
      if (!/^[A-Za-z0-9+/\r\n]*={0,2}\s*$/.test(a.metainfo)) throw new RpcError('metainfo is not base64');
      body = { torrentBytes: Buffer.from(a.metainfo, 'base64') };
    } else if (typeof a.filename === 'string') {
      const f = a.filename.trim();
      if (isMagnet(f)) body = { magnet: f };
      else if (/^https?:\/\//i.test(f)) body = { url: f };
      else body = { torrentBytes: await readTorrentFile(f) };
    } else throw new RpcError('no filename or metainfo specified');
    const choices = fileChoices(a, Number.MAX_SAFE_INTEGER);
    const { entry, created } = await addTorrent(
      this.#s,
      { ...body, paused: paused || choices.length > 0, downloadDir },
      this.#opts.metadataTimeoutMs,
    );
    const brief = { id: entry.rpcId, name: entry.meta.name, hashString: entry.id };
    if (!created) return { 'torrent-duplicate': brief };
    if (labels !== undefined) this.#s.setLabels(entry.id, labels);
    if (choices.length > 0) {
      await this.#s.setFiles(entry.id, choices).catch(async (e) => {
        await this.#s.remove(entry.id, false);
        throw e;
      });
      if (!paused) await this.#s.resume(entry.id);
    }
    return { 'torrent-added': brief };
  }

  async #torrentSet(a: Args): Promise<Args> {
    const labels = optLabels(a);
    const downLimited = optBool(a, 'downloadLimited');
    const upLimited = optBool(a, 'uploadLimited');
    const down = optLimit(a, 'downloadLimit');
    const up = optLimit(a, 'uploadLimit');
    for (const e of this.#select(a.ids, false)) {
      const choices = fileChoices(a, e.meta.files.length);
      if (choices.length > 0) await this.#s.setFiles(e.id, choices);
      if (labels !== undefined) this.#s.setLabels(e.id, labels);
      const mem = this.#ctx.remembered.get(e.id) ?? { down: DEFAULT_LIMIT_K, up: DEFAULT_LIMIT_K };
      const next = (
        limited: boolean | undefined,
        value: number | undefined,
        now: number | null,
        dir: 'down' | 'up',
      ) => {
        if (value !== undefined) mem[dir] = value;
        const on = limited ?? now !== null;
        if (!on && now !== null && value === undefined) mem[dir] = Math.round(now / SPEED_K);
        return on ? mem[dir] * SPEED_K : null;
      };
      const limits = {
        downloadLimit: next(downLimited, down, e.downloadLimit, 'down'),
        uploadLimit: next(upLimited, up, e.uploadLimit, 'up'),
      };
      this.#ctx.remembered.set(e.id, mem);
      if (downLimited !== undefined || upLimited !== undefined || down !== undefined || up !== undefined)
        this.#s.setTorrentLimits(e.id, limits);
    }
    return {};
  }

  #sessionGet(a: Args): Args {
    const s = this.#s;
    const st = s.settings;
    const k = (v: number | null, mem: number) => (v === null ? mem : Math.round(v / SPEED_K));
    const all: Args = {
      version: `swarmshare ${s.version}`,
      'rpc-version': RPC_VERSION,
      'rpc-version-minimum': RPC_VERSION_MINIMUM,
      'rpc-version-semver': RPC_VERSION_SEMVER,
      'session-id': undefined,
      'download-dir': st.downloadDir,
      'speed-limit-down': k(st.downloadLimit, this.#sessionLimits.down),
      'speed-limit-down-enabled': st.downloadLimit !== null,
      'speed-limit-up': k(st.uploadLimit, this.#sessionLimits.up),
      'speed-limit-up-enabled': st.uploadLimit !== null,
      'alt-speed-enabled': false,
      'download-queue-enabled': true,
      'download-queue-size': st.maxActive,
      'seed-queue-enabled': false,
      'peer-port': s.port,
      'peer-limit-global': s.opts.maxConnectionsTotal ?? 200,
      'peer-limit-per-torrent': s.opts.maxConnections ?? 0,
      encryption: { require: 'required', prefer: 'preferred', disable: 'tolerated' }[
        s.opts.encryption ?? 'prefer'
      ],
      'dht-enabled': s.opts.dht !== undefined,
      'pex-enabled': true,
      'lpd-enabled': false,
      'utp-enabled': false,
      'port-forwarding-enabled': false,
      'rename-partial-files': true,
      'incomplete-dir-enabled': false,
      'start-added-torrents': true,
      'config-dir': s.opts.state?.dir ?? '',
      units: {
        'speed-units': ['kB/s', 'MB/s', 'GB/s', 'TB/s'],
        'speed-bytes': SPEED_K,
        'size-units': ['kB', 'MB', 'GB', 'TB'],
        'size-bytes': 1000,
        'memory-units': ['KiB', 'MiB', 'GiB', 'TiB'],
        'memory-bytes': 1024,
      },
    };
    delete all['session-id'];
    const fields = a.fields;
    if (!Array.isArray(fields)) return all;
    return Object.fromEntries(Object.entries(all).filter(([key]) => fields.includes(key)));
  }

  async #sessionSet(a: Args): Promise<Args> {
    const dir = optString(a, 'download-dir');
    if (dir !== undefined && !isAbsolute(dir)) throw new RpcError('download directory path is not absolute');
    const queue = a['download-queue-size'];
    if (queue !== undefined && (!Number.isSafeInteger(queue) || (queue as number) < 1))
      throw new RpcError('download-queue-size must be a whole number of at least 1');
    const st = this.#s.settings;
    const mem = this.#sessionLimits;
    const limit = (dir: 'down' | 'up', now: number | null): number | null => {
      const value = optLimit(a, `speed-limit-${dir}`);
      const enabled = optBool(a, `speed-limit-${dir}-enabled`);
      if (value !== undefined) mem[dir] = value;
      else if (enabled === false && now !== null) mem[dir] = Math.round(now / SPEED_K);
      return (enabled ?? now !== null) ? mem[dir] * SPEED_K : null;
    };
    await this.#s.setSettings({
      downloadLimit: limit('down', st.downloadLimit),
      uploadLimit: limit('up', st.uploadLimit),
      maxActive: queue as number | undefined,
      downloadDir: dir,
    });
    return {};
  }

  /** Whether our peer listener answers at the address we announce (not a test of the router's NAT). */
  #portTest(): Promise<boolean> {
    const host = this.#s.opts.host === '0.0.0.0' ? '127.0.0.1' : this.#s.opts.host;
    return new Promise((done) => {
      const sock = connect({ host, port: this.#s.port, timeout: PORT_TEST_MS });
      const end = (ok: boolean) => {
        sock.destroy();
        done(ok);
      };
      sock.once('connect', () => end(true));
      sock.once('timeout', () => end(false));
      sock.once('error', () => end(false));
    });
  }
}

function optString(a: Args, k: string): string | undefined {
  const v = a[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') throw new RpcError(`${k} must be a non-empty string`);
  return v;
}

function optBool(a: Args, k: string): boolean | undefined {
  const v = a[k];
  if (v === undefined) return undefined;
  // Transmission's older clients send 0/1 for booleans.
  if (v === true || v === 1) return true;
  if (v === false || v === 0) return false;
  throw new RpcError(`${k} must be true or false`);
}

/** A speed in kB/s. */
function optLimit(a: Args, k: string): number | undefined {
  const v = a[k];
  if (v === undefined) return undefined;
  if (!Number.isSafeInteger(v) || (v as number) < 0 || (v as number) > 1e9)
    throw new RpcError(`${k} must be a whole number of kB/s`);
  return v as number;
}

function optLabels(a: Args): string[] | undefined {
  const v = a.labels;
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length > 100 || !v.every((l) => typeof l === 'string' && l.length <= 200))
    throw new RpcError('labels must be a list of strings');
  // Transmission forbids commas in labels (its own lists are comma-separated).
  if (v.some((l) => l.includes(','))) throw new RpcError('labels cannot contain commas');
  return v as string[];
}

/** files-wanted, files-unwanted, priority-high|normal|low as the session's file choices (empty list: every file). */
function fileChoices(
  a: Args,
  fileCount: number,
): { index: number; wanted?: boolean; priority?: FilePriority }[] {
  const out = new Map<number, { index: number; wanted?: boolean; priority?: FilePriority }>();
  const take = (key: string, set: (c: { wanted?: boolean; priority?: FilePriority }) => void) => {
    const v = a[key];
    if (v === undefined) return;
    if (!Array.isArray(v) || !v.every((i) => Number.isSafeInteger(i) && i >= 0))
      throw new RpcError(`${key} must be a list of file indexes`);
    const indexes = v.length === 0 && fileCount < Number.MAX_SAFE_INTEGER ? [...Array(fileCount).keys()] : v;
    for (const index of indexes as number[]) {
      const c = out.get(index) ?? { index };
      set(c);
      out.set(index, c);
    }
  };
  take('files-wanted', (c) => {
    c.wanted = true;
  });
  take('files-unwanted', (c) => {
    c.wanted = false;
  });
  for (const p of ['high', 'normal', 'low'] as const)
    take(`priority-${p}`, (c) => {
      c.priority = p;
    });
  return [...out.values()];
}

/** A .torrent named by path on the daemon's machine (as Transmission's `filename`). */
async function readTorrentFile(path: string): Promise<Uint8Array> {
  const p = resolve(path);
  try {
    const st = await stat(p);
    if (!st.isFile()) throw new Error('not a file');
    if (st.size > MAX_TORRENT_BYTES) throw new Error(`larger than ${MAX_TORRENT_BYTES} bytes`);
    return await readFile(p);
  } catch (e) {
    throw new RpcError(`cannot read ${p}: ${(e as Error).message}`);
  }
}

async function freeSpace(a: Args): Promise<Args> {
  const path = optString(a, 'path');
  if (path === undefined) throw new RpcError('free-space needs a path');
  try {
    const st = await statfs(path);
    return { path, 'size-bytes': st.bavail * st.bsize, total_size: st.blocks * st.bsize };
  } catch (e) {
    throw new RpcError(`${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}
