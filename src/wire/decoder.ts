import {
  HANDSHAKE_LENGTH,
  type Handshake,
  MAX_MESSAGE_LENGTH,
  type Message,
  MessageId,
  PSTR,
  type WireError,
} from './messages.js';

/**
 * Incremental BEP 3 decoder: a named-state machine over a byte queue. Any split of the stream
 * gives the same messages. It never throws on input: a protocol violation comes back as an error
 * value, after which the decoder accepts nothing more (the link is to be closed).
 *
 * States: 'handshake' (68 bytes, only when opened with `handshake: true`) -> 'length' (4-byte
 * prefix) -> 'body' (id + payload) -> 'length' ...; 'failed' is final.
 */
export type DecoderState = 'handshake' | 'length' | 'body' | 'failed';

export interface DecodeResult {
  messages: (Message | Handshake)[];
  error?: WireError;
}

export interface DecoderOpts {
  /** Expect a handshake first (default true). */
  handshake?: boolean;
  /** Longest message accepted (default MAX_MESSAGE_LENGTH). */
  maxMessageLength?: number;
  /**
   * The caller reuses the buffers it pushes (a socket reading into one fixed buffer): bytes left
   * over after a push are copied out, and returned messages are only valid until the next push.
   */
  borrowed?: boolean;
}

const FIXED_LENGTH: Record<number, number> = {
  [MessageId.choke]: 1,
  [MessageId.unchoke]: 1,
  [MessageId.interested]: 1,
  [MessageId.notInterested]: 1,
  [MessageId.have]: 5,
  [MessageId.request]: 13,
  [MessageId.cancel]: 13,
  [MessageId.port]: 3,
  [MessageId.suggest]: 5,
  [MessageId.haveAll]: 1,
  [MessageId.haveNone]: 1,
  [MessageId.reject]: 13,
  [MessageId.allowedFast]: 5,
};

export class Decoder {
  #chunks: Buffer[] = [];
  #head = 0;
  #buffered = 0;
  #state: DecoderState;
  #bodyLength = 0;
  readonly #max: number;
  readonly #borrowed: boolean;

  constructor(opts: DecoderOpts = {}) {
    this.#state = opts.handshake === false ? 'length' : 'handshake';
    this.#max = opts.maxMessageLength ?? MAX_MESSAGE_LENGTH;
    this.#borrowed = opts.borrowed ?? false;
  }

  get state(): DecoderState {
    return this.#state;
  }

  /** Bytes held that are not yet a whole message (bounded by the message limit). */
  get buffered(): number {
    return this.#buffered;
  }

  push(data: Uint8Array): DecodeResult {
    const messages: (Message | Handshake)[] = [];
    if (this.#state === 'failed')
      return { messages, error: { code: 'ERR_BAD_MESSAGE_LENGTH', message: 'decoder already failed' } };
    if (data.length > 0) {
      this.#chunks.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
      this.#buffered += data.length;
    }
    for (;;) {
      if (this.#state === 'handshake') {
        if (this.#buffered >= 1 && this.#peekByte(0) !== PSTR.length) {
          return this.#fail(messages, {
            code: 'ERR_BAD_HANDSHAKE',
            message: 'not a BitTorrent handshake (wrong pstrlen)',
          });
        }
        if (this.#buffered < HANDSHAKE_LENGTH) break;
        const b = this.#take(HANDSHAKE_LENGTH);
        if (b.toString('latin1', 1, 20) !== PSTR) {
          return this.#fail(messages, {
            code: 'ERR_BAD_HANDSHAKE',
            message: 'not a BitTorrent handshake (wrong pstr)',
          });
        }
        messages.push({
          type: 'handshake',
          reserved: b.subarray(20, 28),
          infoHash: b.subarray(28, 48),
          peerId: b.subarray(48, 68),
        });
        this.#state = 'length';
      } else if (this.#state === 'length') {
        if (this.#buffered < 4) break;
        const len = this.#take(4).readUInt32BE(0);
        if (len === 0) {
          messages.push({ type: 'keepAlive' });
          continue;
        }
        if (len > this.#max) {
          return this.#fail(messages, {
            code: 'ERR_MESSAGE_TOO_LARGE',
            message: `message of ${len} bytes exceeds the ${this.#max}-byte limit`,
            received: len,
            expected: this.#max,
          });
        }
        this.#bodyLength = len;
        this.#state = 'body';
      } else if (this.#state === 'body') {
        if (this.#buffered < this.#bodyLength) break;
        const body = this.#take(this.#bodyLength);
        const parsed = parseBody(body);
        if ('code' in parsed) return this.#fail(messages, parsed);
        messages.push(parsed);
        this.#state = 'length';
      } else {
        break;
      }
    }
    if (this.#borrowed && this.#buffered > 0) this.#ownLeftover();
    return { messages };
  }

  /** Copies the unconsumed bytes out of buffers the caller will reuse. */
  #ownLeftover(): void {
    const own = Buffer.allocUnsafe(this.#buffered);
    let at = 0;
    for (const [i, c] of this.#chunks.entries()) {
      const from = i === 0 ? this.#head : 0;
      c.copy(own, at, from);
      at += c.length - from;
    }
    this.#chunks = [own];
    this.#head = 0;
  }

  #fail(messages: (Message | Handshake)[], error: WireError): DecodeResult {
    this.#state = 'failed';
    this.#chunks = [];
    this.#buffered = 0;
    return { messages, error };
  }

  #peekByte(i: number): number {
    return (this.#chunks[0] as Buffer)[this.#head + i] as number;
  }

  /** The next n bytes; a view when they sit in one chunk, else a copy. */
  #take(n: number): Buffer {
    const first = this.#chunks[0] as Buffer;
    let out: Buffer;
    if (first.length - this.#head >= n) {
      out = first.subarray(this.#head, this.#head + n);
      this.#head += n;
      if (this.#head === first.length) {
        this.#chunks.shift();
        this.#head = 0;
      }
    } else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const c = this.#chunks[0] as Buffer;
        const take = Math.min(c.length - this.#head, n - filled);
        c.copy(out, filled, this.#head, this.#head + take);
        filled += take;
        this.#head += take;
        if (this.#head === c.length) {
          this.#chunks.shift();
          this.#head = 0;
        }
      }
    }
    this.#buffered -= n;
    return out;
  }
}

function parseBody(b: Buffer): Message | WireError {
  const id = b[0] as number;
  const fixed = FIXED_LENGTH[id];
  if (fixed !== undefined && b.length !== fixed) {
    return {
      code: 'ERR_BAD_MESSAGE_LENGTH',
      message: `message id ${id} needs length ${fixed}, got ${b.length}`,
      received: b.length,
      expected: fixed,
    };
  }
  switch (id) {
    case MessageId.choke:
      return { type: 'choke' };
    case MessageId.unchoke:
      return { type: 'unchoke' };
    case MessageId.interested:
      return { type: 'interested' };
    case MessageId.notInterested:
      return { type: 'notInterested' };
    case MessageId.have:
      return { type: 'have', index: b.readUInt32BE(1) };
    case MessageId.bitfield:
      return { type: 'bitfield', bitfield: b.subarray(1) };
    case MessageId.request:
    case MessageId.cancel:
    case MessageId.reject:
      return {
        type: id === MessageId.request ? 'request' : id === MessageId.cancel ? 'cancel' : 'reject',
        index: b.readUInt32BE(1),
        begin: b.readUInt32BE(5),
        length: b.readUInt32BE(9),
      };
    case MessageId.piece:
      if (b.length < 9) {
        return {
          code: 'ERR_BAD_MESSAGE_LENGTH',
          message: `piece message of ${b.length} bytes is shorter than 9`,
          received: b.length,
          expected: 9,
        };
      }
      return { type: 'piece', index: b.readUInt32BE(1), begin: b.readUInt32BE(5), block: b.subarray(9) };
    case MessageId.port:
      return { type: 'port', port: b.readUInt16BE(1) };
    case MessageId.suggest:
      return { type: 'suggest', index: b.readUInt32BE(1) };
    case MessageId.haveAll:
      return { type: 'haveAll' };
    case MessageId.haveNone:
      return { type: 'haveNone' };
    case MessageId.allowedFast:
      return { type: 'allowedFast', index: b.readUInt32BE(1) };
    case MessageId.extended:
      if (b.length < 2) {
        return {
          code: 'ERR_BAD_MESSAGE_LENGTH',
          message: 'extended message without its id',
          received: b.length,
          expected: 2,
        };
      }
      return { type: 'extended', ext: b[1] as number, payload: b.subarray(2) };
    default:
      return { type: 'unknown', id, length: b.length - 1 };
  }
}
