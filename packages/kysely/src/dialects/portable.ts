/**
 * The operations on dialects without data-modifying CTEs or transaction ids (SQLite, MariaDB/MySQL):
 * the same contract as the PostgreSQL path (`operations/*`), in the fewest statements each dialect
 * allows, all in one transaction. What differs between the two is a {@link PortableDialect}:
 * SQLite updates with `RETURNING` (one statement per table, its single writer needs no row locks);
 * MariaDB/MySQL locks the rows with `SELECT … FOR UPDATE` in key order, then writes them by key
 * (two statements per table: MariaDB has no `RETURNING` on `UPDATE`).
 *
 * @module
 */
import { sql, type Kysely, type RawBuilder, type SqlBool } from 'kysely'
import { applyDependentActions } from '../operations/policies.ts'
import { checkRetention, type RelationDefinition, type Retention, type TableDefinition } from '../definition.ts'
import { ConflictError, InvalidArgumentError, InvalidConfigurationError, NotDeletedError, ReferencedError, NotFoundError, ParentDeletedError, classifyDatabaseError, SQLSTATE, sqlStateOf, type RowKey } from '../errors.ts'
import { hardDelete, targetVisibility, withDeleted, type Visibility } from '../plugin/markers.ts'
import {
  actorValue,
  inTransaction,
  keysOf,
  missingKeys,
  keyText,
  refuseActiveChildren,
  restoreAssignments,
  type ActorOptions,
  type AuditAction,
  type Context,
  type TableResult,
  type Target,
} from '../operations/context.ts'
import { dialectKindOf, plainKey, type DialectKind } from './adapter.ts'
import { SQLITE_NOW } from './sqlite.ts'
import type { RestoreSet } from '../operations/restore.ts'

/** What differs between SQLite and MariaDB/MySQL for the operations. @internal */
export interface PortableDialect {
  readonly kind: Exclude<DialectKind, 'postgres'>
  /** Whether `UPDATE … RETURNING` and `DELETE … RETURNING` exist (SQLite yes, MariaDB no). */
  readonly returning: boolean
  keyIn(column: string, keys: readonly RowKey[]): RawBuilder<SqlBool>
  /** `(a, b) in (<pairs>)`. */
  pairIn(a: string, b: string, pairs: readonly (readonly [RowKey, string | null])[]): RawBuilder<SqlBool>
  /** Row locks for a read that is written after (MySQL `FOR UPDATE`; SQLite: the write lock is the transaction's). */
  lock<QB extends { forUpdate(): QB }>(query: QB): QB
  /** Row locks that skip rows another transaction holds (the purge). */
  lockSkipLocked<QB extends { forUpdate(): QB; skipLocked(): QB }>(query: QB): QB
  /** The database clock, in milliseconds. */
  now(db: Kysely<any>): Promise<number>
  /** A stamp as the dialect stores it. */
  timestamp(ms: number): unknown
  /** Who and why (and a deletion id) for the database's triggers, until {@link clearContext}. */
  setContext(trx: Kysely<any>, entry: { actor: string | null; reason: string | null; deletionId: string | null }): Promise<void>
  clearContext(trx: Kysely<any>): Promise<void>
  /** The hard-delete opt-in of the current transaction, until {@link revoke}. */
  grant(trx: Kysely<any>, entry: { purpose: 'hard_delete' | 'purge'; actor: string | null; reason: string | null }): Promise<void>
  revoke(trx: Kysely<any>): Promise<void>
  /** The unique indexes of a table with their columns in index order. */
  uniqueIndexes(trx: Kysely<any>, table: string): Promise<{ name: string; columns: string[] }[]>
  /**
   * The foreign key (`child.column`) of a table outside the cascade that still references one of
   * `keys`, if any: SQLite reports a `RESTRICT` action as a trigger's failure (1811), not 787.
   */
  referencing?(trx: Kysely<any>, table: string, keys: readonly RowKey[]): Promise<string | undefined>
  /** One purge run per table at a time; false when another holds it. */
  tryPurgeLock(trx: Kysely<any>, table: string): Promise<boolean>
}

/** The portable dialect of `db`, or undefined on PostgreSQL (which has its own path). @internal */
export function portableFor(db: Kysely<any>): PortableDialect | undefined {
  const kind = dialectKindOf(db)
  if (kind === 'postgres') return undefined
  const dialect = DIALECTS[kind]
  if (dialect === undefined) throw new Error(`no portable dialect registered for ${kind}`)
  return dialect
}

const DIALECTS: Partial<Record<Exclude<DialectKind, 'postgres'>, PortableDialect>> = {}

/** Registers a dialect's implementation (the dialect modules call it when loaded). @internal */
export function registerPortable(dialect: PortableDialect): void {
  DIALECTS[dialect.kind] = dialect
}

/** SQLite: one writer, `RETURNING`, state in tables written and removed within the transaction. */
export const SQLITE: PortableDialect = {
  kind: 'sqlite',
  returning: true,
  keyIn: (column, keys) => sql<SqlBool>`${sql.ref(column)} in (select value from json_each(${JSON.stringify(keys.map(plainKey))}))`,
  pairIn: (a, b, pairs) =>
    sql<SqlBool>`(${sql.ref(a)}, ${sql.ref(b)}) in (select value ->> 0, value ->> 1 from json_each(${JSON.stringify(
      pairs.map(([key, id]) => [plainKey(key), id]),
    )}))`,
  lock: (query) => query,
  lockSkipLocked: (query) => query,
  now: async (db) => {
    const row = await sql<{ now: string }>`select ${sql.raw(SQLITE_NOW)} as now`.execute(db)
    return Date.parse(row.rows[0]?.now as string)
  },
  timestamp: (ms) => new Date(ms).toISOString(),
  setContext: async (trx, entry) => {
    await sql`insert or replace into tombstone_context (id, actor, reason, deletion_id) values (1, ${entry.actor}, ${entry.reason}, ${entry.deletionId})`.execute(trx)
  },
  clearContext: async (trx) => {
    await sql`delete from tombstone_context`.execute(trx)
  },
  grant: async (trx, entry) => {
    await sql`insert or replace into tombstone_hard_delete_grants (id, purpose, actor, reason) values (1, ${entry.purpose}, ${entry.actor}, ${entry.reason})`.execute(trx)
  },
  revoke: async (trx) => {
    await sql`delete from tombstone_hard_delete_grants`.execute(trx)
  },
  uniqueIndexes: async (trx, table) => {
    const rows = await sql<{ name: string; column: string | null }>`select il.name as name, ii.name as "column"
      from pragma_index_list(${table}) as il join pragma_index_info(il.name) as ii
      where il."unique" = 1 and il.origin in ('c', 'u') order by il.name, ii.seqno`.execute(trx)
    return groupIndexes(rows.rows)
  },
  referencing: async (trx, table, keys) => {
    const references = await sql<{ child: string; column: string }>`select m.name as child, f."from" as "column"
      from sqlite_master as m join pragma_foreign_key_list(m.name) as f where m.type = 'table' and f."table" = ${table}`.execute(trx)
    for (const reference of references.rows) {
      const found = await sql`select 1 from ${sql.table(reference.child)} where ${SQLITE.keyIn(reference.column, keys)} limit 1`.execute(trx)
      if (found.rows.length > 0) return `${reference.child}.${reference.column}`
    }
    return undefined
  },
  // One writer: a second run's batch waits for the first one's transaction, then finds what is left.
  tryPurgeLock: async () => true,
}
registerPortable(SQLITE)

/** Index rows (one per column) grouped by index. @internal */
export function groupIndexes(rows: readonly { name: string; column: string | null }[]): { name: string; columns: string[] }[] {
  const indexes = new Map<string, string[]>()
  for (const row of rows) {
    const columns = indexes.get(row.name) ?? []
    if (row.column !== null) columns.push(row.column)
    indexes.set(row.name, columns)
  }
  return [...indexes].map(([name, columns]) => ({ name, columns }))
}

function retentionMs(retention: Retention): number {
  return (((retention.days ?? 0) * 24 + (retention.hours ?? 0)) * 60 + (retention.minutes ?? 0)) * 60_000 + (retention.seconds ?? 0) * 1000
}

/** What the PostgreSQL path has validated before it hands over. @internal */
export interface Prepared<O> {
  readonly context: Context
  readonly root: TableDefinition
  readonly keys: readonly RowKey[] | undefined
  readonly target: Target
  readonly options: O
}

/**
 * Runs `work` with who and why in the database's context, removed before the operation returns
 * (on SQLite the context is a row: it must not outlive the operation in the caller's transaction).
 */
async function withContext<T>(
  d: PortableDialect,
  trx: Kysely<any>,
  entry: { actor: string | null; reason: string | null; deletionId: string | null },
  work: () => Promise<T>,
): Promise<T> {
  await d.setContext(trx, entry)
  try {
    return await work()
  } finally {
    await d.clearContext(trx)
  }
}

/**
 * Stamps the rows a select finds: SQLite `UPDATE … WHERE key IN (select) RETURNING key`; MySQL the
 * select locked `FOR UPDATE` in key order, then `UPDATE … WHERE key IN (keys)`.
 */
async function updateFound(
  d: PortableDialect,
  trx: Kysely<any>,
  table: TableDefinition,
  values: Record<string, unknown>,
  select: (from: { selectFrom: Kysely<any>['selectFrom'] }) => any,
): Promise<RowKey[]> {
  if (d.returning) {
    const rows = await trx
      .updateTable(table.name)
      .set(values)
      .where(table.key, 'in', (eb: any) => select(eb))
      .returning(`${table.key} as key`)
      .execute()
    return keysOf(rows, 'key')
  }
  const keys = keysOf(await d.lock(select(trx).orderBy(table.key)).execute(), 'key')
  if (keys.length > 0) await trx.updateTable(table.name).set(values).where(d.keyIn(table.key, keys)).execute()
  return keys
}

/** {@link softDelete} on SQLite and MariaDB/MySQL. @internal */
export async function portableSoftDelete(
  d: PortableDialect,
  db: Kysely<any>,
  prepared: Prepared<ActorOptions & { retention?: Retention | null; cascade?: boolean }>,
) {
  const { context, root, keys, target, options } = prepared
  const table = root.name
  const retention =
    options.retention === undefined ? root.retention : options.retention === null ? null : checkRetention(options.retention, table)
  const deletionId = crypto.randomUUID()
  const by = actorValue(options.by)
  const reason = options.reason ?? null
  return inTransaction(db, async (trx) => {
    const now = await d.now(trx)
    const stamp = (t: TableDefinition, r: Retention | null) => ({
      [t.columns.deletedAt]: d.timestamp(now),
      [t.columns.deletedBy]: by === null ? null : String(by),
      [t.columns.deleteReason]: reason,
      [t.columns.deletionId]: deletionId,
      [t.columns.purgeAt]: r === null ? null : d.timestamp(now + retentionMs(r)),
    })
    return withContext(d, trx, { actor: by === null ? null : String(by), reason, deletionId }, async () => {
      const deleted = await updateFound(d, trx, root, stamp(root, retention), (from) => {
        const rows = from.selectFrom(root.name).select(`${root.key} as key`)
        return keys === undefined ? rows.where(target.where as never) : rows.where(d.keyIn(root.key, keys))
      }).catch((error: unknown) => {
        throw classifyDatabaseError(error)
      })
      const stamped = new Map<string, RowKey[]>([[table, deleted]])
      // Without the cascade, no active row may be left under the stamped ones.
      if (options.cascade === false) await refuseActiveChildren(trx, context, root, deleted, (column, keys) => d.keyIn(column, keys), (query) => d.lock(query))
      // Replies below the stamped rows along the table's own relation, one level per statement,
      // until a level is empty (a reply deleted on its own before is not entered).
      const stampReplies = async (t: TableDefinition, r: Retention | null): Promise<RowKey[]> => {
        const self = context.definition.selfRelationOf(t.name)
        const below: RowKey[] = []
        if (self === undefined) return below
        for (;;) {
          const level = await updateFound(d, trx, t, stamp(t, r), (from) =>
            from
              .selectFrom(`${t.name} as tombstone_child`)
              .select(`tombstone_child.${t.key} as key`)
              .where(
                `tombstone_child.${self.foreignKey}`,
                'in',
                from
                  .selectFrom(`${t.name} as tombstone_parent`)
                  .select(`tombstone_parent.${self.parentKey}`)
                  .where(`tombstone_parent.${t.columns.deletionId}`, '=', deletionId)
                  .$call(withDeleted({ tombstone_parent: 'include' })),
              ),
          ).catch((error: unknown) => {
            throw classifyDatabaseError(error)
          })
          if (level.length === 0) return below
          below.push(...level)
        }
      }
      if (options.cascade !== false && deleted.length > 0) {
        const replies = await stampReplies(root, retention)
        if (replies.length > 0) stamped.set(table, [...deleted, ...replies])
        for (const name of context.definition.descendantsOf(table)) {
          const child = context.definition.table(name)
          const parents = context.definition.parentsOf(name).filter((relation) => (stamped.get(relation.parent)?.length ?? 0) > 0)
          if (parents.length === 0) continue
          const ids = await updateFound(d, trx, child, stamp(child, child.retention), (from) =>
            from
              .selectFrom(`${name} as tombstone_child`)
              .select(`tombstone_child.${child.key} as key`)
              .where((inner: any) =>
                inner.or(
                  parents.map((relation) =>
                    inner(
                      inner.ref(`tombstone_child.${relation.foreignKey}`),
                      'in',
                      inner
                        .selectFrom(`${relation.parent} as tombstone_parent`)
                        .select(`tombstone_parent.${relation.parentKey}`)
                        .where(`tombstone_parent.${context.definition.table(relation.parent).columns.deletionId}`, '=', deletionId)
                        .$call(withDeleted({ tombstone_parent: 'include' })),
                    ),
                  ),
                ),
              ),
          ).catch((error: unknown) => {
            throw classifyDatabaseError(error)
          })
          stamped.set(name, ids.length === 0 ? ids : [...ids, ...(await stampReplies(child, child.retention))])
        }
      }
      // The declared dependents' onParentSoftDelete (restrict, set null, set default): operations/policies.ts.
      const dependents = deleted.length === 0 ? {} : await applyDependentActions(trx, context.definition, stamped, deletionId)
      let alreadyDeleted: RowKey[] = []
      let notFound: RowKey[] = []
      if (keys !== undefined && deleted.length < keys.length) {
        const missing = missingKeys(keys, deleted)
        const existing = await trx
          .selectFrom(root.name)
          .select(`${root.key} as key`)
          .where(d.keyIn(root.key, missing))
          .$call(withDeleted({ [root.name]: 'only' }))
          .execute()
        alreadyDeleted = missing.filter((key) => existing.some((row) => keyText(row.key as RowKey) === keyText(key)))
        notFound = missingKeys(missing, alreadyDeleted)
      }
      const tables: Record<string, TableResult> = {}
      let count = 0
      for (const [name, ids] of stamped) {
        if (ids.length === 0 && name !== table) continue
        tables[name] = { ids, count: ids.length }
        count += ids.length
      }
      return {
        deletionId: count > 0 ? deletionId : null,
        deletedAt: deleted.length > 0 ? new Date(now) : null,
        count,
        tables,
        deleted,
        alreadyDeleted,
        notFound,
        ...(Object.keys(dependents).length === 0 ? {} : { dependents }),
      }
    })
  })
}

/** Restored rows per table: keys and the deletion id each had. */
type Restored = Map<string, { ids: RowKey[]; deletionIds: (string | null)[] }>

/** {@link restore} on SQLite and MariaDB/MySQL. @internal */
export async function portableRestore(
  d: PortableDialect,
  db: Kysely<any>,
  prepared: Prepared<ActorOptions & { onFailure?: 'throw' | 'skip'; cascade?: boolean; set?: RestoreSet }>,
) {
  const { context, root, keys, target, options } = prepared
  const cascade = options.cascade !== false
  const set = restoreAssignments(context, options.set)
  const table = root.name
  const skip = options.onFailure === 'skip'
  const actor = actorValue(options.by)
  const entry = { actor: actor === null ? null : String(actor), reason: options.reason ?? null, deletionId: null }
  try {
    return await inTransaction(db, (trx) =>
      withContext(d, trx, entry, async () => {
        let candidatesQuery = trx
          .selectFrom(root.name)
          .select([`${root.key} as key`, `${root.columns.deletedAt} as deleted_at`])
          .orderBy(root.key)
        candidatesQuery =
          keys === undefined
            ? candidatesQuery.where(target.where as never).$call(targetVisibility({ [root.name]: 'only' }))
            : candidatesQuery.where(d.keyIn(root.key, keys)).$call(targetVisibility({ [root.name]: 'include' }))
        const rows = await d.lock(candidatesQuery).execute()
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

        const parentDeleted = candidates.length === 0 ? [] : await deletedParents(d, trx, context, root, candidates)
        if (parentDeleted.length > 0) {
          const first = parentDeleted[0] as (typeof parentDeleted)[number]
          if (!skip) throw new ParentDeletedError(table, first.id, first.parentTable, first.parentId)
          const blocked = new Set(parentDeleted.map((entry) => keyText(entry.id)))
          candidates = candidates.filter((key) => !blocked.has(keyText(key)))
        }

        const restored: Restored = new Map()
        const conflicts: ConflictError[] = []
        if (candidates.length > 0) {
          try {
            await inSavepoint(trx, () => restoreTrees(d, trx, context, root, candidates, restored, cascade, set))
          } catch (error) {
            if (sqlStateOf(error) !== SQLSTATE.uniqueViolation) throw error
            restored.clear()
            if (!skip) throw await diagnoseConflict(d, trx, context, root, candidates, error)
            for (const key of candidates) {
              const attempt: Restored = new Map()
              try {
                await inSavepoint(trx, () => restoreTrees(d, trx, context, root, [key], attempt, cascade, set))
                for (const [name, entry] of attempt) {
                  const into = restored.get(name) ?? { ids: [], deletionIds: [] }
                  into.ids.push(...entry.ids)
                  into.deletionIds.push(...entry.deletionIds)
                  restored.set(name, into)
                }
              } catch (inner) {
                if (sqlStateOf(inner) !== SQLSTATE.uniqueViolation) throw inner
                conflicts.push(await diagnoseConflict(d, trx, context, root, [key], inner))
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
        return { count, tables, restored: restored.get(table)?.ids ?? [], notFound, notDeleted, parentDeleted, conflicts }
      }),
    )
  } catch (error) {
    throw classifyDatabaseError(error)
  }
}

/**
 * The candidates whose parent (along a declared relation, or the table's own) is deleted, and which
 * the restore therefore refuses; a reply restored with the row it answers is not one. @internal
 */
export async function deletedParents(d: PortableDialect, trx: Kysely<any>, context: Context, root: TableDefinition, candidates: readonly RowKey[]) {
  const entries: { id: RowKey; parentTable: string; parentId: RowKey }[] = []
  const self = context.definition.selfRelationOf(root.name)
  const targets = new Set(candidates.map(keyText))
  for (const relation of [...context.definition.parentsOf(root.name), ...(self === undefined ? [] : [self])]) {
    const rows = await trx
      .selectFrom(`${root.name} as tombstone_child`)
      .innerJoin(`${relation.parent} as tombstone_parent`, `tombstone_parent.${relation.parentKey}`, `tombstone_child.${relation.foreignKey}`)
      .select([`tombstone_child.${root.key} as id`, `tombstone_parent.${relation.parentKey} as parent_id`])
      .where(d.keyIn(`tombstone_child.${root.key}`, candidates))
      .$call(withDeleted({ tombstone_child: 'include', tombstone_parent: 'only' }))
      .execute()
    for (const row of rows) {
      // A reply restored with the row it answers is not below a deleted parent.
      if (relation === self && targets.has(keyText(row.parent_id as RowKey))) continue
      entries.push({ id: row.id as RowKey, parentTable: relation.parent, parentId: row.parent_id as RowKey })
    }
  }
  return entries
}

/**
 * Restores the targets, then table by table (parents first) the descendants that carry the
 * deletion id of a parent restored just before, whose every parent is now active. SQLite: one
 * `UPDATE … RETURNING` per table (the deletion id it returns is the one the row had: the
 * database's trigger clears it after); MariaDB/MySQL: a locking `SELECT` and an `UPDATE` per table.
 */
async function restoreTrees(
  d: PortableDialect,
  trx: Kysely<any>,
  context: Context,
  root: TableDefinition,
  keys: readonly RowKey[],
  restored: Restored,
  cascade: boolean,
  set: (table: string) => RawBuilder<unknown>[],
) {
  for (const name of [root.name, ...(cascade ? context.definition.descendantsOf(root.name) : [])]) {
    const table = context.definition.table(name)
    const self = cascade ? context.definition.selfRelationOf(name) : undefined
    const rows = await restoreLevel(d, trx, context, table, name === root.name ? keys : undefined, restored, undefined, set)
    if (name !== root.name && rows.length === 0) continue
    // Then the replies of the same deletion below them, one level per statement, parents first.
    let level = rows
    while (self !== undefined && level.length > 0) {
      level = await restoreLevel(d, trx, context, table, undefined, restored, { self, level }, set)
      rows.push(...level)
    }
    restored.set(name, { ids: rows.map((row) => row.k), deletionIds: rows.map((row) => row.d) })
  }
}

/**
 * One statement of {@link restoreTrees}: the target `keys`, or the rows of this table's deletions
 * below `restored` parents, or (`replies`) the rows of the same deletion answering `level`.
 */
async function restoreLevel(
  d: PortableDialect,
  trx: Kysely<any>,
  context: Context,
  table: TableDefinition,
  keys: readonly RowKey[] | undefined,
  restored: Restored,
  replies: { self: RelationDefinition; level: readonly { k: RowKey; d: string | null }[] } | undefined,
  set: (table: string) => RawBuilder<unknown>[],
): Promise<{ k: RowKey; d: string | null }[]> {
  const name = table.name
  const assignments = set(name)
  const extra = assignments.length > 0 ? sql`, ${sql.join(assignments)}` : sql``
  const { deletedAt, deletedBy, deleteReason, deletionId, purgeAt } = table.columns
  let condition: RawBuilder<unknown>
  if (replies !== undefined) {
    const active = context.definition.parentsOf(name).map((relation) => {
      const parent = context.definition.table(relation.parent)
      return sql`(select p.${sql.id(parent.columns.deletedAt)} from ${sql.table(relation.parent)} as p where p.${sql.id(relation.parentKey)} = c.${sql.id(relation.foreignKey)}) is null`
    })
    const pairs = d.pairIn(`c.${replies.self.foreignKey}`, `c.${deletionId}`, replies.level.map((row) => [row.k, row.d] as const))
    condition = active.length === 0 ? pairs : sql`${pairs} and ${sql.join(active, sql` and `)}`
  } else if (keys !== undefined) condition = d.keyIn(`c.${table.key}`, keys)
  else {
    const parents = context.definition.parentsOf(name).filter((relation) => (restored.get(relation.parent)?.ids.length ?? 0) > 0)
    if (parents.length === 0) return []
    const pairs = parents.map((relation) => {
      const entry = restored.get(relation.parent) as { ids: RowKey[]; deletionIds: (string | null)[] }
      return d.pairIn(`c.${relation.foreignKey}`, `c.${deletionId}`, entry.ids.map((id, i) => [id, entry.deletionIds[i] ?? null] as const))
    })
    // Every parent active now (parents were restored first): a row whose other parent stays deleted stays deleted.
    const active = context.definition.parentsOf(name).map((relation) => {
      const parent = context.definition.table(relation.parent)
      return sql`(select p.${sql.id(parent.columns.deletedAt)} from ${sql.table(relation.parent)} as p where p.${sql.id(relation.parentKey)} = c.${sql.id(relation.foreignKey)}) is null`
    })
    condition = sql`(${sql.join(pairs, sql` or `)}) and ${sql.join(active, sql` and `)}`
  }
  const where = sql`c.${sql.id(deletedAt)} is not null and ${condition}`
  let rows: { k: RowKey; d: string | null }[]
  if (d.returning) {
    // deletion_id is left to the database's trigger, so that RETURNING reports the one the row had.
    const result = await sql<{ k: RowKey; d: string | null }>`update ${sql.table(name)} as c
      set ${sql.id(deletedAt)} = null, ${sql.id(deletedBy)} = null, ${sql.id(deleteReason)} = null, ${sql.id(purgeAt)} = null${extra}
      where ${where} returning ${sql.id(table.key)} as k, ${sql.id(deletionId)} as d`.execute(trx)
    rows = result.rows
  } else {
    const found = await sql<{ k: RowKey; d: string | null }>`select c.${sql.id(table.key)} as k, c.${sql.id(deletionId)} as d
      from ${sql.table(name)} as c where ${where} order by c.${sql.id(table.key)} for update`.execute(trx)
    rows = found.rows
    if (rows.length > 0) {
      await sql`update ${sql.table(name)} set ${sql.id(deletedAt)} = null, ${sql.id(deletedBy)} = null, ${sql.id(deleteReason)} = null,
        ${sql.id(deletionId)} = null, ${sql.id(purgeAt)} = null${extra} where ${d.keyIn(table.key, rows.map((row) => row.k))}`.execute(trx)
    }
  }
  return rows
}

let savepointCounter = 0

async function inSavepoint<T>(trx: Kysely<any>, work: () => Promise<T>): Promise<T> {
  const name = sql.id(`tombstone_p${++savepointCounter}`)
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
 * The {@link ConflictError} of a unique violation, found from the catalog (neither SQLite nor
 * MySQL names the index in a structured field): the first unique index of a restored table on
 * which a row being restored meets an active row.
 */
async function diagnoseConflict(
  d: PortableDialect,
  trx: Kysely<any>,
  context: Context,
  root: TableDefinition,
  keys: readonly RowKey[],
  error: unknown,
): Promise<ConflictError> {
  for (const name of [root.name, ...context.definition.descendantsOf(root.name)]) {
    const table = context.definition.table(name)
    const restoring =
      name === root.name
        ? d.keyIn(`tombstone_restoring.${table.key}`, keys)
        : sql<SqlBool>`${sql.ref(`tombstone_restoring.${table.columns.deletionId}`)} in (
            select ${sql.ref(root.columns.deletionId)} from ${sql.table(root.name)} where ${d.keyIn(root.key, keys)})`
    for (const index of await d.uniqueIndexes(trx, name)) {
      const columns = index.columns.filter((column) => !column.startsWith('tombstone_'))
      if (columns.length === 0 || columns.includes(table.key)) continue
      const rows = await trx
        .selectFrom(`${name} as tombstone_restoring`)
        .innerJoin(`${name} as tombstone_active`, (join) =>
          columns.reduce((on, column) => on.onRef(`tombstone_active.${column}`, '=', `tombstone_restoring.${column}`), join),
        )
        .select([`tombstone_restoring.${table.key} as id`, `tombstone_active.${table.key} as conflicting_id`])
        .where(restoring)
        .$call(withDeleted({ tombstone_restoring: 'only', tombstone_active: 'exclude' }))
        .limit(1)
        .execute()
      if (rows[0] !== undefined) {
        return new ConflictError({ table: name, id: rows[0].id as RowKey, constraint: index.name, columns, conflictingId: rows[0].conflicting_id as RowKey, cause: error })
      }
    }
  }
  return new ConflictError({ table: root.name, id: keys.length === 1 ? keys[0] : undefined, cause: error })
}

/** {@link forceDelete} on SQLite and MariaDB/MySQL. @internal */
export async function portableForceDelete(d: PortableDialect, db: Kysely<any>, prepared: Prepared<ActorOptions>) {
  const { context, root, keys, target, options } = prepared
  return inTransaction(db, async (trx) => {
    let rootQuery = trx.selectFrom(root.name).select(selectionOf(context, root)).$call(targetVisibility({ [root.name]: 'include' }))
    rootQuery = (keys === undefined ? rootQuery.where(target.where as never) : rootQuery.where(d.keyIn(root.key, keys))).orderBy(root.key)
    const rootRows = await d.lock(rootQuery).execute()
    const removed = await portableRemoveTrees(d, trx, context, root, rootRows, {
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
    const targets = new Set(keysOf(rootRows, root.key).map(keyText))
    const deleted = (removed.get(root.name) ?? []).filter((key) => targets.has(keyText(key)))
    return { count, tables, deleted, notFound: keys === undefined ? [] : missingKeys(keys, deleted) }
  })
}

function selectionOf(context: Context, table: TableDefinition): string[] {
  const columns = new Set([table.key, table.columns.deletionId])
  for (const relation of context.definition.childrenOf(table.name)) columns.add(relation.parentKey)
  const self = context.definition.selfRelationOf(table.name)
  // The reference too: replies are removed deepest first.
  if (self !== undefined) columns.add(self.parentKey).add(self.foreignKey)
  return [...columns]
}

/**
 * `removeTrees` of the PostgreSQL path: descendants found (and, on MySQL, locked) table by table,
 * the transaction opted in, then one `DELETE` per table, children first. @internal
 */
export async function portableRemoveTrees(
  d: PortableDialect,
  trx: Kysely<any>,
  context: Context,
  root: TableDefinition,
  rootRows: readonly Record<string, unknown>[],
  options: { action: AuditAction; rootVisibility: Visibility; by?: ActorOptions['by']; reason?: string | null | undefined },
): Promise<Map<string, RowKey[]>> {
  const removed = new Map<string, RowKey[]>()
  if (rootRows.length === 0) return removed
  // Along a table's own relation, the replies below the rows found, one level per statement, kept
  // by level: they are deleted deepest first (InnoDB checks a foreign key row by row).
  const levels = new Map<string, (readonly Record<string, unknown>[])[]>()
  const withReplies = async (table: TableDefinition, rows: readonly Record<string, unknown>[]) => {
    const self = context.definition.selfRelationOf(table.name)
    if (self === undefined || rows.length === 0) return rows
    const known = new Set(keysOf(rows, table.key).map(keyText))
    const all = [...rows]
    let level = rows
    while (level.length > 0) {
      const found = await d
        .lock(
          trx
            .selectFrom(table.name)
            .select(selectionOf(context, table))
            .where(d.keyIn(self.foreignKey, keysOf(level, self.parentKey)))
            .$call(withDeleted({ '*': 'include' }))
            .orderBy(table.key),
        )
        .execute()
      level = found.filter((row) => !known.has(keyText(row[table.key] as RowKey)))
      for (const row of level) known.add(keyText(row[table.key] as RowKey))
      all.push(...level)
    }
    // The depth of each row among those found (the targets may answer one another too).
    const byParentKey = new Map(all.map((row) => [keyText(row[self.parentKey] as RowKey), row]))
    const depth = new Map<Record<string, unknown>, number>()
    const depthOf = (row: Record<string, unknown>): number => {
      const known = depth.get(row)
      if (known !== undefined) return known
      depth.set(row, 0) // a cycle in the data stops here
      const reference = row[self.foreignKey]
      const parent = reference === null || reference === undefined ? undefined : byParentKey.get(keyText(reference as RowKey))
      const value = parent === undefined || parent === row ? 0 : depthOf(parent) + 1
      depth.set(row, value)
      return value
    }
    const byLevel: Record<string, unknown>[][] = []
    for (const row of all) (byLevel[depthOf(row)] ??= []).push(row)
    levels.set(table.name, byLevel.filter((rowsAtDepth) => rowsAtDepth !== undefined))
    return all
  }
  const collected = new Map<string, readonly Record<string, unknown>[]>([[root.name, await withReplies(root, rootRows)]])
  for (const name of context.definition.descendantsOf(root.name)) {
    const child = context.definition.table(name)
    const conditions = context.definition.parentsOf(name).flatMap((relation) => {
      const parents = collected.get(relation.parent) ?? []
      return parents.length === 0 ? [] : [d.keyIn(relation.foreignKey, keysOf(parents, relation.parentKey))]
    })
    if (conditions.length === 0) continue
    const rows = await d
      .lock(
        trx
          .selectFrom(name)
          .select(selectionOf(context, child))
          .where((eb) => eb.or(conditions))
          .$call(withDeleted({ '*': 'include' }))
          .orderBy(child.key),
      )
      .execute()
    collected.set(name, await withReplies(child, rows))
  }
  const actor = actorValue(options.by)
  await d.grant(trx, { purpose: options.action === 'purge' ? 'purge' : 'hard_delete', actor: actor === null ? null : String(actor), reason: options.reason ?? null })
  try {
    for (const name of [...collected.keys()].reverse()) {
      const table = context.definition.table(name)
      const ids: RowKey[] = []
      for (const rows of [...(levels.get(name) ?? [collected.get(name) ?? []])].reverse()) ids.push(...(await removeRows(table, rows)))
      if (ids.length > 0 || (collected.get(name)?.length ?? 0) > 0) removed.set(name, ids)
    }
  } catch (error) {
    throw classifyDatabaseError(error)
  } finally {
    await d.revoke(trx)
  }
  return new Map([...removed].reverse())

  async function removeRows(table: TableDefinition, rows: readonly Record<string, unknown>[]): Promise<RowKey[]> {
    const name = table.name
    if (rows.length === 0) return []
    const statement = trx
      .deleteFrom(name)
      .where(d.keyIn(table.key, keysOf(rows, table.key)))
      .$if(name === root.name && options.rootVisibility === 'only', (qb) => qb.where(sql.ref(table.columns.deletedAt), 'is not', null))
      .$call(hardDelete())
      .$call(withDeleted({ '*': 'include' }))
    if (d.returning) {
      const deleted = await statement
        .returning(`${table.key} as key`)
        .execute()
        .catch(async (error: unknown) => {
          const constraint = sqlStateOf(error) === undefined ? await d.referencing?.(trx, name, keysOf(rows, table.key)) : undefined
          throw constraint === undefined ? error : new ReferencedError(name, constraint, error)
        })
      return keysOf(deleted, 'key')
    }
    // The rows were locked FOR UPDATE above: the DELETE removes exactly them.
    await statement.execute()
    return keysOf(rows, table.key)
  }
}

/**
 * `allowHardDelete` on SQLite and MariaDB/MySQL: the grant row is written in the caller's
 * transaction, so no other connection sees it; it must be gone before the commit (SQLite's
 * `NodeSqliteDialect` removes it, as the toolkit's operations do themselves). @internal
 */
export async function portableAllowHardDelete(
  d: PortableDialect,
  trx: Kysely<any>,
  options: ActorOptions & { purpose?: 'hard_delete' | 'purge' },
): Promise<void> {
  if (!trx.isTransaction) throw new InvalidArgumentError(`allowHardDelete needs a transaction on ${d.kind}: call it inside db.transaction()`)
  if (d.kind === 'mysql') {
    // The grant is keyed by the connection; nothing can remove it at the commit, so it would outlive the transaction.
    throw new InvalidConfigurationError(
      'On MariaDB/MySQL an opt-in cannot end with its transaction by itself: use withHardDeletes(trx, work), which removes it when work ends',
    )
  }
  const purpose = options.purpose ?? 'hard_delete'
  if (purpose !== 'hard_delete' && purpose !== 'purge') throw new InvalidArgumentError('purpose must be hard_delete or purge')
  const actor = actorValue(options.by)
  await d.grant(trx, { purpose, actor: actor === null ? null : String(actor), reason: options.reason ?? null })
}

/** Grants, runs `work`, and removes the grant whatever happens. @internal */
export async function portableWithHardDeletes<T>(
  d: PortableDialect,
  trx: Kysely<any>,
  options: ActorOptions & { purpose?: 'hard_delete' | 'purge' },
  work: () => Promise<T>,
): Promise<T> {
  if (!trx.isTransaction) throw new InvalidArgumentError(`withHardDeletes needs a transaction on ${d.kind}: call it inside db.transaction()`)
  const actor = actorValue(options.by)
  await d.grant(trx, { purpose: options.purpose ?? 'hard_delete', actor: actor === null ? null : String(actor), reason: options.reason ?? null })
  try {
    return await work()
  } finally {
    await d.revoke(trx)
  }
}
