import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import bencode from 'bencode';
import { encode, encodeHandshake } from '../../src/wire/encode.js';

/** Ways a scripted peer misbehaves once the other side's handshake arrives. */
export type Behaviour =
  | 'garbage-handshake'
  | 'wrong-info-hash'
  | 'huge-length'
  | 'truncated'
  | 'unknown-ids'
  | 'bitfield-wrong-length'
  | 'bitfield-spare-bits'
  | 'have-out-of-range'
  | 'unsolicited-pieces'
  | 'corrupt-data'
  | 'bad-extension'
  | 'pex-flood';

export interface Hostile {
  server: Server;
  port: number;
  peerId: Buffer;
  close(): Promise<void>;
}

/** A TCP server that speaks just enough BitTorrent to misbehave in one way. */
export function hostilePeer(behaviour: Behaviour, infoHash: Buffer, pieceCount: number): Promise<Hostile> {
  const peerId = Buffer.from(`-EV0001-${randomBytes(6).toString('hex')}`);
  const sockets = new Set<Socket>();
  const hs = (hash = infoHash) => encodeHandshake({ reserved: Buffer.alloc(8), infoHash: hash, peerId });
  // Speaks the extension protocol (BEP 10).
  const extHs = () =>
    encodeHandshake({ reserved: Buffer.from([0, 0, 0, 0, 0, 0x10, 0, 0]), infoHash, peerId });
  const ext = (id: number, payload: Uint8Array) => encode({ type: 'extended', ext: id, payload });
  const fullBitfield = () => {
    const b = Buffer.alloc(Math.ceil(pieceCount / 8));
    for (let i = 0; i < pieceCount; i++) b[i >> 3] = (b[i >> 3] as number) | (0x80 >> (i & 7));
    return b;
  };
  const server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    let got = Buffer.alloc(0);
    let greeted = false;
    sock.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (!greeted && got.length >= 68) {
        greeted = true;
        got = got.subarray(68);
        act(sock);
      }
      if (behaviour === 'corrupt-data' && greeted) {
        // Answer every request with random bytes of the right length.
        while (got.length >= 4) {
          const len = got.readUInt32BE(0);
          if (got.length < 4 + len) break;
          const msg = got.subarray(4, 4 + len);
          got = got.subarray(4 + len);
          if (msg[0] === 6) {
            const index = msg.readUInt32BE(1);
            const begin = msg.readUInt32BE(5);
            const length = msg.readUInt32BE(9);
            sock.write(encode({ type: 'piece', index, begin, block: randomBytes(length) }));
          }
        }
      }
    });
  });
  const act = (sock: Socket) => {
    switch (behaviour) {
      case 'garbage-handshake':
        sock.write(randomBytes(68).fill(0x8f, 0, 1));
        break;
      case 'wrong-info-hash':
        sock.write(hs(Buffer.alloc(20, 0x42)));
        break;
      case 'huge-length':
        sock.write(Buffer.concat([hs(), Buffer.from([0xff, 0xff, 0xff, 0xff, 7])]));
        break;
      case 'truncated':
        sock.end(Buffer.concat([hs(), Buffer.from([0, 0, 0, 100, 5]), Buffer.alloc(10)]));
        break;
      case 'unknown-ids':
        sock.write(hs());
        for (let id = 20; id < 30; id++) sock.write(encode({ type: 'unknown', id, length: 3 }));
        break;
      case 'bitfield-wrong-length':
        sock.write(
          Buffer.concat([
            hs(),
            encode({ type: 'bitfield', bitfield: Buffer.alloc(Math.ceil(pieceCount / 8) + 3, 0xff) }),
          ]),
        );
        break;
      case 'bitfield-spare-bits':
        sock.write(
          Buffer.concat([
            hs(),
            encode({ type: 'bitfield', bitfield: Buffer.alloc(Math.ceil(pieceCount / 8), 0xff) }),
          ]),
        );
        break;
      case 'have-out-of-range':
        sock.write(Buffer.concat([hs(), encode({ type: 'have', index: pieceCount + 5 })]));
        break;
      case 'unsolicited-pieces': {
        const parts = [
          hs(),
          encode({ type: 'bitfield', bitfield: fullBitfield() }),
          encode({ type: 'unchoke' }),
        ];
        for (let i = 0; i < 100; i++)
          parts.push(encode({ type: 'piece', index: 0, begin: 0, block: randomBytes(16384) }));
        sock.write(Buffer.concat(parts));
        break;
      }
      case 'bad-extension':
        // An extension handshake that is not a dictionary.
        sock.write(Buffer.concat([extHs(), ext(0, Buffer.from('i42e'))]));
        break;
      case 'pex-flood': {
        // PEX offered, then 20 PEX messages at once, each naming 50 closed ports on loopback.
        const parts = [extHs(), ext(0, bencode.encode({ m: { ut_pex: 7 } }))];
        for (let k = 0; k < 20; k++) {
          const added = Buffer.alloc(50 * 6);
          for (let i = 0; i < 50; i++) added.set([127, 0, 1 + k, 1 + i, 0, 9], i * 6);
          parts.push(ext(1, bencode.encode({ added })));
        }
        sock.write(Buffer.concat(parts));
        break;
      }
      case 'corrupt-data':
        sock.write(
          Buffer.concat([
            hs(),
            encode({ type: 'bitfield', bitfield: fullBitfield() }),
            encode({ type: 'unchoke' }),
          ]),
        );
        break;
    }
  };
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      resolve({
        server,
        port,
        peerId,
        close: () =>
          new Promise<void>((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      });
    });
  });
}
