/**
 * Finds where a top-level dictionary key's value sits in bencoded bytes, without decoding it.
 * An info hash is the SHA-1 of the `info` value exactly as written in the .torrent, so it must be
 * hashed from the original bytes, not from a re-encoding.
 */

/** Nesting deeper than this is refused: no real torrent nests more than a few levels. */
export const MAX_BENCODE_DEPTH = 64;

export class BencodeSpanError extends Error {}

/** Index just past the bencoded value starting at `at`. */
function skip(b: Uint8Array, at: number, depth: number): number {
  if (depth > MAX_BENCODE_DEPTH) throw new BencodeSpanError('bencode nested too deeply');
  const c = b[at];
  if (c === undefined) throw new BencodeSpanError('bencode truncated');
  if (c === 0x69 /* i */) {
    const end = b.indexOf(0x65, at + 1);
    if (end === -1) throw new BencodeSpanError('bencode integer not terminated');
    return end + 1;
  }
  if (c === 0x6c /* l */ || c === 0x64 /* d */) {
    let i = at + 1;
    while (b[i] !== 0x65 /* e */) {
      if (i >= b.length) throw new BencodeSpanError('bencode list or dictionary not terminated');
      i = skip(b, i, depth + 1);
    }
    return i + 1;
  }
  if (c >= 0x30 && c <= 0x39) {
    const colon = b.indexOf(0x3a, at);
    if (colon === -1 || colon - at > 16) throw new BencodeSpanError('bencode string length malformed');
    let len = 0;
    for (let i = at; i < colon; i++) {
      const d = (b[i] as number) - 0x30;
      if (d < 0 || d > 9) throw new BencodeSpanError('bencode string length malformed');
      len = len * 10 + d;
    }
    const end = colon + 1 + len;
    if (end > b.length) throw new BencodeSpanError('bencode string truncated');
    return end;
  }
  throw new BencodeSpanError(`unexpected byte 0x${c.toString(16)} in bencode`);
}

/** Index just past the bencoded value starting at `at` (throws BencodeSpanError when there is none). */
export function valueEnd(b: Uint8Array, at = 0): number {
  return skip(b, at, 0);
}

/** [start, end) of the value of `key` in the top-level dictionary, or null when absent. */
export function findValueSpan(b: Uint8Array, key: string): [number, number] | null {
  if (b[0] !== 0x64) throw new BencodeSpanError('not a bencoded dictionary');
  const want = new TextEncoder().encode(key);
  let i = 1;
  while (i < b.length && b[i] !== 0x65) {
    const keyEnd = skip(b, i, 1);
    const colon = b.indexOf(0x3a, i);
    const k = b.subarray(colon + 1, keyEnd);
    const valueEnd = skip(b, keyEnd, 1);
    if (k.length === want.length && k.every((x, j) => x === want[j])) return [keyEnd, valueEnd];
    i = valueEnd;
  }
  return null;
}
