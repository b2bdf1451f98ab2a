import type { IncomingMessage } from 'node:http';
import swagger from '@fastify/swagger';
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import { httpStatus, isSwarmshareError, SwarmshareError } from '../core/errors.js';
import { MAX_TORRENT_BYTES } from '../core/metainfo.js';
import { type AssetTable, GRID_ASSETS, openEventStream, registerAssets } from '../dashboard/routes.js';
import type { Session } from '../session/session.js';
import type { FilePriority, TorrentEntry } from '../session/torrent-entry.js';
import { type AccessOpts, checkAccess } from './access.js';
import { type AddBody, addTorrent } from './add.js';
import { ID, registerFileRoute } from './file-route.js';
import { registerTransmissionRpc } from './transmission-rpc.js';
import { sessionView, torrentDetail, torrentPieces, torrentSummary } from './views.js';

/**
 * The daemon's REST API over one session (docs/daemon.md): JSON, every body checked by a schema,
 * errors as `{"error": {"code", "message"}}` with the codes of the one table, described in an
 * OpenAPI document at /api/v1/openapi.json. Built without listening (tests inject requests).
 */

export interface ApiOpts extends AccessOpts {
  /** How long a magnet add waits for its metadata, ms (default METADATA_TIMEOUT_MS, add.ts). */
  metadataTimeoutMs?: number;
}

/** The web UI's files (public/webui, and the piece grid it shares with the tracker's dashboard). */
const WEB_UI: AssetTable = {
  '/': ['webui/index.html', 'text/html; charset=utf-8'],
  '/webui/app.js': ['webui/app.js', 'text/javascript; charset=utf-8'],
  '/webui/style.css': ['webui/style.css', 'text/css; charset=utf-8'],
  ...GRID_ASSETS,
};

const LIMIT = { type: ['integer', 'null'], minimum: 0, maximum: 1e12 } as const;

function errorBody(code: string, message: string) {
  return { error: { code, message } };
}

export function buildApi(session: Session, opts: ApiOpts): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: MAX_TORRENT_BYTES / 4,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
    forceCloseConnections: true,
  });
  // A .torrent as the body, raw (application/x-bittorrent).
  app.addContentTypeParser('application/x-bittorrent', { parseAs: 'buffer' }, (_req, body, done) =>
    done(null, body),
  );
  app.register(swagger, {
    openapi: {
      info: {
        title: 'swarmshare daemon',
        version: session.version,
        description:
          'Many torrents in one session: add, list, pause, resume, remove; live events. See docs/daemon.md.',
      },
    },
  });
  app.addHook('onRequest', async (req, reply) => {
    const refused = checkAccess(req.raw as IncomingMessage, opts);
    if (refused === null) return;
    if (refused.code === 'ERR_UNAUTHORIZED') reply.header('www-authenticate', 'Basic realm="swarmshare"');
    return reply.status(httpStatus(refused.code)).send(errorBody(refused.code, refused.message));
  });
  app.setErrorHandler((err: FastifyError, _req, reply) => {
    if (isSwarmshareError(err))
      return reply.status(httpStatus(err.code)).send(errorBody(err.code, err.message));
    if (err.validation) return reply.status(400).send(errorBody('ERR_VALIDATION', err.message));
    const status = err.statusCode ?? 500;
    if (status === 413) return reply.status(413).send(errorBody('ERR_BODY_TOO_LARGE', 'body too large'));
    if (status === 415)
      return reply
        .status(415)
        .send(
          errorBody('ERR_UNSUPPORTED_MEDIA_TYPE', 'send JSON, or a .torrent as application/x-bittorrent'),
        );
    if (status >= 400 && status < 500)
      return reply.status(status).send(errorBody('ERR_BAD_PARAM', err.message));
    return reply.status(500).send(errorBody('ERR_INTERNAL', 'internal error'));
  });
  app.setNotFoundHandler((req, reply) =>
    reply.status(404).send(errorBody('ERR_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`)),
  );
  // Routes in a plugin after the OpenAPI one, so that it sees them (routes added before it loads
  // are missing from the document).
  app.register(async (api) => {
    registerTorrentRoutes(api, session, opts);
    registerSessionRoutes(api, session);
  });
  app.get('/api/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  registerTransmissionRpc(app, session, opts);
  registerAssets(app, WEB_UI);
  return app;
}

/** A torrent by its id or a unique prefix of it. */
export function resolveId(session: Session, ref: string): TorrentEntry {
  const want = ref.toLowerCase();
  const exact = session.torrents.get(want);
  if (exact !== undefined) return exact;
  const matches = [...session.torrents.keys()].filter((id) => id.startsWith(want));
  if (matches.length === 1) return session.get(matches[0] as string);
  if (matches.length > 1)
    throw new SwarmshareError('ERR_AMBIGUOUS_ID', `${ref} is the start of ${matches.length} torrents' ids`);
  throw new SwarmshareError('ERR_UNKNOWN_TORRENT', `no torrent ${ref}`);
}

function registerTorrentRoutes(app: FastifyInstance, session: Session, opts: ApiOpts): void {
  const byId = { type: 'object', required: ['id'], properties: { id: ID } } as const;
  const entry = (req: FastifyRequest) => resolveId(session, (req.params as { id: string }).id);

  app.get(
    '/api/v1/torrents',
    { schema: { tags: ['torrents'], description: 'Every torrent.' } },
    async () => ({
      torrents: [...session.torrents.values()].map((e) => torrentSummary(session, e)),
    }),
  );

  app.post(
    '/api/v1/torrents',
    {
      schema: {
        tags: ['torrents'],
        description:
          'Adds a torrent: a .torrent as the body (application/x-bittorrent), or JSON with one of magnet, url, torrent (base64). 201 when added, 200 with the existing torrent.',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            paused: { type: 'string', enum: ['true', 'false'] },
            downloadDir: { type: 'string' },
          },
        },
      },
    },
    async (req, reply) => {
      const q = req.query as { paused?: string; downloadDir?: string };
      const body: AddBody = Buffer.isBuffer(req.body)
        ? { torrentBytes: req.body, paused: q.paused === 'true', downloadDir: q.downloadDir }
        : checkAddJson(req.body);
      const { entry: e, created } = await addTorrent(session, body, opts.metadataTimeoutMs);
      return reply.status(created ? 201 : 200).send({ torrent: torrentSummary(session, e), created });
    },
  );

  app.get('/api/v1/torrents/:id', { schema: { tags: ['torrents'], params: byId } }, async (req) => ({
    torrent: torrentDetail(session, entry(req)),
  }));

  registerFileRoute(app, session, entry);

  app.get(
    '/api/v1/torrents/:id/pieces',
    {
      schema: {
        tags: ['torrents'],
        params: byId,
        description:
          'Its piece map: pieces held (base64 bitfield), in flight, availability among linked peers, and their bitfields.',
      },
    },
    async (req) => torrentPieces(entry(req)),
  );

  for (const action of ['pause', 'resume', 'recheck'] as const) {
    app.post(
      `/api/v1/torrents/:id/${action}`,
      { schema: { tags: ['torrents'], params: byId } },
      async (req) => {
        const e = await session[action](entry(req).id);
        return { torrent: torrentSummary(session, e) };
      },
    );
  }

  app.delete(
    '/api/v1/torrents/:id',
    {
      schema: {
        tags: ['torrents'],
        params: byId,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { deleteData: { type: 'string', enum: ['true', 'false'] } },
        },
      },
    },
    async (req) => {
      const e = entry(req);
      await session.remove(e.id, (req.query as { deleteData?: string }).deleteData === 'true');
      return { removed: e.id };
    },
  );
  registerPatchRoute(app, session, entry, byId);
}

/** PATCH a torrent: its limits and its file selection. */
function registerPatchRoute(
  app: FastifyInstance,
  session: Session,
  entry: (req: FastifyRequest) => TorrentEntry,
  byId: object,
): void {
  app.patch(
    '/api/v1/torrents/:id',
    {
      schema: {
        tags: ['torrents'],
        params: byId,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            downloadLimit: LIMIT,
            uploadLimit: LIMIT,
            files: {
              type: 'array',
              maxItems: 100_000,
              description:
                'File selection, changeable while it runs (its peer restarts with the new choice).',
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['index'],
                properties: {
                  index: { type: 'integer', minimum: 0 },
                  wanted: { type: 'boolean' },
                  priority: { type: 'string', enum: ['high', 'normal', 'low'] },
                },
              },
            },
          },
        },
      },
    },
    async (req) => {
      const b = req.body as {
        downloadLimit?: number | null;
        uploadLimit?: number | null;
        files?: { index: number; wanted?: boolean; priority?: FilePriority }[];
      };
      const id = entry(req).id;
      if (b.files !== undefined) await session.setFiles(id, b.files);
      return { torrent: torrentSummary(session, session.setTorrentLimits(id, b)) };
    },
  );
}

/** JSON add bodies: exactly one source. */
function checkAddJson(body: unknown): AddBody {
  const b = body as Record<string, unknown> | null;
  if (typeof b !== 'object' || b === null || Array.isArray(b))
    throw new SwarmshareError('ERR_VALIDATION', 'the body must be a JSON object or a .torrent');
  const known = new Set(['magnet', 'url', 'torrent', 'paused', 'downloadDir']);
  for (const k of Object.keys(b))
    if (!known.has(k)) throw new SwarmshareError('ERR_VALIDATION', `unknown field ${k}`);
  const sources = ['magnet', 'url', 'torrent'].filter((k) => b[k] !== undefined);
  if (sources.length !== 1)
    throw new SwarmshareError('ERR_VALIDATION', 'give exactly one of magnet, url, torrent (base64)');
  for (const k of [...sources, 'downloadDir'])
    if (b[k] !== undefined && typeof b[k] !== 'string')
      throw new SwarmshareError('ERR_VALIDATION', `${k} must be a string`);
  if (b.paused !== undefined && typeof b.paused !== 'boolean')
    throw new SwarmshareError('ERR_VALIDATION', 'paused must be true or false');
  return {
    magnet: b.magnet as string | undefined,
    url: b.url as string | undefined,
    torrentBytes: typeof b.torrent === 'string' ? decodeBase64(b.torrent) : undefined,
    paused: b.paused === true,
    downloadDir: b.downloadDir as string | undefined,
  };
}

function decodeBase64(s: string): Buffer {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s)) throw new SwarmshareError('ERR_VALIDATION', 'torrent is not base64');
  return Buffer.from(s, 'base64');
}

function registerSessionRoutes(app: FastifyInstance, session: Session): void {
  app.get('/api/v1/session', { schema: { tags: ['session'] } }, async () => ({
    session: sessionView(session),
  }));
  app.patch(
    '/api/v1/session',
    {
      schema: {
        tags: ['session'],
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            downloadLimit: LIMIT,
            uploadLimit: LIMIT,
            maxActive: { type: 'integer', minimum: 1, maximum: 10_000 },
            downloadDir: { type: 'string', minLength: 1, maxLength: 4096 },
          },
        },
      },
    },
    async (req) => {
      await session.setSettings(req.body as Parameters<Session['setSettings']>[0]);
      return { session: sessionView(session) };
    },
  );
  app.get(
    '/api/v1/events',
    { schema: { tags: ['session'], description: 'Server-sent events.' } },
    (req, reply) => streamEvents(session, req, reply),
  );
}

/** Server-sent events: added, state, progress (every second while active), completed, error, removed. */
function streamEvents(session: Session, req: FastifyRequest, reply: FastifyReply): void {
  const res = openEventStream(reply);
  const send = (event: string, data: unknown) =>
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  const summary = (e: TorrentEntry) => torrentSummary(session, e);
  const handlers = {
    added: (e: TorrentEntry) => send('added', summary(e)),
    state: (e: TorrentEntry) => send('state', summary(e)),
    progress: (list: TorrentEntry[]) => send('progress', list.map(summary)),
    completed: (e: TorrentEntry) => send('completed', summary(e)),
    error: (e: TorrentEntry, message: string) => send('error', { ...summary(e), message }),
    removed: (id: string) => send('removed', { id }),
  };
  for (const [k, f] of Object.entries(handlers)) session.on(k as 'added', f as (e: TorrentEntry) => void);
  send('hello', { session: sessionView(session) });
  req.raw.on('close', () => {
    for (const [k, f] of Object.entries(handlers)) session.off(k as 'added', f as (e: TorrentEntry) => void);
  });
}
