import { EventEmitter } from 'node:events';
import { resolve } from 'node:path';
import { Bitfield } from '../core/bitfield.js';
import type { Cancel, Clock, Timers } from '../core/deps.js';
import { SwarmshareError } from '../core/errors.js';
import { type Metainfo, parseTorrent } from '../core/metainfo.js';
import { AdjustablePacer, bothPacers } from '../core/token-bucket.js';
import { SharedListener } from '../net/shared-listener.js';
import { nodeHasher, systemClock, systemTimers } from '../net/system.js';
import { UdpTrackerSocket } from '../net/udp-tracker-socket.js';
import { MAX_CONNECTIONS, type PeerDht, PeerNode } from '../node/peer-node.js';
import type { PeerNodeOpts } from '../node/peer-options.js';
import type { EncryptionMode } from '../wire/mse.js';
import { activeSet, DEFAULT_MAX_ACTIVE, DEFAULT_MAX_CONNECTIONS_TOTAL } from './queue.js';
import { mergeSaved, numberTorrents, type SessionSettings } from './settings.js';
import type { StateStore, StoredTorrent } from './state-store.js';
import {
  type FilePriority,
  PRIORITY,
  sampleRates,
  TorrentEntry,
  type TorrentPeerOpts,
} from './torrent-entry.js';

/**
 * A session: many torrents in one process, sharing one TCP listener (an incoming handshake goes
 * to the torrent of its info hash), one DHT node, global rate limits (each torrent's own under
 * them), and a download queue (at most `maxActive` downloads run; seeding takes no slot). Its
 * state lives in a StateStore: each torrent's .torrent and resume data, written every
 * SAVE_EVERY_MS while it changes and at stop, read back at start (files whose sizes and mtimes
 * match are trusted without re-hashing). See docs/daemon.md.
 */

/** Resume data is written this often while a torrent changes (and at stop). */
export const SAVE_EVERY_MS = 30_000;
/** Rates are sampled, and progress events sent, this often. */
export const SAMPLE_MS = 1000;

export interface SessionOpts extends Partial<Omit<SessionSettings, 'downloadDir'>> {
  /** Where torrents and their resume data are kept; without one, nothing outlives the process (`share`, `get`). */
  state?: StateStore;
  /** swarmshare's version, for the API. */
  version?: string;
  /** Where new torrents download unless told otherwise (a saved setting replaces it, unless fixed). */
  downloadDir: string;
  /** Settings given for this run (command-line flags): they win over the saved ones. */
  fixed?: readonly (keyof SessionSettings)[];
  host: string;
  /** TCP port for peers (0 picks one). */
  port: number;
  /** Connections per torrent. */
  maxConnections?: number;
  /** Connections of every torrent together (default DEFAULT_MAX_CONNECTIONS_TOTAL). */
  maxConnectionsTotal?: number;
  dht?: PeerDht;
  minAnnounceIntervalMs?: number;
  log?: (line: string) => void;
  saveEveryMs?: number;
  /** Encrypted connections (MSE/PE), in and out: prefer (default), require, disable. */
  encryption?: EncryptionMode;
  /** Time and timers (default: the system's); tests hand in their own. */
  clock?: Clock;
  timers?: Timers;
}

export interface AddOpts {
  paused?: boolean;
  downloadDir?: string;
  labels?: string[];
  /** How this torrent's peer runs, beyond the session's defaults (not kept across restarts). */
  peer?: TorrentPeerOpts;
}

export interface SessionEvents {
  added: [entry: TorrentEntry];
  state: [entry: TorrentEntry];
  progress: [entries: TorrentEntry[]];
  completed: [entry: TorrentEntry];
  error: [entry: TorrentEntry, message: string];
  removed: [id: string];
  /** An incoming connection closed before it reached a torrent (its reason code). */
  refused: [code: string, remote: string];
}

export type { SessionSettings };

export class Session extends EventEmitter<SessionEvents> {
  readonly opts: SessionOpts;
  readonly listener: SharedListener;
  /** The one UDP socket every torrent's UDP trackers are asked from. */
  readonly udpTrackers: UdpTrackerSocket;
  readonly torrents = new Map<string, TorrentEntry>();
  readonly settings: SessionSettings;
  readonly #down: AdjustablePacer;
  readonly #up: AdjustablePacer;
  readonly clock: Clock;
  readonly #timers: Timers;
  #cancels: Cancel[] = [];
  #stopping = false;
  #nextPosition = 0;
  #nextRpcId = 1;
  readonly startedAt: number;

  constructor(opts: SessionOpts) {
    super();
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
    this.#timers = opts.timers ?? systemTimers;
    this.startedAt = this.clock.now();
    this.listener = new SharedListener(opts.host, (code, remote) => this.emit('refused', code, remote), {
      encryption: opts.encryption,
      admit: (_ip, pending) => this.#connectionRoom.room() - pending.total > 0,
    });
    this.udpTrackers = new UdpTrackerSocket(opts.host);
    this.settings = {
      downloadLimit: opts.downloadLimit ?? null,
      uploadLimit: opts.uploadLimit ?? null,
      maxActive: opts.maxActive ?? DEFAULT_MAX_ACTIVE,
      downloadDir: resolve(opts.downloadDir),
    };
    this.#down = new AdjustablePacer(this.settings.downloadLimit, this.clock.now());
    this.#up = new AdjustablePacer(this.settings.uploadLimit, this.clock.now());
  }

  get version(): string {
    return this.opts.version ?? '0.0.0';
  }

  get port(): number {
    return this.listener.port;
  }

  /** Room under the global connection cap: what every running torrent holds, counted now. */
  readonly #connectionRoom = {
    room: (): number => {
      let held = 0;
      for (const e of this.torrents.values()) held += e.node?.connectionsHeld ?? 0;
      return (this.opts.maxConnectionsTotal ?? DEFAULT_MAX_CONNECTIONS_TOTAL) - held;
    },
  };

  #log(line: string): void {
    this.opts.log?.(line);
  }

  /** Opens the state, listens, brings every saved torrent back as it was. */
  async start(): Promise<void> {
    const state = this.opts.state;
    await state?.open();
    if (state !== undefined) this.#useSaved(await state.loadSettings());
    await this.listener.listen(this.opts.port);
    for (const s of (await state?.loadTorrents()) ?? []) await this.#restore(s);
    this.#nextRpcId = numberTorrents(this.torrents.values());
    this.#cancels.push(this.#timers.every(SAMPLE_MS, () => this.#sample()));
    if (state !== undefined)
      this.#cancels.push(
        this.#timers.every(this.opts.saveEveryMs ?? SAVE_EVERY_MS, () => void this.save(false)),
      );
    this.#reconcile();
  }

  async #restore(s: StoredTorrent): Promise<void> {
    let meta: Metainfo;
    try {
      meta = parseTorrent(s.torrent, nodeHasher.sha1);
    } catch (e) {
      this.#log(`state: ${s.id}.torrent cannot be read (${(e as Error).message}); skipped`);
      return;
    }
    const r = s.resume;
    if (r === null) this.#log(`state: ${s.problem ?? 'no resume data'}; ${meta.name} will be re-checked`);
    const e = new TorrentEntry(meta, s.torrent, {
      downloadDir: r?.downloadDir ?? this.settings.downloadDir,
      addedAt: r?.addedAt ?? this.clock.now(),
      paused: r?.paused ?? false,
      position: r?.position ?? this.#nextPosition,
    });
    this.#nextPosition = Math.max(this.#nextPosition, e.position + 1);
    e.rpcId = r?.rpcId ?? 0;
    if (r !== null) {
      e.applyResume(r, this.clock.now());
      e.trusted = await e.trustedPieces(r);
      if (e.trusted === null)
        this.#log(`state: ${meta.name}: its files changed since they were recorded; re-checking`);
      else e.have = e.trusted;
    }
    e.dirty = r === null;
    this.torrents.set(e.id, e);
  }

  /** Adds a torrent (its .torrent bytes). An existing one comes back with `created: false`. */
  async add(bytes: Uint8Array, o: AddOpts = {}): Promise<{ entry: TorrentEntry; created: boolean }> {
    let meta: Metainfo;
    try {
      meta = parseTorrent(bytes, nodeHasher.sha1);
    } catch (e) {
      throw new SwarmshareError('ERR_INVALID_TORRENT', `not a usable .torrent: ${(e as Error).message}`);
    }
    return this.addParsed(meta, bytes, o);
  }

  /** Adds a torrent already parsed from `bytes`. */
  async addParsed(
    meta: Metainfo,
    bytes: Uint8Array,
    o: AddOpts = {},
  ): Promise<{ entry: TorrentEntry; created: boolean }> {
    const existing = this.torrents.get(meta.infoHashHex);
    if (existing !== undefined) return { entry: existing, created: false };
    const e = new TorrentEntry(meta, bytes, {
      downloadDir: resolve(o.downloadDir ?? this.settings.downloadDir),
      addedAt: this.clock.now(),
      paused: o.paused === true,
      position: this.#nextPosition++,
      peer: o.peer,
    });
    e.rpcId = this.#nextRpcId++;
    if (o.labels !== undefined) e.labels = o.labels;
    const state = this.opts.state;
    if (state !== undefined) {
      await state.saveTorrent(e.id, bytes);
      await state.saveResume(await e.resumeData());
    }
    this.torrents.set(e.id, e);
    e.dirty = false;
    e.savedTotals = e.uploaded + e.downloaded;
    this.emit('added', e);
    this.#reconcile();
    return { entry: e, created: true };
  }

  get(id: string): TorrentEntry {
    const e = this.torrents.get(id);
    if (e === undefined) throw new SwarmshareError('ERR_UNKNOWN_TORRENT', `no torrent ${id}`);
    return e;
  }

  async pause(id: string): Promise<TorrentEntry> {
    const e = this.get(id);
    e.paused = true;
    e.dirty = true;
    await this.#stopNode(e);
    this.emit('state', e);
    this.#reconcile();
    return e;
  }

  async resume(id: string): Promise<TorrentEntry> {
    const e = this.get(id);
    e.paused = false;
    e.error = null;
    e.dirty = true;
    this.emit('state', e);
    this.#reconcile();
    return e;
  }

  /** Hashes its files again (what is on disk decides what it holds). */
  async recheck(id: string): Promise<TorrentEntry> {
    const e = this.get(id);
    await this.#stopNode(e);
    e.trusted = null;
    e.error = null;
    e.have = new Bitfield(e.meta.pieceCount);
    e.dirty = true;
    this.#reconcile();
    return e;
  }

  async remove(id: string, deleteData: boolean): Promise<void> {
    const e = this.get(id);
    this.torrents.delete(id);
    await this.#stopNode(e);
    await this.opts.state?.remove(id);
    if (deleteData) await e.deleteData();
    this.emit('removed', id);
    this.#reconcile();
  }

  setTorrentLimits(
    id: string,
    l: { downloadLimit?: number | null; uploadLimit?: number | null },
  ): TorrentEntry {
    const e = this.get(id);
    if (l.downloadLimit !== undefined) e.downloadLimit = l.downloadLimit;
    if (l.uploadLimit !== undefined) e.uploadLimit = l.uploadLimit;
    e.limits.down.set(e.downloadLimit, this.clock.now());
    e.limits.up.set(e.uploadLimit, this.clock.now());
    e.dirty = true;
    return e;
  }

  /**
   * File selection: which files are wanted. A running torrent's peer restarts with the new choice
   * (what it verified is kept; a file chosen again that had pieces set aside fetches those again).
   */
  async setFiles(
    id: string,
    files: readonly { index: number; wanted?: boolean; priority?: FilePriority }[],
  ): Promise<TorrentEntry> {
    const e = this.get(id);
    const n = e.meta.files.length;
    const bad = files.filter((f) => f.index >= n).map((f) => f.index);
    if (bad.length > 0)
      throw new SwarmshareError(
        'ERR_VALIDATION',
        `no file ${bad.join(', ')} in ${e.meta.name} (its files are 0 to ${n - 1})`,
      );
    const next = new Set(e.unwanted);
    const pri = new Map(e.priorities);
    for (const f of files) {
      if (f.wanted !== undefined) f.wanted ? next.delete(f.index) : next.add(f.index);
      if (f.priority !== undefined) {
        const p = PRIORITY[f.priority];
        p === 1 ? pri.delete(f.index) : pri.set(f.index, p);
      }
    }
    if (next.size === n) throw new SwarmshareError('ERR_VALIDATION', 'that leaves no file wanted');
    const key = (u: ReadonlySet<number>, p: ReadonlyMap<number, number>) =>
      JSON.stringify([[...u].sort(), [...p].sort()]);
    if (key(next, pri) === key(e.unwanted, e.priorities)) return e;
    if (e.node !== null) await this.#stopNode(e);
    e.unwanted = next;
    e.priorities = pri;
    e.dirty = true;
    this.emit('state', e);
    this.#reconcile();
    return e;
  }

  async setSettings(s: Partial<SessionSettings>): Promise<SessionSettings> {
    Object.assign(this.settings, Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined)));
    this.settings.downloadDir = resolve(this.settings.downloadDir);
    this.#down.set(this.settings.downloadLimit, this.clock.now());
    this.#up.set(this.settings.uploadLimit, this.clock.now());
    await this.opts.state?.saveSettings(this.settings);
    this.#reconcile();
    return this.settings;
  }

  /** Saved settings (settings.json), where valid and not fixed for this run. */
  #useSaved(saved: { settings: Record<string, unknown> | null; problem: string | null }): void {
    if (saved.problem !== null) this.#log(`state: ${saved.problem}; the settings are the defaults`);
    Object.assign(this.settings, mergeSaved(this.settings, saved.settings, this.opts.fixed ?? []));
    this.#down.set(this.settings.downloadLimit, this.clock.now());
    this.#up.set(this.settings.uploadLimit, this.clock.now());
  }

  /** Its labels (Transmission's `labels`), kept in its resume data. */
  setLabels(id: string, labels: readonly string[]): TorrentEntry {
    const e = this.get(id);
    e.labels = [...labels];
    e.dirty = true;
    this.emit('state', e);
    return e;
  }

  /** Whether its peer runs (or is starting). */
  running(e: TorrentEntry): boolean {
    return e.node !== null;
  }

  /** Starts what the queue says should run, stops what should not. */
  #reconcile(): void {
    if (this.#stopping) return;
    const active = activeSet([...this.torrents.values()], this.settings.maxActive);
    for (const e of this.torrents.values()) {
      if (active.has(e.id) && e.node === null) this.#startNode(e);
      else if (!active.has(e.id) && e.node !== null) void this.#stopNode(e).then(() => this.emit('state', e));
    }
  }

  #startNode(e: TorrentEntry): void {
    const opts: PeerNodeOpts = {
      maxConnections: this.opts.maxConnections ?? MAX_CONNECTIONS,
      minAnnounceIntervalMs: this.opts.minAnnounceIntervalMs,
      ...e.peerOpts,
      mode: e.peerOpts.mode ?? 'download',
      unwantedFiles: e.unwanted.size > 0 ? [...e.unwanted] : e.peerOpts.unwantedFiles,
      filePriorities:
        e.priorities.size > 0 ? e.meta.files.map((_, i) => e.priorities.get(i) ?? 1) : undefined,
      meta: e.meta,
      dir: e.downloadDir,
      host: this.opts.host,
      listener: this.listener,
      encryption: this.opts.encryption,
      udpSocket: this.udpTrackers,
      dht: e.meta.private ? undefined : this.opts.dht,
      trustedHave: e.trusted ?? undefined,
      sharedConnections: this.#connectionRoom,
      downBucket: bothPacers(this.#down, e.limits.down),
      upBucket: bothPacers(this.#up, e.limits.up),
    };
    const node = new PeerNode(opts);
    e.node = node;
    e.checking = e.trusted === null;
    this.emit('state', e);
    node.on('error', (err) => this.#log(`${e.meta.name}: ${err.message}`));
    node.on('tracker', (url, peers, error) =>
      e.trackers.set(url, { peers, error: error ?? null, at: this.clock.now() }),
    );
    node.on('piece', () => {
      e.dirty = true;
    });
    e.started = node.start();
    e.started.then(
      () => {
        e.checking = false;
        e.hashChecks = node.hashChecks;
        this.emit('state', e);
      },
      (err: Error) => this.#failed(e, node, err),
    );
    node.done.then(
      () => this.#completed(e),
      (err: Error) => {
        if (e.node === node && !this.#stopping) this.#failed(e, node, err);
      },
    );
  }

  #completed(e: TorrentEntry): void {
    if (e.completedAt === null) {
      e.completedAt = this.clock.now();
      this.emit('completed', e);
    }
    e.dirty = true;
    void this.save(false);
    this.emit('state', e);
    this.#reconcile();
  }

  #failed(e: TorrentEntry, node: PeerNode, err: Error): void {
    if (e.node !== node) return;
    e.checking = false;
    e.error = err.message;
    this.#log(`${e.meta.name}: ${err.message}`);
    void this.#stopNode(e);
    this.emit('error', e, err.message);
    this.emit('state', e);
    this.#reconcile();
  }

  /** Stops a torrent's peer (it leaves its trackers), keeping what it verified and its totals. */
  async #stopNode(e: TorrentEntry): Promise<void> {
    const node = e.node;
    if (node === null) return;
    e.node = null;
    e.checking = false;
    if (node.core !== undefined)
      e.have = new Bitfield(e.meta.pieceCount, Uint8Array.from(node.core.have.bytes));
    e.uploadedBefore += node.uploaded;
    e.downloadedBefore += node.downloaded;
    e.webSeedBefore += node.webSeedDownloaded;
    await node.stop().catch(() => {});
    // The files are as the peer left them: what it verified may be trusted on the next start.
    e.trusted = e.have.count > 0 ? e.have : null;
    e.dirty = true;
  }

  #sample(): void {
    const moving = sampleRates(this.torrents.values(), this.clock.now());
    if (moving.length > 0) this.emit('progress', moving);
  }

  /** Writes the resume data of every torrent that changed, or moved bytes (`all`: every torrent). */
  async save(all: boolean): Promise<void> {
    const state = this.opts.state;
    if (state === undefined) return;
    for (const e of [...this.torrents.values()]) {
      // An idle seed has nothing new to say: no write, no fsync (200 seeds wrote 200 files a round).
      const totals = e.uploaded + e.downloaded;
      if (!all && !e.dirty && totals === e.savedTotals) continue;
      e.dirty = false;
      e.savedTotals = totals;
      try {
        await state.saveResume(await e.resumeData());
      } catch (err) {
        e.dirty = true;
        this.#log(`state: cannot save ${e.meta.name}: ${(err as Error).message}`);
      }
    }
  }

  /** Every torrent leaves its trackers; the state is saved; the listener closes. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    for (const cancel of this.#cancels) cancel();
    await Promise.all([...this.torrents.values()].map((e) => this.#stopNode(e)));
    await this.save(true);
    await this.opts.state?.saveSettings(this.settings);
    await this.listener.close();
    this.udpTrackers.close();
  }
}
