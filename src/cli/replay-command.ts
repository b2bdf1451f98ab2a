import type { Command } from 'commander';
import { openBrowser } from './browser.js';
import { numberOption, portOption } from './options.js';

/** `swarmshare replay <file>`: a recorded simulation played in the dashboard page. */
export function registerReplayCommand(program: Command): void {
  program
    .command('replay')
    .description('play a recorded simulation (simulate --replay FILE) in the dashboard')
    .argument('<file>', 'a replay file')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--port <n>', 'TCP port (0 picks a free one)', portOption, 8090)
    .option(
      '--speed <x>',
      'virtual seconds played per second',
      numberOption(0, 1_000_000, false, true, 'a positive number, at most 1000000'),
      10,
    )
    .option('--open', 'open the dashboard in a browser, where one exists')
    .action(async (file: string, o: { host: string; port: number; speed: number; open?: boolean }) => {
      const [{ readReplay }, { buildReplayServer }] = await Promise.all([
        import('../sim/replay.js'),
        import('../dashboard/replay-server.js'),
      ]);
      const replay = await readReplay(file);
      const app = buildReplayServer(replay, { speed: o.speed });
      await app.listen({ host: o.host, port: o.port });
      const addr = app.server.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : o.port;
      const host = o.host.includes(':') ? `[${o.host}]` : o.host;
      const url = `http://${host}:${port}/`;
      const last = replay.frames[replay.frames.length - 1];
      console.log(
        `Replaying ${replay.frames.length} frames (${((last?.timeMs ?? 0) / 1000).toFixed(1)} s virtual, ${o.speed}x) at ${url}`,
      );
      if (o.open) openBrowser(url);
      const stop = () => {
        app.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
