import type { FastifyInstance } from 'fastify'
import { sql } from 'kysely'
import { Type } from 'typebox'
import { HttpProblem, problemResponses } from '@tombstone/fastify'

export async function healthRoutes(app: FastifyInstance): Promise<void> {
  app.get(
    '/healthz',
    {
      schema: {
        tags: ['service'],
        summary: 'Liveness: 200 when the database answers',
        response: { 200: Type.Object({ status: Type.Literal('ok'), database: Type.String() }), ...problemResponses(503) },
      },
    },
    async () => {
      try {
        await sql`select 1`.execute(app.db)
      } catch (error) {
        throw new HttpProblem('internal', 'The database does not answer', { status: 503, cause: error })
      }
      return { status: 'ok' as const, database: app.databaseInfo.kind }
    },
  )
}
