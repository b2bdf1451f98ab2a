import { nodeHasher, secureRandomBytes, systemClock, systemRng, systemTimers } from '../net/system.js';
import { TcpLinks } from '../net/tcp-links.js';
import { FsStore } from '../storage/fs-store.js';
import type { PeerNodeDeps } from './peer-options.js';

/** The real collaborators of a running peer: the system's clock, timers, randomness and SHA-1, files on disk. */
export function systemPeerDeps(): PeerNodeDeps {
  return {
    clock: systemClock,
    timers: systemTimers,
    rng: systemRng,
    hasher: nodeHasher,
    randomBytes: secureRandomBytes,
    links: (opts, handlers) => new TcpLinks(opts, handlers),
    openStore: (meta, dir, mode, o) => FsStore.open(meta, dir, mode, o),
  };
}

export const PEER_ID_PREFIX = '-SS0001-';

/** An Azureus-style peer id: our prefix and twelve random digits. */
export function newPeerId(randomBytes: (n: number) => Uint8Array = secureRandomBytes): Uint8Array {
  const id = Buffer.alloc(20);
  id.write(PEER_ID_PREFIX, 0, 'latin1');
  const r = randomBytes(12);
  for (let i = 0; i < 12; i++) id[8 + i] = 0x30 + ((r[i] as number) % 10);
  return id;
}
