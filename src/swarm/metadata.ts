import bencode from 'bencode';
import { valueEnd } from '../core/bencode-span.js';
import type { Message } from '../wire/messages.js';
import { bencodedDict, METADATA_PIECE } from './extensions.js';

/**
 * Fetching a torrent's info dictionary from a peer (BEP 9), pure: the size a peer announced, the
 * pieces asked and received in order, and the verdict once all are in. One fetch per peer at a
 * time; the driver moves to another peer when this one fails.
 */

/**
 * The largest info dictionary we accept: 16 MiB holds the piece hashes of a torrent of ~800,000
 * pieces (a few terabytes at 4 MiB pieces); a peer announcing more is not believed.
 */
export const MAX_METADATA_SIZE = 16 * 1024 * 1024;

export type MetadataEvent =
  | { kind: 'send'; msg: Message }
  | { kind: 'done'; info: Uint8Array }
  | { kind: 'fail'; reason: string }
  | { kind: 'none' };

export class MetadataFetch {
  readonly #size: number;
  readonly #theirId: number;
  readonly #buf: Uint8Array;
  #next = 0;
  readonly #pieces: number;

  /** From the peer's extension handshake: its ut_metadata id and metadata_size. */
  constructor(theirId: number, size: number) {
    this.#theirId = theirId;
    this.#size = size;
    this.#pieces = Math.ceil(size / METADATA_PIECE);
    this.#buf = new Uint8Array(size);
  }

  /** Why a peer's handshake cannot start a fetch, or null. */
  static refuse(theirId: number, size: unknown): string | null {
    if (theirId === 0) return 'the peer does not serve metadata (no ut_metadata)';
    if (typeof size !== 'number' || !Number.isInteger(size) || size <= 0)
      return 'the peer gave no metadata_size';
    if (size > MAX_METADATA_SIZE)
      return `the peer says the metadata is ${size} bytes, over ${MAX_METADATA_SIZE}`;
    return null;
  }

  /** The first request. */
  start(): Message {
    return this.#request(0);
  }

  #request(piece: number): Message {
    return { type: 'extended', ext: this.#theirId, payload: bencode.encode({ msg_type: 0, piece }) };
  }

  /** A ut_metadata message from the peer (sent to our id): the next request, the result, or a failure. */
  receive(payload: Uint8Array): MetadataEvent {
    // The dictionary comes first; the piece's bytes follow it.
    let end: number;
    try {
      end = valueEnd(payload);
    } catch {
      return { kind: 'fail', reason: 'an unreadable ut_metadata message' };
    }
    const d = bencodedDict(payload.subarray(0, end));
    if (d === null) return { kind: 'fail', reason: 'an unreadable ut_metadata message' };
    if (d.msg_type === 2)
      return { kind: 'fail', reason: `the peer rejected metadata piece ${String(d.piece)}` };
    if (d.msg_type !== 1) return { kind: 'none' };
    if (d.piece !== this.#next)
      return { kind: 'fail', reason: `metadata piece ${String(d.piece)} not asked for` };
    const data = payload.subarray(end);
    const want = Math.min(METADATA_PIECE, this.#size - this.#next * METADATA_PIECE);
    if (data.length !== want)
      return { kind: 'fail', reason: `metadata piece ${this.#next} has ${data.length} bytes, not ${want}` };
    this.#buf.set(data, this.#next * METADATA_PIECE);
    this.#next++;
    if (this.#next < this.#pieces) return { kind: 'send', msg: this.#request(this.#next) };
    return { kind: 'done', info: this.#buf };
  }
}
