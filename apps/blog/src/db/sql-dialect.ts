/**
 * The few SQL fragments of the service that PostgreSQL and SQLite spell differently. Each helper
 * returns PostgreSQL's text unchanged on PostgreSQL (and PGlite), and SQLite's equivalent on
 * SQLite, chosen from the Kysely instance's adapter (`dialectKindOf`). Timestamps on SQLite are ISO
 * 8601 text in UTC with milliseconds (what the toolkit and `NodeSqliteDialect` write), so they
 * compare as text and need no cast.
 *
 * @module
 */
import {
  OperationNodeTransformer,
  sql,
  type Kysely,
  type KyselyPlugin,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type QueryResult,
  type RawBuilder,
  type RootOperationNode,
  type SelectQueryNode,
  type UnknownRow,
} from 'kysely'
import { dialectKindOf } from '@tombstone/kysely'

/** True when `db` (or a transaction of it) speaks SQLite. */
export function isSqlite(db: Kysely<any>): boolean {
  return dialectKindOf(db) === 'sqlite'
}

/** SQLite's clock, as the toolkit stamps (`2026-01-02T03:04:05.678Z`), shifted by `modifiers`. */
function sqliteNow(modifiers: readonly string[] = []): RawBuilder<Date> {
  return sql<Date>`strftime('%Y-%m-%dT%H:%M:%fZ', 'now'${sql.raw(modifiers.map((m) => `, '${m}'`).join(''))})`
}

/**
 * The current time: `now()` on PostgreSQL.
 *
 * @example
 * ```ts
 * await db.updateTable('tokens').set({ revoked_at: now(db) }).where('id', '=', id).execute()
 * ```
 */
export function now(db: Kysely<any>): RawBuilder<Date> {
  return isSqlite(db) ? sqliteNow() : sql<Date>`now()`
}

/**
 * The current time minus a fixed span. `postgres` is PostgreSQL's expression, kept verbatim (e.g.
 * `now() - interval '1 day'`); `sqliteModifier` is SQLite's date modifier for the same span
 * (`'-1 day'`).
 *
 * @example
 * ```ts
 * db.deleteFrom('registrations').where('at', '<', ago(db, sql`now() - interval '1 day'`, '-1 day'))
 * ```
 */
export function ago(db: Kysely<any>, postgres: RawBuilder<unknown>, sqliteModifier: string): RawBuilder<Date> {
  return isSqlite(db) ? sqliteNow([sqliteModifier]) : (postgres as RawBuilder<Date>)
}

/** The current time shifted by a whole number of seconds (negative: earlier), for SQLite. */
export function sqliteNowPlusSeconds(seconds: number): RawBuilder<Date> {
  return sqliteNow([`${Math.trunc(seconds) >= 0 ? '+' : ''}${Math.trunc(seconds)} seconds`])
}

/**
 * Drops `FOR UPDATE` / `FOR SHARE` (and their `NOWAIT` / `SKIP LOCKED`) from selects: SQLite has
 * no row locks, and needs none, since every writing transaction starts with `begin immediate` and
 * holds the database's only write lock until it ends. Installed on SQLite connections only.
 */
export class SqliteRowLocksPlugin implements KyselyPlugin {
  readonly #transformer = new DropRowLocks()
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    return this.#transformer.transformNode(args.node)
  }
  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result
  }
}

const ROW_LOCKS = new Set(['ForUpdate', 'ForShare', 'ForKeyShare', 'ForNoKeyUpdate', 'SkipLocked', 'NoWait'])

class DropRowLocks extends OperationNodeTransformer {
  protected override transformSelectQuery(node: SelectQueryNode): SelectQueryNode {
    const transformed = super.transformSelectQuery(node)
    if (transformed.endModifiers === undefined) return transformed
    const kept = transformed.endModifiers.filter((modifier) => !(modifier.kind === 'SelectModifierNode' && modifier.modifier !== undefined && ROW_LOCKS.has(modifier.modifier)))
    return Object.freeze({ ...transformed, endModifiers: kept.length === 0 ? undefined : Object.freeze(kept) })
  }
}

/**
 * One fragment in each dialect's words: `postgres` on PostgreSQL and PGlite (verbatim, so their
 * SQL does not change), `sqlite` on SQLite. Both are built lazily, so a fragment is only built for
 * the dialect that runs it.
 *
 * @example
 * ```ts
 * const count = bySql(db, () => sql<number>`count(*)::int`, () => sql<number>`count(*)`)
 * ```
 */
export function bySql<T>(db: Kysely<any>, postgres: () => RawBuilder<T>, sqlite: () => RawBuilder<T>): RawBuilder<T> {
  return isSqlite(db) ? sqlite() : postgres()
}

/** `count(*)` as a JavaScript number: `count(*)::int` on PostgreSQL (a bigint otherwise). */
export function countAll(db: Kysely<any>): RawBuilder<number> {
  return bySql(db, () => sql<number>`count(*)::int`, () => sql<number>`count(*)`)
}

/**
 * Serialises work on one key for the rest of the transaction: `pg_advisory_xact_lock` on
 * PostgreSQL (`keys` hashed with `hashtext`, one or two of them, as the lock's two halves). On SQLite
 * nothing to do: a writing transaction began with `begin immediate` and holds the database's only
 * write lock until it ends, so every such transaction already runs alone.
 */
export async function transactionLock(trx: Kysely<any>, ...keys: [string] | [string, string]): Promise<void> {
  if (isSqlite(trx)) return
  if (keys.length === 1) await sql`select pg_advisory_xact_lock(hashtext(${keys[0]}))`.execute(trx)
  else await sql`select pg_advisory_xact_lock(hashtext(${keys[0]}), hashtext(${keys[1]}))`.execute(trx)
}
