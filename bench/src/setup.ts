import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { SoftDeletePlugin } from '@tombstone/kysely'
import { migrate } from '../../apps/blog/src/db/migrate.ts'
import type { Database } from '../../apps/blog/src/db/schema.ts'
import { blogSoftDeletes } from '../../apps/blog/src/db/soft-deletes.ts'
import type { Server } from './postgres.ts'

export interface BenchDatabase {
  readonly url: string
  /** With the plugin. */
  readonly db: Kysely<Database>
  /** Kysely without any plugin. */
  readonly plain: Kysely<Database>
  /** The pg pool under both, for hand-written SQL. */
  readonly pool: pg.Pool
  close(): Promise<void>
}

/** A fresh database with the blog's schema (toolkit indexes, guard, audit). */
export async function blogDatabase(server: Server, name: string, poolSize = 10): Promise<BenchDatabase> {
  const url = await server.createDatabase(name)
  const pool = new pg.Pool({ connectionString: url, max: poolSize })
  pool.on('error', () => {})
  const dialect = new PostgresDialect({ pool })
  const plain = new Kysely<Database>({ dialect })
  const db = plain.withPlugin(new SoftDeletePlugin(blogSoftDeletes(30)))
  await migrate(plain)
  return {
    url,
    db,
    plain,
    pool,
    close: async () => {
      await plain.destroy()
    },
  }
}
