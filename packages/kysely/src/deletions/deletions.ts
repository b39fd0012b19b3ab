import { sql, type Kysely, type SqlBool } from 'kysely'
import { InvalidArgumentError, InvalidConfigurationError, NotFoundError, sqlStateOf, type RowKey } from '../errors.ts'
import { notInstalled } from '../operations/force-delete.ts'
import { dialectKindOf } from '../dialects/adapter.ts'
import { contextOf, inTransaction, type Context } from '../operations/context.ts'
import { restore, type RestoreOptions, type RestoreResult } from '../operations/restore.ts'
import { previewRestore, type PreviewOptions, type PreviewResult, type PreviewTable } from '../operations/preview.ts'

/** One deletion: what one soft-delete operation took, by its deletion id, and what is left of it. */
export interface Deletion {
  readonly id: string
  /** When (the database's clock; every row of one deletion shares it). */
  readonly at: Date
  readonly by: string | null
  readonly reason: string | null
  /** The table the operation targeted (the first, in the relations' order, that it reached). */
  readonly table: string
  /** The target rows' keys, as text (up to 100; `rootCount` has them all). */
  readonly keys: readonly string[]
  readonly rootCount: number
  /** Rows it took, all tables. */
  readonly count: number
  /** Per table: taken, still deleted now, restored since, removed for good since (purged or force-deleted). */
  readonly tables: Readonly<Record<string, DeletionTable>>
  /** Rows of it still deleted, all tables. */
  readonly stillDeleted: number
  /** The earliest `purge_at` among its rows still deleted: when the purge may start taking it. Null when none. */
  readonly purgeAt: Date | null
}

/** One table's part of a {@link Deletion}. */
export interface DeletionTable {
  readonly taken: number
  readonly stillDeleted: number
  readonly restored: number
  readonly removed: number
}

/** A deletion in a list (the per-table counts of what it took; {@link readDeletion} has the rest). */
export interface DeletionSummary {
  readonly id: string
  readonly at: Date
  readonly by: string | null
  readonly reason: string | null
  readonly table: string
  readonly count: number
  readonly tables: Readonly<Record<string, number>>
}

/** Filters of {@link listDeletions}. */
export interface DeletionQuery {
  /** Who deleted (as stored in the audit's `actor`). */
  readonly by?: string | number
  /** The deletion's root table. */
  readonly table?: string
  /** Deleted at or after this instant. */
  readonly since?: Date
  /** Deleted before this instant. */
  readonly until?: Date
  /** Defaults to 50; at most 500. */
  readonly limit?: number
  /** The `nextCursor` of the previous page. */
  readonly cursor?: string
}

/** A page of deletions, newest first. */
export interface DeletionPage {
  readonly deletions: readonly DeletionSummary[]
  /** Pass as `cursor` for the next page; null on the last. */
  readonly nextCursor: string | null
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

function auditTableOf(context: Context): string {
  const table = context.definition.auditTable
  if (table === undefined) throw new InvalidConfigurationError('Deletions are read from the audit trail: the definition needs audit: true')
  return table
}

function auditError(error: unknown): never {
  // 42P01 undefined_table: the audit table was never installed.
  if (sqlStateOf(error) === '42P01') throw notInstalled(error)
  throw error
}

/**
 * Lists deletions, newest first, from the audit trail: one entry per deletion id (a soft delete
 * and everything its cascade took), with who, when, why, its root table and per-table counts.
 *
 * @example
 * ```ts
 * const page = await listDeletions(db, { by: 7, table: 'users', limit: 20 })
 * page.deletions[0] // { id: '…', table: 'users', count: 67, tables: { users: 1, posts: 14, comments: 52 }, reason: 'account closed', ... }
 * const next = await listDeletions(db, { cursor: page.nextCursor! })
 * ```
 */
export async function listDeletions<DB>(db: Kysely<DB>, query: DeletionQuery = {}): Promise<DeletionPage> {
  const context = contextOf(db as Kysely<any>)
  const audit = auditTableOf(context)
  const limit = query.limit ?? 50
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 500) throw new InvalidArgumentError('limit must be between 1 and 500')
  if (query.table !== undefined) context.definition.table(query.table)
  for (const [name, value] of [['since', query.since], ['until', query.until]] as const) {
    if (value !== undefined && (!(value instanceof Date) || Number.isNaN(value.getTime()))) throw new InvalidArgumentError(`${name} is not a valid date`)
  }
  let before: number | undefined
  if (query.cursor !== undefined) {
    before = /^[1-9][0-9]{0,15}$/.test(query.cursor) ? Number(query.cursor) : Number.NaN
    if (!Number.isSafeInteger(before)) throw new InvalidArgumentError('cursor is not valid')
  }
  const order = context.definition.topologicalOrder()
  const kysely = db as Kysely<any>
  const where = [sql`a.action = 'soft_delete'`, sql`a.deletion_id is not null`]
  if (query.by !== undefined) where.push(sql`a.actor = ${String(query.by)}`)
  if (query.since !== undefined) where.push(sql`a.at >= ${query.since}`)
  if (query.until !== undefined) where.push(sql`a.at < ${query.until}`)
  const having = [sql`true`]
  if (before !== undefined) having.push(sql`min(a.id) < ${before}`)
  // The root: the first table, in the relations' order, the deletion reached (its position, in SQL
  // every dialect has: a CASE over the declared names).
  const position = sql`min(case a.entity ${sql.join(
    order.map((name, index) => sql`when ${name} then ${sql.lit(index)}`),
    sql` `,
  )} else ${sql.lit(order.length)} end)`
  if (query.table !== undefined) having.push(sql`${position} = ${sql.lit(order.indexOf(query.table))}`)
  const rows = await sql<{ deletion_id: string; first: string | number; at: Date | string; actor: string | null; reason: string | null; root: string | number }>`
    select a.deletion_id, min(a.id) as first, min(a.at) as at, min(a.actor) as actor, min(a.reason) as reason, ${position} as root
    from ${sql.table(audit)} a
    where ${sql.join(where, sql` and `)}
    group by a.deletion_id
    having ${sql.join(having, sql` and `)}
    order by min(a.id) desc
    limit ${sql.lit(limit + 1)}`
    .execute(kysely)
    .catch(auditError)
  const page = rows.rows.slice(0, limit)
  // Per deletion of the page, its rows per table: one more statement.
  const counts = new Map<string, Record<string, number>>()
  if (page.length > 0) {
    const found = await sql<{ deletion_id: string; entity: string; n: string | number }>`select deletion_id, entity, count(*) as n from ${sql.table(audit)}
      where action = 'soft_delete' and deletion_id in (${sql.join(page.map((row) => uuid(kysely, row.deletion_id)))}) group by deletion_id, entity`.execute(kysely)
    for (const row of found.rows) {
      const tables = counts.get(String(row.deletion_id)) ?? {}
      tables[row.entity] = Number(row.n)
      counts.set(String(row.deletion_id), tables)
    }
  }
  return {
    deletions: page.map((row) => {
      const tables = counts.get(String(row.deletion_id)) ?? {}
      return {
        id: String(row.deletion_id),
        at: timestamp(row.at),
        by: row.actor,
        reason: row.reason,
        table: order[Number(row.root)] ?? String(row.root),
        count: Object.values(tables).reduce((sum, n) => sum + n, 0),
        tables,
      }
    }),
    nextCursor: rows.rows.length > limit ? String(page.at(-1)?.first) : null,
  }
}

/** A deletion id as a parameter: PostgreSQL's audit column is a uuid, the others' text. */
function uuid(db: Kysely<any>, id: string) {
  return dialectKindOf(db) === 'postgres' ? sql`${id}::uuid` : sql`${id}`
}

/** A stamp as the driver returns it: a Date (PostgreSQL, MariaDB) or ISO text (SQLite). */
function timestamp(value: Date | string): Date {
  return value instanceof Date ? value : new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : `${value.replace(' ', 'T')}Z`)
}

/**
 * Reads one deletion by id: who, when, why, its root table and keys, and per table what it took,
 * what is still deleted now, what was restored since and what was removed for good (purged or
 * force-deleted), and when the purge may start taking it. Undefined when no deletion has that id.
 *
 * @example
 * ```ts
 * const deletion = await readDeletion(db, result.deletionId!)
 * deletion?.tables.comments // { taken: 52, stillDeleted: 50, restored: 2, removed: 0 }
 * ```
 */
export async function readDeletion<DB>(db: Kysely<DB>, deletionId: string): Promise<Deletion | undefined> {
  const context = contextOf(db as Kysely<any>)
  const audit = auditTableOf(context)
  if (typeof deletionId !== 'string' || !UUID.test(deletionId)) throw new InvalidArgumentError('A deletion id is a UUID')
  const id = deletionId.toLowerCase()
  const kysely = db as Kysely<any>
  const entries = await sql<{ entity: string; action: string; n: number; at: Date | string; actor: string | null; reason: string | null; first: string | number }>`
    select entity, action, count(*) as n, min(at) as at, min(actor) as actor, min(reason) as reason, min(id) as first
    from ${sql.table(audit)} where deletion_id = ${uuid(kysely, id)} and action in ('soft_delete', 'restore', 'purge', 'hard_delete')
    group by entity, action`
    .execute(kysely)
    .catch(auditError)
  const taken = entries.rows.filter((row) => row.action === 'soft_delete')
  if (taken.length === 0) return undefined
  const order = context.definition.topologicalOrder()
  const position = (name: string) => {
    const index = order.indexOf(name)
    return index === -1 ? order.length : index
  }
  const root = [...taken].sort((a, b) => position(a.entity) - position(b.entity))[0]?.entity as string
  const tables: Record<string, DeletionTable> = {}
  let stillDeleted = 0
  let purgeAt: Date | null = null
  for (const entry of [...taken].sort((a, b) => position(a.entity) - position(b.entity))) {
    const count = (action: string) => Number(entries.rows.find((row) => row.entity === entry.entity && row.action === action)?.n ?? 0)
    let still = 0
    const table = context.definition.tables.get(entry.entity)
    if (table !== undefined) {
      const row = await sql<{ n: number; purge_at: Date | string | null }>`select count(*) as n, min(${sql.ref(table.columns.purgeAt)}) as purge_at
        from ${sql.table(table.name)} where ${sql.ref(table.columns.deletionId)} = ${uuid(kysely, id)} and ${sql.ref(table.columns.deletedAt)} is not null`.execute(kysely)
      still = Number(row.rows[0]?.n ?? 0)
      const due = row.rows[0]?.purge_at ?? null
      if (due !== null && (purgeAt === null || timestamp(due) < purgeAt)) purgeAt = timestamp(due)
    }
    stillDeleted += still
    tables[entry.entity] = { taken: Number(entry.n), stillDeleted: still, restored: count('restore'), removed: count('purge') + count('hard_delete') }
  }
  const rootTable = context.definition.table(root)
  const keys = await sql<{ k: string }>`select entity_id as k from ${sql.table(audit)}
    where deletion_id = ${uuid(kysely, id)} and action = 'soft_delete' and entity = ${root} order by id limit 100`.execute(kysely)
  const first = taken.reduce((min, row) => (Number(row.first) < Number(min.first) ? row : min))
  void rootTable
  return {
    id,
    at: timestamp(first.at),
    by: first.actor,
    reason: first.reason,
    table: root,
    keys: keys.rows.map((row) => row.k),
    rootCount: Number(taken.find((row) => row.entity === root)?.n ?? 0),
    count: taken.reduce((sum, row) => sum + Number(row.n), 0),
    tables,
    stillDeleted,
    purgeAt,
  }
}

/** The deletion's tables (declared ones, in the relations' order), or a coded NotFoundError. */
async function tablesOf(db: Kysely<any>, context: Context, deletionId: string): Promise<string[]> {
  const deletion = await readDeletion(db, deletionId)
  if (deletion === undefined) throw new NotFoundError('deletions', [deletionId])
  return context.definition.topologicalOrder().filter((name) => name in deletion.tables)
}

/**
 * The tops of what is left of a deletion in one table: its rows still deleted whose parents (along
 * every declared relation) are not rows of it still deleted. Restoring the tops of every table
 * brings back all of it, each row once: the rest comes back with its top, as restore's cascade.
 */
function topsOf(context: Context, table: string, id: string) {
  const child = context.definition.table(table)
  return (eb: any) => {
    const conditions = [eb(sql.ref(`${table}.${child.columns.deletionId}`), '=', id)]
    const self = context.definition.selfRelationOf(table)
    // A reply of the same deletion below a comment of it comes back with that comment.
    for (const relation of [...context.definition.parentsOf(table), ...(self === undefined ? [] : [self])]) {
      const parent = context.definition.table(relation.parent)
      conditions.push(sql<SqlBool>`not exists (select 1 from ${sql.table(relation.parent)} as tombstone_top
        where ${sql.ref(`tombstone_top.${relation.parentKey}`)} = ${sql.ref(`${table}.${relation.foreignKey}`)}
          and ${sql.ref(`tombstone_top.${parent.columns.deletionId}`)} = ${eb.val(id)}
          and ${sql.ref(`tombstone_top.${parent.columns.deletedAt}`)} is not null)`)
    }
    return eb.and(conditions)
  }
}

/**
 * Restores a whole deletion by its id: exactly the rows it took that are still deleted, nothing that
 * another operation deleted, in one transaction: the tops of what is left of it in each table (its
 * root rows, and rows whose parent came back since, e.g. by a restore with `cascade: false`), each
 * with what shares the id below it, as {@link restore} does. Fails like {@link restore} (a parent
 * deleted since by another operation, a conflict) and changes nothing, unless `onFailure: 'skip'`.
 * Throws {@link NotFoundError} for an unknown deletion.
 *
 * @example
 * ```ts
 * const { deletionId } = await softDelete(db, 'users', { id: 3 }, { by: 'carol', reason: 'account closed' })
 * await restoreDeletion(db, deletionId!, { by: 'admin', reason: 'reopened' })
 * ```
 */
export async function restoreDeletion<DB>(db: Kysely<DB>, deletionId: string, options: RestoreOptions = {}): Promise<RestoreResult> {
  const context = contextOf(db as Kysely<any>)
  const tables = await tablesOf(db as Kysely<any>, context, deletionId)
  const id = deletionId.toLowerCase()
  return inTransaction(db as Kysely<any>, async (trx) => {
    const parts: RestoreResult[] = []
    for (const table of tables) parts.push(await restore(trx, table, { where: topsOf(context, table, id) }, options))
    const merged: Record<string, { ids: RowKey[]; count: number }> = {}
    for (const part of parts) {
      for (const [name, entry] of Object.entries(part.tables)) {
        const into = merged[name] ?? { ids: [], count: 0 }
        into.ids.push(...entry.ids)
        into.count += entry.count
        merged[name] = into
      }
    }
    return {
      count: parts.reduce((sum, part) => sum + part.count, 0),
      tables: merged,
      restored: parts[0]?.restored ?? [],
      notFound: [],
      notDeleted: [],
      parentDeleted: parts.flatMap((part) => part.parentDeleted),
      conflicts: parts.flatMap((part) => part.conflicts),
    }
  })
}

/**
 * What {@link restoreDeletion} would bring back and what would refuse it ({@link previewRestore}
 * of each table's tops), in one read-only transaction, changing nothing.
 *
 * @example
 * ```ts
 * const preview = await previewRestoreDeletion(db, deletionId)
 * preview.tables   // { users: { count: 1, ... }, posts: { count: 14, ... } }
 * preview.conflicts // [{ table: 'users', constraint: 'users_email_active_key', ... }]
 * ```
 */
export async function previewRestoreDeletion<DB>(db: Kysely<DB>, deletionId: string, options: PreviewOptions = {}): Promise<PreviewResult> {
  const context = contextOf(db as Kysely<any>)
  const tables = await tablesOf(db as Kysely<any>, context, deletionId)
  const id = deletionId.toLowerCase()
  const work = async (trx: Kysely<any>): Promise<PreviewResult> => {
    const parts: PreviewResult[] = []
    for (const table of tables) parts.push(await previewRestore(trx, table, { where: topsOf(context, table, id) }, options))
    const sampleSize = options.sampleSize ?? 20
    const merged: Record<string, PreviewTable> = {}
    for (const part of parts) {
      for (const [name, entry] of Object.entries(part.tables)) {
        const into = merged[name]
        if (entry.count === 0 && into !== undefined) continue
        merged[name] =
          into === undefined
            ? entry
            : { count: into.count + entry.count, sample: [...into.sample, ...entry.sample].slice(0, sampleSize), held: into.held + entry.held }
      }
    }
    for (const name of Object.keys(merged)) if (merged[name]?.count === 0 && name !== tables[0]) delete merged[name]
    return {
      operation: 'restore',
      count: parts.reduce((sum, part) => sum + part.count, 0),
      tables: merged,
      notFound: [],
      alreadyDeleted: [],
      notDeleted: [],
      parentDeleted: parts.flatMap((part) => part.parentDeleted),
      conflicts: parts.flatMap((part) => part.conflicts),
      held: 0,
      activeChildren: [],
      wouldRefuse: parts.some((part) => part.parentDeleted.length + part.conflicts.length > 0),
    }
  }
  const kysely = db as Kysely<any>
  return kysely.isTransaction ? work(kysely) : kysely.transaction().setIsolationLevel('repeatable read').setAccessMode('read only').execute(work)
}
