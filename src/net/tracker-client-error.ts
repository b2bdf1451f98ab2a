/** A tracker could not be reached, or refused us, or answered what we cannot use (retried with backoff). */
export class TrackerError extends Error {
  readonly code = 'ERR_TRACKER' as const;
}
