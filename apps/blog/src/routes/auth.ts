import type { FastifyInstance } from 'fastify'
import { sql } from 'kysely'
import { Type } from 'typebox'
import { HttpProblem, problemResponses, unauthorized } from '@tombstone/fastify'
import { classifyDatabaseError, isTombstoneError } from '@tombstone/kysely'
import { DUMMY_HASH, verifyPassword } from '../services/passwords.ts'
import { issueToken } from '../services/tokens.ts'

const WINDOW_MINUTES = 15

const Credentials = Type.Object(
  {
    username: Type.String({ minLength: 1, maxLength: 64 }),
    password: Type.String({ minLength: 1, maxLength: 1024 }),
    // Accepted for OAuth2 password-flow clients (form-encoded), and otherwise ignored.
    grant_type: Type.Optional(Type.Literal('password')),
    scope: Type.Optional(Type.String({ maxLength: 200 })),
    client_id: Type.Optional(Type.String({ maxLength: 200 })),
    client_secret: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { additionalProperties: false },
)

export async function authRoutes(app: FastifyInstance, options: { maxFailures: number; tokenTtlSeconds: number }): Promise<void> {
  app.post(
    '/auth/token',
    {
      schema: {
        tags: ['auth'],
        summary: 'Exchange a username and password for a bearer token (JSON or form-encoded)',
        body: Credentials,
        response: {
          200: Type.Object({ access_token: Type.String(), token_type: Type.Literal('bearer'), expires_in: Type.Integer() }),
          ...problemResponses(400, 401, 415, 422, 429),
        },
      },
    },
    async (request, reply) => {
      const { username, password } = request.body as { username: string; password: string }
      const address = request.ip
      const recent = await app.db
        .selectFrom('login_failures')
        .select([
          sql<number>`count(*)::int`.as('failures'),
          sql<number>`coalesce(ceil(extract(epoch from (min(at) + make_interval(mins => ${WINDOW_MINUTES}) - now()))), 0)::int`.as('retry_after'),
        ])
        .where('username', '=', username)
        .where('address', '=', address)
        .where('at', '>', sql<Date>`now() - make_interval(mins => ${WINDOW_MINUTES})`)
        .executeTakeFirstOrThrow()
      if (recent.failures >= options.maxFailures) {
        throw new HttpProblem('too-many-requests', `Too many failed logins for ${username}; try again later`, {
          headers: { 'retry-after': String(Math.max(1, recent.retry_after)) },
        })
      }
      // Deleted users are invisible here: their credentials stop working.
      const user = await app.db.selectFrom('users').select(['id', 'password_hash']).where('username', '=', username).executeTakeFirst()
      const valid = await verifyPassword(password, user?.password_hash ?? DUMMY_HASH)
      if (user === undefined || !valid) {
        await app.db.insertInto('login_failures').values({ username, address }).execute()
        throw unauthorized('Wrong username or password')
      }
      await app.db.deleteFrom('login_failures').where('username', '=', username).where('address', '=', address).execute()
      // An account deleted after the password check gets no token: the database refuses a token under
      // a deleted user (the toolkit's parent check), and that is a wrong login to the client.
      const issued = await issueToken(app.db, user.id, options.tokenTtlSeconds).catch((error: unknown) => {
        if (isTombstoneError(classifyDatabaseError(error), 'PARENT_DELETED')) throw unauthorized('Wrong username or password')
        throw error
      })
      reply.header('cache-control', 'no-store')
      return { access_token: issued.token, token_type: 'bearer' as const, expires_in: issued.expiresIn }
    },
  )
}
