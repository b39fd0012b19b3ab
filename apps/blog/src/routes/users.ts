import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { sql } from 'kysely'
import { Type } from 'typebox'
import { HttpProblem, IdParams, problemResponses, requireActor, softDeleteRoutes } from '@tombstone/fastify'
import { inTransaction, withDeleted } from '@tombstone/kysely'
import type { User } from '../db/schema.ts'
import { hashPassword } from '../services/passwords.ts'
import { revokeTokens } from '../services/tokens.ts'
import { rowEtag, userView } from '../views.ts'
import { conflictOnUniqueViolation, fieldOfConstraint, visibilityFor, touchRestored } from './shared.ts'
import { ago, countAll, transactionLock } from '../db/sql-dialect.ts'

const UserRef = Type.Ref('User')

const NewUser = Type.Object(
  {
    username: Type.String({ pattern: '^[a-z0-9_]{3,32}$', description: '3–32 of a-z, 0-9, _' }),
    email: Type.String({ format: 'email', maxLength: 254 }),
    password: Type.String({ minLength: 8, maxLength: 1024 }),
  },
  { additionalProperties: false },
)

export async function userRoutes(instance: FastifyInstance, options: { passwordCost: number; registerMaxPerHour: number }): Promise<void> {
  // Handlers are typed from their schemas (params, querystring, body).
  const app = instance.withTypeProvider<TypeBoxTypeProvider>()
  app.post(
    '/users',
    {
      schema: {
        tags: ['users'],
        summary: 'Register',
        operationId: 'registerUser',
        description: 'Public; a token is optional. 409 when an active user has the username or email (a deleted one frees them).',
        security: [{}, { bearer: [] }],
        body: NewUser,
        response: { 201: UserRef, ...problemResponses(400, 401, 409, 413, 415, 422, 429) },
      },
    },
    async (request, reply) => {
      const body = request.body
      const password_hash = await hashPassword(body.password, options.passwordCost)
      const address = request.ip
      // At most REGISTER_MAX_PER_HOUR accounts per address and hour; registrations from one address
      // take turns (a transaction-level advisory lock), so a burst cannot slip past the count.
      const user = await inTransaction(app.db, async (trx) => {
        await transactionLock(trx, `tombstone:register:${address}`)
        const recent = await trx
          .selectFrom('registrations')
          .select(countAll(trx).as('n'))
          .where('address', '=', address)
          .where('at', '>', ago(trx, sql`now() - interval '1 hour'`, '-1 hour'))
          .executeTakeFirstOrThrow()
        if (recent.n >= options.registerMaxPerHour) {
          throw new HttpProblem('too-many-requests', 'Too many accounts registered from this address; try again later', { headers: { 'retry-after': '3600' } })
        }
        const created = await trx
          .insertInto('users')
          .values({ username: body.username, email: body.email.toLowerCase(), password_hash })
          .returningAll()
          .executeTakeFirstOrThrow()
          .catch((error: unknown) =>
            conflictOnUniqueViolation(error, (field) =>
              field === 'email' ? 'This email is already used by an active account' : `The ${field} "${body.username}" is taken`,
            ),
          )
        await trx.insertInto('registrations').values({ address }).execute()
        return created
      })
      reply.code(201).header('location', `/users/${user.id}`).header('etag', rowEtag('users', user))
      return userView(user, 'self')
    },
  )

  app.get(
    '/users/me',
    {
      schema: {
        tags: ['users'],
        summary: 'The caller',
        operationId: 'getCurrentUser',
        description: 'The self view of the account the token belongs to.',
        security: [{ bearer: [] }],
        response: { 200: UserRef, ...problemResponses(401) },
      },
    },
    async (request, reply) => {
      const actor = requireActor(request.actor)
      const user = await app.db.selectFrom('users').selectAll().where('id', '=', actor.id).executeTakeFirst()
      if (user === undefined) throw new HttpProblem('not-found', 'Your account does not exist any more')
      reply.header('etag', rowEtag('users', user))
      return userView(user, 'self')
    },
  )

  app.get(
    '/users/:id',
    {
      schema: {
        tags: ['users'],
        summary: 'A user (deleted: 404, unless an admin asks with include_deleted=true)',
        operationId: 'getUser',
        description: 'Public view to anyone; self view to the user and admins (a token is optional).',
        security: [{}, { bearer: [] }],
        params: IdParams,
        querystring: Type.Object({ include_deleted: Type.Optional(Type.Boolean()) }),
        response: { 200: UserRef, ...problemResponses(401, 403, 404, 422) },
      },
    },
    async (request, reply) => {
      const { id } = request.params
      const actor = request.actor
      const visibility = visibilityFor(actor?.isAdmin === true, request.query)
      const user = await app.read(request, (db) =>
        db.selectFrom('users').selectAll().where('id', '=', id).$call(withDeleted({ users: visibility })).executeTakeFirst(),
      )
      if (user === undefined) throw new HttpProblem('not-found', `User ${id} does not exist`)
      reply.header('etag', rowEtag('users', user))
      if (visibility !== 'exclude') return userView(user, 'admin')
      return userView(user, actor !== undefined && (actor.isAdmin || actor.id === user.id) ? 'self' : 'public')
    },
  )

  softDeleteRoutes<User>(app, {
    table: 'users',
    prefix: '/users',
    deletionLink: (id) => `/admin/deletions/${id}`,
    noun: 'user',
    tags: ['users'],
    db: () => app.db,
    actor: (request) => request.actor,
    canDelete: (actor, user) => actor.id === user.id,
    isOwner: (actor, user) => actor.id === user.id,
    adminView: { schema: UserRef, map: (user) => userView(user, 'admin') },
    etag: (user) => rowEtag('users', user),
    restoreSet: touchRestored,
    describeConflict: (error) => {
      const field = fieldOfConstraint(error.constraint)
      return `The ${field} of user ${String(error.id ?? '')} is now used by user #${String(error.conflictingId ?? '?')}`
    },
    // The account's tokens stop working with it, and stay revoked if it is restored.
    onSoftDeleted: async (trx, tables) => revokeTokens(trx, (tables.users ?? []).map(Number)),
    // An installation must keep an admin who can sign in: the last active one cannot be deleted.
    beforeDelete: async (trx, ids) => {
      // Locking every active admin makes two concurrent deletes of the last two admins take turns.
      const admins = await trx.selectFrom('users').select('id').where('role', '=', 'admin').orderBy('id').forUpdate().execute()
      const targets = new Set(ids)
      if (admins.length > 0 && admins.every((admin: { id: number }) => targets.has(admin.id))) {
        throw new HttpProblem('conflict', 'The last active admin cannot be deleted; make another user an admin first')
      }
    },
  })
}
