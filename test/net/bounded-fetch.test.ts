import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { boundedFetch } from '../../src/net/bounded-fetch.js';

/** The bounded HTTP client against a real server that misbehaves on purpose, path by path. */
describe('boundedFetch', () => {
  let server: Server;
  let base = '';
  const seen: { method?: string; type?: string; body: string }[] = [];

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        const path = req.url ?? '';
        if (path === '/echo') {
          seen.push({
            method: req.method,
            type: req.headers['content-type'],
            body: Buffer.concat(parts).toString(),
          });
          res.end('d2:ok1:ye');
        } else if (path === '/stall-head') {
          // never answers
        } else if (path === '/stall-body') {
          res.writeHead(200, { 'content-length': '100' });
          res.write('partial');
        } else if (path === '/cut') {
          res.writeHead(200, { 'content-length': '100' });
          res.write('partial', () => res.socket?.destroy());
        } else if (path === '/big-chunked') {
          res.writeHead(200);
          let n = 0;
          const more = () => {
            while (n++ < 64) if (!res.write(Buffer.alloc(1024, 1))) return void res.once('drain', more);
            res.end();
          };
          more();
        } else if (path === '/hop') {
          res.writeHead(302, { location: '/echo' });
          res.end();
        } else if (path === '/bad-location') {
          res.writeHead(302, { location: 'http://[::1' });
          res.end();
        } else {
          res.writeHead(404);
          res.end('no');
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('posts a body with its type and length, and follows a redirect to the answer', async () => {
    const r = await boundedFetch(`${base}/echo`, 1000, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
    });
    expect(r.status).toBe(200);
    expect(Buffer.from(r.body).toString()).toBe('d2:ok1:ye');
    expect(seen.at(-1)).toEqual({ method: 'POST', type: 'application/json', body: '{"a":1}' });
    const hop = await boundedFetch(`${base}/hop`, 1000);
    expect(hop.url).toBe(`${base}/echo`);
    expect(Buffer.from(hop.body).toString()).toBe('d2:ok1:ye');
    const missing = await boundedFetch(`${base}/nothing`, 1000);
    expect(missing.status).toBe(404);
  });

  it('gives up on a tracker that never answers, or never finishes, within its time', async () => {
    const t0 = Date.now();
    await expect(boundedFetch(`${base}/stall-head`, 1000, { timeoutMs: 300 })).rejects.toThrow(
      /unreachable: no answer in time/,
    );
    await expect(boundedFetch(`${base}/stall-body`, 1000, { timeoutMs: 300 })).rejects.toThrow(
      /reply cut short: no end in time/,
    );
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('names a reply cut short, one over the cap, a bad redirect and a closed port', async () => {
    await expect(boundedFetch(`${base}/cut`, 1000)).rejects.toThrow(/reply cut short/);
    await expect(boundedFetch(`${base}/big-chunked`, 10_000)).rejects.toThrow(
      /answered more than 10000 bytes: refused/,
    );
    await expect(boundedFetch(`${base}/bad-location`, 1000)).rejects.toThrow(/not a URL/);
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    await expect(boundedFetch(`http://127.0.0.1:${port}/announce`, 1000)).rejects.toThrow(
      /unreachable: connect ECONNREFUSED/,
    );
  });

  it('speaks https to an https URL (here a plain HTTP server: the TLS handshake fails, named)', async () => {
    await expect(
      boundedFetch(`${base.replace('http:', 'https:')}/echo`, 1000, { timeoutMs: 3000 }),
    ).rejects.toThrow(/^tracker https:\/\/127\.0\.0\.1:\d+ unreachable: /);
  });
});
