import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { httpStatus, isSwarmshareError, type TrackerErrorCode } from '../core/errors.js';
import type { TrackerLimits } from '../tracker/limits.js';
import { errorBody } from './options.js';

/** Methods our routes use (a path known under one of them answers 405 to the others). */
const ROUTE_METHODS = ['GET', 'POST'] as const;

/**
 * The tracker's HTTP app with no routes yet: its server (whose requests `fastPath` may answer
 * first), the OpenAPI document and its page, and the answers for errors and unknown paths, all in
 * the one error body.
 */
export function createApp(
  limits: TrackerLimits,
  fastPath: (req: IncomingMessage, res: ServerResponse) => boolean,
  counters: Record<string, number>,
  log: ((line: string) => void) | undefined,
): FastifyInstance {
  const app = Fastify({
    logger: false,
    serverFactory: (handler) => {
      const server = createServer((req, res) => {
        if (!fastPath(req, res)) handler(req, res);
      });
      // What the framework sets on a server it makes itself: clients keep connections across announces.
      server.keepAliveTimeout = 72_000;
      return server;
    },
    bodyLimit: limits.maxBodyBytes,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    return503OnClosing: false,
    // Live feed (SSE) connections stay open: closing the tracker ends them.
    forceCloseConnections: true,
  });
  app.register(swagger, {
    openapi: {
      info: {
        title: 'swarmshare tracker',
        version: '0.1.0',
        description:
          "The original project's JSON API (register, get_peers, update, deregister), the dashboard's JSON and live feed, health and stats. The BitTorrent API (/announce, /scrape) is bencoded: see docs/tracker.md.",
      },
    },
  });
  app.register(swaggerUi, { routePrefix: '/docs' });
  setErrorAnswers(app, limits, counters, log);
  return app;
}

/** Every error as `{"error": {"code", "message"}}` with the status of its code; 404 and 405. */
function setErrorAnswers(
  app: FastifyInstance,
  limits: TrackerLimits,
  counters: Record<string, number>,
  log: ((line: string) => void) | undefined,
): void {
  app.setErrorHandler((err: FastifyError, _req, reply) => {
    counters.errors = (counters.errors ?? 0) + 1;
    if (isSwarmshareError(err)) {
      return reply.status(httpStatus(err.code)).send(errorBody(err.code, err.message, err.details));
    }
    if (err.validation) {
      return reply.status(400).send(errorBody('ERR_VALIDATION', err.message));
    }
    const status = err.statusCode ?? 500;
    if (status === 413)
      return reply
        .status(413)
        .send(errorBody('ERR_BODY_TOO_LARGE', `body larger than ${limits.maxBodyBytes} bytes`));
    if (status === 415) {
      return reply
        .status(415)
        .send(errorBody('ERR_UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json'));
    }
    if (status >= 400 && status < 500) {
      const code: TrackerErrorCode = err.code?.startsWith('FST_ERR_CTP') ? 'ERR_BAD_JSON' : 'ERR_BAD_PARAM';
      return reply.status(status).send(errorBody(code, err.message));
    }
    log?.(`tracker: internal error: ${err.stack ?? err.message}`);
    return reply.status(500).send(errorBody('ERR_INTERNAL', 'internal error'));
  });

  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0] as string;
    // A path we serve, asked with another method: 405 and the methods it takes.
    const allowed = ROUTE_METHODS.filter((method) => app.hasRoute({ method, url: path }));
    if (allowed.length > 0) {
      reply
        .status(405)
        .header('allow', allowed.join(', '))
        .send(
          errorBody('ERR_METHOD_NOT_ALLOWED', `${path} takes ${allowed.join(' or ')}, not ${req.method}`),
        );
      return;
    }
    reply.status(404).send(errorBody('ERR_NOT_FOUND', `no route ${req.method} ${path}`));
  });
}
