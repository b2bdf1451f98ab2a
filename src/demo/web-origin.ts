import { open } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { basename } from 'node:path';
import { burstFor, TokenBucket } from '../core/token-bucket.js';

/**
 * The demo's origin as an HTTP server (`demo --web-seed`): one file at `/<name>`, with single
 * `Range` requests (206, 416), keep-alive, and the same upload cap as a peer's (one token bucket
 * for every response). It counts the bytes it sends: how much the swarm took from the origin.
 */

/** Bytes read and written at once. */
const CHUNK = 64 * 1024;

export interface WebOrigin {
  /** The file's URL (a web seed, BEP 19). */
  url: string;
  /** Body bytes sent so far. */
  readonly bytesSent: number;
  close(): Promise<void>;
}

export async function startWebOrigin(file: string, size: number, uploadRate?: number): Promise<WebOrigin> {
  const name = basename(file);
  const fh = await open(file, 'r');
  const bucket = uploadRate ? new TokenBucket(uploadRate, burstFor(uploadRate), Date.now()) : null;
  const state = { bytesSent: 0, closed: false };

  const send = async (res: ServerResponse, start: number, end: number) => {
    const buf = Buffer.allocUnsafe(CHUNK);
    for (let at = start; at < end && !state.closed && !res.destroyed; ) {
      const n = Math.min(CHUNK, end - at);
      const wait = bucket?.reserve(n, Date.now()) ?? 0;
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const { bytesRead } = await fh.read(buf, 0, n, at);
      if (bytesRead <= 0) break;
      const chunk = Buffer.from(buf.subarray(0, bytesRead));
      if (!res.write(chunk)) await new Promise((r) => res.once('drain', r));
      state.bytesSent += bytesRead;
      at += bytesRead;
    }
    res.end();
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    if (decodeURIComponent((req.url ?? '/').split('?')[0] as string) !== `/${name}`)
      return res.writeHead(404).end();
    if (req.method !== 'GET' && req.method !== 'HEAD') return res.writeHead(405).end();
    let start = 0;
    let end = size;
    let status = 200;
    const range = req.headers.range;
    if (range !== undefined) {
      const m = /^bytes=(\d+)-(\d*)$/.exec(range);
      const a = Number(m?.[1]);
      const b = m?.[2] ? Number(m[2]) + 1 : size;
      if (m === null || a >= size || b <= a)
        return res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
      start = a;
      end = Math.min(b, size);
      status = 206;
    }
    res.writeHead(status, {
      'content-type': 'application/octet-stream',
      'content-length': end - start,
      'accept-ranges': 'bytes',
      ...(status === 206 ? { 'content-range': `bytes ${start}-${end - 1}/${size}` } : {}),
    });
    if (req.method === 'HEAD') return res.end();
    send(res, start, end).catch(() => res.destroy());
  };

  const server: Server = createServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}/${encodeURIComponent(name)}`,
    get bytesSent() {
      return state.bytesSent;
    },
    close: async () => {
      state.closed = true;
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await fh.close();
    },
  };
}
