import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { sql } from 'kysely'
import { Type } from 'typebox'
import { HttpProblem, problemResponses, unauthorized } from '@tombstone/fastify'
import { classifyDatabaseError, inTransaction, isTombstoneError } from '@tombstone/kysely'
import { dummyHash, hashPassword, needsRehash, verifyPassword } from '../services/passwords.ts'
import { issueToken, revokeToken } from '../services/tokens.ts'
import { bySql, countAll, sqliteNowPlusSeconds, transactionLock } from '../db/sql-dialect.ts'

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

export async function authRoutes(
  instance: FastifyInstance,
  options: { maxFailures: number; tokenTtlSeconds: number; passwordCost: number },
): Promise<void> {
  // Handlers are typed from their schemas (params, querystring, body).
  const app = instance.withTypeProvider<TypeBoxTypeProvider>()
  const dummy = dummyHash(options.passwordCost)
  app.post(
    '/auth/token',
    {
      schema: {
        tags: ['auth'],
        summary: 'Exchange a username and password for a bearer token (JSON or form-encoded)',
        operationId: 'createToken',
        description: 'Public. Send the token as `Authorization: Bearer <access_token>`. Repeated failures per username and address are throttled (429 with Retry-After).',
        body: Credentials,
        response: {
          200: Type.Object(
            { access_token: Type.String(), token_type: Type.Literal('bearer'), expires_in: Type.Integer({ description: 'Seconds' }) },
            { description: 'A bearer token', examples: [{ access_token: 'tok_3q2p…', token_type: 'bearer', expires_in: 3600 }] },
          ),
          ...problemResponses(400, 401, 415, 422, 429),
        },
      },
    },
    async (request, reply) => {
      const { username, password } = request.body
      const address = request.ip
      // One attempt at a time per username and address (a transaction-level advisory lock): the
      // count, the password check and the recorded failure happen together, so concurrent attempts
      // cannot all pass the check before any failure is recorded.
      const outcome = await inTransaction(app.db, async (trx) => {
          await transactionLock(trx, `tombstone:login:${username}`, address)
          const recent = await trx
            .selectFrom('login_failures')
            .select([
              countAll(trx).as('failures'),
              bySql(
                trx,
                () => sql<number>`coalesce(ceil(extract(epoch from (min(at) + make_interval(mins => ${WINDOW_MINUTES}) - now()))), 0)::int`,
                // Seconds until the oldest counted failure leaves the window, rounded up.
                () => sql<number>`coalesce(cast(ceil((julianday(min(at)) - julianday('now')) * 86400 + ${WINDOW_MINUTES * 60}) as integer), 0)`,
              ).as('retry_after'),
            ])
            .where('username', '=', username)
            .where('address', '=', address)
            .where('at', '>', bySql(trx, () => sql<Date>`now() - make_interval(mins => ${WINDOW_MINUTES})`, () => sqliteNowPlusSeconds(-WINDOW_MINUTES * 60)))
            .executeTakeFirstOrThrow()
          if (recent.failures >= options.maxFailures) return { kind: 'throttled' as const, retryAfter: Math.max(1, recent.retry_after) }
          // Deleted users are invisible here: their credentials stop working.
          const user = await trx.selectFrom('users').select(['id', 'password_hash']).where('username', '=', username).executeTakeFirst()
          const valid = await verifyPassword(password, user?.password_hash ?? dummy)
          if (user === undefined || !valid) {
            await trx.insertInto('login_failures').values({ username, address }).execute()
            return { kind: 'wrong' as const }
          }
          await trx.deleteFrom('login_failures').where('username', '=', username).where('address', '=', address).execute()
          // A hash made with older parameters is upgraded now, while the password is at hand.
          if (needsRehash(user.password_hash, options.passwordCost)) {
            await trx.updateTable('users').set({ password_hash: await hashPassword(password, options.passwordCost) }).where('id', '=', user.id).execute()
          }
          return { kind: 'ok' as const, issued: await issueToken(trx, user.id, options.tokenTtlSeconds) }
        })
        .catch((error: unknown) => {
          // An account deleted after the password check gets no token: the database refuses a token
          // under a deleted user (the toolkit's parent check), and that is a wrong login to the client.
          if (isTombstoneError(classifyDatabaseError(error), 'PARENT_DELETED')) return { kind: 'wrong' as const }
          throw error
        })
      if (outcome.kind === 'throttled') {
        throw new HttpProblem('too-many-requests', `Too many failed logins for ${username}; try again later`, {
          headers: { 'retry-after': String(outcome.retryAfter) },
        })
      }
      if (outcome.kind === 'wrong') throw unauthorized('Wrong username or password')
      const issued = outcome.issued
      reply.header('cache-control', 'no-store')
      return { access_token: issued.token, token_type: 'bearer' as const, expires_in: issued.expiresIn }
    },
  )

  app.post(
    '/auth/logout',
    {
      schema: {
        tags: ['auth'],
        summary: 'Revoke the bearer token of this request (signing out); other tokens of the account stay valid',
        operationId: 'revokeToken',
        description: 'Signs out this token only; deleting the account revokes them all.',
        security: [{ bearer: [] }],
        response: { 204: Type.Null({ description: 'Revoked' }), ...problemResponses(401) },
      },
    },
    async (request, reply) => {
      if (request.actor === undefined) throw unauthorized('This endpoint needs a bearer token')
      const token = /^Bearer (.+)$/i.exec(request.headers.authorization ?? '')?.[1] ?? ''
      await revokeToken(app.db, token)
      return reply.code(204).send(null)
    },
  )
}
