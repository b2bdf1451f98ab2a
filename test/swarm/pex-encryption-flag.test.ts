import bencode from 'bencode';
import { describe, expect, it } from 'vitest';
import { TorrentCore } from '../../src/swarm/torrent-core.js';
import { OUR_RESERVED } from '../../src/wire/messages.js';
import { decodePex, PEX_CONNECTABLE, PEX_ENCRYPTION } from '../../src/wire/pex.js';
import { rng } from '../support/core-pipe.js';

/**
 * PEX flag 0x01 (BEP 11: the peer takes encryption): the core sends it for a peer whose link began
 * with an encrypted handshake (MSE/PE, told by the driver), and not for one that came plain.
 */
describe('PEX flags for encrypted links', () => {
  it('a peer met over MSE is announced with 0x01; a plain one without it', () => {
    const pieceCount = 4;
    const core = new TorrentCore(
      {
        infoHash: new Uint8Array(20).fill(3),
        peerId: Buffer.from('-SS0001-000000000001'),
        pieceCount,
        pieceLength: 16384,
        length: 4 * 16384,
        pexIntervalMs: 1000,
        sha1: () => new Uint8Array(20),
      },
      rng(1),
      {},
    );
    const peer = (n: number) => Buffer.from(`-XX0001-${String(n).padStart(12, '0')}`);
    const hs = (n: number) => ({
      type: 'handshake' as const,
      reserved: OUR_RESERVED,
      infoHash: new Uint8Array(20).fill(3),
      peerId: peer(n),
    });
    // Link 1 and 2 we dialled (listening addresses known), 1 over MSE; link 3 receives the PEX.
    core.addLink(1, true, 0, undefined, { ip: '10.0.0.1', listenPort: 6881, encrypted: true });
    core.addLink(2, true, 0, undefined, { ip: '10.0.0.2', listenPort: 6881, encrypted: false });
    core.addLink(3, true, 0, undefined, { ip: '10.0.0.3', listenPort: 6881 });
    for (const l of [1, 2, 3]) core.message(l, hs(l), 1);
    core.message(3, { type: 'extended', ext: 0, payload: bencode.encode({ m: { ut_pex: 7 } }) }, 2);
    const sent: Uint8Array[] = [];
    for (let t = 3_000; t <= 130_000 && sent.length === 0; t += 1000) {
      for (const c of core.tick(t)) {
        if (c.type === 'send' && c.link === 3 && c.msg.type === 'extended' && c.msg.ext === 7)
          sent.push(c.msg.payload);
      }
    }
    expect(sent.length).toBe(1);
    const pex = decodePex(sent[0] as Uint8Array);
    if (typeof pex === 'string') throw new Error(pex);
    const flags = new Map(pex.added.map((p) => [p.ip, p.flags]));
    expect(flags.get('10.0.0.1')).toBe(PEX_CONNECTABLE | PEX_ENCRYPTION);
    expect(flags.get('10.0.0.2')).toBe(PEX_CONNECTABLE);
  });
});
