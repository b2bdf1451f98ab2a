import type { Clock } from '../core/deps.js';
import type { CloseCode } from '../core/errors.js';
import type { Message } from '../wire/messages.js';
import type { PexPeer } from '../wire/pex.js';
import type { Command } from './commands.js';
import type { LinkId } from './link.js';
import type { TorrentCore } from './torrent-core.js';

/**
 * The one interpreter of the core's commands (`runCommands`). Every driver (real TCP in node/, the
 * simulated network in sim/, the in-memory pipe of the tests) implements the same interfaces,
 * Transport and BlockStore, with a clock and hooks; the command switch exists once. A driver is
 * one object (`Driver`: a simulated peer is one, so a message touches nothing else), or its parts
 * are composed by `CommandInterpreter`.
 */

/** The links: where the core's messages go. */
export interface Transport {
  /** Our handshake on `link`. */
  handshake(link: LinkId): void;
  send(link: LinkId, msg: Message): void;
  /** The core closed the link (and forgot it); what follows for the peer is the code's (core/errors.ts). */
  close(link: LinkId, code: CloseCode, reason: string): void;
  /** The commands of one event are all handed over (a TCP transport writes its corked sockets). */
  flush?(): void;
}

/** The torrent's bytes as the core needs them: blocks to serve, pieces to check and keep. */
export interface BlockStore {
  /** A block a peer asked for. */
  read(index: number, begin: number, length: number): Uint8Array | Promise<Uint8Array>;
  /** Whether a whole piece hashes right; a right one is stored before the answer (it is served next). */
  verify(index: number, data: Uint8Array): boolean | Promise<boolean>;
}

/** What the driver does beside the three interfaces. */
export interface DriverHooks {
  /** Every piece is verified (and stored). */
  complete?(): void;
  /** An exchange link (opened for a set of pieces) has given what it could. */
  exchangeDone?(link: LinkId): void;
  /** Peers a peer told us of (PEX), validated and bounded: addresses the driver may dial. */
  peers?(peers: readonly PexPeer[], link: LinkId): void;
  /** A read failed (the request goes unanswered; the peer will time it out) or, `fatal`, a store failed. */
  error?(e: Error, fatal: boolean): void;
}

/** Everything the interpreter needs of a driver, in one object (a simulated peer is one itself). */
export interface Driver extends Transport, BlockStore, DriverHooks {
  readonly core: TorrentCore;
  /** The driver's time, ms. */
  now(): number;
}

/**
 * Carries out the core's commands in order. A synchronous answer (a simulated read, a test's hash
 * check) is acted on at once, depth first; an asynchronous one (a file read, a disk write) when it
 * settles.
 */
export function runCommands(d: Driver, cmds: readonly Command[]): void {
  if (cmds.length === 0) return;
  for (const c of cmds) {
    switch (c.type) {
      case 'handshake':
        d.handshake(c.link);
        break;
      case 'send':
        d.send(c.link, c.msg);
        break;
      case 'close':
        d.close(c.link, c.code, c.reason);
        break;
      case 'read':
        read(d, c.link, c.index, c.begin, c.length);
        break;
      case 'verify':
        verify(d, c.index, c.data);
        break;
      case 'complete':
        d.complete?.();
        break;
      case 'exchangeDone':
        d.exchangeDone?.(c.link);
        break;
      case 'peers':
        d.peers?.(c.peers, c.link);
        break;
    }
  }
  d.flush?.();
}

function read(d: Driver, link: LinkId, index: number, begin: number, length: number): void {
  let block: Uint8Array | Promise<Uint8Array>;
  // A failed read frees its place in the send queue all the same (core.blockSent).
  const failed = (e: Error) => {
    d.error?.(e, false);
    runCommands(d, d.core.blockSent(d.now()));
  };
  try {
    block = d.read(index, begin, length);
  } catch (e) {
    failed(e as Error);
    return;
  }
  if (block instanceof Uint8Array) runCommands(d, d.core.readDone(link, index, begin, block, d.now()));
  else block.then((b) => runCommands(d, d.core.readDone(link, index, begin, b, d.now())), failed);
}

function verify(d: Driver, index: number, data: Uint8Array): void {
  const ok = d.verify(index, data);
  if (typeof ok === 'boolean') runCommands(d, d.core.verifyDone(index, ok, d.now()));
  else
    ok.then(
      (v) => runCommands(d, d.core.verifyDone(index, v, d.now())),
      (e: Error) => d.error?.(e, true),
    );
}

/** A driver's parts, given separately. */
export interface DriverDeps {
  transport: Transport;
  store: BlockStore;
  clock: Clock;
  hooks?: DriverHooks;
}

/** The interpreter over a driver given in parts (the real peer, the test pipe). */
export class CommandInterpreter implements Driver {
  readonly core: TorrentCore;
  readonly #transport: Transport;
  readonly #store: BlockStore;
  readonly #clock: Clock;
  readonly #hooks: DriverHooks;

  constructor(core: TorrentCore, deps: DriverDeps) {
    this.core = core;
    this.#transport = deps.transport;
    this.#store = deps.store;
    this.#clock = deps.clock;
    this.#hooks = deps.hooks ?? {};
  }

  handshake(link: LinkId): void {
    this.#transport.handshake(link);
  }
  send(link: LinkId, msg: Message): void {
    this.#transport.send(link, msg);
  }
  close(link: LinkId, code: CloseCode, reason: string): void {
    this.#transport.close(link, code, reason);
  }
  flush(): void {
    this.#transport.flush?.();
  }
  read(index: number, begin: number, length: number): Uint8Array | Promise<Uint8Array> {
    return this.#store.read(index, begin, length);
  }
  verify(index: number, data: Uint8Array): boolean | Promise<boolean> {
    return this.#store.verify(index, data);
  }
  now(): number {
    return this.#clock.now();
  }
  complete(): void {
    this.#hooks.complete?.();
  }
  exchangeDone(link: LinkId): void {
    this.#hooks.exchangeDone?.(link);
  }
  peers(peers: readonly PexPeer[], link: LinkId): void {
    this.#hooks.peers?.(peers, link);
  }
  error(e: Error, fatal: boolean): void {
    this.#hooks.error?.(e, fatal);
  }

  /** Carries out `cmds` in order. */
  run(cmds: readonly Command[]): void {
    runCommands(this, cmds);
  }

  /** The driver's once-a-second tick. */
  tick(): void {
    runCommands(this, this.core.tick(this.#clock.now()));
  }
}
