/**
 * JSON Schemas of the JSON API. The HTTP layer validates every request against them before a
 * handler runs; the same objects document the API (docs/tracker.md).
 */
import type { TrackerLimits } from './limits.js';

/** Printable ASCII without spaces, 1 to 64 characters: ids show up in logs and URLs. */
export const PEER_ID_PATTERN = '^[\\x21-\\x7e]{1,64}$';
/** A file name: 1 to 255 characters, no control characters. */
export const FILE_NAME_PATTERN = '^[^\\x00-\\x1f\\x7f]{1,255}$';
export const INFO_HASH_PATTERN = '^[0-9a-fA-F]{40}$';

export function buildSchemas(limits: TrackerLimits) {
  const chunkList = {
    type: 'array',
    maxItems: limits.maxPieces,
    items: { type: 'integer', minimum: 0, maximum: limits.maxPieces - 1 },
  } as const;
  const bitfield = { type: 'string', maxLength: Math.ceil(limits.maxPieces / 8 / 3) * 4 + 4 } as const;
  const pieces = { type: 'integer', minimum: 0, maximum: limits.maxPieces } as const;
  const size = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const;
  const peerId = { type: 'string', pattern: PEER_ID_PATTERN } as const;
  const key = { type: 'string', minLength: 1, maxLength: 128 } as const;
  const ip = { type: 'string', minLength: 2, maxLength: 45 } as const;
  const port = { type: 'integer', minimum: 1, maximum: 65535 } as const;
  const fileName = { type: 'string', pattern: FILE_NAME_PATTERN } as const;
  const infoHash = { type: 'string', pattern: INFO_HASH_PATTERN } as const;

  /** Optional transfer figures for the dashboard. */
  const stats = {
    type: 'object',
    additionalProperties: false,
    properties: {
      uploaded: size,
      downloaded: size,
      fetching: {
        type: 'array',
        maxItems: 1024,
        items: { type: 'integer', minimum: 0, maximum: limits.maxPieces - 1 },
      },
      from: { type: 'object', maxProperties: 256, propertyNames: infoHash, additionalProperties: size },
    },
  } as const;

  const register = {
    type: 'object',
    required: ['peer_id', 'port'],
    additionalProperties: false,
    properties: {
      peer_id: peerId,
      wire_id: infoHash,
      ip,
      port,
      key,
      files: {
        type: 'object',
        maxProperties: limits.maxFilesPerRegister,
        propertyNames: fileName,
        additionalProperties: {
          anyOf: [
            chunkList,
            {
              type: 'object',
              additionalProperties: false,
              properties: { chunks: chunkList, bitfield, pieces, size, name: fileName, info_hash: infoHash },
            },
          ],
        },
      },
    },
  } as const;

  const update = {
    type: 'object',
    required: ['peer_id', 'key'],
    additionalProperties: false,
    properties: {
      peer_id: peerId,
      key,
      file: fileName,
      info_hash: infoHash,
      chunks: chunkList,
      bitfield,
      pieces,
      size,
      ip,
      port,
      stats,
    },
  } as const;

  const deregister = {
    type: 'object',
    required: ['peer_id', 'key'],
    additionalProperties: false,
    properties: { peer_id: peerId, key },
  } as const;

  const getPeers = {
    type: 'object',
    required: ['file'],
    additionalProperties: false,
    properties: {
      file: fileName,
      exclude: { type: 'string', minLength: 1, maxLength: 200 },
      numwant: { type: 'string', pattern: '^[0-9]{1,6}$' },
      format: { type: 'string', enum: ['list', 'bitfield'] },
    },
  } as const;

  return { register, update, deregister, getPeers };
}
