import { sql, type Kysely, type RawBuilder, type SqlBool } from 'kysely'
import type { TableDefinition } from '../definition.ts'
import { DeletePolicyError, InvalidArgumentError, type RowKey } from '../errors.ts'
import { targetVisibility, withDeleted } from '../plugin/markers.ts'
import { holdsInstalled } from '../holds/holds.ts'
import { HELD_ROWS_TABLE } from '../holds/schema.ts'
import { activeChildren, contextOf, keyIn, keysOf, keyText, missingKeys, targetKeys, type ActiveChildEntry, type Context, type Target } from './context.ts'
import { deletedParents, restoreStatement, type ParentDeletedEntry } from './restore.ts'
import { portableFor } from '../dialects/portable.ts'
import { portablePreviewForceDelete, portablePreviewRestore, portablePreviewSoftDelete } from '../dialects/portable-preview.ts'

/** What a previewed operation would touch in one table. */
export interface PreviewTable {
  /** Rows it would touch. */
  readonly count: number
  /** Up to `sampleSize` of their keys, as text, in key order. */
  readonly sample: readonly string[]
  /** Of those rows, how many a legal hold covers (force delete only: it would be refused). */
  readonly held: number
}

/** A restored row that would collide with another on an active-unique index. */
export interface PreviewConflict {
  readonly table: string
  /** The row that would be restored (key as text). */
  readonly id: string
  /** The partial unique index. */
  readonly constraint: string
  readonly columns: readonly string[]
  /** The active row holding the values, or another row this restore would bring back with them. */
  readonly conflictingId: string
}

/** What {@link previewSoftDelete}, {@link previewRestore} or {@link previewForceDelete} found. */
export interface PreviewResult {
  readonly operation: 'softDelete' | 'restore' | 'forceDelete'
  /** Rows the operation would touch, all tables. */
  readonly count: number
  /** Per table the operation would reach (the target table always listed). */
  readonly tables: Readonly<Record<string, PreviewTable>>
  /** Target keys with no row. */
  readonly notFound: readonly RowKey[]
  /** Soft delete: target keys already deleted (left alone). */
  readonly alreadyDeleted: readonly RowKey[]
  /** Restore: target keys not deleted. */
  readonly notDeleted: readonly RowKey[]
  /** Restore: targets whose parent is deleted (the restore would refuse them). */
  readonly parentDeleted: readonly ParentDeletedEntry[]
  /** Restore: rows that would collide on an active-unique index (the restore would refuse them). */
  readonly conflicts: readonly PreviewConflict[]
  /** Force delete: rows under a legal hold among those it would remove (it would be refused). */
  readonly held: number
  /**
   * Soft delete with `cascade: false`: active rows directly below the targets, up to `sampleSize`
   * per relation (the soft delete would refuse with `ParentDeletedError`).
   */
  readonly activeChildren: readonly ActiveChildEntry[]
  /**
   * True when the operation, run with its default `onFailure: 'throw'`, would refuse: a restore
   * with a missing, active, parent-deleted or colliding target; a soft delete without its cascade
   * over rows with active children; a force delete of a held row.
   */
  readonly wouldRefuse: boolean
}

/** Options of the previews. */
export interface PreviewOptions {
  /** Keys per table in `sample`. Defaults to 20; at most 1,000. */
  readonly sampleSize?: number
  /** Follow the declared relations (soft delete, restore), as the operation's `cascade`. Defaults to `true`. */
  readonly cascade?: boolean
}

/**
 * What {@link softDelete} would stamp, per table, without changing anything: the same selection
 * (active target rows, then active children of rows it stamps, table by table), as plain `SELECT`s
 * in one read-only, repeatable-read transaction (or the caller's), taking no row locks.
 *
 * @example
 * ```ts
 * const preview = await previewSoftDelete(db, 'users', { id: 3 })
 * preview.tables // { users: { count: 1, sample: ['3'] }, posts: { count: 14, ... }, comments: { count: 52, ... } }
 * ```
 */
export async function previewSoftDelete<DB, T extends keyof DB & string>(
  db: Kysely<DB>,
  table: T,
  target: Target,
  options: PreviewOptions = {},
): Promise<PreviewResult> {
  const { context, root, keys, sampleSize } = deletePreviewOf(db, table, target, options)
  // SQLite and MariaDB/MySQL: dialects/portable-preview.ts.
  const portable = portableFor(db as Kysely<any>)
  if (portable !== undefined) return portablePreviewSoftDelete(portable, db as Kysely<any>, { context, root, keys, target, sampleSize, cascade: options.cascade !== false })
  return readOnly(db as Kysely<any>, async (trx) => {
    // softDelete's own root selection: active target rows (the plugin's filter).
    const rows = await trx
      .selectFrom(root.name)
      .select(`${root.key} as key`)
      .$call((qb) => (keys === undefined ? qb.where(target.where as never) : qb.where(keyIn(root.key, keys))))
      .execute()
    const found = keysOf(rows, 'key')
    let alreadyDeleted: RowKey[] = []
    let notFound: RowKey[] = []
    if (keys !== undefined && found.length < keys.length) {
      const missing = missingKeys(keys, found)
      const existing = await trx
        .selectFrom(root.name)
        .select(`${root.key} as key`)
        .where(keyIn(root.key, missing))
        .$call(withDeleted({ [root.name]: 'only' }))
        .execute()
      alreadyDeleted = keysOf(existing, 'key')
      notFound = missingKeys(missing, alreadyDeleted)
    }
    const tables = await cascadeSummary(trx, context, root, found, { active: true, cascade: options.cascade !== false, sampleSize, held: false })
    // Without the cascade, softDelete refuses rows that still have active children.
    const below = options.cascade === false ? await activeChildren(trx, context, root, found, keyIn, { limit: sampleSize }) : []
    return result('softDelete', tables, { notFound, alreadyDeleted, activeChildren: below })
  })
}

/**
 * What {@link forceDelete} would remove, per table (the target rows in any state and every
 * descendant), and how many of them a legal hold covers (then force delete would refuse), without
 * changing anything or locking a row.
 *
 * @example
 * ```ts
 * const preview = await previewForceDelete(db, 'posts', { ids: [7, 8] })
 * if (preview.held > 0) console.log('held: force delete would be refused')
 * ```
 */
export async function previewForceDelete<DB, T extends keyof DB & string>(
  db: Kysely<DB>,
  table: T,
  target: Target,
  options: Omit<PreviewOptions, 'cascade'> = {},
): Promise<PreviewResult> {
  const { context, root, keys, sampleSize } = deletePreviewOf(db, table, target, options)
  const portable = portableFor(db as Kysely<any>)
  if (portable !== undefined) return portablePreviewForceDelete(portable, db as Kysely<any>, { context, root, keys, target, sampleSize, cascade: true })
  return readOnly(db as Kysely<any>, async (trx) => {
    // forceDelete's own root selection: target rows whatever their state.
    const rows = await trx
      .selectFrom(root.name)
      .select(`${root.key} as key`)
      .$call(targetVisibility({ [root.name]: 'include' }))
      .$call((qb) => (keys === undefined ? qb.where(target.where as never) : qb.where(keyIn(root.key, keys))))
      .execute()
    const found = keysOf(rows, 'key')
    const held = await holdsInstalled(trx)
    const tables = await cascadeSummary(trx, context, root, found, { active: false, cascade: true, sampleSize, held })
    return result('forceDelete', tables, { notFound: keys === undefined ? [] : missingKeys(keys, found) })
  })
}

/**
 * What {@link restore} would bring back, per table, and what would refuse it: missing or active
 * targets, targets whose parent is deleted (`parentDeleted`, with the parent), and rows that would
 * collide on an active-unique index (`conflicts`, with the index, its columns and the row holding
 * the values). The rows are chosen by the restore's own statement, as `SELECT`s instead of
 * `UPDATE`s, without locks or changes. With `onFailure: 'skip'` the restore would bring back the
 * others; `tables` counts what it brings back when nothing refuses.
 *
 * @example
 * ```ts
 * const preview = await previewRestore(db, 'users', { id: 3 })
 * preview.conflicts // [{ table: 'users', id: '3', constraint: 'users_email_active_key', columns: ['email'], conflictingId: '9' }]
 * ```
 */
export async function previewRestore<DB, T extends keyof DB & string>(
  db: Kysely<DB>,
  table: T,
  target: Target,
  options: PreviewOptions = {},
): Promise<PreviewResult> {
  const context = contextOf(db as Kysely<any>)
  const root = context.definition.table(table)
  const keys = targetKeys(target, table)
  const sampleSize = checkSample(options)
  const cascade = options.cascade !== false
  const portable = portableFor(db as Kysely<any>)
  if (portable !== undefined) return portablePreviewRestore(portable, db as Kysely<any>, { context, root, keys, target, sampleSize, cascade })
  return readOnly(db as Kysely<any>, async (trx) => {
    // restore's own candidates: deleted target rows (for keys: any state, to tell why not).
    let query = trx.selectFrom(root.name).select([`${root.key} as key`, `${root.columns.deletedAt} as deleted_at`]).orderBy(root.key)
    query =
      keys === undefined
        ? query.where(target.where as never).$call(targetVisibility({ [root.name]: 'only' }))
        : query.where(keyIn(root.key, keys)).$call(targetVisibility({ [root.name]: 'include' }))
    const rows = await query.execute()
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
    const parentDeleted = candidates.length === 0 ? [] : await deletedParents(trx, context, root, candidates)
    const blocked = new Set(parentDeleted.map((entry) => keyText(entry.id)))
    candidates = candidates.filter((key) => !blocked.has(keyText(key)))
    const empty = Object.fromEntries([[root.name, { count: 0, sample: [], held: 0 }]])
    if (candidates.length === 0) return result('restore', empty, { notFound, notDeleted, parentDeleted })
    const statement = restoreStatement(context, root, candidates, { cascade, write: false })
    const tables = await summarize(trx, sql`with`, statement.ctes, statement.tables, statement.alias, sampleSize, undefined, context)
    const conflicts = await findConflicts(trx, context, statement, sampleSize)
    return result('restore', tables, { notFound, notDeleted, parentDeleted, conflicts })
  })
}

/**
 * What a soft or force delete preview starts from: the definition, the root table (refused, as the
 * operation would, when its policy is `never`), the target keys and the sample size.
 */
function deletePreviewOf(db: Kysely<any>, table: string, target: Target, options: { sampleSize?: number }) {
  const context = contextOf(db)
  const root = context.definition.table(table)
  if (root.policy === 'never') throw new DeletePolicyError(table, 'operation')
  return { context, root, keys: targetKeys(target, table), sampleSize: checkSample(options) }
}

function checkSample(options: { sampleSize?: number }): number {
  const size = options.sampleSize ?? 20
  if (!Number.isSafeInteger(size) || size < 0 || size > 1000) throw new InvalidArgumentError('sampleSize must be between 0 and 1000')
  return size
}

/**
 * One consistent read: the caller's transaction, or a read-only repeatable-read one of its own
 * (on SQLite, NodeSqliteDialect's deferred `begin`: a snapshot, no write lock). @internal
 */
export async function readOnly<T>(db: Kysely<any>, work: (trx: Kysely<any>) => Promise<T>): Promise<T> {
  if (db.isTransaction) return work(db)
  return db.transaction().setIsolationLevel('repeatable read').setAccessMode('read only').execute(work)
}

/** A preview's result from its tables and what would refuse it, on every dialect. @internal */
export function result(
  operation: PreviewResult['operation'],
  tables: Record<string, PreviewTable>,
  parts: Partial<Pick<PreviewResult, 'notFound' | 'alreadyDeleted' | 'notDeleted' | 'parentDeleted' | 'conflicts' | 'activeChildren'>>,
): PreviewResult {
  let count = 0
  let held = 0
  for (const entry of Object.values(tables)) {
    count += entry.count
    held += entry.held
  }
  const conflicts = parts.conflicts ?? []
  const parentDeleted = parts.parentDeleted ?? []
  const notFound = parts.notFound ?? []
  const notDeleted = parts.notDeleted ?? []
  const activeChildren = parts.activeChildren ?? []
  const wouldRefuse =
    operation === 'restore'
      ? notFound.length + notDeleted.length + parentDeleted.length + conflicts.length > 0
      : operation === 'forceDelete'
        ? held > 0
        : activeChildren.length > 0
  return {
    operation,
    count,
    tables,
    notFound,
    alreadyDeleted: parts.alreadyDeleted ?? [],
    notDeleted,
    parentDeleted,
    conflicts,
    held,
    activeChildren,
    wouldRefuse,
  }
}

/**
 * The rows a soft delete (`active: true`: active rows only) or a force delete (any state) reaches
 * from `keys` of `root`, as {@link cascadeRows} chooses them, summarized per table.
 */
async function cascadeSummary(
  trx: Kysely<any>,
  context: Context,
  root: TableDefinition,
  keys: readonly RowKey[],
  options: { active: boolean; cascade: boolean; sampleSize: number; held: boolean },
): Promise<Record<string, PreviewTable>> {
  if (keys.length === 0) return { [root.name]: { count: 0, sample: [], held: 0 } }
  const { tables, alias, ctes, with: prefix } = cascadeRows(context, root, keys, options, keyIn)
  return summarize(trx, prefix, ctes, tables, alias, options.sampleSize, options.held ? context : undefined, context)
}

/**
 * The rows a soft delete (`active: true`: active rows only) or a force delete (any state) reaches
 * from `keys` of `root`: one CTE per table (`alias`, with the key as `k` and, as `p_<column>`, the
 * columns its children reference), each child's selecting the rows whose foreign key points at a
 * row of a parent's CTE, and a table that references itself its rows' replies to any depth (a
 * recursive CTE: `with` is `with recursive` then), as the operations' cascades do (soft delete:
 * active children of the rows it stamps; force delete: every child of the rows it removes). Plain
 * `SELECT`s, so PostgreSQL, SQLite (3.8.3+) and MariaDB (10.2+) run the same text; `keyIn` is the
 * dialect's. @internal
 */
export function cascadeRows(
  context: Context,
  root: TableDefinition,
  keys: readonly RowKey[],
  options: { active: boolean; cascade: boolean },
  keyIn: (column: string, keys: readonly RowKey[]) => RawBuilder<SqlBool>,
): { tables: string[]; alias: Map<string, string>; ctes: RawBuilder<unknown>[]; with: RawBuilder<unknown> } {
  const tables = [root.name, ...(options.cascade ? context.definition.descendantsOf(root.name) : [])]
  const alias = new Map(tables.map((name, index) => [name, `tombstone_p${index}`]))
  const ctes = tables.map((name, index) => {
    const table = context.definition.table(name)
    const parentKeys = [...new Set(context.definition.childrenOf(name).map((relation) => relation.parentKey))]
    const carried = parentKeys.map((column) => sql`c.${sql.id(column)} as ${sql.id(`p_${column}`)}`)
    const conditions: RawBuilder<unknown>[] = []
    if (options.active) conditions.push(sql`c.${sql.id(table.columns.deletedAt)} is null`)
    if (index === 0) conditions.push(keyIn(`c.${table.key}`, keys))
    else {
      const parents = context.definition.parentsOf(name).filter((relation) => alias.has(relation.parent))
      conditions.push(
        sql`(${sql.join(
          parents.map(
            (relation) =>
              sql`c.${sql.id(relation.foreignKey)} in (select ${sql.id(`p_${relation.parentKey}`)} from ${sql.id(alias.get(relation.parent) as string)})`,
          ),
          sql` or `,
        )})`,
      )
    }
    const own = sql.id(alias.get(name) as string)
    const columns = sql`c.${sql.id(table.key)} as k${carried.length > 0 ? sql`, ${sql.join(carried)}` : sql``}`
    const self = context.definition.selfRelationOf(name)
    if (self !== undefined && options.cascade) {
      // The rows reached and, to any depth, the replies below them (operations/tree.ts), the CTE
      // itself recursive (MariaDB does not let a WITH nested in a CTE see the CTEs before it).
      const active = options.active ? sql` where c.${sql.id(table.columns.deletedAt)} is null` : sql``
      return sql`${own} as (
        select ${columns}, c.${sql.id(self.parentKey)} as s from ${sql.table(name)} as c where ${sql.join(conditions, sql` and `)}
        union
        select ${columns}, c.${sql.id(self.parentKey)} as s from ${sql.table(name)} as c join ${own} as r on c.${sql.id(self.foreignKey)} = r.s${active})`
    }
    return sql`${own} as (select ${columns} from ${sql.table(name)} as c where ${sql.join(conditions, sql` and `)})`
  })
  const recursive = options.cascade && tables.some((name) => context.definition.selfRelationOf(name) !== undefined)
  return { tables, alias, ctes, with: recursive ? sql`with recursive` : sql`with` }
}

/** Per table: count, the first `sampleSize` keys, and (with `heldOf`) how many rows a hold covers. */
async function summarize(
  trx: Kysely<any>,
  prefix: RawBuilder<unknown>,
  ctes: readonly RawBuilder<unknown>[],
  tables: readonly string[],
  alias: Map<string, string>,
  sampleSize: number,
  heldOf: Context | undefined,
  context: Context,
): Promise<Record<string, PreviewTable>> {
  const branches = tables.map((name, index) => {
    const held =
      heldOf === undefined
        ? sql`0`
        : sql`count(*) filter (where exists (select 1 from ${sql.table(HELD_ROWS_TABLE)} h
            where h.entity = ${name} and h.entity_id = x.k::text and not h.released)) over ()`
    return sql`select * from (select ${sql.lit(index)}::int as t, x.k::text as k, row_number() over (order by x.k) as rn,
      count(*) over () as n, ${held} as h from ${sql.id(alias.get(name) as string)} x) as ${sql.id(`s${index}`)}
      where rn <= ${sql.lit(Math.max(sampleSize, 1))}`
  })
  const rows = await sql<{ t: number; k: string; rn: string | number; n: string | number; h: string | number }>`${prefix} ${sql.join(ctes)}
    ${sql.join(branches, sql` union all `)}`.execute(trx)
  const summary: Record<string, PreviewTable> = {}
  for (const [index, name] of tables.entries()) {
    const mine = rows.rows.filter((row) => Number(row.t) === index).sort((a, b) => Number(a.rn) - Number(b.rn))
    if (index > 0 && mine.length === 0) continue
    summary[name] = {
      count: Number(mine[0]?.n ?? 0),
      sample: mine.slice(0, sampleSize).map((row) => row.k),
      held: Number(mine[0]?.h ?? 0),
    }
  }
  void context
  return summary
}

/**
 * Rows a restore would bring back that collide on a partial unique index (an active-unique
 * index: deleted rows are outside it and enter it when restored), with an active row or with
 * another row of the same restore. The index's columns come from the catalog, as the restore's
 * own diagnosis of a 23505 does.
 */
async function findConflicts(
  trx: Kysely<any>,
  context: Context,
  statement: { tables: string[]; alias: Map<string, string>; ctes: RawBuilder<unknown>[] },
  limit: number,
): Promise<PreviewConflict[]> {
  const conflicts: PreviewConflict[] = []
  for (const name of statement.tables) {
    const table = context.definition.table(name)
    const indexes = await sql<{ name: string; columns: string[] }>`
      select c.relname as name, array_agg(a.attname::text order by k.position) as columns
      from pg_index i
      join pg_class c on c.oid = i.indexrelid
      cross join lateral unnest(i.indkey) with ordinality as k(attnum, position)
      join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
      where i.indrelid = ${sql.lit(quoteRegclass(name))}::regclass and i.indisunique and i.indpred is not null and not (0 = any(i.indkey))
      group by c.relname order by c.relname`.execute(trx)
    for (const index of indexes.rows) {
      const same = (left: string, right: string) =>
        sql.join(
          index.columns.map((column) => sql`${sql.ref(`${left}.${column}`)} = ${sql.ref(`${right}.${column}`)}`),
          sql` and `,
        )
      const r = sql.id(statement.alias.get(name) as string)
      const found = await sql<{ id: string; other: string }>`with ${sql.join(statement.ctes)}
        select * from (
          (select c.${sql.id(table.key)}::text as id, a.${sql.id(table.key)}::text as other
           from ${r} r join ${sql.table(name)} c on c.${sql.id(table.key)} = r.k
           join ${sql.table(name)} a on ${same('a', 'c')} and a.${sql.id(table.columns.deletedAt)} is null
           order by 1 limit ${sql.lit(limit)})
          union all
          (select c.${sql.id(table.key)}::text, c2.${sql.id(table.key)}::text
           from ${r} r join ${sql.table(name)} c on c.${sql.id(table.key)} = r.k
           join ${r} r2 on r2.k <> r.k join ${sql.table(name)} c2 on c2.${sql.id(table.key)} = r2.k and ${same('c2', 'c')}
           order by 1 limit ${sql.lit(limit)})
        ) as found`.execute(trx)
      for (const row of found.rows) {
        conflicts.push({ table: name, id: row.id, constraint: index.name, columns: index.columns, conflictingId: row.other })
      }
    }
  }
  return conflicts
}

function quoteRegclass(name: string): string {
  return name
    .split('.')
    .map((part) => `"${part.replaceAll('"', '""')}"`)
    .join('.')
}
