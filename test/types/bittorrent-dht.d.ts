/** The few parts of the bittorrent-dht package (a test-only DHT node) the interop test uses. */
declare module 'bittorrent-dht' {
  import type { EventEmitter } from 'node:events';

  interface DhtOptions {
    bootstrap?: string[] | false;
    host?: string | false;
    nodeId?: Uint8Array;
  }
  export default class DHT extends EventEmitter {
    constructor(opts?: DhtOptions);
    listen(port: number, host: string, cb?: () => void): void;
    address(): { address: string; port: number };
    announce(infoHash: Uint8Array | string, port: number, cb?: (err?: Error) => void): void;
    lookup(infoHash: Uint8Array | string, cb?: (err: Error | null, n: number) => void): void;
    destroy(cb?: () => void): void;
  }
}
