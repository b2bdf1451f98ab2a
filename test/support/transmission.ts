import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, type Started, start } from './proc.js';

/**
 * Debian's transmission-daemon in the foreground, its config and downloads under `dir`, nothing
 * leaving loopback (no DHT, LPD, PEX, uTP, port mapping), peers on 127.0.0.2, its RPC on
 * 127.0.0.1 without auth. Stopped with the other processes a test started (stopAll).
 */
export async function startTransmission(
  dir: string,
): Promise<{ daemon: Started; rpc: number; peerPort: number; downloads: string }> {
  const cfg = join(dir, 'cfg');
  const downloads = join(dir, 'tr-dl');
  await mkdir(cfg, { recursive: true });
  await mkdir(downloads, { recursive: true });
  const rpc = await freePort();
  const peerPort = await freePort('127.0.0.2');
  await writeFile(
    join(cfg, 'settings.json'),
    JSON.stringify({
      'bind-address-ipv4': '127.0.0.2',
      'bind-address-ipv6': '::1',
      'peer-port': peerPort,
      'peer-port-random-on-start': false,
      'rpc-port': rpc,
      'rpc-bind-address': '127.0.0.1',
      'rpc-authentication-required': false,
      'rpc-whitelist': '127.0.0.1',
      'rpc-whitelist-enabled': true,
      'dht-enabled': false,
      'lpd-enabled': false,
      'pex-enabled': false,
      'utp-enabled': false,
      'port-forwarding-enabled': false,
      'download-dir': downloads,
      'incomplete-dir-enabled': false,
      'speed-limit-up-enabled': false,
      'speed-limit-down-enabled': false,
      'rename-partial-files': false,
    }),
  );
  return { daemon: start('transmission-daemon', ['-f', '-g', cfg]), rpc, peerPort, downloads };
}
