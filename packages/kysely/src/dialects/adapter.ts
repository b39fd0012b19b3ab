import { MysqlAdapter, SqliteAdapter, type Kysely } from 'kysely'
import type { RowKey } from '../errors.ts'

/**
 * The SQL families the toolkit speaks. PostgreSQL (and PGlite) holds every guarantee with
 * statement-level triggers, transaction ids and data-modifying CTEs; SQLite and MariaDB/MySQL hold
 * the same guarantees with row triggers and several statements in one transaction (see
 * docs/dialects.md for what each can and cannot bind).
 */
export type DialectKind = 'postgres' | 'sqlite' | 'mysql'

/** Kinds of {@link DialectKind}, for exhaustive tables. */
export const DIALECT_KINDS = ['postgres', 'sqlite', 'mysql'] as const satisfies readonly DialectKind[]

/**
 * The dialect of a Kysely instance, read from its adapter: Kysely's `SqliteAdapter` (any SQLite
 * driver: node:sqlite, better-sqlite3, libSQL, D1) is `'sqlite'`, `MysqlAdapter` is `'mysql'`,
 * anything else `'postgres'`.
 *
 * @example
 * ```ts
 * import { Kysely } from 'kysely'
 * import { dialectKindOf } from '@tombstone/kysely'
 * import { NodeSqliteDialect } from '@tombstone/kysely/sqlite'
 *
 * const db = new Kysely<any>({ dialect: new NodeSqliteDialect({ database: ':memory:' }) })
 * dialectKindOf(db) // 'sqlite'
 * await db.destroy()
 * ```
 */
export function dialectKindOf(db: Kysely<any>): DialectKind {
  const adapter = db.getExecutor().adapter
  if (adapter instanceof SqliteAdapter) return 'sqlite'
  if (adapter instanceof MysqlAdapter) return 'mysql'
  return 'postgres'
}

/** Bigints travel as strings; drivers do not serialize them inside arrays or JSON. */
export function plainKey(key: RowKey): string | number {
  return typeof key === 'bigint' ? key.toString() : key
}
