import { Agent } from 'node:http';
import type { Cancel, Timers } from '../core/deps.js';
import type { Metainfo } from '../core/metainfo.js';
import { boundedFetch } from '../net/bounded-fetch.js';
import type { Command } from '../swarm/commands.js';
import type { Transport } from '../swarm/interpreter.js';
import type { LinkId } from '../swarm/link.js';
import type { TorrentCore } from '../swarm/torrent-core.js';
import type { Handshake, Message } from '../wire/messages.js';

/**
 * Web seeds (BEP 19) driven over HTTP: each URL of a torrent's `url-list` is a link of the core
 * whose peer has every piece (its own file missing aside) and never chokes; the core's block
 * requests become HTTP range requests, runs of adjacent blocks coalesced (MAX_RANGE_BYTES; a run
 * across files is one request per file), WEB_SEED_CONNECTIONS at once per seed over kept-alive
 * connections, through the bounded client (size, time and redirects capped). Replies are checked
 * against the range asked. What the core is told comes back as wire messages (`piece`, `reject`,
 * `choke`/`unchoke`), so assembly, verification, blame and the picker are the peers' own.
 *
 * Errors, per seed: 404/410 (or another 4xx) end that file's use of the seed; 416, a short or
 * over-long reply is retried MAX_FILE_RETRIES times, then the file is dropped too; 5xx, timeouts
 * and refused connections back off from BACKOFF_MIN_MS to BACKOFF_MAX_MS (the seed chokes us
 * meanwhile). A piece from a web seed that fails its hash drops the seed for the torrent (the core
 * bans it, as it would a peer), with the reason told.
 */

/** Web seed links are numbered from here (peer links count up from 1). */
export const WEB_SEED_LINK_BASE = 2 ** 30;
/** HTTP requests in flight per web seed (BEP 19 leaves it to the client; browsers use 6). */
export const WEB_SEED_CONNECTIONS = 4;
/** One range request asks for at most this much (adjacent blocks coalesced). */
export const MAX_RANGE_BYTES = 4 * 1024 * 1024;
/** A range request's time limit, redirects and body included. */
export const WEB_SEED_TIMEOUT_MS = 30_000;
/** A failing seed waits this long before it is asked again, doubling up to BACKOFF_MAX_MS. */
export const BACKOFF_MIN_MS = 2000;
export const BACKOFF_MAX_MS = 60_000;
/** Bad replies (416, short, over-long) for one file before the seed is not asked for it again. */
export const MAX_FILE_RETRIES = 3;

interface Block {
  index: number;
  begin: number;
  length: number;
}

/** A range request in flight: its blocks, those the core cancelled, and how to abort it. */
interface Run {
  blocks: Block[];
  cancelled: number;
  abort: AbortController;
}

/** What the web seeds need of their peer: the core's side of a link, time, and where to tell. */
export interface WebSeedHost {
  /** A web seed's link opens with the pieces it can serve (null: every piece). */
  open(link: LinkId, pieces: Uint8Array | null): void;
  /** A message from a web seed to the core. */
  deliver(link: LinkId, msg: Message): void;
  /** A link we end (its requests go back to the picker). */
  drop(link: LinkId): void;
  timers: Timers;
  log(line: string): void;
}

class Seed {
  readonly url: string;
  link: LinkId;
  /** Requests not yet sent over HTTP. */
  queue: Block[] = [];
  /** Range requests in flight. */
  readonly runs = new Set<Run>();
  busy = 0;
  /** Backing off: the core is told we choke, nothing is fetched. */
  choked = false;
  /** A pump is queued for after the current batch of requests. */
  pumpQueued = false;
  backoffMs = 0;
  dead = false;
  readonly deadFiles = new Set<number>();
  readonly retries = new Map<number, number>();
  constructor(url: string, link: LinkId) {
    this.url = url;
    this.link = link;
  }
}

/** A reply we cannot use, and what follows: drop the file, retry it, or back off the whole seed. */
class SeedError extends Error {
  constructor(
    message: string,
    readonly action: 'drop-file' | 'retry' | 'backoff',
    readonly file: number,
  ) {
    super(message);
  }
}

export class WebSeeds implements Transport {
  readonly #meta: Metainfo;
  readonly #host: WebSeedHost;
  readonly #seeds: Seed[];
  readonly #byLink = new Map<LinkId, Seed>();
  readonly #agent = new Agent({ keepAlive: true, maxSockets: WEB_SEED_CONNECTIONS });
  #httpsAgent: Agent | null = null;
  #nextLink = WEB_SEED_LINK_BASE;
  #timers: Cancel[] = [];
  #stopped = false;
  /** Bytes of blocks the web seeds delivered. */
  downloaded = 0;

  constructor(meta: Metainfo, urls: readonly string[], host: WebSeedHost) {
    this.#meta = meta;
    this.#host = host;
    this.#seeds = urls.map((u) => new Seed(u, 0));
  }

  get count(): number {
    return this.#seeds.filter((s) => !s.dead).length;
  }

  owns(link: LinkId): boolean {
    return link >= WEB_SEED_LINK_BASE;
  }

  /** Opens every web seed's link. */
  start(): void {
    if (this.#seeds.some((s) => s.url.startsWith('https:')))
      void import('node:https').then((https) => {
        this.#httpsAgent = new https.Agent({ keepAlive: true, maxSockets: WEB_SEED_CONNECTIONS });
      });
    for (const s of this.#seeds) this.#open(s, null);
  }

  stop(): void {
    this.#stopped = true;
    for (const s of this.#seeds) for (const r of s.runs) r.abort.abort();
    for (const c of this.#timers) c();
    this.#agent.destroy();
    this.#httpsAgent?.destroy();
  }

  #open(s: Seed, pieces: Uint8Array | null): void {
    s.link = this.#nextLink++;
    s.queue = [];
    this.#byLink.set(s.link, s);
    this.#host.open(s.link, pieces);
  }

  // ---- Transport (the core's commands on a web seed's link) ----------------------------

  handshake(_link: LinkId): void {}

  send(link: LinkId, msg: Message): void {
    const s = this.#byLink.get(link);
    if (s === undefined || s.dead) return;
    if (msg.type === 'request') {
      s.queue.push({ index: msg.index, begin: msg.begin, length: msg.length });
      // The core asks for a pipeline's worth at once: pumped after them all, so runs coalesce.
      if (!s.pumpQueued) {
        s.pumpQueued = true;
        queueMicrotask(() => {
          s.pumpQueued = false;
          this.#pump(s);
        });
      }
    } else if (msg.type === 'cancel') {
      // Not yet asked over HTTP: dropped. In flight: it comes anyway (the core forgives it),
      // unless every block of its range was cancelled: then the request is aborted.
      s.queue = s.queue.filter((b) => b.index !== msg.index || b.begin !== msg.begin);
      for (const r of s.runs)
        if (
          r.blocks.some((b) => b.index === msg.index && b.begin === msg.begin) &&
          ++r.cancelled >= r.blocks.length
        )
          r.abort.abort();
    }
  }

  close(link: LinkId, code: string, reason: string): void {
    const s = this.#byLink.get(link);
    this.#byLink.delete(link);
    if (s === undefined || s.link !== link) return;
    s.queue = [];
    for (const r of s.runs) r.abort.abort();
    // Done (we hold every wanted piece) or stopping: nothing to say.
    if (code === 'ERR_NOT_NEEDED' || this.#stopped) return;
    s.dead = true;
    this.#host.log(`web seed ${s.url} dropped: ${reason} (${code})`);
  }

  // ---- fetching -------------------------------------------------------------------------

  #offset(b: Block): number {
    return b.index * this.#meta.pieceLength + b.begin;
  }

  /** Sends runs of adjacent requested blocks as range requests, WEB_SEED_CONNECTIONS at once. */
  #pump(s: Seed): void {
    // Sorted once: what is left after a run is taken stays in order.
    s.queue.sort((a, b) => this.#offset(a) - this.#offset(b));
    while (!this.#stopped && !s.dead && !s.choked && s.busy < WEB_SEED_CONNECTIONS && s.queue.length > 0) {
      const run: Block[] = [s.queue[0] as Block];
      let end = this.#offset(run[0] as Block) + (run[0] as Block).length;
      let bytes = (run[0] as Block).length;
      for (let i = 1; i < s.queue.length; i++) {
        const b = s.queue[i] as Block;
        if (this.#offset(b) !== end || bytes + b.length > MAX_RANGE_BYTES) break;
        run.push(b);
        end += b.length;
        bytes += b.length;
      }
      s.queue = s.queue.slice(run.length);
      s.busy++;
      const link = s.link;
      const r: Run = { blocks: run, cancelled: 0, abort: new AbortController() };
      s.runs.add(r);
      void this.#fetchRun(s, r)
        .then((data) => this.#delivered(s, link, run, data))
        .catch((e: Error) => (r.abort.signal.aborted ? undefined : this.#failed(s, link, run, e)))
        .finally(() => {
          s.runs.delete(r);
          s.busy--;
          this.#pump(s);
        });
    }
  }

  /** The bytes of a run of blocks: one range request per file it spans. */
  async #fetchRun(s: Seed, r: Run): Promise<Buffer> {
    const run = r.blocks;
    const first = run[0] as Block;
    const last = run[run.length - 1] as Block;
    const start = this.#offset(first);
    const end = this.#offset(last) + last.length;
    const parts: Uint8Array[] = [];
    for (const seg of segments(this.#meta, start, end)) {
      if (s.deadFiles.has(seg.file)) throw new SeedError('file dropped', 'drop-file', seg.file);
      parts.push(await this.#fetchRange(s, seg, r.abort.signal));
    }
    return parts.length === 1
      ? Buffer.from(
          (parts[0] as Uint8Array).buffer,
          (parts[0] as Uint8Array).byteOffset,
          (parts[0] as Uint8Array).length,
        )
      : Buffer.concat(parts);
  }

  async #fetchRange(
    s: Seed,
    seg: { file: number; offset: number; length: number },
    signal: AbortSignal,
  ): Promise<Uint8Array> {
    const url = webSeedFileUrl(s.url, this.#meta, seg.file);
    const fileLength = (this.#meta.files[seg.file] as { length: number }).length;
    const agent = url.startsWith('https:') ? (this.#httpsAgent ?? undefined) : this.#agent;
    let r: Awaited<ReturnType<typeof boundedFetch>>;
    try {
      r = await boundedFetch(url, seg.length, {
        headers: { range: `bytes=${seg.offset}-${seg.offset + seg.length - 1}` },
        timeoutMs: WEB_SEED_TIMEOUT_MS,
        agent,
        label: 'web seed',
        signal,
      });
    } catch (e) {
      // Too long a body is a bad reply for this file; anything else (refused, timed out, a
      // redirect loop) is the server's trouble: back off.
      const msg = (e as Error).message;
      throw new SeedError(msg, /more than \d+ bytes/.test(msg) ? 'retry' : 'backoff', seg.file);
    }
    const where = `${url} bytes ${seg.offset}-${seg.offset + seg.length - 1}`;
    if (
      r.status === 404 ||
      r.status === 410 ||
      (r.status >= 400 && r.status < 500 && r.status !== 416 && r.status !== 408 && r.status !== 429)
    )
      throw new SeedError(`HTTP ${r.status} for ${url}`, 'drop-file', seg.file);
    if (r.status === 416) throw new SeedError(`HTTP 416 for ${where}`, 'retry', seg.file);
    if (r.status >= 500 || r.status === 408 || r.status === 429)
      throw new SeedError(`HTTP ${r.status} for ${url}`, 'backoff', seg.file);
    // A server that ignores Range answers 200 with the whole file: usable when that is what we asked.
    const whole = r.status === 200 && seg.offset === 0 && seg.length === fileLength;
    if (r.status !== 206 && !whole)
      throw new SeedError(`HTTP ${r.status} for ${where} (a range was asked)`, 'retry', seg.file);
    if (r.body.length !== seg.length)
      throw new SeedError(`${r.body.length} bytes for ${where} (${seg.length} asked)`, 'retry', seg.file);
    return r.body;
  }

  #delivered(s: Seed, link: LinkId, run: Block[], data: Buffer): void {
    if (this.#stopped || s.link !== link || s.dead) return;
    s.backoffMs = 0;
    let at = 0;
    for (const b of run) {
      this.downloaded += b.length;
      this.#host.deliver(link, {
        type: 'piece',
        index: b.index,
        begin: b.begin,
        block: data.subarray(at, at + b.length),
      });
      at += b.length;
    }
  }

  #failed(s: Seed, link: LinkId, run: Block[], e: Error): void {
    if (this.#stopped || s.link !== link || s.dead) return;
    const err = e instanceof SeedError ? e : new SeedError(e.message, 'backoff', -1);
    // The run's blocks go back to the picker (a fast peer's reject, BEP 6).
    for (const b of run) this.#host.deliver(link, { type: 'reject', ...b });
    if (err.action === 'backoff') {
      this.#backOff(s, err.message);
      return;
    }
    const tries = (s.retries.get(err.file) ?? 0) + 1;
    s.retries.set(err.file, tries);
    if (err.action === 'retry' && tries < MAX_FILE_RETRIES) {
      this.#host.log(`web seed ${s.url}: ${err.message}; retried (${tries} of ${MAX_FILE_RETRIES})`);
      return;
    }
    this.#dropFile(s, err.file, err.message);
  }

  #backOff(s: Seed, why: string): void {
    s.backoffMs = Math.min(BACKOFF_MAX_MS, Math.max(BACKOFF_MIN_MS, s.backoffMs * 2));
    if (!s.choked) {
      s.choked = true;
      this.#host.log(`web seed ${s.url}: ${why}; asked again in ${s.backoffMs / 1000} s`);
      for (const b of s.queue) this.#host.deliver(s.link, { type: 'reject', ...b });
      s.queue = [];
      this.#host.deliver(s.link, { type: 'choke' });
    }
    const link = s.link;
    this.#timers.push(
      this.#host.timers.after(s.backoffMs, () => {
        if (this.#stopped || s.dead || s.link !== link) return;
        s.choked = false;
        this.#host.deliver(link, { type: 'unchoke' });
      }),
    );
  }

  /** The seed is not asked for this file again: its link reopens without the file's pieces. */
  #dropFile(s: Seed, file: number, why: string): void {
    s.deadFiles.add(file);
    const old = s.link;
    this.#byLink.delete(old);
    this.#host.drop(old);
    if (s.deadFiles.size >= this.#meta.files.length) {
      s.dead = true;
      this.#host.log(`web seed ${s.url} dropped: ${why}`);
      return;
    }
    this.#host.log(
      `web seed ${s.url}: ${why}; not asked for ${this.#meta.files[file]?.path.join('/')} again`,
    );
    this.#open(s, piecesWithout(this.#meta, s.deadFiles));
  }
}

/**
 * A file's URL on a web seed (BEP 19): a single-file torrent's is the URL itself (a URL ending in
 * `/` names the folder: the torrent's name is appended); a multi-file torrent's is
 * `URL/<name>/<path>`, each component percent-encoded.
 */
export function webSeedFileUrl(
  url: string,
  meta: Pick<Metainfo, 'name' | 'multiFile' | 'files'>,
  file: number,
): string {
  const enc = encodeURIComponent;
  if (!meta.multiFile) return url.endsWith('/') ? `${url}${enc(meta.name)}` : url;
  const base = url.endsWith('/') ? url : `${url}/`;
  const path = (meta.files[file]?.path ?? []).map(enc).join('/');
  return `${base}${enc(meta.name)}/${path}`;
}

/** The files a byte range of the torrent covers: (file, offset in it, length), in order. */
export function segments(
  meta: Pick<Metainfo, 'files'>,
  start: number,
  end: number,
): { file: number; offset: number; length: number }[] {
  const out: { file: number; offset: number; length: number }[] = [];
  for (const [i, f] of meta.files.entries()) {
    const a = Math.max(start, f.offset);
    const b = Math.min(end, f.offset + f.length);
    if (b > a) out.push({ file: i, offset: a - f.offset, length: b - a });
  }
  return out;
}

/** A bitfield of the pieces that touch none of `files`. */
function piecesWithout(meta: Metainfo, files: ReadonlySet<number>): Uint8Array {
  const bits = new Uint8Array(Math.ceil(meta.pieceCount / 8));
  for (let i = 0; i < meta.pieceCount; i++) {
    const start = i * meta.pieceLength;
    const end = Math.min(meta.length, start + meta.pieceLength);
    if (segments(meta, start, end).every((seg) => !files.has(seg.file)))
      bits[i >>> 3] = (bits[i >>> 3] as number) | (0x80 >>> (i & 7));
  }
  return bits;
}

/** The fast extension's bit (BEP 6): a web seed's link takes rejects, so failed blocks go back at once. */
const FAST_RESERVED = Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0x04]);

/**
 * A peer's web seeds (null when it has none): their links opened on `core()` as peers that have
 * every piece (or all but dropped files') and unchoke us, the core's answers run by `run`.
 */
export function createWebSeeds(o: {
  meta: Metainfo;
  urls: readonly string[];
  core: () => TorrentCore;
  run: (cmds: readonly Command[]) => void;
  now: () => number;
  timers: Timers;
  log: (line: string) => void;
  /** No tracker, DHT or peer will bring peers: the web seeds are the only source. */
  only: boolean;
}): WebSeeds | null {
  if (o.urls.length === 0) return null;
  const policy = o.core().webSeeds;
  policy.only = o.only;
  policy.self = Buffer.from(o.core().opts.peerId).toString('latin1');
  // Peers of our own kind (the same client name and version) take their share of the web seeds.
  policy.kin = policy.self.slice(0, 8);
  const tell = (link: LinkId, msg: Message | Handshake) => o.run(o.core().message(link, msg, o.now()));
  return new WebSeeds(o.meta, o.urls, {
    timers: o.timers,
    log: o.log,
    open: (link, pieces) => {
      const core = o.core();
      o.run(core.addLink(link, false, o.now()));
      const peerId = Buffer.from(`-WS0001-${String(link % 1e12).padStart(12, '0')}`);
      tell(link, { type: 'handshake', reserved: FAST_RESERVED, infoHash: o.meta.infoHash, peerId });
      core.webSeeds.links.add(link);
      tell(link, pieces === null ? { type: 'haveAll' } : { type: 'bitfield', bitfield: pieces });
      tell(link, { type: 'unchoke' });
    },
    deliver: tell,
    drop: (link) => o.core().removeLink(link),
  });
}

/** The core's commands to TCP links, and to web seeds for theirs. */
export function routeTransport(tcp: Transport, web: WebSeeds): Transport {
  return {
    handshake: (l) => (web.owns(l) ? web.handshake(l) : tcp.handshake(l)),
    send: (l, m) => (web.owns(l) ? web.send(l, m) : tcp.send(l, m)),
    close: (l, c, r) => (web.owns(l) ? web.close(l, c, r) : tcp.close(l, c, r)),
    flush: () => tcp.flush?.(),
  };
}
