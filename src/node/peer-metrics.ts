import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Registry } from 'prom-client';
import type { PeerNode } from './peer-node.js';

/**
 * A running peer's Prometheus metrics (`share`/`get --metrics-port N`): bytes up and down (down by
 * source: `peer` or `webseed`), peers
 * connected, pieces verified, pieces that failed their hash. Served at `/metrics` on their own
 * port, bound to the peer's address.
 */
export function peerMetrics(node: PeerNode): Registry {
  const registry = new Registry();
  const registers = [registry];
  new Counter({
    name: 'swarmshare_peer_downloaded_bytes_total',
    help: 'Piece bytes received, by source: peers, or web seeds (BEP 19)',
    labelNames: ['source'],
    registers,
    collect() {
      const web = node.webSeedDownloaded;
      this.reset();
      this.inc({ source: 'peer' }, Math.max(0, node.downloaded - web));
      this.inc({ source: 'webseed' }, web);
    },
  });
  const up = new Counter({
    name: 'swarmshare_peer_uploaded_bytes_total',
    help: 'Piece bytes sent',
    registers,
  });
  const verified = new Counter({
    name: 'swarmshare_peer_pieces_verified_total',
    help: 'Pieces verified and stored',
    registers,
  });
  const failed = new Counter({
    name: 'swarmshare_peer_hash_failures_total',
    help: 'Pieces that failed their SHA-1',
    registers,
  });
  new Gauge({
    name: 'swarmshare_peer_peers',
    help: 'Peer connections open',
    registers,
    collect() {
      this.set(node.connections);
    },
  });
  new Gauge({
    name: 'swarmshare_peer_pieces',
    help: 'Pieces held',
    registers,
    collect() {
      this.set(node.core?.have.count ?? 0);
    },
  });
  node.on('upload', (n) => up.inc(n));
  node.on('piece', () => verified.inc());
  node.on('piece-failed', () => failed.inc());
  return registry;
}

/** Serves `registry` at http://host:port/metrics until closed. */
export function serveMetrics(registry: Registry, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      () => res.writeHead(500).end(),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
