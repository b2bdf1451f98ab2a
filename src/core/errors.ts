/**
 * The one error model. Every error the project raises carries a stable `code`, and this table
 * says what follows from each: the JSON API's HTTP status, whether a peer link closes, whether the
 * peer is banned, whether we may dial it again. Code matches on `code`, never on message text.
 * docs/errors.md lists exactly these codes with these consequences (a test checks it).
 */

/** Where an error arises. */
export type ErrorLayer = 'tracker' | 'link' | 'storage' | 'metainfo' | 'client';

export interface ErrorInfo {
  layer: ErrorLayer;
  /** Tracker codes: the JSON API's HTTP status (announce and scrape answer a bencoded `failure reason`). */
  http?: number;
  /** Link codes: the peer is banned (its peer id refused, its address never dialled again). */
  ban?: boolean;
  /** Link codes: we may dial the address again (the close says nothing bad of the peer). */
  redial?: boolean;
}

const tracker = (http: number) => ({ layer: 'tracker', http }) as const;
/** A link closes; `redial`: harmless; `ban`: the peer lied. Other link codes stop redialling. */
const link = (redial: boolean, ban = false) => ({ layer: 'link', redial, ban }) as const;

export const ERRORS = {
  // Tracker: the JSON API, announce and scrape.
  ERR_BAD_JSON: tracker(400),
  ERR_VALIDATION: tracker(400),
  ERR_BODY_TOO_LARGE: tracker(413),
  ERR_UNSUPPORTED_MEDIA_TYPE: tracker(415),
  ERR_NOT_FOUND: tracker(404),
  ERR_METHOD_NOT_ALLOWED: tracker(405),
  ERR_UNKNOWN_PEER: tracker(404),
  ERR_UNKNOWN_FILE: tracker(404),
  ERR_AMBIGUOUS_FILE: tracker(409),
  ERR_WRONG_KEY: tracker(403),
  ERR_PEER_ID_TAKEN: tracker(409),
  ERR_BAD_CHUNKS: tracker(400),
  ERR_BAD_INFO_HASH: tracker(400),
  ERR_BAD_PEER_ID: tracker(400),
  ERR_BAD_PORT: tracker(400),
  ERR_BAD_IP: tracker(400),
  ERR_BAD_PARAM: tracker(400),
  ERR_SWARM_FULL: tracker(403),
  ERR_TOO_MANY_SWARMS: tracker(403),
  ERR_RATE_LIMITED: tracker(429),
  ERR_INTERNAL: tracker(500),
  ERR_STORE_UNAVAILABLE: tracker(503),
  // The daemon's API (same HTTP error bodies).
  ERR_UNAUTHORIZED: tracker(401),
  ERR_FORBIDDEN: tracker(403),
  ERR_UNKNOWN_TORRENT: tracker(404),
  ERR_AMBIGUOUS_ID: tracker(409),
  ERR_INVALID_TORRENT: tracker(400),
  ERR_FETCH_FAILED: tracker(502),
  ERR_METADATA_TIMEOUT: tracker(504),
  ERR_NOT_RUNNING: tracker(409),
  // Peer links: the wire decoder's and the torrent core's reasons to close.
  ERR_NOT_NEEDED: link(true),
  ERR_DUPLICATE_PEER: link(true),
  ERR_TIMEOUT: link(true),
  ERR_BAD_HANDSHAKE: link(false),
  ERR_MESSAGE_TOO_LARGE: link(false),
  ERR_BAD_MESSAGE_LENGTH: link(false),
  ERR_WRONG_INFO_HASH: link(false),
  ERR_MSE_HANDSHAKE: link(true),
  ERR_ENCRYPTION_REQUIRED: link(false),
  ERR_SELF_CONNECTION: link(false),
  ERR_PROTOCOL: link(false),
  ERR_BAD_BITFIELD: link(false),
  ERR_BAD_HAVE: link(false),
  ERR_BAD_REQUEST: link(false),
  ERR_REQUEST_FLOOD: link(false),
  ERR_BAD_PIECE: link(false),
  ERR_BAD_EXTENSION: link(false),
  ERR_PEX_FLOOD: link(false),
  ERR_HASH_MISMATCH: link(false, true),
  ERR_BANNED: link(false, true),
  // Storage, metainfo, tracker client.
  ERR_STORAGE: { layer: 'storage' } as const,
  ERR_UNSAFE_PATH: { layer: 'storage' } as const,
  ERR_MISSING_FILE: { layer: 'storage' } as const,
  ERR_BAD_TORRENT: { layer: 'metainfo' } as const,
  ERR_TRACKER: { layer: 'client' } as const,
} as const satisfies Record<string, ErrorInfo>;

export type ErrorCode = keyof typeof ERRORS;
type CodesOf<L extends ErrorLayer> = {
  [K in ErrorCode]: (typeof ERRORS)[K]['layer'] extends L ? K : never;
}[ErrorCode];
/** Codes a tracker answers with. */
export type TrackerErrorCode = CodesOf<'tracker'>;
/** Codes a peer link closes with. */
export type CloseCode = CodesOf<'link'>;
export type StorageErrorCode = CodesOf<'storage'>;

/** Whether we may dial a peer again after its link closed with `code` (false for any offence). */
export function mayRedial(code: CloseCode): boolean {
  return (ERRORS[code] as ErrorInfo).redial === true;
}

/** Whether a close with `code` bans the peer. */
export function bans(code: CloseCode): boolean {
  return (ERRORS[code] as ErrorInfo).ban === true;
}

export class SwarmshareError extends Error {
  readonly code: TrackerErrorCode;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: TrackerErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'SwarmshareError';
    this.code = code;
    this.details = details;
  }
}

/** Why a peer link closed, as an error (an encrypted handshake that failed, say). */
export class LinkError extends Error {
  readonly code: CloseCode;
  constructor(code: CloseCode, message: string) {
    super(message);
    this.name = 'LinkError';
    this.code = code;
  }
}

export function isSwarmshareError(e: unknown): e is SwarmshareError {
  return e instanceof SwarmshareError;
}

/** HTTP status for a tracker error code (the JSON API answers with it; /announce answers 200). */
export function httpStatus(code: TrackerErrorCode): number {
  return (ERRORS[code] as ErrorInfo).http as number;
}
