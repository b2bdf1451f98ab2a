import type { CloseCode } from '../core/errors.js';
import type { Message } from '../wire/messages.js';
import type { PexPeer } from '../wire/pex.js';
import type { BlockRequest } from './picker.js';

/** A link's id: the driver's name for one connection (small integers reused, in practice). */
export type LinkId = number;

/**
 * What the torrent core asks of its driver, and the events it reports. The driver (real TCP, the
 * simulated network, the in-memory test pipe) carries them out through one interpreter:
 * swarm/interpreter.ts.
 */
export type Command =
  | { type: 'handshake'; link: LinkId }
  | { type: 'send'; link: LinkId; msg: Message }
  /** Close the link; what follows for the peer (ban, redial) is the code's (core/errors.ts). */
  | { type: 'close'; link: LinkId; code: CloseCode; reason: string }
  | { type: 'read'; link: LinkId; index: number; begin: number; length: number }
  | { type: 'verify'; index: number; data: Uint8Array }
  /** A link opened for a set of pieces (an exchange) has nothing more to give: the driver closes it. */
  | { type: 'exchangeDone'; link: LinkId }
  | { type: 'complete' }
  /** Peers the peer on `link` told us of (PEX): the driver may dial them. */
  | { type: 'peers'; link: LinkId; peers: PexPeer[] };

export interface CoreEvents {
  onPieceVerified?(index: number): void;
  onPieceFailed?(index: number, contributors: string[]): void;
  onBlock?(link: LinkId, bytes: number): void;
  onUpload?(link: LinkId, bytes: number): void;
  onRequestBlocks?(link: LinkId, requests: BlockRequest[]): void;
}

/** What a message that needs no answer returns (shared: callers only read it). */
export const NO_COMMANDS: Command[] = Object.freeze([]) as unknown as Command[];
