import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, type Started, start, waitFor } from './proc.js';

/** A running nginx serving `root` (ranges, keep-alive), and the bytes it has sent (its access log). */
export interface Nginx {
  url: string;
  proc: Started;
  /** Body bytes sent so far, summed over the access log. */
  bytesSent(): Promise<number>;
}

/**
 * Debian's nginx as one foreground process (no master, no daemon) on a free loopback port,
 * everything it writes under `dir`: stopped with the other processes a test started (stopAll).
 */
export async function startNginx(
  dir: string,
  root: string,
  opts: { rateLimit?: string } = {},
): Promise<Nginx> {
  await mkdir(join(dir, 'tmp'), { recursive: true });
  const port = await freePort();
  const log = join(dir, 'access.log');
  const conf = join(dir, 'nginx.conf');
  await writeFile(
    conf,
    `daemon off;
master_process off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 512; }
http {
  log_format bytes '$status $body_bytes_sent';
  access_log ${log} bytes;
  client_body_temp_path ${join(dir, 'tmp')};
  proxy_temp_path ${join(dir, 'tmp')};
  fastcgi_temp_path ${join(dir, 'tmp')};
  uwsgi_temp_path ${join(dir, 'tmp')};
  scgi_temp_path ${join(dir, 'tmp')};
  default_type application/octet-stream;
  sendfile on;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    ${opts.rateLimit === undefined ? '' : `limit_rate ${opts.rateLimit};`}
  }
}
`,
  );
  const proc = start('nginx', ['-c', conf, '-p', dir]);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    'nginx to answer',
    () =>
      fetch(`${url}/`).then(
        () => true,
        () => undefined,
      ),
    10_000,
    100,
  );
  return {
    url,
    proc,
    bytesSent: async () => {
      const text = await readFile(log, 'utf8').catch(() => '');
      let n = 0;
      for (const line of text.split('\n')) n += Number(line.split(' ')[1] ?? 0) || 0;
      return n;
    },
  };
}
