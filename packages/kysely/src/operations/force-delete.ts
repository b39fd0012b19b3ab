import { sql, type Kysely, type RawBuilder } from 'kysely'
import type { TableDefinition } from '../definition.ts'
import { classifyDatabaseError, DeletePolicyError, InvalidConfigurationError, sqlStateOf, type RowKey } from '../errors.ts'
import { hardDelete, targetVisibility, withDeleted, type Visibility } from '../plugin/markers.ts'
import { lockSubtrees } from './tree.ts'
import { refusePortableDefinition } from './policies.ts'
import { portableAllowHardDelete, portableFor, portableWithHardDeletes, portableForceDelete, portableRemoveTrees } from '../dialects/portable.ts'
import {
  actorValue,
  canonicalKeys,
  classifyKeyError,
  contextOf,
  inTransaction,
  keyIn,
  keysOf,
  missingKeys,
  targetKeys,
  type ActorOptions,
  type AuditAction,
  type Context,
  type TableResult,
  type Target,
} from './context.ts'

/** What {@link forceDelete} did. */
export interface ForceDeleteResult {
  /** Rows removed, all tables together. */
  readonly count: number
  /** Rows removed per table. */
  readonly tables: Readonly<Record<string, TableResult>>
  /** Target rows removed. */
  readonly deleted: readonly RowKey[]
  /** Target keys with no row. */
  readonly notFound: readonly RowKey[]
}

/** Options of {@link allowHardDelete}: what the audit records of the rows the transaction removes. */
export interface HardDeleteGrantOptions extends ActorOptions {
  /** `'hard_delete'` (the default) or `'purge'`: the audit action of the removed rows. */
  readonly purpose?: 'hard_delete' | 'purge'
}

/**
 * Opts the current transaction in to hard deletes past the database guard
 * ({@link installHardDeleteGuard}), and tells the audit who removes rows and why. It calls the
 * database function `tombstone_allow_hard_delete()`, which records the transaction's id in a table
 * only the owner can write: the opt-in ends with the transaction, and no setting is one.
 *
 * @example
 * ```ts
 * await db.transaction().execute(async (trx) => {
 *   await allowHardDelete(trx, { by: 'admin', reason: 'import rolled back' })
 *   await sql`delete from posts where id = 1`.execute(trx)
 * })
 * ```
 */
export async function allowHardDelete(trx: Kysely<any>, options: HardDeleteGrantOptions = {}): Promise<void> {
  // SQLite and MariaDB/MySQL: a grant row only this transaction sees (dialects/portable.ts).
  const portable = portableFor(trx)
  if (portable !== undefined) return portableAllowHardDelete(portable, trx, options)
  await sql`select ${hardDeleteGrant(options)}`.execute(trx).catch(classifyGrantError)
}

/** PostgreSQL's opt-in as an expression, for a statement that does something else too. @internal */
export function hardDeleteGrant(options: HardDeleteGrantOptions): RawBuilder<unknown> {
  const actor = actorValue(options.by)
  return sql`tombstone_allow_hard_delete(${options.purpose ?? 'hard_delete'}, ${actor === null ? null : String(actor)}::text, ${options.reason ?? null}::text)`
}

/** A failed opt-in: 42883 (undefined_function) means the guard is not installed. @internal */
export function classifyGrantError(error: unknown): never {
  if (sqlStateOf(error) === '42883') throw notInstalled(error)
  throw error
}

/**
 * Runs `work` with the transaction opted in past the database guard, and ends the opt-in when
 * `work` ends, on every dialect. Prefer it to {@link allowHardDelete} on MariaDB/MySQL, where an
 * opt-in is keyed by the connection and nothing else would end it (`allowHardDelete` refuses there).
 *
 * @example
 * ```ts
 * await db.transaction().execute((trx) =>
 *   withHardDeletes(trx, { by: 'admin', reason: 'import rolled back' }, () => sql`delete from posts where id = 1`.execute(trx)),
 * )
 * ```
 */
export async function withHardDeletes<T>(trx: Kysely<any>, options: HardDeleteGrantOptions, work: () => Promise<T>): Promise<T> {
  const portable = portableFor(trx)
  if (portable !== undefined) return portableWithHardDeletes(portable, trx, options, work)
  await allowHardDelete(trx, options)
  return work()
}

/** The coded error for a database without the toolkit's objects: it says what to run. @internal */
export function notInstalled(cause: unknown): InvalidConfigurationError {
  return new InvalidConfigurationError(
    "The toolkit's database objects are not installed: run installSoftDeletes(db, definition) in a migration, as the tables' owner",
    undefined,
    cause,
  )
}

/**
 * Removes rows for good, deleted or not, with every descendant along the declared relations
 * (children first), in one transaction: one `SELECT … FOR UPDATE` and one `DELETE` per table.
 * Opts the transaction in past the database guard. Written to the audit trail as `hard_delete`.
 *
 * @example
 * ```ts
 * const result = await forceDelete(db, 'users', { id: 3 }, { by: adminId })
 * result.tables // { comments: {...}, posts: {...}, users: { ids: [3], count: 1 } }
 * ```
 */
export async function forceDelete<DB, T extends keyof DB & string>(
  db: Kysely<DB>,
  table: T,
  target: Target,
  options: ActorOptions = {},
): Promise<ForceDeleteResult> {
  const context = contextOf(db)
  const root = context.definition.table(table)
  const keys = targetKeys(target, table)
  if (root.policy === 'never') throw new DeletePolicyError(table, 'operation')
  if (keys !== undefined && keys.length === 0) return { count: 0, tables: {}, deleted: [], notFound: [] }
  const portable = portableFor(db as Kysely<any>)
  if (portable !== undefined) refusePortableDefinition(db as Kysely<any>, context.definition)
  if (portable !== undefined) return portableForceDelete(portable, db as Kysely<any>, { context, root, keys, target, options })

  return inTransaction(db as Kysely<any>, async (trx) => {
    let rootQuery = trx
      .selectFrom(root.name)
      .select(selectionFor(context, root))
      // Deleted or not, the target rows; a subquery in the caller's `where` keeps its own visibility.
      .$call(targetVisibility({ [root.name]: 'include' }))
      .forUpdate()
    rootQuery = (keys === undefined ? rootQuery.where(target.where as never) : rootQuery.where(keyIn(root.key, keys))).orderBy(root.key)
    const rootRows = await rootQuery.execute().catch((error: unknown) => {
      throw classifyKeyError(error, table)
    })
    const removed = await removeTrees(trx, context, root, rootRows, {
      action: 'hard_delete',
      rootVisibility: 'include',
      by: options.by,
      reason: options.reason,
    })
    const tables: Record<string, TableResult> = {}
    let count = 0
    for (const [name, ids] of removed) {
      if (ids.length === 0) continue
      tables[name] = { ids, count: ids.length }
      count += ids.length
    }
    // The target rows among the root table's (which holds their replies too, for a self-reference).
    const targets = new Set(keysOf(rootRows, root.key).map(String))
    const deleted = (removed.get(table) ?? []).filter((key) => targets.has(String(key)))
    let notFound = keys === undefined ? [] : missingKeys(keys, deleted)
    // Reported as the key column's type, like every other key.
    if (keys !== undefined && notFound.length > 0) notFound = missingKeys(await canonicalKeys(trx, root, keys), deleted)
    return { count, tables, deleted, notFound }
  })
}

/** A locked row: its key, its deletion id and the columns its children reference. */
export type LockedRow = Record<string, unknown>

/** The columns to select from `table` to find its children. @internal */
export function selectionFor(context: Context, table: TableDefinition): string[] {
  const columns = new Set([table.key, table.columns.deletionId])
  for (const relation of context.definition.childrenOf(table.name)) columns.add(relation.parentKey)
  const self = context.definition.selfRelationOf(table.name)
  if (self !== undefined) columns.add(self.parentKey).add(self.foreignKey)
  return [...columns]
}

/**
 * Removes `rootRows` (already locked by the caller) and all their descendants, children first, and
 * writes the audit. `rootVisibility: 'only'` re-checks, in the `DELETE` itself, that a root row is
 * still deleted. Returns the removed keys per table, parents first.
 * @internal
 */
export async function removeTrees(
  trx: Kysely<any>,
  context: Context,
  root: TableDefinition,
  rootRows: readonly LockedRow[],
  options: {
    action: AuditAction
    rootVisibility: Visibility
    by?: ActorOptions['by']
    reason?: string | null | undefined
    /** The caller's statement opted the transaction in already ({@link hardDeleteGrant}). */
    granted?: boolean
  },
): Promise<Map<string, RowKey[]>> {
  const portable = portableFor(trx)
  if (portable !== undefined) return portableRemoveTrees(portable, trx, context, root, rootRows, options)
  const removed = new Map<string, RowKey[]>()
  if (rootRows.length === 0) return removed
  // The opt-in, with who and why for the audit the database writes.
  if (options.granted !== true) await allowHardDelete(trx, { purpose: options.action === 'purge' ? 'purge' : 'hard_delete', by: options.by, reason: options.reason })
  // Replies go with the rows they answer, along the table's own relation (operations/tree.ts).
  const withSubtrees = async (table: TableDefinition, rows: readonly LockedRow[]) => [
    ...rows,
    ...(await lockSubtrees(trx, context, table, rows, selectionFor(context, table))),
  ]
  const collected = new Map<string, readonly LockedRow[]>([[root.name, await withSubtrees(root, rootRows)]])

  for (const name of context.definition.descendantsOf(root.name)) {
    const child = context.definition.table(name)
    const conditions = context.definition.parentsOf(name).flatMap((relation) => {
      const parents = collected.get(relation.parent) ?? []
      return parents.length === 0 ? [] : [keyIn(relation.foreignKey, keysOf(parents, relation.parentKey))]
    })
    if (conditions.length === 0) continue
    const rows = await trx
      .selectFrom(name)
      .select(selectionFor(context, child))
      .where((eb) => eb.or(conditions))
      .$call(withDeleted({ '*': 'include' }))
      .orderBy(child.key)
      .forUpdate()
      .execute()
    collected.set(name, await withSubtrees(child, rows))
  }

  const order = [...collected.keys()].reverse()
  try {
    for (const name of order) {
      const table = context.definition.table(name)
      const rows = collected.get(name) ?? []
      if (rows.length === 0) continue
      const statement = trx
        .deleteFrom(name)
        .where(keyIn(table.key, keysOf(rows, table.key)))
        .$if(name === root.name && options.rootVisibility === 'only', (qb) =>
          qb.where(sql.ref(table.columns.deletedAt), 'is not', null),
        )
        .returning(`${table.key} as key`)
        .$call(hardDelete())
        .$call(withDeleted({ '*': 'include' }))
      const deleted = await statement.execute()
      removed.set(name, keysOf(deleted, 'key'))
    }
  } catch (error) {
    throw classifyDatabaseError(error)
  }
  // Parents first, as the caller reads them.
  return new Map([...removed].reverse())
}
