import { sql, type Kysely, type RawBuilder } from 'kysely'
import type { RelationDefinition, TableDefinition } from '../definition.ts'
import {
  ConflictError,
  NotDeletedError,
  NotFoundError,
  ParentDeletedError,
  classifyDatabaseError,
  SQLSTATE,
  sqlStateOf,
  type RowKey,
} from '../errors.ts'
import { targetVisibility, withDeleted } from '../plugin/markers.ts'
import { refusePortableDefinition } from './policies.ts'
import { portableFor, portableRestore } from '../dialects/portable.ts'
import { restoreSubtree } from './tree.ts'
import {
  canonicalKeys,
  classifyKeyError,
  contextOf,
  inTransaction,
  keyIn,
  keysOf,
  keyText,
  missingKeys,
  restoreAssignments,
  targetKeys,
  setContext,
  type ActorOptions,
  type Context,
  type TableResult,
  type Target,
} from './context.ts'

/** Options of {@link restore}. */
export interface RestoreOptions extends ActorOptions {
  /**
   * What a target row that cannot be restored (missing, not deleted, parent deleted, conflict) does:
   * `'throw'` fails the whole operation with the coded error and changes nothing; `'skip'` leaves
   * that row (and what it would bring back) and reports it. Defaults to `'throw'`.
   */
  readonly onFailure?: 'throw' | 'skip'
  /**
   * Bring back the descendants deleted with each target (same deletion id). With `false`, only the
   * target rows come back; their descendants stay deleted (and can be restored later). Defaults to `true`.
   */
  readonly cascade?: boolean
  /**
   * Columns to write on every row the restore brings back, table by table, in the same statement
   * that restores them (e.g. bump `updated_at`, so that an ETag taken before the delete no longer
   * matches). Values are parameters, or expressions such as ``sql`now()` ``. The soft-delete
   * columns themselves cannot be named (`INVALID_ARGUMENT`).
   *
   * @example
   * ```ts
   * await restore(db, 'posts', { id: 1 }, { set: { posts: { updated_at: sql`now()` }, comments: { updated_at: sql`now()` } } })
   * ```
   */
  readonly set?: RestoreSet
}

/** What {@link RestoreOptions.set} writes: per table, column → value (a parameter or an expression). */
export type RestoreSet = Readonly<Record<string, Readonly<Record<string, unknown>>>>

/** A target row left deleted because its parent is deleted. */
export interface ParentDeletedEntry {
  readonly id: RowKey
  readonly parentTable: string
  readonly parentId: RowKey
}

/** What {@link restore} did. */
export interface RestoreResult {
  /** Rows restored, all tables together. */
  readonly count: number
  /** Rows restored per table. */
  readonly tables: Readonly<Record<string, TableResult>>
  /** Target rows restored. */
  readonly restored: readonly RowKey[]
  readonly notFound: readonly RowKey[]
  readonly notDeleted: readonly RowKey[]
  readonly parentDeleted: readonly ParentDeletedEntry[]
  readonly conflicts: readonly ConflictError[]
}

/**
 * Restores deleted rows and exactly what the operation that deleted each of them deleted with it:
 * descendants sharing its `deletion_id`. Descendants deleted earlier, on their own, stay deleted.
 * Set-based: one statement restores every table the cascade reaches (and writes their audit rows).
 *
 * Fails with {@link ParentDeletedError} when a target's parent is deleted, and with
 * {@link ConflictError} (classified by SQLSTATE 23505) when a restored row would collide with an
 * active one on a unique index; then nothing changes. With `onFailure: 'skip'` those rows are
 * reported and the others restored.
 *
 * @example
 * ```ts
 * await softDelete(db, 'posts', { id: 1 })           // deletes post 1 and its active comments
 * const result = await restore(db, 'posts', { id: 1 }) // brings them all back
 * result.tables.comments?.count
 * ```
 */
export async function restore<DB, T extends keyof DB & string>(
  db: Kysely<DB>,
  table: T,
  target: Target,
  options: RestoreOptions = {},
): Promise<RestoreResult> {
  const context = contextOf(db)
  const root = context.definition.table(table)
  const keys = targetKeys(target, table)
  const skip = options.onFailure === 'skip'
  const audit = { by: options.by, reason: options.reason, cascade: options.cascade !== false, set: restoreAssignments(context, options.set) }
  // In our own transaction a failed restore can roll everything back and be diagnosed after; in the
  // caller's transaction (or to skip failures) it must roll back to a savepoint instead.
  const savepoints = skip || (db as Kysely<any>).isTransaction
  // SQLite and MariaDB/MySQL: the same operation in their own statements (dialects/portable.ts).
  const portable = portableFor(db as Kysely<any>)
  if (portable !== undefined) refusePortableDefinition(db as Kysely<any>, context.definition)
  if (portable !== undefined) return portableRestore(portable, db as Kysely<any>, { context, root, keys, target, options })

  try {
    return await inTransaction(db as Kysely<any>, async (trx) => {
    // Who and why, for the audit the database writes.
    await setContext(trx, audit)
    // Lock the targets (in key order) so that a concurrent purge or restore waits for us (or we for it),
    // and read, in the same statement, the key of each one's deleted parent along every relation.
    const parents = parentRelations(context, root.name)
    let candidatesQuery = trx
      .selectFrom(root.name)
      .select([`${root.key} as key`, `${root.columns.deletedAt} as deleted_at`])
      .select(parents.map((relation, index) => deletedParentKey(context, root.name, relation).as(`tombstone_dp${index}`)))
      .orderBy(root.key)
      .forUpdate()
    candidatesQuery =
      keys === undefined
        ? // Deleted target rows; a subquery in the caller's `where` keeps its own visibility.
          candidatesQuery.where(target.where as never).$call(targetVisibility({ [root.name]: 'only' }))
        : candidatesQuery.where(keyIn(root.key, keys)).$call(targetVisibility({ [root.name]: 'include' }))
    const rows = await candidatesQuery.execute().catch((error: unknown) => {
      throw classifyKeyError(error, table)
    })

    const found = keysOf(rows, 'key')
    let notFound = keys === undefined ? [] : missingKeys(keys, found)
    // Reported as the key column's type, like every other key (and '7' beside 7 is one key).
    if (keys !== undefined && notFound.length > 0) notFound = missingKeys(await canonicalKeys(trx, root, keys), found)
    const notDeleted = keysOf(
      rows.filter((row) => row.deleted_at === null),
      'key',
    )
    let candidates = keysOf(
      rows.filter((row) => row.deleted_at !== null),
      'key',
    )
    if (!skip && notFound.length > 0) throw new NotFoundError(table, notFound)
    if (!skip && notDeleted.length > 0) throw new NotDeletedError(table, notDeleted)

    const parentDeleted = deletedParentsOf(context, root, parents, rows as Record<string, unknown>[])
    if (parentDeleted.length > 0) {
      const first = parentDeleted[0] as ParentDeletedEntry
      if (!skip) throw new ParentDeletedError(table, first.id, first.parentTable, first.parentId)
      const blocked = new Set(parentDeleted.map((entry) => keyText(entry.id)))
      candidates = candidates.filter((key) => !blocked.has(keyText(key)))
    }

    const restored = new Map<string, { ids: RowKey[]; deletionIds: (string | null)[] }>()
    const conflicts: ConflictError[] = []
    if (candidates.length > 0 && !savepoints) {
      try {
        await restoreTrees(trx, context, root, candidates, restored, audit)
      } catch (error) {
        throw sqlStateOf(error) === SQLSTATE.uniqueViolation ? new Collision(error, candidates) : error
      }
    } else if (candidates.length > 0) {
      try {
        await inSavepoint(trx, () => restoreTrees(trx, context, root, candidates, restored, audit))
      } catch (error) {
        if (sqlStateOf(error) !== SQLSTATE.uniqueViolation) throw error
        restored.clear()
        if (!skip) throw await diagnoseConflict(trx, context, root, candidates, error)
        // The set-based attempt collided: find out which targets did, one savepoint each.
        for (const key of candidates) {
          const attempt = new Map<string, { ids: RowKey[]; deletionIds: (string | null)[] }>()
          try {
            await inSavepoint(trx, () => restoreTrees(trx, context, root, [key], attempt, audit))
            for (const [name, entry] of attempt) {
              const into = restored.get(name) ?? { ids: [], deletionIds: [] }
              into.ids.push(...entry.ids)
              into.deletionIds.push(...entry.deletionIds)
              restored.set(name, into)
            }
          } catch (inner) {
            if (sqlStateOf(inner) !== SQLSTATE.uniqueViolation) throw inner
            conflicts.push(await diagnoseConflict(trx, context, root, [key], inner))
          }
        }
      }
    }

    const tables: Record<string, TableResult> = {}
    let count = 0
    for (const [name, entry] of restored) {
      if (entry.ids.length === 0) continue
      tables[name] = { ids: entry.ids, count: entry.ids.length }
      count += entry.ids.length
    }
    return {
      count,
      tables,
      restored: restored.get(table)?.ids ?? [],
      notFound,
      notDeleted,
      parentDeleted,
      conflicts,
    }
    })
  } catch (error) {
    // Rolled back: diagnose on the database as it is again.
    if (error instanceof Collision) throw await diagnoseConflict(db as Kysely<any>, context, root, error.keys, error.cause)
    throw classifyDatabaseError(error)
  }
}

/** A unique violation of a restore in its own transaction, carried out of it to be diagnosed. */
class Collision extends Error {
  readonly keys: readonly RowKey[]
  constructor(cause: unknown, keys: readonly RowKey[]) {
    super('unique violation', { cause })
    this.keys = keys
  }
}

/** The relations along which a row of `name` has a parent: to other tables, then to itself. */
function parentRelations(context: Context, name: string): RelationDefinition[] {
  const self = context.definition.selfRelationOf(name)
  return [...context.definition.parentsOf(name), ...(self === undefined ? [] : [self])]
}

/** The key of the row's parent along `relation` when that parent is deleted, else null (raw SQL: the plugin leaves it alone). */
function deletedParentKey(context: Context, name: string, relation: RelationDefinition): RawBuilder<RowKey | null> {
  const parent = context.definition.table(relation.parent)
  return sql<RowKey | null>`(select tombstone_parent.${sql.id(relation.parentKey)} from ${sql.table(relation.parent)} as tombstone_parent
    where tombstone_parent.${sql.id(relation.parentKey)} = ${sql.ref(`${name}.${relation.foreignKey}`)}
      and tombstone_parent.${sql.id(parent.columns.deletedAt)} is not null)`
}

/** {@link deletedParents} from the columns {@link deletedParentKey} added to the locked candidates. */
function deletedParentsOf(
  context: Context,
  root: TableDefinition,
  parents: readonly RelationDefinition[],
  rows: readonly Record<string, unknown>[],
): ParentDeletedEntry[] {
  const self = context.definition.selfRelationOf(root.name)
  const deleted = rows.filter((row) => row.deleted_at !== null)
  // A reply restored with the row it answers is not below a deleted parent.
  const targets = new Set(deleted.map((row) => String(row.key)))
  const entries: ParentDeletedEntry[] = []
  for (const [index, relation] of parents.entries()) {
    for (const row of deleted) {
      const parentId = row[`tombstone_dp${index}`]
      if (parentId === null || parentId === undefined) continue
      if (relation === self && targets.has(String(parentId))) continue
      entries.push({ id: row.key as RowKey, parentTable: relation.parent, parentId: parentId as RowKey })
    }
  }
  return entries
}

/** Target rows whose parent, along a declared relation, is deleted. @internal */
export async function deletedParents(
  trx: Kysely<any>,
  context: Context,
  root: TableDefinition,
  candidates: readonly RowKey[],
): Promise<ParentDeletedEntry[]> {
  const entries: ParentDeletedEntry[] = []
  const self = context.definition.selfRelationOf(root.name)
  for (const relation of parentRelations(context, root.name)) {
    const rows = await trx
      .selectFrom(`${root.name} as tombstone_child`)
      .innerJoin(
        `${relation.parent} as tombstone_parent`,
        `tombstone_parent.${relation.parentKey}`,
        `tombstone_child.${relation.foreignKey}`,
      )
      .select([`tombstone_child.${root.key} as id`, `tombstone_parent.${relation.parentKey} as parent_id`])
      .where(keyIn(`tombstone_child.${root.key}`, candidates))
      .$call(withDeleted({ tombstone_child: 'include', tombstone_parent: 'only' }))
      .execute()
    // A reply restored with the row it answers is not below a deleted parent.
    const targets = relation === self ? new Set(candidates.map(String)) : new Set<string>()
    for (const row of rows) {
      if (relation === self && targets.has(String(row.parent_id))) continue
      entries.push({ id: row.id as RowKey, parentTable: relation.parent, parentId: row.parent_id as RowKey })
    }
  }
  return entries
}

/**
 * Restores the target rows and, table by table, the descendants that share the deletion id of a
 * parent this same operation restores, in one statement: a chain of data-modifying CTEs, one
 * `UPDATE` per table, each child's CTE reading its parents' `RETURNING` (key and the deletion id
 * the parent had). Every row is written once, and no key travels to the application and back.
 */
async function restoreTrees(
  trx: Kysely<any>,
  context: Context,
  root: TableDefinition,
  keys: readonly RowKey[],
  restored: Map<string, { ids: RowKey[]; deletionIds: (string | null)[] }>,
  audit: { by: ActorOptions['by']; reason: string | null | undefined; cascade: boolean; set: (table: string) => RawBuilder<unknown>[] },
): Promise<void> {
  const { tables, alias, ctes } = restoreStatement(context, root, keys, { cascade: audit.cascade, write: true, set: audit.set })
  // One column of keys per table (k0, k1, ...), each of its table's key type, so that every key comes
  // back as the driver returns that column (a table's uuid or text key beside another's integer one
  // cannot share a column of a UNION, and int4 beside int8 would turn into int8). The other tables'
  // columns are typed nulls: a scalar subquery that returns no row.
  const keyColumns = (own: number) =>
    tables.map((_, index) =>
      index === own
        ? sql`k as ${sql.id(`k${index}`)}`
        : sql`(select k from ${sql.id(alias.get(tables[index] as string) as string)} where false) as ${sql.id(`k${index}`)}`,
    )
  const result = await sql<{ t: number; d: string | null } & Record<string, RowKey>>`with ${sql.join(ctes)}
    ${sql.join(
      tables.map((name, index) => sql`select ${sql.lit(index)}::int as t, d, ${sql.join(keyColumns(index))} from ${sql.id(alias.get(name) as string)}`),
      sql` union all `,
    )}`.execute(trx)
  for (const [index, name] of tables.entries()) {
    const rows = result.rows.filter((row) => Number(row.t) === index)
    if (index > 0 && rows.length === 0) continue
    restored.set(name, { ids: rows.map((row) => row[`k${index}`] as RowKey), deletionIds: rows.map((row) => row.d) })
  }
}

/**
 * The CTEs of a restore, one per table the cascade reaches (`tombstone_r<i>`, each giving `k`, the
 * key, and `d`, the deletion id the row had): data-modifying `UPDATE`s for the restore itself
 * (`write: true`), or the very same row selection as plain `SELECT`s without locks, for a preview.
 * @internal
 */
export function restoreStatement(
  context: Context,
  root: TableDefinition,
  keys: readonly RowKey[],
  options: { cascade: boolean; write: boolean; set?: (table: string) => RawBuilder<unknown>[] },
): { tables: string[]; alias: Map<string, string>; ctes: RawBuilder<unknown>[] } {
  const tables = [root.name, ...(options.cascade ? context.definition.descendantsOf(root.name) : [])]
  const alias = new Map(tables.map((name, index) => [name, `tombstone_r${index}`]))
  const ctes = tables.map((name, index) => {
    const table = context.definition.table(name)
    const { deletedAt, deletedBy, deleteReason, deletionId, purgeAt } = table.columns
    // What the children of this table need from a restored row: the keys they reference.
    const parentKeys = [...new Set(context.definition.childrenOf(name).map((relation) => relation.parentKey))]
    const carried = parentKeys.map((column) => sql`o.${sql.id(`p_${column}`)}`)
    const carriedSelect = parentKeys.map((column) => sql`c.${sql.id(column)} as ${sql.id(`p_${column}`)}`)
    let condition: RawBuilder<unknown>
    // The relations along which this table's rows come back: those to a parent this statement restores.
    const parents = index === 0 ? [] : context.definition.parentsOf(name).filter((relation) => alias.has(relation.parent))
    // A row comes back only if every parent it references stays or comes back active: a descendant
    // whose other parent was deleted on its own since stays deleted (the database would refuse it).
    const parentActive = (relation: RelationDefinition) => {
      const parent = context.definition.table(relation.parent)
      // The parent's deleted_at by its key: a lookup only the key's index can serve (a condition on
      // deleted_at here would let a stale plan scan a partial index of deleted rows per child row).
      const parentDeletedAt = sql`(select p.${sql.id(parent.columns.deletedAt)} from ${sql.table(relation.parent)} as p
        where p.${sql.id(relation.parentKey)} = c.${sql.id(relation.foreignKey)})`
      return parents.includes(relation)
        ? // Active already, or brought back by this statement (IN: a hashed subplan, whatever the size).
          // The hashed IN first: in a cascade most parents are the ones coming back.
          sql`(c.${sql.id(relation.foreignKey)} in (select r.${sql.id(`p_${relation.parentKey}`)} from ${sql.id(
            alias.get(relation.parent) as string,
          )} as r) or ${parentDeletedAt} is null)`
        : sql`${parentDeletedAt} is null`
    }
    const parentsActive = context.definition.parentsOf(name).map(parentActive)
    // A row chosen along the only such relation has that parent coming back: its check would be
    // true for every row (and planning it cost about a tenth of a one-post restore's statement).
    const chosenParentsActive =
      parents.length === 1 ? context.definition.parentsOf(name).filter((relation) => relation !== parents[0]).map(parentActive) : parentsActive
    if (index === 0) {
      condition = keyIn(`c.${table.key}`, keys)
    } else {
      // The deletion ids first (an index serves them), then the exact (parent, deletion) pairs.
      condition = sql`c.${sql.id(deletionId)} in (${sql.join(
        parents.map((relation) => sql`select d from ${sql.id(alias.get(relation.parent) as string)}`),
        sql` union `,
      )}) and (${sql.join(
        parents.map(
          (relation) =>
            sql`(c.${sql.id(relation.foreignKey)}, c.${sql.id(deletionId)}) in (select ${sql.id(`p_${relation.parentKey}`)}, d from ${sql.id(
              alias.get(relation.parent) as string,
            )})`,
        ),
        sql` or `,
      )})`
    }
    const chosen = sql`${condition}${index > 0 && chosenParentsActive.length > 0 ? sql` and ${sql.join(chosenParentsActive, sql` and `)}` : sql``}`
    const self = options.cascade ? context.definition.selfRelationOf(name) : undefined
    // Along a self-reference, the rows chosen and, below them, the replies of the same deletion
    // (operations/tree.ts), each with its other parents active.
    const rows =
      self === undefined
        ? chosen
        : sql`c.${sql.id(table.key)} in (${restoreSubtree(
            table,
            self,
            sql`select c.${sql.id(table.key)}, c.${sql.id(deletionId)}, c.${sql.id(self.parentKey)} from ${sql.table(name)} as c
              where c.${sql.id(deletedAt)} is not null and ${chosen}`,
            parentsActive.length > 0 ? sql.join(parentsActive, sql` and `) : undefined,
          )})`
    const selection = sql`select c.${sql.id(table.key)} as k, c.${sql.id(deletionId)} as d${carriedSelect.length > 0 ? sql`, ${sql.join(carriedSelect)}` : sql``}
        from ${sql.table(name)} as c
        where c.${sql.id(deletedAt)} is not null and ${rows}`
    if (!options.write) {
      return sql`${sql.id(alias.get(name) as string)} as (
      select o.k, o.d${carried.length > 0 ? sql`, ${sql.join(carried)}` : sql``} from (${selection}) as o
    )`
    }
    const extra = options.set?.(name) ?? []
    return sql`${sql.id(alias.get(name) as string)} as (
      update ${sql.table(name)} as t
      set ${sql.id(deletedAt)} = null, ${sql.id(deletedBy)} = null, ${sql.id(deleteReason)} = null, ${sql.id(deletionId)} = null, ${sql.id(purgeAt)} = null${
        extra.length > 0 ? sql`, ${sql.join(extra)}` : sql``
      }
      from (
        ${selection}
        order by c.${sql.id(table.key)}
        for update of c
      ) as o
      where t.${sql.id(table.key)} = o.k
      returning o.k, o.d${carried.length > 0 ? sql`, ${sql.join(carried)}` : sql``}
    )`
  })
  return { tables, alias, ctes }
}

let savepointCounter = 0

/** Runs `work` inside a savepoint of the current transaction; rolls back to it on failure. */
async function inSavepoint<T>(trx: Kysely<any>, work: () => Promise<T>): Promise<T> {
  const name = sql.id(`tombstone_${++savepointCounter}`)
  await sql`savepoint ${name}`.execute(trx)
  try {
    const result = await work()
    await sql`release savepoint ${name}`.execute(trx)
    return result
  } catch (error) {
    await sql`rollback to savepoint ${name}`.execute(trx)
    throw error
  }
}

/**
 * Builds the {@link ConflictError} for a unique violation: the index's columns from the catalog,
 * the target row concerned and the active row holding the values.
 */
async function diagnoseConflict(
  trx: Kysely<any>,
  context: Context,
  root: TableDefinition,
  keys: readonly RowKey[],
  error: unknown,
): Promise<ConflictError> {
  const details = error as { table?: string; schema?: string; constraint?: string }
  const constraint = details.constraint || undefined
  const table = details.table === undefined ? root : (context.definition.match(details.table, details.schema) ?? root)
  let columns: string[] = []
  if (constraint !== undefined) {
    const result = await sql<{ column: string }>`
      select a.attname as column
      from pg_index i
      join pg_class c on c.oid = i.indexrelid
      join pg_namespace n on n.oid = c.relnamespace
      cross join lateral unnest(i.indkey) with ordinality as k(attnum, position)
      join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
      where c.relname = ${constraint} and (${details.schema ?? null}::text is null or n.nspname = ${details.schema ?? null})
      order by k.position`.execute(trx)
    columns = result.rows.map((row) => row.column)
  }
  let id: RowKey | undefined
  let conflictingId: RowKey | undefined
  if (columns.length > 0) {
    // The restored side is one of the targets (root table) or a deleted row of the same deletions.
    const restoring =
      table.name === root.name
        ? keyIn(`tombstone_restoring.${table.key}`, keys)
        : sql<boolean>`${sql.ref(`tombstone_restoring.${table.columns.deletionId}`)} in (
            select ${sql.ref(root.columns.deletionId)} from ${sql.table(root.name)} where ${keyIn(root.key, keys)})`
    const rows = await trx
      .selectFrom(`${table.name} as tombstone_restoring`)
      .innerJoin(`${table.name} as tombstone_active`, (join) =>
        columns.reduce(
          (on, column) => on.onRef(`tombstone_active.${column}`, '=', `tombstone_restoring.${column}`),
          join,
        ),
      )
      .select([`tombstone_restoring.${table.key} as id`, `tombstone_active.${table.key} as conflicting_id`])
      .where(restoring)
      .$call(withDeleted({ tombstone_restoring: 'only', tombstone_active: 'exclude' }))
      .limit(1)
      .execute()
    id = rows[0]?.id as RowKey | undefined
    conflictingId = rows[0]?.conflicting_id as RowKey | undefined
  }
  if (id === undefined && table.name === root.name && keys.length === 1) id = keys[0]
  return new ConflictError({ table: table.name, id, constraint, columns, conflictingId, cause: error })
}
