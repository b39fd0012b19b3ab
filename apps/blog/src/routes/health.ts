import type { FastifyInstance } from 'fastify'
import { sql } from 'kysely'
import { Type } from 'typebox'
import { HttpProblem, problemResponses } from '@tombstone/fastify'

/** How long a health check waits for the database before it answers 503. */
const CHECK_TIMEOUT_MS = 2_000

/**
 * Liveness (`/livez`: the process answers, whatever the database does, so that an orchestrator does
 * not restart an instance for a database outage), readiness (`/readyz` and its older name
 * `/healthz`: the primary answers `select 1` within 2 s, else 503 so that a balancer routes
 * elsewhere; a read replica that is away is reported, not a reason for 503, since reads then go to
 * the primary). Neither ever waits longer than 2 s.
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
    // The replica does not decide readiness: while it is away, reads go to the primary. Both are
    // asked at once, so the answer never waits longer than 2 s.
    const replicaCheck = app.reads.replicaStatus(CHECK_TIMEOUT_MS)
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
    const replica = await replicaCheck
    return { status: 'ok' as const, database: app.databaseInfo.kind, ...(replica === undefined ? {} : { replica }) }
  }
  const schema = {
    tags: ['service'],
    response: {
      200: Type.Object(
        {
          status: Type.Literal('ok'),
          database: Type.String(),
          replica: Type.Optional(Type.Union([Type.Literal('ok'), Type.Literal('unavailable')], { description: 'The read replica (DATABASE_READ_URL), when there is one; away, reads go to the primary' })),
        },
        { description: 'The primary database answers', examples: [{ status: 'ok', database: 'postgres' }] },
      ),
      ...problemResponses(503),
    },
    description: 'Public. For a load balancer: 503 (with Retry-After) while the primary database does not answer within 2 s; a replica that is away does not make it fail.',
  }
  app.get('/readyz', { schema: { ...schema, operationId: 'readiness', summary: 'Readiness: 200 when the database answers within 2 s, else 503' } }, ready)
  app.get('/healthz', { schema: { ...schema, operationId: 'health', summary: 'Readiness (the older name of /readyz)' } }, ready)
}
