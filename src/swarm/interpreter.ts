import type { Clock } from '../core/deps.js';
import type { CloseCode } from '../core/errors.js';
import type { Message } from '../wire/messages.js';
import type { Command } from './commands.js';
import type { LinkId } from './link.js';
import type { TorrentCore } from './torrent-core.js';

/**
 * The one interpreter of the core's commands. Every driver (real TCP in node/, the simulated
 * network in sim/, the in-memory pipe of the tests) implements the same three interfaces and
 * hands them here; the command switch exists once. Synchronous answers (a simulated read, a test's
 * hash check) are acted on at once, depth first, in command order; asynchronous ones (a file read,
 * a disk write) when they settle.
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
  /** A read failed (the request goes unanswered; the peer will time it out) or, `fatal`, a store failed. */
  error?(e: Error, fatal: boolean): void;
}

export interface DriverDeps {
  transport: Transport;
  store: BlockStore;
  clock: Clock;
  hooks?: DriverHooks;
}

export class CommandInterpreter {
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

  /** Carries out `cmds` in order. */
  run(cmds: readonly Command[]): void {
    if (cmds.length === 0) return;
    const t = this.#transport;
    for (const c of cmds) {
      switch (c.type) {
        case 'handshake':
          t.handshake(c.link);
          break;
        case 'send':
          t.send(c.link, c.msg);
          break;
        case 'close':
          t.close(c.link, c.code, c.reason);
          break;
        case 'read':
          this.#read(c.link, c.index, c.begin, c.length);
          break;
        case 'verify':
          this.#verify(c.index, c.data);
          break;
        case 'complete':
          this.#hooks.complete?.();
          break;
        case 'exchangeDone':
          this.#hooks.exchangeDone?.(c.link);
          break;
      }
    }
    t.flush?.();
  }

  #read(link: LinkId, index: number, begin: number, length: number): void {
    let block: Uint8Array | Promise<Uint8Array>;
    try {
      block = this.#store.read(index, begin, length);
    } catch (e) {
      this.#hooks.error?.(e as Error, false);
      return;
    }
    if (block instanceof Uint8Array)
      this.run(this.core.readDone(link, index, begin, block, this.#clock.now()));
    else
      block.then(
        (b) => this.run(this.core.readDone(link, index, begin, b, this.#clock.now())),
        (e: Error) => this.#hooks.error?.(e, false),
      );
  }

  #verify(index: number, data: Uint8Array): void {
    const ok = this.#store.verify(index, data);
    if (typeof ok === 'boolean') this.run(this.core.verifyDone(index, ok, this.#clock.now()));
    else
      ok.then(
        (v) => this.run(this.core.verifyDone(index, v, this.#clock.now())),
        (e: Error) => this.#hooks.error?.(e, true),
      );
  }

  /** The driver's once-a-second tick. */
  tick(): void {
    this.run(this.core.tick(this.#clock.now()));
  }
}
