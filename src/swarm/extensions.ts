import bencode from 'bencode';
import type { Message } from '../wire/messages.js';

/**
 * The extension protocol (BEP 10) and metadata exchange (BEP 9), serving side: our extension
 * handshake, and answers to a peer's `ut_metadata` requests from the info dictionary we hold.
 * Pure: payloads in, messages out.
 */

/** The extended message ids we announce in `m` (a peer sends us these ids). */
export const OUR_EXTENSIONS = { ut_metadata: 3 } as const;
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
  /** The info dictionary's size the peer announced (`metadata_size`), when it did. */
  metadataSize: number | null;
}

/** Our extension handshake: `m`, `v`, `reqq`, and `metadata_size` when we hold the metadata. */
export function extensionHandshake(metadata: Uint8Array | null, reqq: number): Message {
  const d: Record<string, unknown> = { m: { ...OUR_EXTENSIONS }, v: CLIENT_VERSION, reqq };
  if (metadata !== null) d.metadata_size = metadata.length;
  return { type: 'extended', ext: 0, payload: bencode.encode(d) };
}

/** A peer's extension handshake, or null when it is not one we can read (ignored, not an offence). */
export function readExtensionHandshake(payload: Uint8Array): PeerExtensions | null {
  const d = payload.length > MAX_EXTENSION_HANDSHAKE ? null : bencodedDict(payload);
  if (d === null) return null;
  const { m, metadata_size: size } = d;
  const id = m !== null && typeof m === 'object' ? (m as Record<string, unknown>).ut_metadata : undefined;
  return {
    utMetadata: typeof id === 'number' && Number.isInteger(id) && id > 0 && id < 256 ? id : 0,
    metadataSize: typeof size === 'number' && Number.isSafeInteger(size) ? size : null,
  };
}

/**
 * A ut_metadata message to us: the answer to send (a piece of `metadata`, or a reject), or null
 * when there is nothing to answer (not a request, unreadable, or the peer has no ut_metadata id).
 */
export function answerMetadata(
  payload: Uint8Array,
  metadata: Uint8Array | null,
  peerId: number,
): Message | null {
  const d = peerId === 0 || payload.length > MAX_METADATA_REQUEST ? null : bencodedDict(payload);
  if (d === null) return null;
  const { msg_type: type, piece } = d;
  if (type !== 0 || typeof piece !== 'number' || !Number.isInteger(piece)) return null;
  const pieces = metadata === null ? 0 : Math.ceil(metadata.length / METADATA_PIECE);
  if (metadata === null || piece < 0 || piece >= pieces)
    return { type: 'extended', ext: peerId, payload: bencode.encode({ msg_type: 2, piece }) };
  const data = metadata.subarray(piece * METADATA_PIECE, (piece + 1) * METADATA_PIECE);
  const head = bencode.encode({ msg_type: 1, piece, total_size: metadata.length });
  return { type: 'extended', ext: peerId, payload: Buffer.concat([head, data]) };
}

/**
 * An extended message on `l`: the peer's extension handshake (remembered on the link), or a
 * metadata request (answered from `metadata`). Returns the message to send back, if any; other
 * extension ids are ignored.
 */
export function onExtended(
  l: { ext: PeerExtensions | null },
  ext: number,
  payload: Uint8Array,
  metadata: Uint8Array | null,
): Message | null {
  if (ext === 0) {
    l.ext = readExtensionHandshake(payload);
    return null;
  }
  if (ext === OUR_EXTENSIONS.ut_metadata) return answerMetadata(payload, metadata, l.ext?.utMetadata ?? 0);
  return null;
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
