import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Kysely } from 'kysely'
import type { SoftDeleteDefinition } from '@tombstone/kysely'
import type { Config } from '../config.ts'
import { connect, type DatabaseHandle } from '../db/connect.ts'
import { migrate, pendingMigrations, SchemaOutdatedError } from '../db/migrate.ts'
import {
  CONSISTENCY_COOKIE,
  CONSISTENCY_HEADER,
  consistencyTokenOf,
  READ_SOURCE_HEADER,
  REPLICA_READS,
  ReadRouter,
} from '../db/read-routing.ts'
import type { Database } from '../db/schema.ts'
import { blogSoftDeletes } from '../db/soft-deletes.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** Who served this request's routed reads, when a replica is configured. */
    readSource: 'replica' | 'primary' | undefined
  }
  interface FastifyInstance {
    /** The plugin-equipped Kysely instance: deleted rows are invisible unless asked for. */
    db: Kysely<Database>
    /** The soft-delete declaration the database is used with. */
    softDeletes: SoftDeleteDefinition<Database>
    /** Which database this is (and its read replica, if any), for logs and `/healthz`. */
    databaseInfo: { kind: DatabaseHandle['kind']; location: string; replica?: string }
    /** Where reads go: the replica (`DATABASE_READ_URL`) or the primary. */
    reads: ReadRouter
    /**
     * Runs a route's reads (reads only: they may run twice) on the replica when the route is one of
     * {@link REPLICA_READS}, the caller is not an admin, and the replica has replayed the caller's
     * consistency token; else on the primary ({@link FastifyInstance.db}).
     *
     * @example
     * ```ts
     * const post = await app.read(request, (db) => db.selectFrom('posts').selectAll().where('id', '=', id).executeTakeFirst())
     * ```
     */
    read<T>(request: FastifyRequest, work: (db: Kysely<Database>) => Promise<T>): Promise<T>
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/**
 * Opens the database `config.databaseUrl` names, runs the migrations (or, with `MIGRATE_ON_START`
 * off, checks that none is pending), and closes it when the app closes.
 */
export const databasePlugin = fp<{ config: Config }>(
  async (app, { config }) => {
    const softDeletes = blogSoftDeletes(config.retentionDays)
    const options = {
      poolSize: config.poolSize,
      statementTimeoutMs: config.statementTimeoutMs,
      lockTimeoutMs: config.lockTimeoutMs,
      acquireTimeoutMs: config.acquireTimeoutMs,
      preparedStatements: config.preparedStatements,
    }
    const handle = await connect(config.databaseUrl, softDeletes, options)
    try {
      if (config.migrateOnStart) {
        await migrate(handle.db)
      } else {
        const pending = await pendingMigrations(handle.db)
        if (pending.length > 0) throw new SchemaOutdatedError(pending)
      }
    } catch (error) {
      await handle.close()
      throw error
    }
    // The replica is opened lazily by the pool: a replica that is away at start only sends reads to
    // the primary (and is tried again), it does not stop the service.
    const replica = config.databaseReadUrl === undefined ? undefined : await connect(config.databaseReadUrl, softDeletes, options)
    const reads = new ReadRouter(handle.db, replica?.db, (error) => app.log.warn({ err: error }, 'the read replica does not answer; reading from the primary'))
    app.decorate('db', handle.db)
    app.decorate('softDeletes', softDeletes)
    app.decorate('databaseInfo', { kind: handle.kind, location: handle.location, ...(replica === undefined ? {} : { replica: replica.location }) })
    app.decorate('reads', reads)
    app.decorate('read', async function read<T>(request: FastifyRequest, work: (db: Kysely<Database>) => Promise<T>): Promise<T> {
      if (!reads.hasReplica || !REPLICA_READS.has(`${request.method} ${request.routeOptions.url ?? ''}`)) return work(handle.db)
      if (request.actor?.isAdmin === true) {
        request.readSource = 'primary'
        return work(handle.db)
      }
      return reads.read(consistencyTokenOf(request.headers), work, (source) => {
        request.readSource = source
      })
    })
    if (reads.hasReplica) {
      app.decorateRequest('readSource', undefined)
      // Read-your-writes: a write's answer carries the primary's WAL position after its commit; a
      // read sending it back is served by the replica only once it has replayed that far.
      app.addHook('onSend', async (request, reply) => {
        if (request.readSource !== undefined) reply.header(READ_SOURCE_HEADER, request.readSource)
        if (SAFE_METHODS.has(request.method) || reply.statusCode >= 400) return
        try {
          const lsn = await reads.position()
          reply.header(CONSISTENCY_HEADER, lsn)
          const secure = request.protocol === 'https' ? '; Secure' : ''
          reply.header('set-cookie', `${CONSISTENCY_COOKIE}=${encodeURIComponent(lsn)}; Path=/; HttpOnly; SameSite=Lax${secure}`)
        } catch (error) {
          // The write committed; the answer says so even if the primary went away just after.
          request.log.warn({ err: error }, 'no WAL position for the consistency token')
        }
      })
    }
    app.addHook('onClose', async () => {
      await replica?.close()
      await handle.close()
    })
  },
  { name: 'database', fastify: '5.x' },
)
