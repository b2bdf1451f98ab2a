import bencode from 'bencode';
import type { Message } from '../wire/messages.js';

/**
 * The extension protocol (BEP 10) and metadata exchange (BEP 9), serving side: our extension
 * handshake and the peer's, and answers to a peer's `ut_metadata` requests from the info
 * dictionary we hold. Pure: payloads in, messages out. On a link: extended.ts.
 */

/** The extended message ids we announce in `m` (a peer sends us these ids). */
export const OUR_EXTENSIONS = { ut_metadata: 3, ut_pex: 1 } as const;
/** BEP 9 metadata pieces are 16 KiB. */
export const METADATA_PIECE = 16 * 1024;
/** An extension handshake read at most (real ones are a few hundred bytes). */
export const MAX_EXTENSION_HANDSHAKE = 64 * 1024;
/** A metadata request read at most (a real one is ~25 bytes). */
export const MAX_METADATA_REQUEST = 1024;
/** What we tell peers: our client name and how many requests we queue. */
export const CLIENT_VERSION = 'swarmshare 0.1.0';

/** What a peer told us in its extension handshake. */
export interface PeerExtensions {
  /** The id the peer wants for ut_metadata messages to it (0: it does not speak it). */
  utMetadata: number;
  /** The id the peer wants for ut_pex messages to it (0: it does not speak it). */
  utPex: number;
  /** The info dictionary's size the peer announced (`metadata_size`), when it did. */
  metadataSize: number | null;
  /** The port the peer listens on (`p`), when it said. */
  listenPort: number | null;
}

/** What our extension handshake says. */
export interface OurExtensions {
  /** The info dictionary, when we hold it (`metadata_size`). */
  metadata: Uint8Array | null;
  /** Requests we queue per peer (`reqq`). */
  reqq: number;
  /** Whether we offer ut_pex (not for a private torrent). */
  pex: boolean;
  /** Our listening port (`p`), when we listen. */
  listenPort: number | null;
  /** The address we see the peer at (`yourip`: 4 or 16 bytes), when known. */
  yourIp: Uint8Array | null;
}

/** Our extension handshake: `m`, `v`, `reqq`, and `metadata_size`, `p`, `yourip` when known. */
export function extensionHandshake(o: OurExtensions): Message {
  const m: Record<string, number> = { ut_metadata: OUR_EXTENSIONS.ut_metadata };
  if (o.pex) m.ut_pex = OUR_EXTENSIONS.ut_pex;
  const d: Record<string, unknown> = { m, v: CLIENT_VERSION, reqq: o.reqq };
  if (o.metadata !== null) d.metadata_size = o.metadata.length;
  if (o.listenPort !== null) d.p = o.listenPort;
  if (o.yourIp !== null) d.yourip = o.yourIp;
  return { type: 'extended', ext: 0, payload: bencode.encode(d) };
}

const extensionId = (id: unknown) =>
  typeof id === 'number' && Number.isInteger(id) && id > 0 && id < 256 ? id : 0;

/**
 * A peer's extension handshake, or why it is refused (over MAX_EXTENSION_HANDSHAKE, or not a
 * bencoded dictionary). Fields we cannot use are taken as absent.
 */
export function readExtensionHandshake(payload: Uint8Array): PeerExtensions | string {
  if (payload.length > MAX_EXTENSION_HANDSHAKE)
    return `extension handshake of ${payload.length} bytes, over ${MAX_EXTENSION_HANDSHAKE}`;
  const d = bencodedDict(payload);
  if (d === null) return 'extension handshake is not a bencoded dictionary';
  const { m, metadata_size: size, p } = d;
  const ids = m !== null && typeof m === 'object' ? (m as Record<string, unknown>) : {};
  return {
    utMetadata: extensionId(ids.ut_metadata),
    utPex: extensionId(ids.ut_pex),
    metadataSize: typeof size === 'number' && Number.isSafeInteger(size) ? size : null,
    listenPort: typeof p === 'number' && Number.isInteger(p) && p > 0 && p < 65536 ? p : null,
  };
}

/**
 * A ut_metadata message to us: the answer to send (a piece of `metadata`, or a reject), null when
 * there is nothing to answer (not a request, or the peer has no ut_metadata id), or why the link
 * closes (over MAX_METADATA_REQUEST, or not a bencoded dictionary).
 */
export function answerMetadata(
  payload: Uint8Array,
  metadata: Uint8Array | null,
  peerId: number,
): Message | string | null {
  if (payload.length > MAX_METADATA_REQUEST)
    return `metadata message of ${payload.length} bytes, over ${MAX_METADATA_REQUEST}`;
  const d = bencodedDict(payload);
  if (d === null) return 'metadata message is not a bencoded dictionary';
  const { msg_type: type, piece } = d;
  if (peerId === 0 || type !== 0 || typeof piece !== 'number' || !Number.isInteger(piece)) return null;
  const pieces = metadata === null ? 0 : Math.ceil(metadata.length / METADATA_PIECE);
  if (metadata === null || piece < 0 || piece >= pieces)
    return { type: 'extended', ext: peerId, payload: bencode.encode({ msg_type: 2, piece }) };
  const data = metadata.subarray(piece * METADATA_PIECE, (piece + 1) * METADATA_PIECE);
  const head = bencode.encode({ msg_type: 1, piece, total_size: metadata.length });
  return { type: 'extended', ext: peerId, payload: Buffer.concat([head, data]) };
}

/** `payload` as a bencoded dictionary, or null when it is not one. */
export function bencodedDict(payload: Uint8Array): Record<string, unknown> | null {
  let d: unknown;
  try {
    d = bencode.decode(Buffer.from(payload));
  } catch {
    return null;
  }
  return d !== null && typeof d === 'object' && !Array.isArray(d) ? (d as Record<string, unknown>) : null;
}
