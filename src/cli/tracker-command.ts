import type { Command } from 'commander';
import { shownRedisUrl } from '../tracker-server/redis-url.js';
import { addressList, intOption, portOption, storeUrl } from './options.js';

/** `swarmshare tracker`: the tracker in the foreground until SIGINT/SIGTERM. */
export function registerTrackerCommand(program: Command): void {
  program
    .command('tracker')
    .description('run the tracker: the JSON chunk-map API and a BitTorrent HTTP tracker (/announce, /scrape)')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--port <n>', 'TCP port to listen on (0 picks a free one)', portOption, 8000)
    .option(
      '--udp-port <n>',
      'UDP port of the UDP tracker, BEP 15 (default: the same number as --port; 0 picks one)',
      portOption,
    )
    .option('--no-udp', 'no UDP tracker')
    .option(
      '--interval <seconds>',
      'announce interval; silent peers are dropped after twice this',
      intOption(1, 86400),
      30,
    )
    .option('--no-trust-ip', "ignore the ip a peer states and use its connection's address")
    .option(
      '--trust-proxy <addresses>',
      'reverse proxies in front of the tracker (addresses or CIDR ranges, comma-separated): from them, the client address is read from X-Forwarded-For',
      addressList,
    )
    .option(
      '--rate-limit <n>',
      'requests per second allowed per client address (0: no limit)',
      intOption(0, 1_000_000),
      200,
    )
    .option(
      '--store <url>',
      'keep the swarms in Redis, shared by every tracker started with the same URL (announce and scrape over HTTP and UDP, the JSON API, the dashboard): redis://HOST:PORT[/DB]',
      storeUrl,
    )
    .option('--quiet', "don't print the log lines (registrations, availability tables)")
    .action(
      async (o: {
        host: string;
        port: number;
        udpPort?: number;
        udp: boolean;
        interval: number;
        trustIp: boolean;
        trustProxy?: string[];
        rateLimit: number;
        store?: string;
        quiet?: boolean;
      }) => {
        // Loaded here, not at the top: the HTTP framework costs every other command ~25 MB of RSS.
        const [{ startTracker }, { registerDashboard }] = await Promise.all([
          import('../tracker-server/server.js'),
          import('../dashboard/routes.js'),
        ]);
        const tracker = await startTracker(
          { host: o.host, port: o.port, udpPort: o.udp ? (o.udpPort ?? 'same') : null },
          {
            interval: o.interval,
            trustIp: o.trustIp,
            trustProxy: o.trustProxy,
            rateLimit: o.rateLimit,
            storeUrl: o.store,
            log: o.quiet ? undefined : (line) => console.log(line),
            routes: registerDashboard,
          },
        );
        console.log(`Tracker listening on ${tracker.url} (announce URL ${tracker.url}/announce)`);
        if (tracker.udpUrl !== null) console.log(`UDP tracker on ${tracker.udpUrl}`);
        if (o.store !== undefined)
          console.log(`Swarms kept in ${shownRedisUrl(o.store)} (shared with every tracker using it)`);
        let stopping = false;
        const stop = (signal: string) => {
          if (stopping) return;
          stopping = true;
          console.log(`Tracker stopping (${signal})`);
          tracker.close().then(
            () => process.exit(0),
            (e: unknown) => {
              console.error(`swarmshare: error while stopping: ${String(e)}`);
              process.exit(1);
            },
          );
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      },
    );
}
