/**
 * The test harness: every suite runs once per database kind, each against a fresh database.
 * PGlite always; PostgreSQL when `TEST_POSTGRES_URL` names a server (CI gives one), and then a
 * throwaway database is created per call and dropped after.
 */
import { PGlite } from '@electric-sql/pglite'
import { PostgresDialect, type Dialect } from 'kysely'
import pg from 'pg'
import { PGliteDialect } from '@tombstone/kysely/pglite'

/** The database kinds a suite is parameterised over. */
export type DatabaseKind = 'pglite' | 'postgres'

/** The kinds to run: PGlite, and PostgreSQL when a server is given. */
export function databaseKinds(): DatabaseKind[] {
  const kinds: DatabaseKind[] = ['pglite']
  if (postgresUrl() !== undefined) kinds.push('postgres')
  else if (process.env.REQUIRE_POSTGRES === '1') throw new Error('REQUIRE_POSTGRES=1 but TEST_POSTGRES_URL is not set')
  return kinds
}

/** The admin URL of the PostgreSQL server for tests, if any. */
export function postgresUrl(): string | undefined {
  const url = process.env.TEST_POSTGRES_URL
  return url === undefined || url === '' ? undefined : url
}

/** A fresh, empty database of one kind. */
export interface FreshDatabase {
  readonly kind: DatabaseKind
  /** A `postgres://` URL (PostgreSQL) or undefined (PGlite, in memory). */
  readonly url: string | undefined
  /** The PGlite instance (PGlite only). */
  readonly pglite: PGlite | undefined
  /** A new dialect on this database; destroying a Kysely instance built on it leaves the database. */
  dialect(options?: { poolSize?: number }): Dialect
  /** Drops the database (PostgreSQL) or closes it (PGlite). */
  drop(): Promise<void>
}

let counter = 0

/** Creates a fresh database of the given kind. */
export async function freshDatabase(kind: DatabaseKind): Promise<FreshDatabase> {
  if (kind === 'pglite') {
    const pglite = await PGlite.create()
    return {
      kind,
      url: undefined,
      pglite,
      dialect: () => new PGliteDialect({ pglite, closeOnDestroy: false }),
      drop: () => pglite.close(),
    }
  }
  const adminUrl = postgresUrl()
  if (adminUrl === undefined) throw new Error('TEST_POSTGRES_URL is not set')
  const name = `tombstone_test_${process.pid}_${Date.now().toString(36)}_${++counter}`
  const admin = new pg.Client({ connectionString: adminUrl })
  await admin.connect()
  try {
    await admin.query(`create database "${name}"`)
  } finally {
    await admin.end()
  }
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  const pools: pg.Pool[] = []
  return {
    kind,
    url: url.toString(),
    pglite: undefined,
    dialect: (options) => {
      const pool = new pg.Pool({ connectionString: url.toString(), max: options?.poolSize ?? 10 })
      // Dropping the database terminates connections still closing; that is expected, not a failure.
      pool.on('error', () => {})
      pools.push(pool)
      return new PostgresDialect({ pool })
    },
    drop: async () => {
      await Promise.allSettled(pools.map((pool) => (pool.ended ? undefined : pool.end())))
      const client = new pg.Client({ connectionString: adminUrl })
      await client.connect()
      try {
        await client.query(`drop database if exists "${name}" with (force)`)
      } finally {
        await client.end()
      }
    },
  }
}
