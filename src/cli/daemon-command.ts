import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { DhtUdp } from '../net/dht-udp.js';
import { MAX_CONNECTIONS } from '../node/peer-node.js';
import { DEFAULT_MAX_CONNECTIONS_TOTAL } from '../session/queue.js';
import type { SessionSettings } from '../session/settings.js';
import type { EncryptionMode } from '../wire/mse.js';

type SessionSettingName = keyof SessionSettings;

import { collect, intOption, portOption, sizeOption } from './options.js';
import {
  addDhtOptions,
  countOption,
  type DhtFlags,
  encryptionOption,
  minIntervalOption,
  startDht,
} from './peer-options.js';
import { packageVersion } from './version.js';

interface DaemonFlags extends DhtFlags {
  state?: string;
  encryption: EncryptionMode;
  downloadDir: string;
  port: number;
  host: string;
  apiHost: string;
  apiPort: number;
  apiAuth?: string;
  apiAuthFile?: string;
  apiAllowedHost: string[];
  maxActive: number;
  maxConnections: number;
  maxConnectionsTotal: number;
  downloadLimit?: number;
  uploadLimit?: number;
  minAnnounceInterval: number;
}

/** Addresses only this machine reaches. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The state folder by default: $XDG_DATA_HOME/swarmshare, else ~/.local/share/swarmshare. */
export function defaultStateDir(): string {
  const xdg = process.env.XDG_DATA_HOME;
  return xdg !== undefined && xdg !== ''
    ? join(xdg, 'swarmshare')
    : join(homedir(), '.local', 'share', 'swarmshare');
}

function userPassword(v: string): string {
  if (!/^[^:]+:.+$/.test(v)) throw new InvalidArgumentError('expected user:password');
  return v;
}

/** `swarmshare daemon`: one session of many torrents, its REST API, its state kept across restarts. */
export function registerDaemonCommand(program: Command): void {
  const cmd = program
    .command('daemon')
    .description(
      'run a session of many torrents as a service, driven by its REST API (and add, ls, show, ...)',
    )
    .addOption(
      new Option('--state <dir>', 'where torrents and their resume data are kept').default(
        undefined,
        '$XDG_DATA_HOME/swarmshare, else ~/.local/share/swarmshare',
      ),
    )
    .option('--download-dir <dir>', 'where torrents download unless told otherwise', '.')
    .option('--port <n>', 'TCP port for peers, shared by every torrent (0 picks one)', portOption, 0)
    .option('--host <address>', 'address to bind for peers and announce', '127.0.0.1')
    .option('--api-host <address>', 'address of the API (not loopback: --api-auth is required)', '127.0.0.1')
    .option('--api-port <n>', 'TCP port of the API', portOption, 9080)
    .option('--api-auth <user:password>', 'HTTP basic credentials for the API', userPassword)
    .option('--api-auth-file <file>', 'read user:password from this file (keeps the secret out of ps)')
    .option(
      '--api-allowed-host <name>',
      'another name the API may be reached by (Host header); repeatable',
      collect,
      [],
    )
    .option('--max-active <n>', 'downloads running at once (seeding takes no slot)', intOption(1, 10_000), 5)
    .option('--max-connections <n>', 'peer connections per torrent at most', countOption, MAX_CONNECTIONS)
    .option(
      '--max-connections-total <n>',
      'peer connections of all torrents together at most',
      countOption,
      DEFAULT_MAX_CONNECTIONS_TOTAL,
    )
    .option('--download-limit <rate>', 'global download limit (e.g. 4MiB/s); none by default', sizeOption)
    .option('--upload-limit <rate>', 'global upload limit; none by default', sizeOption)
    .addOption(minIntervalOption())
    .addOption(encryptionOption());
  addDhtOptions(cmd).action((o: DaemonFlags) => daemonAction(o, fixedSettings(cmd)));
}

/** Settings given on the command line: they win over those saved through the API. */
function fixedSettings(cmd: Command): SessionSettingName[] {
  const names: SessionSettingName[] = ['downloadLimit', 'uploadLimit', 'maxActive', 'downloadDir'];
  return names.filter((k) => cmd.getOptionValueSource(k) === 'cli');
}

async function daemonAction(o: DaemonFlags, fixed: SessionSettingName[]): Promise<void> {
  const auth = await apiAuth(o);
  if (!isLoopback(o.apiHost) && auth === undefined)
    throw new Error(`the API on ${o.apiHost} is reachable by others: give --api-auth or --api-auth-file`);
  const [{ Session }, { StateStore }, { buildApi }] = await Promise.all([
    import('../session/session.js'),
    import('../session/state-store.js'),
    import('../api/server.js'),
  ]);
  const stateDir = resolve(o.state ?? defaultStateDir());
  const dht: DhtUdp | undefined = await startDht(o);
  const session = new Session({
    state: new StateStore(stateDir),
    version: packageVersion(),
    downloadDir: resolve(o.downloadDir),
    host: o.host,
    port: o.port,
    maxActive: o.maxActive,
    maxConnections: o.maxConnections,
    maxConnectionsTotal: o.maxConnectionsTotal,
    downloadLimit: o.downloadLimit ?? null,
    uploadLimit: o.uploadLimit ?? null,
    fixed,
    dht,
    minAnnounceIntervalMs: o.minAnnounceInterval * 1000,
    encryption: o.encryption,
    log: (line) => console.error(line),
  });
  await session.start();
  const app = buildApi(session, { auth, host: o.apiHost, allowedHosts: o.apiAllowedHost });
  try {
    await app.listen({ host: o.apiHost, port: o.apiPort });
  } catch (e) {
    await session.stop();
    await dht?.close();
    throw new Error(`cannot listen for the API on ${o.apiHost}:${o.apiPort}: ${(e as Error).message}`);
  }
  const shown = o.apiHost.includes(':') ? `[${o.apiHost}]` : o.apiHost;
  const addr = app.server.address();
  const apiPort = typeof addr === 'object' && addr !== null ? addr.port : o.apiPort;
  console.log(`API:       http://${shown}:${apiPort}/api/v1  (OpenAPI: /api/v1/openapi.json)`);
  console.log(`Peers:     ${o.host}:${session.port}  (one listener for every torrent)`);
  console.log(`State:     ${stateDir}  (${session.torrents.size} torrents)`);
  console.log(`Downloads: ${session.settings.downloadDir}`);
  stopOnSignals(async () => {
    await app.close();
    await session.stop();
    await dht?.close();
  });
}

async function apiAuth(o: DaemonFlags): Promise<string | undefined> {
  if (o.apiAuthFile === undefined) return o.apiAuth;
  let text: string;
  try {
    text = (await readFile(o.apiAuthFile, 'utf8')).trim();
  } catch (e) {
    throw new Error(
      `cannot read ${o.apiAuthFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  try {
    return userPassword(text);
  } catch {
    throw new Error(`${o.apiAuthFile}: expected one line user:password`);
  }
}

/** SIGTERM/SIGINT: every torrent leaves its trackers, the state is saved, exit 0. */
function stopOnSignals(stop: () => Promise<void>): void {
  let stopping = false;
  const onSignal = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`Stopping (${signal}): torrents leave their trackers, state saved...`);
    stop().then(
      () => process.exit(0),
      (e: Error) => {
        console.error(`swarmshare: while stopping: ${e.message}`);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => onSignal('SIGINT'));
  process.once('SIGTERM', () => onSignal('SIGTERM'));
}
