import { sql, type Kysely } from 'kysely'
import type { TableDefinition } from '../definition.ts'
import {
  ConflictError,
  NotDeletedError,
  NotFoundError,
  ParentDeletedError,
  SQLSTATE,
  sqlStateOf,
  type RowKey,
} from '../errors.ts'
import { withDeleted } from '../plugin/markers.ts'
import {
  contextOf,
  inTransaction,
  keyIn,
  keysOf,
  keyText,
  missingKeys,
  targetKeys,
  writeAudit,
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
}

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
 * Set-based: one `UPDATE` per table, and one to clear the deletion ids.
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

  return inTransaction(db as Kysely<any>, async (trx) => {
    // Lock the targets so that a concurrent purge or restore waits for us (or we for it).
    let candidatesQuery = trx
      .selectFrom(root.name)
      .select([`${root.key} as key`, `${root.columns.deletedAt} as deleted_at`])
      .forUpdate()
    candidatesQuery =
      keys === undefined
        ? candidatesQuery.where(target.where as never).$call(withDeleted({ [root.name]: 'only' }))
        : candidatesQuery.where(keyIn(root.key, keys)).$call(withDeleted({ [root.name]: 'include' }))
    const rows = await candidatesQuery.execute()

    const found = keysOf(rows, 'key')
    const notFound = keys === undefined ? [] : missingKeys(keys, found)
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

    const parentDeleted = candidates.length === 0 ? [] : await deletedParents(trx, context, root, candidates)
    if (parentDeleted.length > 0) {
      const first = parentDeleted[0] as ParentDeletedEntry
      if (!skip) throw new ParentDeletedError(table, first.id, first.parentTable, first.parentId)
      const blocked = new Set(parentDeleted.map((entry) => keyText(entry.id)))
      candidates = candidates.filter((key) => !blocked.has(keyText(key)))
    }

    const restored = new Map<string, { ids: RowKey[]; deletionIds: (string | null)[] }>()
    const conflicts: ConflictError[] = []
    if (candidates.length > 0) {
      try {
        await inSavepoint(trx, () => restoreTrees(trx, context, root, candidates, restored))
      } catch (error) {
        if (sqlStateOf(error) !== SQLSTATE.uniqueViolation) throw error
        restored.clear()
        if (!skip) throw await diagnoseConflict(trx, context, root, candidates, error)
        // The set-based attempt collided: find out which targets did, one savepoint each.
        for (const key of candidates) {
          const attempt = new Map<string, { ids: RowKey[]; deletionIds: (string | null)[] }>()
          try {
            await inSavepoint(trx, () => restoreTrees(trx, context, root, [key], attempt))
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
      await writeAudit(trx, context, {
        action: 'restore',
        table: context.definition.table(name),
        ids: entry.ids,
        by: options.by,
        reason: options.reason,
        deletionId: entry.deletionIds,
      })
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
}

/** Target rows whose parent, along a declared relation, is deleted. */
async function deletedParents(
  trx: Kysely<any>,
  context: Context,
  root: TableDefinition,
  candidates: readonly RowKey[],
): Promise<ParentDeletedEntry[]> {
  const entries: ParentDeletedEntry[] = []
  for (const relation of context.definition.parentsOf(root.name)) {
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
    for (const row of rows) {
      entries.push({ id: row.id as RowKey, parentTable: relation.parent, parentId: row.parent_id as RowKey })
    }
  }
  return entries
}

/**
 * Restores the target rows, then, table by table, the descendants whose parent was restored by this
 * operation and which share that parent's deletion id. Restored rows keep their deletion id until
 * the end, which is how a child recognises a parent restored by this operation; then it is cleared.
 */
async function restoreTrees(
  trx: Kysely<any>,
  context: Context,
  root: TableDefinition,
  keys: readonly RowKey[],
  restored: Map<string, { ids: RowKey[]; deletionIds: (string | null)[] }>,
): Promise<void> {
  const clear = (t: TableDefinition) => ({
    [t.columns.deletedAt]: null,
    [t.columns.deletedBy]: null,
    [t.columns.deleteReason]: null,
    [t.columns.purgeAt]: null,
  })
  const rootRows = await trx
    .updateTable(root.name)
    .set(clear(root))
    .where(keyIn(root.key, keys))
    .$call(withDeleted({ [root.name]: 'only' }))
    .returning([`${root.key} as key`, `${root.columns.deletionId} as deletion_id`])
    .execute()
  restored.set(root.name, { ids: keysOf(rootRows, 'key'), deletionIds: rootRows.map((row) => row.deletion_id as string | null) })
  const deletionIds = [...new Set(rootRows.map((row) => row.deletion_id as string | null).filter((id) => id !== null))]
  if (deletionIds.length === 0) return

  for (const name of context.definition.descendantsOf(root.name)) {
    const child = context.definition.table(name)
    const parents = context.definition.parentsOf(name).filter((relation) => (restored.get(relation.parent)?.ids.length ?? 0) > 0)
    if (parents.length === 0) continue
    const rows = await trx
      .updateTable(name)
      .set(clear(child))
      .where(sql.ref(`${name}.${child.columns.deletionId}`), '=', sql`any(${sql.val(deletionIds)}::uuid[])`)
      .where((eb) =>
        eb.or(
          parents.map((relation) => {
            const parent = context.definition.table(relation.parent)
            // The parent is active (the default filter) and still carries the deletion id: restored now.
            return eb.exists(
              eb
                .selectFrom(`${relation.parent} as tombstone_parent`)
                .select(sql.lit(1).as('one'))
                .whereRef(`tombstone_parent.${relation.parentKey}`, '=', `${name}.${relation.foreignKey}`)
                .whereRef(`tombstone_parent.${parent.columns.deletionId}`, '=', `${name}.${child.columns.deletionId}`),
            )
          }),
        ),
      )
      .$call(withDeleted({ [name]: 'only' }))
      .returning([`${child.key} as key`, `${child.columns.deletionId} as deletion_id`])
      .execute()
    restored.set(name, { ids: keysOf(rows, 'key'), deletionIds: rows.map((row) => row.deletion_id as string | null) })
  }

  for (const [name, entry] of restored) {
    if (entry.ids.length === 0) continue
    const t = context.definition.table(name)
    await trx
      .updateTable(name)
      .set({ [t.columns.deletionId]: null })
      .where(sql.ref(t.columns.deletionId), '=', sql`any(${sql.val(deletionIds)}::uuid[])`)
      .execute()
  }
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
