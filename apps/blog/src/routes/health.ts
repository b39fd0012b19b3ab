import type { FastifyInstance } from 'fastify'
import { sql } from 'kysely'
import { Type } from 'typebox'
import { HttpProblem, problemResponses } from '@tombstone/fastify'

/** How long a health check waits for the database before it answers 503. */
const CHECK_TIMEOUT_MS = 2_000

/**
 * Liveness (`/livez`: the process answers, whatever the database does, so that an orchestrator does
 * not restart an instance for a database outage), readiness (`/readyz` and its older name
 * `/healthz`: the database answers `select 1` within 2 s, else 503 so that a balancer routes
 * elsewhere). Neither ever waits longer than that.
 */
export async function healthRoutes(app: FastifyInstance): Promise<void> {
  app.get(
    '/livez',
    {
      schema: {
        tags: ['service'],
        summary: 'Liveness: 200 while the process serves requests (does not touch the database)',
        operationId: 'liveness',
        description: 'Public. For an orchestrator: a database outage does not make the process unhealthy.',
        response: { 200: Type.Object({ status: Type.Literal('ok') }, { description: 'The process serves requests', examples: [{ status: 'ok' }] }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  )

  const ready = async () => {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timed out')), CHECK_TIMEOUT_MS)
    })
    try {
      await Promise.race([sql`select 1`.execute(app.db), timeout])
    } catch (error) {
      throw new HttpProblem('service-unavailable', 'The database does not answer', { cause: error, headers: { 'retry-after': '1' } })
    } finally {
      clearTimeout(timer)
    }
    return { status: 'ok' as const, database: app.databaseInfo.kind }
  }
  const schema = {
    tags: ['service'],
    response: {
      200: Type.Object(
        { status: Type.Literal('ok'), database: Type.String() },
        { description: 'The database answers', examples: [{ status: 'ok', database: 'postgres' }] },
      ),
      ...problemResponses(503),
    },
    description: 'Public. For a load balancer: 503 (with Retry-After) while the database does not answer within 2 s.',
  }
  app.get('/readyz', { schema: { ...schema, operationId: 'readiness', summary: 'Readiness: 200 when the database answers within 2 s, else 503' } }, ready)
  app.get('/healthz', { schema: { ...schema, operationId: 'health', summary: 'Readiness (the older name of /readyz)' } }, ready)
}
