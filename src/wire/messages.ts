import type { CloseCode } from '../core/errors.js';
/** BEP 3 peer wire messages. Numbers are message ids on the wire. */

export const PSTR = 'BitTorrent protocol';
/** <pstrlen=19><pstr><reserved: 8><info_hash: 20><peer_id: 20> */
export const HANDSHAKE_LENGTH = 68;
/** All current clients use 16 KiB blocks and close connections that request more (BEP 3). */
export const BLOCK_LENGTH = 16 * 1024;
/** Longest request we serve: one block. */
export const MAX_REQUEST_LENGTH = BLOCK_LENGTH;
/**
 * Longest message accepted: a bitfield for 2^20 pieces (128 KiB + 1) is the largest legitimate
 * message; anything longer is refused before a byte of it is buffered.
 */
export const MAX_MESSAGE_LENGTH = (1 << 17) + 16;

export const MessageId = {
  choke: 0,
  unchoke: 1,
  interested: 2,
  notInterested: 3,
  have: 4,
  bitfield: 5,
  request: 6,
  piece: 7,
  cancel: 8,
  port: 9,
  /** BEP 6, the fast extension: <len=0005><id=13><index>. */
  suggest: 13,
  /** BEP 6: <len=0001><id=14>: the sender holds every piece (instead of a bitfield). */
  haveAll: 14,
  /** BEP 6: <len=0001><id=15>: the sender holds no piece. */
  haveNone: 15,
  /** BEP 6: <len=0013><id=16><index><begin><length>: a request that will not be served. */
  reject: 16,
  /** BEP 6: <len=0005><id=17><index>: the piece may be requested while choked. */
  allowedFast: 17,
  /** BEP 10: <len=0002+X><id=20><extended message id><payload>. */
  extended: 20,
} as const;

/**
 * Our handshake's reserved bytes: bit 0x10 of byte 5 says we speak the extension protocol (BEP 10),
 * bit 0x04 of byte 7 the fast extension (BEP 6).
 */
export const OUR_RESERVED = Uint8Array.from([0, 0, 0, 0, 0, 0x10, 0, 0x04]);

/** Whether a handshake's reserved bytes say the peer speaks the extension protocol (BEP 10). */
export const speaksExtensions = (reserved: Uint8Array) => ((reserved[5] ?? 0) & 0x10) !== 0;

/** Whether a handshake's reserved bytes say the peer speaks the fast extension (BEP 6). */
export const speaksFast = (reserved: Uint8Array) => ((reserved[7] ?? 0) & 0x04) !== 0;

export interface Handshake {
  type: 'handshake';
  reserved: Uint8Array;
  infoHash: Uint8Array;
  peerId: Uint8Array;
}

export type Message =
  | { type: 'keepAlive' }
  | { type: 'choke' }
  | { type: 'unchoke' }
  | { type: 'interested' }
  | { type: 'notInterested' }
  | { type: 'have'; index: number }
  | { type: 'bitfield'; bitfield: Uint8Array }
  | { type: 'request'; index: number; begin: number; length: number }
  | { type: 'piece'; index: number; begin: number; block: Uint8Array }
  | { type: 'cancel'; index: number; begin: number; length: number }
  | { type: 'port'; port: number }
  /** BEP 6 (only between peers that both set the fast bit). */
  | { type: 'suggest'; index: number }
  | { type: 'haveAll' }
  | { type: 'haveNone' }
  | { type: 'reject'; index: number; begin: number; length: number }
  | { type: 'allowedFast'; index: number }
  /** BEP 10: `ext` 0 is the extension handshake; others are the ids a side announced in `m`. */
  | { type: 'extended'; ext: number; payload: Uint8Array }
  /** An id we don't speak (extensions we didn't announce): its payload is skipped. */
  | { type: 'unknown'; id: number; length: number };

/** The decoder's reasons to close a link (consequences: core/errors.ts). */
export type WireErrorCode = Extract<
  CloseCode,
  'ERR_BAD_HANDSHAKE' | 'ERR_MESSAGE_TOO_LARGE' | 'ERR_BAD_MESSAGE_LENGTH'
>;

export interface WireError {
  code: WireErrorCode;
  message: string;
  /** For length errors: what came and what was expected. */
  received?: number;
  expected?: number;
}
