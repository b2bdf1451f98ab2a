import type { FastifyInstance, FastifyRequest } from 'fastify';
import { SwarmshareError } from '../core/errors.js';
import { fileResponse } from '../node/file-stream.js';
import type { Session } from '../session/session.js';
import type { TorrentEntry } from '../session/torrent-entry.js';

/** A torrent's id: its info hash in lowercase hex, or a unique prefix of it. */
export const ID = { type: 'string', pattern: '^[0-9a-fA-F]{1,40}$' } as const;

/** `GET /api/v1/torrents/{id}/files/{index}`: a file, streamed while it downloads (node/file-stream.ts). */
export function registerFileRoute(
  app: FastifyInstance,
  session: Session,
  entry: (req: FastifyRequest) => TorrentEntry,
): void {
  app.get(
    '/api/v1/torrents/:id/files/:index',
    {
      schema: {
        tags: ['torrents'],
        description:
          'A file of the torrent, streamed while it downloads: Range requests (206, 416), Content-Type by extension; reads wait for the pieces under them, which are fetched first.',
        params: {
          type: 'object',
          required: ['id', 'index'],
          properties: { id: ID, index: { type: 'string', pattern: '^[0-9]{1,9}$' } },
        },
      },
    },
    async (req, reply) => {
      const e = entry(req);
      const streams = e.streams();
      if (streams === null)
        throw new SwarmshareError(
          'ERR_NOT_RUNNING',
          `${e.meta.name} is ${e.state(session.running(e))}: resume it to read its files`,
        );
      const index = Number((req.params as { index: string }).index);
      const r = fileResponse(streams, index, req.method, req.headers.range);
      if (r.error !== undefined) throw new SwarmshareError('ERR_NOT_FOUND', r.error);
      reply.code(r.status).headers(r.headers);
      if (r.body === null) return reply.send();
      const body = r.body;
      // A reader that goes away frees its window.
      reply.raw.on('close', () => body.destroy());
      return reply.send(body);
    },
  );
}
