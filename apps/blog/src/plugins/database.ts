import fp from 'fastify-plugin'
import type { Kysely } from 'kysely'
import type { SoftDeleteDefinition } from '@tombstone/kysely'
import type { Config } from '../config.ts'
import { connect, type DatabaseHandle } from '../db/connect.ts'
import { migrate, pendingMigrations, SchemaOutdatedError } from '../db/migrate.ts'
import type { Database } from '../db/schema.ts'
import { blogSoftDeletes } from '../db/soft-deletes.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The plugin-equipped Kysely instance: deleted rows are invisible unless asked for. */
    db: Kysely<Database>
    /** The soft-delete declaration the database is used with. */
    softDeletes: SoftDeleteDefinition<Database>
    /** Which database this is, for logs and `/healthz`. */
    databaseInfo: { kind: DatabaseHandle['kind']; location: string }
  }
}

/**
 * Opens the database `config.databaseUrl` names, runs the migrations (or, with `MIGRATE_ON_START`
 * off, checks that none is pending), and closes it when the app closes.
 */
export const databasePlugin = fp<{ config: Config }>(
  async (app, { config }) => {
    const softDeletes = blogSoftDeletes(config.retentionDays)
    const handle = await connect(config.databaseUrl, softDeletes, {
      poolSize: config.poolSize,
      statementTimeoutMs: config.statementTimeoutMs,
      lockTimeoutMs: config.lockTimeoutMs,
      acquireTimeoutMs: config.acquireTimeoutMs,
    })
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
    app.decorate('db', handle.db)
    app.decorate('softDeletes', softDeletes)
    app.decorate('databaseInfo', { kind: handle.kind, location: handle.location })
    app.addHook('onClose', async () => {
      await handle.close()
    })
  },
  { name: 'database', fastify: '5.x' },
)
