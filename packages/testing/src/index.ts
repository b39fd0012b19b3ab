/**
 * The test harness: every suite runs once per database kind, each against a fresh database.
 * PGlite always; PostgreSQL when `TEST_POSTGRES_URL` names a server (CI gives one), and then a
 * throwaway database is created per call and dropped after. Suites that claim other dialects ask
 * {@link dialectKinds} instead: SQLite always (node:sqlite, a temporary file), MariaDB/MySQL when
 * `TEST_MYSQL_URL` names a server.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { MysqlAdapter, MysqlDialect, PostgresDialect, sql, SqliteAdapter, type Dialect, type Kysely, type RawBuilder } from 'kysely'
import { createPool as createMysqlPool, createConnection as createMysqlConnection, type Pool as MysqlPool } from 'mysql2'
import pg from 'pg'
import { PGliteDialect } from '@tombstone/kysely/pglite'
import { NodeSqliteDialect } from '@tombstone/kysely/sqlite'

/** The PostgreSQL kinds most suites are parameterised over. */
export type PostgresKind = 'pglite' | 'postgres'
/** Every database kind the harness can create. */
export type DatabaseKind = PostgresKind | 'sqlite' | 'mysql'

/** The kinds to run: PGlite, and PostgreSQL when a server is given. */
export function databaseKinds(): PostgresKind[] {
  const kinds: PostgresKind[] = ['pglite']
  if (postgresUrl() !== undefined) kinds.push('postgres')
  else if (process.env.REQUIRE_POSTGRES === '1') throw new Error('REQUIRE_POSTGRES=1 but TEST_POSTGRES_URL is not set')
  return kinds
}

/**
 * Every dialect's kinds, for suites that claim them all: the PostgreSQL kinds, SQLite, and MariaDB
 * or MySQL when `TEST_MYSQL_URL` is set (`REQUIRE_MYSQL=1` makes its absence an error, as CI does).
 */
export function dialectKinds(): DatabaseKind[] {
  const kinds: DatabaseKind[] = [...databaseKinds(), 'sqlite']
  if (mysqlUrl() !== undefined) kinds.push('mysql')
  else if (process.env.REQUIRE_MYSQL === '1') throw new Error('REQUIRE_MYSQL=1 but TEST_MYSQL_URL is not set')
  return kinds
}

/** The admin URL of the MariaDB/MySQL server for tests (`mysql://root@127.0.0.1:3306/mysql`), if any. */
export function mysqlUrl(): string | undefined {
  const url = process.env.TEST_MYSQL_URL
  return url === undefined || url === '' ? undefined : url
}

/** The admin URL of the PostgreSQL server for tests, if any. */
export function postgresUrl(): string | undefined {
  const url = process.env.TEST_POSTGRES_URL
  return url === undefined || url === '' ? undefined : url
}

/** A fresh, empty database of one kind. */
export interface FreshDatabase {
  readonly kind: DatabaseKind
  /** A `postgres://` or `mysql://` URL, the SQLite file's path, or undefined (PGlite, in memory). */
  readonly url: string | undefined
  /** The PGlite instance (PGlite only). */
  readonly pglite: PGlite | undefined
  /** A new dialect on this database; destroying a Kysely instance built on it leaves the database. */
  dialect(options?: { poolSize?: number }): Dialect
  /** Drops the database (PostgreSQL, MySQL), closes it (PGlite) or removes its file (SQLite). */
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
  if (kind === 'sqlite') return freshSqlite()
  if (kind === 'mysql') return freshMysql()
  const adminUrl = postgresUrl()
  if (adminUrl === undefined) throw new Error('TEST_POSTGRES_URL is not set')
  const name = databaseName()
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

function databaseName(): string {
  return `tombstone_test_${process.pid}_${Date.now().toString(36)}_${++counter}`
}

/** A fresh SQLite database in a file of its own (a file, not `:memory:`, so that it can be reopened). */
async function freshSqlite(): Promise<FreshDatabase> {
  const folder = await mkdtemp(join(tmpdir(), 'tombstone-test-sqlite-'))
  const file = join(folder, 'test.db')
  return {
    kind: 'sqlite',
    url: file,
    pglite: undefined,
    dialect: () => new NodeSqliteDialect({ database: file }),
    drop: () => rm(folder, { recursive: true, force: true }),
  }
}

/** A fresh MariaDB/MySQL database on the server `TEST_MYSQL_URL` names, dropped after. */
async function freshMysql(): Promise<FreshDatabase> {
  const adminUrl = mysqlUrl()
  if (adminUrl === undefined) throw new Error('TEST_MYSQL_URL is not set')
  const name = databaseName()
  const admin = createMysqlConnection({ uri: adminUrl }).promise()
  try {
    await admin.query(`create database \`${name}\` character set utf8mb4 collate utf8mb4_bin`)
  } finally {
    await admin.end()
  }
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  const pools: MysqlPool[] = []
  return {
    kind: 'mysql',
    url: url.toString(),
    pglite: undefined,
    dialect: (options) => {
      const pool = createMysqlPool({ uri: url.toString(), connectionLimit: options?.poolSize ?? 10, supportBigNumbers: true, dateStrings: false })
      pools.push(pool)
      return new MysqlDialect({ pool })
    },
    drop: async () => {
      await Promise.allSettled(pools.map((pool) => new Promise<void>((resolve) => pool.end(() => resolve()))))
      const client = createMysqlConnection({ uri: adminUrl }).promise()
      try {
        await client.query(`drop database if exists \`${name}\``)
      } finally {
        await client.end()
      }
    },
  }
}

/**
 * Runs one statement as if time had passed: with the database's triggers off for it
 * (`session_replication_role = replica`, superuser only), so that a test can move a deleted row's
 * `deleted_at` or `purge_at` into the past, which the stamping trigger refuses to anyone else.
 */
export async function backdate(db: Kysely<any>, statement: RawBuilder<unknown>): Promise<void> {
  if (db.getExecutor().adapter instanceof SqliteAdapter) {
    // SQLite cannot switch triggers off: drop them and create them again, in one transaction (DDL is transactional).
    await db.transaction().execute(async (trx) => {
      const triggers = (await sql<{ name: string; sql: string }>`select name, sql from sqlite_master where type = 'trigger'`.execute(trx)).rows
      for (const trigger of triggers) await sql`drop trigger ${sql.id(trigger.name)}`.execute(trx)
      await statement.execute(trx)
      for (const trigger of triggers) await sql.raw(trigger.sql).execute(trx)
    })
    return
  }
  if (db.getExecutor().adapter instanceof MysqlAdapter) {
    // MariaDB cannot switch triggers off either, and its DDL commits: drop them, run, create them again
    // (the test's own database, so nobody else writes meanwhile). For an UPDATE of one table, only
    // that table's triggers (each is DDL: the fewer, the faster), recreated in their order.
    const updated = /^\s*update\s+`?([A-Za-z_][A-Za-z0-9_$]*)`?\s/i.exec(statement.compile(db).sql)?.[1]
    const names = (
      await sql<{ name: string }>`select trigger_name as name from information_schema.triggers where trigger_schema = database()
        ${updated === undefined ? sql`` : sql`and event_object_table = ${updated}`}
        order by event_object_table, action_timing, event_manipulation, action_order`.execute(db)
    ).rows
    const definitions: string[] = []
    for (const { name } of names) {
      const shown = await sql<Record<string, string>>`show create trigger ${sql.id(name)}`.execute(db)
      definitions.push(shown.rows[0]?.['SQL Original Statement'] as string)
    }
    for (const { name } of names) await sql`drop trigger ${sql.id(name)}`.execute(db)
    try {
      await statement.execute(db)
    } finally {
      for (const definition of definitions) await sql.raw(definition).execute(db)
    }
    return
  }
  await db.transaction().execute(async (trx) => {
    await sql`set local session_replication_role = replica`.execute(trx)
    await statement.execute(trx)
  })
}
