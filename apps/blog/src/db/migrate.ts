import type { Kysely } from 'kysely'
import { Migrator, type Migration, type MigrationResultSet } from 'kysely/migration'
import * as initial from './migrations/001-initial.ts'
import * as invariants from './migrations/002-database-invariants.ts'

/** Every migration, in order. Statically imported, so that bundles and tests see the same list. */
export const MIGRATIONS: Readonly<Record<string, Migration>> = {
  '001-initial': initial,
  '002-database-invariants': invariants,
}

/**
 * Brings the schema up to date. Safe to run at every start, by several instances at once (the
 * migrator holds a lock).
 *
 * @example
 * ```ts
 * await migrate(db)
 * ```
 */
export async function migrate(db: Kysely<any>): Promise<MigrationResultSet> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => ({ ...MIGRATIONS }) } })
  const result = await migrator.migrateToLatest()
  if (result.error !== undefined) throw result.error
  return result
}
