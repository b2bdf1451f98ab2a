import { createHash } from 'node:crypto';
import bencode from 'bencode';

/** A single-file v1 .torrent built straight from its bytes: test input for the tracker tests. */
export function torrentFor(name: string, data: Buffer, pieceLength: number, announce: string) {
  const pieces: Buffer[] = [];
  for (let off = 0; off < data.length; off += pieceLength) {
    pieces.push(
      createHash('sha1')
        .update(data.subarray(off, off + pieceLength))
        .digest(),
    );
  }
  const info = { length: data.length, name, 'piece length': pieceLength, pieces: Buffer.concat(pieces) };
  const infoHash = createHash('sha1').update(bencode.encode(info)).digest();
  return { bytes: Buffer.from(bencode.encode({ announce, info })), infoHash };
}
