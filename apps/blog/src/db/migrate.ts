import { sql, type Kysely } from 'kysely'
import { Migrator, type Migration, type MigrationResultSet } from 'kysely/migration'
import * as initial from './migrations/001-initial.ts'
import * as invariants from './migrations/002-database-invariants.ts'
import * as bootstrapState from './migrations/003-bootstrap-state.ts'
import * as registrations from './migrations/004-registrations.ts'
import * as legalHolds from './migrations/005-legal-holds.ts'
import * as legalHoldsSqlite from './migrations/006-legal-holds-sqlite.ts'
import * as triggerPlans from './migrations/007-trigger-plans.ts'
import * as grantsPrune from './migrations/008-grants-prune.ts'
import * as childrenCheck from './migrations/009-children-check.ts'
import * as sqliteInitial from './migrations/sqlite/001-initial.ts'
import * as sqliteBootstrapState from './migrations/sqlite/003-bootstrap-state.ts'
import * as sqliteRegistrations from './migrations/sqlite/004-registrations.ts'
import * as sqliteLegalHolds from './migrations/sqlite/005-legal-holds.ts'
import * as sqliteLegalHoldsSqlite from './migrations/sqlite/006-legal-holds-sqlite.ts'
import * as sqliteTriggerPlans from './migrations/sqlite/007-trigger-plans.ts'
import * as sqliteGrantsPrune from './migrations/sqlite/008-grants-prune.ts'
import * as sqliteChildrenCheck from './migrations/sqlite/009-children-check.ts'
import { isSqlite } from './sql-dialect.ts'

/** Every migration, in order. Statically imported, so that bundles and tests see the same list. */
export const MIGRATIONS: Readonly<Record<string, Migration>> = {
  '001-initial': initial,
  '002-database-invariants': invariants,
  '003-bootstrap-state': bootstrapState,
  '004-registrations': registrations,
  '005-legal-holds': legalHolds,
  '006-legal-holds-sqlite': legalHoldsSqlite,
  '007-trigger-plans': triggerPlans,
  '008-grants-prune': grantsPrune,
  '009-children-check': childrenCheck,
}

/**
 * SQLite's forms of the same migrations, under the same names (002 is dialect-neutral: the
 * toolkit's `installSoftDeletes` writes each dialect's SQL).
 */
export const SQLITE_MIGRATIONS: Readonly<Record<string, Migration>> = {
  '001-initial': sqliteInitial,
  '002-database-invariants': invariants,
  '003-bootstrap-state': sqliteBootstrapState,
  '004-registrations': sqliteRegistrations,
  '005-legal-holds': sqliteLegalHolds,
  '006-legal-holds-sqlite': sqliteLegalHoldsSqlite,
  '007-trigger-plans': sqliteTriggerPlans,
  '008-grants-prune': sqliteGrantsPrune,
  '009-children-check': sqliteChildrenCheck,
}

/** The migrations for the database `db` speaks. */
export function migrationsFor(db: Kysely<any>): Readonly<Record<string, Migration>> {
  return isSqlite(db) ? SQLITE_MIGRATIONS : MIGRATIONS
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
  const migrator = new Migrator({ db, provider: { getMigrations: async () => ({ ...migrationsFor(db) }) } })
  const result = await migrator.migrateToLatest()
  if (result.error !== undefined) throw result.error
  return result
}

/** The schema is missing or behind the code: the service will not run on it. */
export class SchemaOutdatedError extends Error {
  readonly pending: readonly string[]
  constructor(pending: readonly string[]) {
    super(
      `The database schema is behind this version (not applied: ${pending.join(', ')}); run \`npm run cli -- migrate\` as the schema's owner, then start again`,
    )
    this.name = 'SchemaOutdatedError'
    this.pending = pending
  }
}

/**
 * The migrations this code has that the database has not applied (all of them on an empty database).
 * Reads only, so it runs as the application role and on a standby.
 *
 * @example
 * ```ts
 * if ((await pendingMigrations(db)).length > 0) throw new SchemaOutdatedError(...)
 * ```
 */
export async function pendingMigrations(db: Kysely<any>): Promise<string[]> {
  const present = isSqlite(db)
    ? await sql<{ found: number }>`select count(*) as found from sqlite_master where type = 'table' and name = 'kysely_migration'`.execute(db)
    : await sql<{ found: boolean }>`select to_regclass('kysely_migration') is not null as found`.execute(db)
  if (present.rows[0]?.found !== true && present.rows[0]?.found !== 1) return Object.keys(MIGRATIONS)
  const applied = await sql<{ name: string }>`select name from kysely_migration`.execute(db)
  const done = new Set(applied.rows.map((row) => row.name))
  return Object.keys(MIGRATIONS).filter((name) => !done.has(name))
}
