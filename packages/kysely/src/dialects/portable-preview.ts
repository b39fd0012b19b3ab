/**
 * The previews on SQLite and MariaDB/MySQL: {@link previewSoftDelete}, {@link previewRestore} and
 * {@link previewForceDelete} with the PostgreSQL path's result shapes, choosing the rows as the
 * portable operations (`dialects/portable.ts`) do, with `SELECT`s only, in one read-only
 * transaction (the caller's, when given one): SQLite a deferred `begin` (a snapshot, no write
 * lock), MariaDB/MySQL `repeatable read, read only` (consistent reads: no row lock).
 *
 * A force delete's preview counts, per table, the rows a standing legal hold covers (`held`), as
 * on PostgreSQL: the force delete would be refused (`TB006`).
 *
 * @module
 */
import { sql, type Kysely, type RawBuilder } from 'kysely'
import type { TableDefinition } from '../definition.ts'
import type { RowKey } from '../errors.ts'
import { refusePortableDefinition } from '../operations/policies.ts'
import { targetVisibility, withDeleted } from '../plugin/markers.ts'
import { activeChildren, keysOf, keyText, missingKeys, type Context, type Target } from '../operations/context.ts'
import { cascadeRows, readOnly, result, type PreviewConflict, type PreviewResult, type PreviewTable } from '../operations/preview.ts'
import { deletedParents, type PortableDialect } from './portable.ts'
import { holdsInstalled } from '../holds/holds.ts'
import { HELD_ROWS_TABLE } from '../holds/schema.ts'

/** What the PostgreSQL entry point has validated (target keys, sample size) before it hands over. @internal */
export interface PortablePreview {
  readonly context: Context
  readonly root: TableDefinition
  readonly keys: readonly RowKey[] | undefined
  readonly target: Target
  readonly sampleSize: number
  readonly cascade: boolean
}

/** `previewSoftDelete` on SQLite and MariaDB/MySQL. @internal */
export async function portablePreviewSoftDelete(d: PortableDialect, db: Kysely<any>, prepared: PortablePreview): Promise<PreviewResult> {
  const { context, root, keys, target, sampleSize, cascade } = prepared
  refusePortableDefinition(db, context.definition)
  return readOnly(db, async (trx) => {
    // portableSoftDelete's root selection: active target rows (the plugin's filter).
    const base = trx.selectFrom(root.name).select(`${root.key} as key`)
    const rows = await (keys === undefined ? base.where(target.where as never) : base.where(d.keyIn(root.key, keys))).execute()
    const found = keysOf(rows, 'key')
    let alreadyDeleted: RowKey[] = []
    let notFound: RowKey[] = []
    if (keys !== undefined && found.length < keys.length) {
      const missing = missingKeys(keys, found)
      const existing = await trx
        .selectFrom(root.name)
        .select(`${root.key} as key`)
        .where(d.keyIn(root.key, missing))
        .$call(withDeleted({ [root.name]: 'only' }))
        .execute()
      alreadyDeleted = missing.filter((key) => existing.some((row) => keyText(row.key as RowKey) === keyText(key)))
      notFound = missingKeys(missing, alreadyDeleted)
    }
    const tables = await cascadeSummary(d, trx, context, root, found, { active: true, cascade, sampleSize, held: false })
    // Without the cascade, softDelete refuses rows that still have active children.
    const below = cascade ? [] : await activeChildren(trx, context, root, found, (column, keys) => d.keyIn(column, keys), { limit: sampleSize })
    return result('softDelete', tables, { notFound, alreadyDeleted, activeChildren: below })
  })
}

/** `previewForceDelete` on SQLite and MariaDB/MySQL (`held`: the rows a standing hold covers). @internal */
export async function portablePreviewForceDelete(d: PortableDialect, db: Kysely<any>, prepared: PortablePreview): Promise<PreviewResult> {
  const { context, root, keys, target, sampleSize } = prepared
  return readOnly(db, async (trx) => {
    // portableForceDelete's root selection: target rows whatever their state.
    const base = trx.selectFrom(root.name).select(`${root.key} as key`).$call(targetVisibility({ [root.name]: 'include' }))
    const rows = await (keys === undefined ? base.where(target.where as never) : base.where(d.keyIn(root.key, keys))).execute()
    const found = keysOf(rows, 'key')
    const held = await holdsInstalled(trx)
    const tables = await cascadeSummary(d, trx, context, root, found, { active: false, cascade: true, sampleSize, held })
    return result('forceDelete', tables, { notFound: keys === undefined ? [] : missingKeys(keys, found) })
  })
}

/**
 * `previewRestore` on SQLite and MariaDB/MySQL: portableRestore's walk (targets, then table by
 * table the descendants carrying the deletion id of a row restored just before, whose every parent
 * is active or restored, and below them the replies of their deletion in a table that references
 * itself; with `cascade: false` the targets alone), as `SELECT`s; then the rows that would meet
 * another on a unique index.
 * @internal
 */
export async function portablePreviewRestore(d: PortableDialect, db: Kysely<any>, prepared: PortablePreview): Promise<PreviewResult> {
  const { context, root, keys, target, sampleSize, cascade } = prepared
  return readOnly(db, async (trx) => {
    let query = trx.selectFrom(root.name).select([`${root.key} as key`, `${root.columns.deletedAt} as deleted_at`]).orderBy(root.key)
    query =
      keys === undefined
        ? query.where(target.where as never).$call(targetVisibility({ [root.name]: 'only' }))
        : query.where(d.keyIn(root.key, keys)).$call(targetVisibility({ [root.name]: 'include' }))
    const rows = await query.execute()
    const notFound = keys === undefined ? [] : missingKeys(keys, keysOf(rows, 'key'))
    const notDeleted = keysOf(
      rows.filter((row) => row.deleted_at === null),
      'key',
    )
    let candidates = keysOf(
      rows.filter((row) => row.deleted_at !== null),
      'key',
    )
    const parentDeleted = candidates.length === 0 ? [] : await deletedParents(d, trx, context, root, candidates)
    const blocked = new Set(parentDeleted.map((entry) => keyText(entry.id)))
    candidates = candidates.filter((key) => !blocked.has(keyText(key)))
    if (candidates.length === 0) return result('restore', { [root.name]: { count: 0, sample: [], held: 0 } }, { notFound, notDeleted, parentDeleted })
    const restored = await restoredTrees(d, trx, context, root, candidates, cascade)
    const tables = await restoredSummary(d, trx, context, restored, sampleSize)
    const conflicts = await findConflicts(d, trx, context, restored, sampleSize)
    return result('restore', tables, { notFound, notDeleted, parentDeleted, conflicts })
  })
}

/**
 * The rows a soft delete (`active`: active rows only) or a force delete (any state) reaches from
 * `keys`, chosen by the PostgreSQL path's {@link cascadeRows} (CTEs, recursive for a table that
 * references itself: SQLite 3.25+ and MariaDB 10.2+/MySQL 8 have them, and window functions), then
 * per table its count and first keys in one `UNION ALL`.
 */
async function cascadeSummary(
  d: PortableDialect,
  trx: Kysely<any>,
  context: Context,
  root: TableDefinition,
  keys: readonly RowKey[],
  options: { active: boolean; cascade: boolean; sampleSize: number; held: boolean },
): Promise<Record<string, PreviewTable>> {
  if (keys.length === 0) return { [root.name]: { count: 0, sample: [], held: 0 } }
  const { tables, alias, ctes, with: prefix } = cascadeRows(context, root, keys, options, d.keyIn)
  const limit = sql.lit(Math.max(options.sampleSize, 1))
  const branches = tables.map(
    (name, index) => sql`select t, k, rn, n, h from (select ${sql.lit(index)} as t, x.k as k, row_number() over (order by x.k) as rn,
      count(*) over () as n, ${options.held ? held(d, name) : sql`0`} as h from ${sql.id(alias.get(name) as string)} as x) as ${sql.id(`s${index}`)} where rn <= ${limit}`,
  )
  const rows = await sql<{ t: number | string; k: RowKey; rn: number | string; n: number | string; h: number | string }>`${prefix} ${sql.join(ctes)}
    ${sql.join(branches, sql` union all `)}`.execute(trx)
  const summary: Record<string, PreviewTable> = {}
  for (const [index, name] of tables.entries()) {
    const mine = rows.rows.filter((row) => Number(row.t) === index).sort((a, b) => Number(a.rn) - Number(b.rn))
    if (index > 0 && mine.length === 0) continue
    summary[name] = { count: Number(mine[0]?.n ?? 0), sample: mine.slice(0, options.sampleSize).map((row) => keyText(row.k)), held: Number(mine[0]?.h ?? 0) }
  }
  return summary
}

/** Rows a restore would bring back, per table: keys and the deletion id each had. */
type Restored = Map<string, { ids: RowKey[]; deletionIds: (string | null)[] }>

/** Per table, over the CTE's rows `x`: how many a standing legal hold covers. */
function held(d: PortableDialect, name: string): RawBuilder<unknown> {
  const key = d.kind === 'mysql' ? sql`cast(x.k as char)` : sql`cast(x.k as text)`
  return sql`sum(case when exists (select 1 from ${sql.table(HELD_ROWS_TABLE)} h
    where h.entity = ${name} and h.entity_id = ${key} and not h.released) then 1 else 0 end) over ()`
}

/**
 * What portableRestore's `restoreTrees` would bring back, per table in walk order: the targets,
 * then each descendant table's deleted rows carrying the deletion id of a parent row restored just
 * before, whose every parent is active now or restored by this walk; in a table that references
 * itself, after each of those, level by level the deleted replies carrying the deletion id of a row
 * of the level above (`restoreTrees` does the same, one `UPDATE` per level).
 */
async function restoredTrees(
  d: PortableDialect,
  trx: Kysely<any>,
  context: Context,
  root: TableDefinition,
  keys: readonly RowKey[],
  cascade: boolean,
): Promise<Restored> {
  const restored: Restored = new Map()
  for (const name of [root.name, ...(cascade ? context.definition.descendantsOf(root.name) : [])]) {
    const table = context.definition.table(name)
    // Every parent active after the restore: active now, or among the rows this walk brings back.
    const active = context.definition.parentsOf(name).map((relation) => {
      const parent = context.definition.table(relation.parent)
      const back = restored.get(relation.parent)?.ids ?? []
      const now = sql`(select p.${sql.id(parent.columns.deletedAt)} from ${sql.table(relation.parent)} as p where p.${sql.id(relation.parentKey)} = c.${sql.id(relation.foreignKey)}) is null`
      return back.length === 0 ? now : sql`(${now} or ${d.keyIn(`c.${relation.foreignKey}`, back)})`
    })
    let condition: RawBuilder<unknown>
    if (name === root.name) condition = d.keyIn(`c.${table.key}`, keys)
    else {
      const parents = context.definition.parentsOf(name).filter((relation) => (restored.get(relation.parent)?.ids.length ?? 0) > 0)
      if (parents.length === 0) continue
      const pairs = parents.map((relation) => {
        const entry = restored.get(relation.parent) as { ids: RowKey[]; deletionIds: (string | null)[] }
        return d.pairIn(`c.${relation.foreignKey}`, `c.${table.columns.deletionId}`, entry.ids.map((id, i) => [id, entry.deletionIds[i] ?? null] as const))
      })
      condition = sql`(${sql.join(pairs, sql` or `)}) and ${sql.join(active, sql` and `)}`
    }
    const select = async (where: RawBuilder<unknown>) =>
      (
        await sql<{ k: RowKey; d: string | null }>`select c.${sql.id(table.key)} as k, c.${sql.id(table.columns.deletionId)} as d
          from ${sql.table(name)} as c where c.${sql.id(table.columns.deletedAt)} is not null and ${where} order by c.${sql.id(table.key)}`.execute(trx)
      ).rows
    const rows = await select(condition)
    if (name !== root.name && rows.length === 0) continue
    const self = cascade ? context.definition.selfRelationOf(name) : undefined
    const known = new Set(rows.map((row) => keyText(row.k)))
    let level = rows
    while (self !== undefined && level.length > 0) {
      // The restore's level finds only rows still deleted: not those it brought back already.
      const pairs = d.pairIn(`c.${self.foreignKey}`, `c.${table.columns.deletionId}`, level.map((row) => [row.k, row.d] as const))
      const found = await select(active.length === 0 ? pairs : sql`${pairs} and ${sql.join(active, sql` and `)}`)
      level = found.filter((row) => !known.has(keyText(row.k)))
      for (const row of level) known.add(keyText(row.k))
      rows.push(...level)
    }
    restored.set(name, { ids: rows.map((row) => row.k), deletionIds: rows.map((row) => row.d) })
  }
  return restored
}

/**
 * Per table, the count and the first `sampleSize` keys in key order (in a table that references
 * itself the replies come level by level, so the walk's order is not the key order).
 */
async function restoredSummary(
  d: PortableDialect,
  trx: Kysely<any>,
  context: Context,
  restored: Restored,
  sampleSize: number,
): Promise<Record<string, PreviewTable>> {
  const tables: Record<string, PreviewTable> = {}
  for (const [name, entry] of restored) {
    let sample = entry.ids.slice(0, sampleSize)
    if (context.definition.selfRelationOf(name) !== undefined && entry.ids.length > 0 && sampleSize > 0) {
      const key = context.definition.table(name).key
      const first = await trx
        .selectFrom(name)
        .select(`${key} as key`)
        .where(d.keyIn(key, entry.ids))
        .$call(withDeleted({ [name]: 'include' }))
        .orderBy(key)
        .limit(sampleSize)
        .execute()
      sample = keysOf(first, 'key')
    }
    tables[name] = { count: entry.ids.length, sample: sample.map(keyText), held: 0 }
  }
  return tables
}

/**
 * Rows the restore would bring back that meet, on a unique index, an active row or another row of
 * the same restore (both would then be active), with the index and its columns from the catalog as
 * the restore's own diagnosis finds them (SQLite `pragma_index_list`, MariaDB
 * `information_schema.statistics`, whose `tombstone_active_<column>` columns stand for `<column>`).
 * A unique index over every row cannot be met by a restore: it never reports one.
 */
async function findConflicts(
  d: PortableDialect,
  trx: Kysely<any>,
  context: Context,
  restored: Map<string, { ids: RowKey[] }>,
  limit: number,
): Promise<PreviewConflict[]> {
  const conflicts: PreviewConflict[] = []
  for (const [name, entry] of restored) {
    if (entry.ids.length === 0) continue
    const table = context.definition.table(name)
    const key = sql.id(table.key)
    for (const index of await d.uniqueIndexes(trx, name)) {
      const columns = index.columns.filter((column) => !column.startsWith('tombstone_'))
      if (columns.length === 0 || columns.includes(table.key)) continue
      const same = (left: string, right: string) =>
        sql.join(
          columns.map((column) => sql`${sql.ref(`${left}.${column}`)} = ${sql.ref(`${right}.${column}`)}`),
          sql` and `,
        )
      const active = await sql<{ id: RowKey; other: RowKey }>`select c.${key} as id, a.${key} as other
        from ${sql.table(name)} as c join ${sql.table(name)} as a on ${same('a', 'c')} and a.${sql.id(table.columns.deletedAt)} is null
        where ${d.keyIn(`c.${table.key}`, entry.ids)} order by c.${key}, a.${key} limit ${sql.lit(limit)}`.execute(trx)
      const together = await sql<{ id: RowKey; other: RowKey }>`select c.${key} as id, c2.${key} as other
        from ${sql.table(name)} as c join ${sql.table(name)} as c2 on ${same('c2', 'c')} and c2.${key} <> c.${key}
        where ${d.keyIn(`c.${table.key}`, entry.ids)} and ${d.keyIn(`c2.${table.key}`, entry.ids)}
        order by c.${key}, c2.${key} limit ${sql.lit(limit)}`.execute(trx)
      for (const row of [...active.rows, ...together.rows]) {
        conflicts.push({ table: name, id: keyText(row.id), constraint: index.name, columns, conflictingId: keyText(row.other) })
      }
    }
  }
  return conflicts
}
