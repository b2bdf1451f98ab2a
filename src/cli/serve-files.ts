import { createServer, type Server } from 'node:http';
import { FileStreams, fileResponse } from '../node/file-stream.js';
import type { PeerNode } from '../node/peer-node.js';

/**
 * `get --serve`: the torrent's files over HTTP while they download, at
 * `http://HOST:PORT/files/<index>/<name>` (GET and HEAD, `Range` honoured). Returns the server and
 * each file's URL.
 */
export async function serveFiles(
  node: PeerNode,
  host: string,
  port: number,
): Promise<{ server: Server; urls: string[] }> {
  const streams = new FileStreams(node);
  const server = createServer((req, res) => {
    const m = /^\/files\/(\d{1,9})(?:\/[^?]*)?(?:\?.*)?$/.exec(req.url ?? '');
    const fail = (status: number, message: string) => {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`${message}\n`);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return fail(405, 'only GET and HEAD');
    if (m === null) return fail(404, 'not found: the files are at /files/<index>/<name>');
    const r = fileResponse(streams, Number(m[1]), req.method, req.headers.range);
    if (r.error !== undefined) return fail(r.status, r.error);
    res.writeHead(r.status, r.headers);
    if (r.body === null) return void res.end();
    const body = r.body;
    // A reader that goes away frees its window; a piece that never comes cuts the response short.
    res.on('close', () => body.destroy());
    body.on('error', () => res.destroy());
    body.pipe(res);
  });
  server.on('close', () => streams.close());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address();
  const shown = host.includes(':') ? `[${host}]` : host;
  const base = `http://${shown}:${typeof a === 'object' && a !== null ? a.port : port}`;
  const meta = node.meta;
  const urls = meta.files.map((f, i) => {
    const name = meta.multiFile ? (f.path[f.path.length - 1] as string) : meta.name;
    return `${base}/files/${i}/${encodeURIComponent(name)}`;
  });
  return { server, urls };
}
