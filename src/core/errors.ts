/**
 * Every error the project raises carries a stable `code`. Code matches on `code`, never on the
 * message text. docs/errors.md is the table of codes and what follows from each one.
 */
export type ErrorCode =
  // Tracker, JSON API and announce
  | 'ERR_BAD_JSON'
  | 'ERR_VALIDATION'
  | 'ERR_BODY_TOO_LARGE'
  | 'ERR_UNSUPPORTED_MEDIA_TYPE'
  | 'ERR_NOT_FOUND'
  | 'ERR_METHOD_NOT_ALLOWED'
  | 'ERR_UNKNOWN_PEER'
  | 'ERR_UNKNOWN_FILE'
  | 'ERR_AMBIGUOUS_FILE'
  | 'ERR_WRONG_KEY'
  | 'ERR_PEER_ID_TAKEN'
  | 'ERR_BAD_CHUNKS'
  | 'ERR_BAD_INFO_HASH'
  | 'ERR_BAD_PEER_ID'
  | 'ERR_BAD_PORT'
  | 'ERR_BAD_IP'
  | 'ERR_BAD_PARAM'
  | 'ERR_SWARM_FULL'
  | 'ERR_TOO_MANY_SWARMS'
  | 'ERR_RATE_LIMITED'
  | 'ERR_INTERNAL';

export class SwarmshareError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'SwarmshareError';
    this.code = code;
    this.details = details;
  }
}

export function isSwarmshareError(e: unknown): e is SwarmshareError {
  return e instanceof SwarmshareError;
}

/** HTTP status for each tracker error code (the JSON API answers with it; /announce always answers 200). */
export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  ERR_BAD_JSON: 400,
  ERR_VALIDATION: 400,
  ERR_BODY_TOO_LARGE: 413,
  ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  ERR_NOT_FOUND: 404,
  ERR_METHOD_NOT_ALLOWED: 405,
  ERR_UNKNOWN_PEER: 404,
  ERR_UNKNOWN_FILE: 404,
  ERR_AMBIGUOUS_FILE: 409,
  ERR_WRONG_KEY: 403,
  ERR_PEER_ID_TAKEN: 409,
  ERR_BAD_CHUNKS: 400,
  ERR_BAD_INFO_HASH: 400,
  ERR_BAD_PEER_ID: 400,
  ERR_BAD_PORT: 400,
  ERR_BAD_IP: 400,
  ERR_BAD_PARAM: 400,
  ERR_SWARM_FULL: 403,
  ERR_TOO_MANY_SWARMS: 403,
  ERR_RATE_LIMITED: 429,
  ERR_INTERNAL: 500,
};
