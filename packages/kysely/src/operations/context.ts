import { sql, type Expression, type Kysely, type RawBuilder, type SqlBool, type Transaction } from 'kysely'
import type { Retention, SoftDeleteDefinition, TableDefinition } from '../definition.ts'
import { classifyDatabaseError, InvalidArgumentError, InvalidConfigurationError, ParentDeletedError, SQLSTATE, sqlStateOf, type RowKey } from '../errors.ts'
import { withDeleted } from '../plugin/markers.ts'
import { SoftDeletePlugin } from '../plugin/soft-delete-plugin.ts'

/**
 * What an operation targets: one key, a list of keys, or the rows a `where` expression selects.
 *
 * @example
 * ```ts
 * const one: Target = { id: 7 }
 * const many: Target = { ids: [7, 8, 9] }             // any iterable: a Set, a generator, map.keys()
 * const some: Target = { where: (eb) => eb('author_id', '=', 3) }
 * ```
 */
export type Target =
  | { readonly id: RowKey; readonly ids?: never; readonly where?: never }
  | { readonly ids: Iterable<RowKey>; readonly id?: never; readonly where?: never }
  | { readonly where: (eb: any) => Expression<SqlBool>; readonly id?: never; readonly ids?: never }

/** Who acted, and why; stamped on deleted rows and written to the audit trail. */
export interface ActorOptions {
  /** Who (a user id, a service name). Stored as given in `deleted_by` and the audit's `actor`. */
  readonly by?: string | number | bigint | null
  /** Why, free text. */
  readonly reason?: string | null
}

/**
 * Rows one operation touched in one table.
 *
 * Keys are reported as the driver returns the table's key column, in every result and error of
 * every operation (a `ParentDeletedError` raised by the database itself, `TB003`, carries text): an `integer` key as a number, a `uuid` or `text` key as a string, a `bigint` key
 * as `pg` returns it (a string, unless you set a type parser) or PGlite (a number). A key you gave
 * that matches no row (`notFound`) is converted by the database to the column's type first, so it
 * has the same type too: `softDelete(db, 'users', { ids: ['1', '2'] })` on an integer key reports
 * `deleted: [1]`, `notFound: [2]`.
 */
export interface TableResult {
  /** The keys, as the driver returns the key column. */
  readonly ids: readonly RowKey[]
  readonly count: number
}

/** @internal */
export interface Context {
  readonly definition: SoftDeleteDefinition<any>
}

/** The definition carried by the plugin on `db`, or a coded error when the plugin is missing. */
export function contextOf(db: Kysely<any>): Context {
  const plugin = db.getExecutor().plugins.find((candidate) => candidate instanceof SoftDeletePlugin)
  if (plugin === undefined) {
    throw new InvalidConfigurationError(
      'This Kysely instance has no SoftDeletePlugin: create it with plugins: [new SoftDeletePlugin(definition)]',
    )
  }
  return { definition: plugin.definition }
}

/** How many times an operation in its own transaction runs when it loses a deadlock or serialization conflict. */
export const TRANSACTION_ATTEMPTS = 3

/**
 * Runs `work` in the caller's transaction, or in a new one. A transaction of its own that loses a
 * deadlock (40P01) or a serialization conflict (40001) was rolled back whole by the database, so it
 * is run again, up to {@link TRANSACTION_ATTEMPTS} times with a short random pause; the last
 * failure is thrown. In the caller's transaction the caller decides (the error is thrown at once).
 * `work` must be safe to run again: everything it did in a failed attempt was rolled back.
 *
 * @example
 * ```ts
 * const comment = await inTransaction(db, async (trx) => {
 *   const post = await trx.selectFrom('posts').selectAll().where('id', '=', 7).executeTakeFirstOrThrow()
 *   return trx.insertInto('comments').values({ post_id: post.id, body: 'hi' }).returningAll().executeTakeFirstOrThrow()
 * })
 * ```
 */
export async function inTransaction<DB, T>(db: Kysely<DB>, work: (trx: Kysely<DB>) => Promise<T>): Promise<T> {
  if (db.isTransaction) return work(db)
  for (let attempt = 1; ; attempt++) {
    let worked = false
    try {
      return await db.transaction().execute(async (trx: Transaction<DB>) => {
        const result = await work(trx)
        worked = true
        return result
      })
    } catch (error) {
      const state = sqlStateOf(error)
      // A deferred check refused the commit (an active row left under a row deleted in it: TB003).
      if (worked && state === SQLSTATE.parentDeleted) throw classifyDatabaseError(error)
      if (attempt >= TRANSACTION_ATTEMPTS || (state !== '40P01' && state !== '40001')) throw error
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * attempt))
    }
  }
}

/** An active row below a row a soft delete without its cascade would stamp. */
export interface ActiveChildEntry {
  readonly table: string
  readonly id: RowKey
  /** The row above it, of the operation's table. */
  readonly parentId: RowKey
}

/**
 * The active rows directly below `keys` of `table`, along each relation from it (its own included),
 * at most `limit` per relation; with `lock`, read with a locking read (which sees a row committed
 * since the transaction's snapshot).
 */
export async function activeChildren(
  trx: Kysely<any>,
  context: Context,
  table: TableDefinition,
  keys: readonly RowKey[],
  keyIn: (column: string, keys: readonly RowKey[]) => RawBuilder<SqlBool>,
  options: { readonly limit: number; readonly lock?: <QB extends { forUpdate(): QB }>(query: QB) => QB },
): Promise<ActiveChildEntry[]> {
  if (keys.length === 0) return []
  const entries: ActiveChildEntry[] = []
  const self = context.definition.selfRelationOf(table.name)
  for (const relation of [...context.definition.childrenOf(table.name), ...(self === undefined ? [] : [self])]) {
    const child = context.definition.table(relation.child)
    const query = trx
      .selectFrom(`${relation.child} as tombstone_child`)
      .select([`tombstone_child.${child.key} as id`, `tombstone_child.${relation.foreignKey} as parent_id`])
      .where(keyIn(`tombstone_child.${relation.foreignKey}`, keys))
      .$call(withDeleted({ tombstone_child: 'exclude' }))
      .orderBy(`tombstone_child.${child.key}`)
      .limit(options.limit)
    const rows = (await (options.lock === undefined ? query : options.lock(query)).execute()) as { id: RowKey; parent_id: RowKey }[]
    for (const row of rows) entries.push({ table: relation.child, id: row.id, parentId: row.parent_id })
  }
  return entries
}

/**
 * Refuses a soft delete that would leave an active row under a row it stamped (`cascade: false`
 * over rows with active children): a `ParentDeletedError` naming the first such child, before the
 * commit, on every dialect. On PostgreSQL the database refuses it at commit anyway, for any client
 * (a deferred constraint trigger per relation, schema/invariants.ts); this is the toolkit's own,
 * immediate check, and SQLite's and MariaDB's only one (they have no deferred triggers). The children
 * are read with a locking read, which sees a child committed since the transaction's snapshot.
 */
export async function refuseActiveChildren(
  trx: Kysely<any>,
  context: Context,
  table: TableDefinition,
  stamped: readonly RowKey[],
  keyIn: (column: string, keys: readonly RowKey[]) => RawBuilder<SqlBool>,
  lock: <QB extends { forUpdate(): QB }>(query: QB) => QB,
): Promise<void> {
  const [first] = await activeChildren(trx, context, table, stamped, keyIn, { limit: 1, lock })
  if (first !== undefined) throw new ParentDeletedError(first.table, first.id, table.name, first.parentId)
}

/** The alias of the table an {@link inLockedKeys} statement writes. */
export const WRITTEN = 'tombstone_written'

/**
 * `key = any(array(<locking subquery>))`: the rows a statement writes, chosen (active ones) and
 * locked in key order by a subquery that PostgreSQL runs once (an InitPlan), then fetched by key
 * alone: the caller names the written table {@link WRITTEN} and leaves it unfiltered
 * (`withDeleted({ [WRITTEN]: 'include' })`), while the read filter still makes the subquery choose
 * active rows, which its `FOR UPDATE` re-checks on the row it locks. The same rows as
 * `key in (<subquery>) and deleted_at is null`, without its plan hazard: when the statistics were
 * taken while the rows were deleted (an autovacuum `ANALYZE` after a big delete, then a restore),
 * the planner guesses one active row, and `key in (…)` became a nested loop re-reading the sorted,
 * locked subquery for every row: a cascade of 10,000 posts took 5 s for its posts, and its 100,000
 * comments had run for 12 minutes when cancelled. Fetched by key, the rows cost an index probe each
 * whatever the guess.
 */
export function inLockedKeys(eb: any, key: string, subquery: unknown): Expression<SqlBool> {
  return eb(key, '=', eb.fn('any', [eb.fn('array', [subquery])]))
}

/** The keys a target names, or undefined for a `where` target. Validates them. */
export function targetKeys(target: Target, table: string): readonly RowKey[] | undefined {
  if ('id' in target && target.id !== undefined) {
    checkKey(target.id, table)
    return [target.id]
  }
  if ('ids' in target && target.ids !== undefined) {
    const ids: unknown = target.ids
    // Any iterable of keys (an array, a Set, a generator); a string is iterable too, but not a list of keys.
    if (typeof ids === 'string' || typeof ids !== 'object' || ids === null || typeof (ids as Iterable<unknown>)[Symbol.iterator] !== 'function') {
      throw new InvalidArgumentError('ids must be an iterable of keys', table)
    }
    const list = [...(ids as Iterable<RowKey>)]
    for (const id of list) checkKey(id, table)
    return [...new Set(list)]
  }
  if ('where' in target && typeof target.where === 'function') return undefined
  throw new InvalidArgumentError('A target is { id }, { ids } or { where }', table)
}

function checkKey(id: unknown, table: string): void {
  const ok =
    (typeof id === 'number' && Number.isFinite(id)) || typeof id === 'bigint' || (typeof id === 'string' && id.length > 0)
  if (!ok) throw new InvalidArgumentError(`Invalid key ${String(id)}`, table)
}

/** `<column> = any(<keys>)`, one parameter whatever the number of keys. */
export function keyIn(column: string, keys: readonly RowKey[]): RawBuilder<SqlBool> {
  return sql<SqlBool>`${sql.ref(column)} = any(${sql.val(keys.map(normalizeKey))})`
}

/** Bigints travel as strings; drivers do not serialize them inside arrays. */
function normalizeKey(key: RowKey): string | number {
  return typeof key === 'bigint' ? key.toString() : key
}

/** The retention as the database's context carries it: an interval's text, or null. */
export function retentionText(retention: Retention | null): string | null {
  if (retention === null) return null
  return `${retention.days ?? 0} days ${retention.hours ?? 0} hours ${retention.minutes ?? 0} minutes ${retention.seconds ?? 0} seconds`
}

/** The expression for `purge_at`: the transaction's time plus the retention, or null. */
export function purgeAtExpression(retention: Retention | null): RawBuilder<Date | null> {
  if (retention === null) return sql<null>`null`
  return sql<Date>`now() + make_interval(days => ${retention.days ?? 0}, hours => ${retention.hours ?? 0}, mins => ${
    retention.minutes ?? 0
  }, secs => ${retention.seconds ?? 0})`
}

/** Keys as the audit stores them. */
export function keyText(key: RowKey): string {
  return typeof key === 'string' ? key : key.toString()
}

/** The value for `deleted_by` / the audit actor. */
export function actorValue(by: ActorOptions['by']): string | number | null {
  if (by === undefined || by === null) return null
  return typeof by === 'bigint' ? by.toString() : by
}

/** The audit actions. */
export const AUDIT_ACTIONS = ['soft_delete', 'restore', 'hard_delete', 'purge', 'hold', 'release'] as const
/** One of {@link AUDIT_ACTIONS}. */
export type AuditAction = (typeof AUDIT_ACTIONS)[number]

/**
 * Tells the database who acts and why for the rest of this transaction (and, for a soft delete, its
 * deletion id and per-table retention overrides), in one statement. The database's triggers stamp
 * and audit with it; the value carries the transaction's id, so it is ignored by any other
 * transaction, on this connection or, through a pooler, another client's.
 */
export async function setContext(
  trx: Kysely<any>,
  entry: { by: ActorOptions['by']; reason: string | null | undefined; deletionId?: string; retention?: Readonly<Record<string, string | null>> },
): Promise<void> {
  const actor = actorValue(entry.by)
  await sql`select set_config('tombstone.context', json_build_object(
      'txid', txid_current()::text,
      'actor', ${actor === null ? null : String(actor)}::text,
      'reason', ${entry.reason ?? null}::text,
      'deletion_id', ${entry.deletionId ?? null}::text,
      'retention', ${JSON.stringify(entry.retention ?? {})}::json)::text, true)`.execute(trx)
}

/** Rethrows a database error as the toolkit's coded error where it has one. */
export function classifyOperationError(error: unknown): never {
  throw classifyDatabaseError(error)
}

/** Groups returned rows' keys. */
export function keysOf(rows: readonly Record<string, unknown>[], column: string): RowKey[] {
  return rows.map((row) => row[column] as RowKey)
}

/**
 * The given keys as the database reads them into `table`'s key column, typed as the driver returns
 * that column (`'7'` becomes `7` for an integer key, a uuid comes back lower case), in the given
 * order, duplicates removed. One statement, run only where a key matched no row. A key the column
 * cannot hold is an {@link InvalidArgumentError}.
 */
export async function canonicalKeys(trx: Kysely<any>, table: TableDefinition, keys: readonly RowKey[]): Promise<RowKey[]> {
  if (keys.length === 0) return []
  // json_populate_record casts text to the column's type as an INSERT would, whatever that type is.
  const result = await sql<{ key: RowKey }>`select (json_populate_record(null::${sql.table(table.name)}, json_build_object(${table.key}::text, u.v))).${sql.id(
    table.key,
  )} as key from unnest(${sql.val(keys.map(keyText))}::text[]) with ordinality as u(v, n) order by u.n`
    .execute(trx)
    .catch((error: unknown) => {
      throw classifyKeyError(error, table.name)
    })
  const byText = new Map<string, RowKey>()
  for (const row of result.rows) if (!byText.has(keyText(row.key))) byText.set(keyText(row.key), row.key)
  return [...byText.values()]
}

/**
 * A key the key column cannot hold (22P02 invalid text, 22003 out of range, 22007/22008 bad date)
 * as an {@link InvalidArgumentError}; any other error unchanged.
 */
export function classifyKeyError(error: unknown, table: string): unknown {
  const state = sqlStateOf(error)
  if (state === '22P02' || state === '22003' || state === '22007' || state === '22008') {
    return new InvalidArgumentError(`Invalid key for "${table}": ${(error as Error).message}`, table, error)
  }
  return error
}

/** Compares keys across drivers (PGlite returns int8 as numbers, pg as strings). */
export function sameKey(a: RowKey, b: RowKey): boolean {
  return keyText(a) === keyText(b)
}

/** The keys of `wanted` absent from `found`, compared as text. */
export function missingKeys(wanted: readonly RowKey[], found: readonly RowKey[]): RowKey[] {
  const present = new Set(found.map(keyText))
  return wanted.filter((key) => !present.has(keyText(key)))
}

/**
 * The assignments `RestoreOptions.set` names for one table (`"col" = value`), checked: tables of
 * the definition, column names as strings, never a soft-delete column (the restore owns those).
 * @internal
 */
export function restoreAssignments(context: Context, set: Readonly<Record<string, Readonly<Record<string, unknown>>>> | undefined): (table: string) => RawBuilder<unknown>[] {
  if (set === undefined) return () => []
  if (typeof set !== 'object' || set === null || Array.isArray(set)) throw new InvalidArgumentError('set must be an object of tables, each an object of columns')
  const byTable = new Map<string, RawBuilder<unknown>[]>()
  for (const [name, columns] of Object.entries(set)) {
    if (!context.definition.tables.has(name)) throw new InvalidArgumentError(`set.${name}: "${name}" is not a declared soft-deletable table`, name)
    const table = context.definition.table(name)
    if (typeof columns !== 'object' || columns === null || Array.isArray(columns)) throw new InvalidArgumentError(`set.${name} must be an object of columns`, name)
    const owned = new Set<string>(Object.values(table.columns))
    const assignments: RawBuilder<unknown>[] = []
    for (const [column, value] of Object.entries(columns)) {
      if (owned.has(column) || column === table.key) throw new InvalidArgumentError(`set.${name}.${column}: the restore writes this column itself`, name)
      if (value === undefined) continue
      assignments.push(sql`${sql.id(column)} = ${value}`)
    }
    byTable.set(table.name, assignments)
  }
  return (table) => byTable.get(table) ?? []
}
