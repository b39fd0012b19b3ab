import { sql, type Expression, type Kysely, type RawBuilder, type SqlBool } from 'kysely'
import { InvalidArgumentError, NotFoundError, sqlStateOf, type RowKey } from '../errors.ts'
import { dialectKindOf, type DialectKind } from '../dialects/adapter.ts'
import { SQLITE_NOW } from '../dialects/sqlite.ts'
import { portableFor } from '../dialects/portable.ts'
import { targetVisibility } from '../plugin/markers.ts'
import { notInstalled } from '../operations/force-delete.ts'
import { actorValue, contextOf, inTransaction, keyIn, keysOf, keyText, missingKeys, targetKeys, type ActorOptions, type Context, type Target } from '../operations/context.ts'
import { deletionRowsSql, HELD_ROWS_TABLE, HOLDS_TABLE } from './schema.ts'

/** A legal hold: rows of one table (by key or `where`), or every row of one deletion. */
export interface Hold {
  readonly id: number
  /** The table named when it was placed (for a deletion, the deletion's root table). */
  readonly table: string
  /** The deletion it covers, when placed on one. */
  readonly deletionId: string | null
  readonly placedAt: Date
  readonly placedBy: string | null
  readonly reason: string
  /** Null while the hold stands. */
  readonly releasedAt: Date | null
  readonly releasedBy: string | null
  readonly releaseReason: string | null
  /** Rows it covers, all tables together. */
  readonly rows: number
}

/** What {@link placeHold} holds: keys or a `where` of one table, or a whole deletion. */
export type HoldTarget =
  | (Target & { readonly table: string; readonly deletionId?: never })
  | { readonly deletionId: string; readonly table?: never; readonly id?: never; readonly ids?: never; readonly where?: never }

/** Options of {@link placeHold}: who places it, and why (required). */
export interface PlaceHoldOptions extends ActorOptions {
  /** Why the rows must be kept (a case number, a request). Required, not empty. */
  readonly reason: string
}

/** What {@link placeHold} did. */
export interface PlaceHoldResult {
  readonly hold: Hold
  /** Target keys with no row (nothing to hold). */
  readonly notFound: readonly RowKey[]
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * Places a legal hold on rows: by key (`id`, `ids`) or `where` (any state, deleted or not) of one
 * table, or on every row of one deletion (`deletionId`: the rows it took, the ones restored since
 * included, since a restore does not lift a hold). While it stands, the database refuses, for every
 * client, any statement that would remove a held row for good (`forceDelete`, a plain `DELETE` with
 * the hard-delete opt-in, a foreign-key cascade, and on PostgreSQL `TRUNCATE`; `TB006`,
 * {@link LegalHoldError}), and {@link purge} skips the held rows (and the rows above them, which
 * cannot go without them) and counts them. The held rows are fixed when it is placed: a row
 * inserted later is not covered. The target rows are locked while the hold is written (PostgreSQL
 * `FOR SHARE`, MariaDB/MySQL `LOCK IN SHARE MODE`, in key order; SQLite: the transaction's write
 * lock), so a concurrent force delete either finished before (the row is in `notFound`) or is
 * refused. Audited: one `hold` entry per held row. The same on every dialect (docs/dialects.md,
 * "Legal holds", for how each database holds it).
 *
 * @example
 * ```ts
 * const { hold } = await placeHold(db, { table: 'users', id: 3 }, { by: 'legal@example.com', reason: 'case 2026-114' })
 * await placeHold(db, { deletionId: result.deletionId! }, { by: 'legal@example.com', reason: 'case 2026-114' })
 * await releaseHold(db, hold.id, { by: 'legal@example.com', reason: 'case closed' })
 * ```
 */
export async function placeHold<DB>(db: Kysely<DB>, target: HoldTarget, options: PlaceHoldOptions): Promise<PlaceHoldResult> {
  const context = contextOf(db as Kysely<any>)
  const kind = dialectKindOf(db as Kysely<any>)
  if (typeof options?.reason !== 'string' || options.reason.trim() === '') throw new InvalidArgumentError('A legal hold needs a reason')
  const actor = actorValue(options.by)
  return inTransaction(db as Kysely<any>, async (trx) => {
    let entity: string
    let keys: string[] = []
    let notFound: RowKey[] = []
    let deletionId: string | null = null
    if (target.deletionId !== undefined) {
      if (typeof target.deletionId !== 'string' || !UUID.test(target.deletionId)) throw new InvalidArgumentError('deletionId must be a UUID')
      deletionId = target.deletionId.toLowerCase()
      let root: string | undefined
      // The deletion's rows, locked; its root is the first table (in the relations' order) it reached.
      for (const name of context.definition.topologicalOrder()) {
        const table = context.definition.table(name)
        const rows = await trx
          .selectFrom(name)
          .select(`${table.key} as key`)
          .where(sql.ref(table.columns.deletionId), '=', deletionId)
          .$call(targetVisibility({ [name]: 'include' }))
          .orderBy(table.key)
          .$call(lockShared(kind))
          .execute()
        if (rows.length > 0 && root === undefined) root = name
      }
      if (root === undefined && context.definition.auditTable !== undefined) {
        const first = await sql<{ entity: string }>`select entity from ${sql.table(context.definition.auditTable)}
          where deletion_id = ${deletionId} and action = 'soft_delete' order by id limit 1`.execute(trx)
        root = first.rows[0]?.entity
      }
      if (root === undefined) throw new NotFoundError('deletions', [deletionId])
      entity = root
    } else {
      const table = context.definition.table((target as { table: string }).table)
      entity = table.name
      const wanted = targetKeys(target as Target, table.name)
      let select = trx
        .selectFrom(table.name)
        .select(`${table.key} as key`)
        .$call(targetVisibility({ [table.name]: 'include' }))
        .orderBy(table.key)
        .$call(lockShared(kind))
      const portable = portableFor(trx)
      select = wanted === undefined ? select.where((target as { where: (eb: any) => Expression<SqlBool> }).where as never) : select.where(portable === undefined ? keyIn(table.key, wanted) : portable.keyIn(table.key, wanted))
      const found = keysOf(await select.execute(), 'key')
      if (wanted !== undefined) notFound = missingKeys(wanted, found)
      if (found.length === 0) throw new NotFoundError(table.name, wanted ?? [])
      keys = found.map(keyText)
    }
    const by = actor === null ? null : String(actor)
    const id = await insertHold(kind, context, trx, { entity, keys, deletionId, by, reason: options.reason })
    const hold = await readHold(trx, id)
    return { hold: hold as Hold, notFound }
  })
}

/** What {@link releaseHold} did. */
export interface ReleaseHoldResult {
  readonly hold: Hold
  /** False when the hold was released already (it is left as it was). */
  readonly released: boolean
}

/**
 * Releases a legal hold: its rows may be purged or removed again (unless another hold covers them).
 * The hold stays on record with who released it, when and why. Audited: one `release` entry per row.
 * Throws {@link NotFoundError} for an unknown hold id.
 *
 * @example
 * ```ts
 * const { released } = await releaseHold(db, 12, { by: 'legal@example.com', reason: 'case closed' })
 * ```
 */
export async function releaseHold<DB>(db: Kysely<DB>, holdId: number, options: ActorOptions = {}): Promise<ReleaseHoldResult> {
  contextOf(db as Kysely<any>)
  const kind = dialectKindOf(db as Kysely<any>)
  if (!Number.isSafeInteger(holdId) || holdId < 1) throw new InvalidArgumentError('holdId must be a positive integer')
  const actor = actorValue(options.by)
  return inTransaction(db as Kysely<any>, async (trx) => {
    const released = await markReleased(kind, trx, holdId, actor === null ? null : String(actor), options.reason ?? null)
    const hold = await readHold(trx, holdId)
    if (hold === undefined) throw new NotFoundError(HOLDS_TABLE, [holdId])
    return { hold, released }
  })
}

/** Filters of {@link listHolds}. */
export interface HoldQuery {
  /** Only holds still standing (`true`) or released (`false`). Defaults to both. */
  readonly active?: boolean
  /** Holds placed on this table (for a deletion: on its root table). */
  readonly table?: string
  /** Holds covering a row of `table` with this key (`table` required). */
  readonly key?: RowKey
  readonly deletionId?: string
  /** Holds with an id below this one (keyset pagination, newest first). */
  readonly beforeId?: number
  /** Defaults to 100; at most 1,000. */
  readonly limit?: number
}

/**
 * Lists legal holds, newest first.
 *
 * @example
 * ```ts
 * const standing = await listHolds(db, { active: true })
 * const onPost = await listHolds(db, { table: 'posts', key: 7, active: true })
 * ```
 */
export async function listHolds<DB>(db: Kysely<DB>, query: HoldQuery = {}): Promise<Hold[]> {
  const context = contextOf(db as Kysely<any>)
  const kind = dialectKindOf(db as Kysely<any>)
  const limit = query.limit ?? 100
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) throw new InvalidArgumentError('limit must be between 1 and 1000')
  if (query.key !== undefined && query.table === undefined) throw new InvalidArgumentError('key needs table')
  if (query.table !== undefined) context.definition.table(query.table)
  if (query.deletionId !== undefined && !UUID.test(query.deletionId)) throw new InvalidArgumentError('deletionId must be a UUID')
  if (query.beforeId !== undefined && !Number.isSafeInteger(query.beforeId)) throw new InvalidArgumentError('beforeId must be an integer')
  const conditions = [sql`1 = 1`]
  if (query.active !== undefined) conditions.push(query.active ? sql`h.released_at is null` : sql`h.released_at is not null`)
  if (query.key !== undefined) {
    conditions.push(sql`exists (select 1 from ${sql.table(HELD_ROWS_TABLE)} r where r.hold_id = h.id and r.entity = ${query.table} and r.entity_id = ${keyText(query.key)})`)
  } else if (query.table !== undefined) conditions.push(sql`h.entity = ${query.table}`)
  if (query.deletionId !== undefined) conditions.push(kind === 'postgres' ? sql`h.deletion_id = ${query.deletionId}::uuid` : sql`h.deletion_id = ${query.deletionId.toLowerCase()}`)
  if (query.beforeId !== undefined) conditions.push(sql`h.id < ${query.beforeId}`)
  const rows = await sql<HoldRow>`${holdSelect} where ${sql.join(conditions, sql` and `)} order by h.id desc limit ${limit}`
    .execute(db)
    .catch((error: unknown) => holdsError(db as Kysely<any>, error))
  return rows.rows.map(toHold)
}

interface HoldRow {
  id: string | number
  entity: string
  deletion_id: string | null
  placed_at: Date
  placed_by: string | null
  reason: string
  released_at: Date | null
  released_by: string | null
  release_reason: string | null
  rows: string | number
}

const holdSelect = sql`select h.id, h.entity, h.deletion_id, h.placed_at, h.placed_by, h.reason, h.released_at, h.released_by, h.release_reason,
  (select count(*) from ${sql.table(HELD_ROWS_TABLE)} r where r.hold_id = h.id) as ${sql.id('rows')}
  from ${sql.table(HOLDS_TABLE)} h`

async function readHold(db: Kysely<any>, id: number): Promise<Hold | undefined> {
  const rows = await sql<HoldRow>`${holdSelect} where h.id = ${id}`.execute(db).catch((error: unknown) => holdsError(db, error))
  const row = rows.rows[0]
  return row === undefined ? undefined : toHold(row)
}

function toHold(row: HoldRow): Hold {
  return {
    id: Number(row.id),
    table: row.entity,
    deletionId: row.deletion_id,
    placedAt: new Date(row.placed_at),
    placedBy: row.placed_by,
    reason: row.reason,
    releasedAt: row.released_at === null ? null : new Date(row.released_at),
    releasedBy: row.released_by,
    releaseReason: row.release_reason,
    rows: Number(row.rows),
  }
}

async function holdsError(db: Kysely<any>, error: unknown): Promise<never> {
  // 42P01 undefined table / 42883 undefined function: the holds were never installed (SQLite and
  // MariaDB name no SQLSTATE for it: the catalog tells).
  const state = sqlStateOf(error)
  if (state === '42P01' || state === '42883') throw notInstalled(error)
  if (state === '22023') throw new InvalidArgumentError((error as Error).message)
  if (dialectKindOf(db) !== 'postgres' && !(await holdsInstalled(db).catch(() => true))) throw notInstalled(error)
  throw error
}

/** Share locks on the rows a hold is placed on (SQLite: the transaction's write lock is enough). */
function lockShared<QB extends { forShare(): QB; modifyEnd(modifier: RawBuilder<unknown>): QB }>(kind: DialectKind): (query: QB) => QB {
  if (kind === 'postgres') return (query) => query.forShare()
  // MariaDB has no FOR SHARE; LOCK IN SHARE MODE is the same lock (MySQL 8 accepts it too).
  if (kind === 'mysql') return (query) => query.modifyEnd(sql`lock in share mode`)
  return (query) => query
}

/**
 * Writes a hold and its rows: PostgreSQL and MariaDB/MySQL through their `tombstone_place_hold()`
 * (`SECURITY DEFINER`: the application has no right on the tables), SQLite by inserting the rows
 * (no roles). The audit's `hold` entries are the database's work on each.
 */
async function insertHold(
  kind: DialectKind,
  context: Context,
  trx: Kysely<any>,
  hold: { entity: string; keys: readonly string[]; deletionId: string | null; by: string | null; reason: string },
): Promise<number> {
  const fail = (error: unknown) => holdsError(trx, error)
  if (kind === 'postgres') {
    const placed = await sql<{ id: string | number }>`select tombstone_place_hold(${hold.entity}, ${hold.keys}::text[], ${hold.deletionId}::uuid, ${hold.by}::text, ${hold.reason}::text) as id`
      .execute(trx)
      .catch(fail)
    return Number(placed.rows[0]?.id)
  }
  if (kind === 'mysql') {
    const placed = await sql<{ id: string | number }>`select tombstone_place_hold(${hold.entity}, ${JSON.stringify(hold.keys)}, ${hold.deletionId}, ${hold.by}, ${hold.reason}) as id`
      .execute(trx)
      .catch(fail)
    return Number(placed.rows[0]?.id)
  }
  const placed = await sql<{ id: number }>`insert into ${sql.table(HOLDS_TABLE)} (entity, deletion_id, placed_by, reason)
    values (${hold.entity}, ${hold.deletionId}, ${hold.by}, ${hold.reason}) returning id`
    .execute(trx)
    .catch(fail)
  const id = Number(placed.rows[0]?.id)
  await sql`insert or ignore into ${sql.table(HELD_ROWS_TABLE)} (hold_id, entity, entity_id)
    select distinct ${id}, ${hold.entity}, value from json_each(${JSON.stringify(hold.keys)}) where value is not null order by value`.execute(trx)
  if (hold.deletionId !== null) {
    // The deletion id is a UUID checked by the caller: safe to write as a literal.
    const rows = deletionRowsSql(context.definition, 'sqlite', `'${hold.deletionId}'`)
    await sql`insert or ignore into ${sql.table(HELD_ROWS_TABLE)} (hold_id, entity, entity_id)
      select distinct ${id}, d.entity, d.entity_id from (${sql.raw(rows)}) as d order by d.entity, d.entity_id`.execute(trx)
  }
  return id
}

/** Releases a standing hold (its rows and the audit's `release` entries follow in the database); false when it was released already. */
async function markReleased(kind: DialectKind, trx: Kysely<any>, holdId: number, by: string | null, reason: string | null): Promise<boolean> {
  const fail = (error: unknown) => holdsError(trx, error)
  if (kind === 'postgres') {
    const result = await sql<{ released: boolean }>`select tombstone_release_hold(${holdId}::bigint, ${by}::text, ${reason}::text) as released`.execute(trx).catch(fail)
    return result.rows[0]?.released === true
  }
  if (kind === 'mysql') {
    const result = await sql<{ released: number }>`select tombstone_release_hold(${holdId}, ${by}, ${reason}) as released`.execute(trx).catch(fail)
    return Number(result.rows[0]?.released) === 1
  }
  const result = await sql<{ id: number }>`update ${sql.table(HOLDS_TABLE)} set released_at = ${sql.raw(SQLITE_NOW)}, released_by = ${by}, release_reason = ${reason}
    where id = ${holdId} and released_at is null returning id`
    .execute(trx)
    .catch(fail)
  return result.rows.length > 0
}

/** True when the database has the holds tables (installed by a recent `installSoftDeletes`). @internal */
export async function holdsInstalled(db: Kysely<any>): Promise<boolean> {
  const kind = dialectKindOf(db)
  if (kind === 'sqlite') {
    const result = await sql<{ n: number }>`select count(*) as n from sqlite_master where type = 'table' and name = ${HELD_ROWS_TABLE}`.execute(db)
    return Number(result.rows[0]?.n) > 0
  }
  if (kind === 'mysql') {
    const result = await sql<{ n: number }>`select count(*) as n from information_schema.tables where table_schema = database() and table_name = ${HELD_ROWS_TABLE}`.execute(db)
    return Number(result.rows[0]?.n) > 0
  }
  const result = await sql<{ present: boolean }>`select to_regclass(${HELD_ROWS_TABLE}) is not null as present`.execute(db)
  return result.rows[0]?.present === true
}

/** True when some hold stands (on any row). @internal */
export async function standingHolds(db: Kysely<any>): Promise<boolean> {
  const result = await sql<{ any: boolean | number }>`select exists (select 1 from ${sql.table(HELD_ROWS_TABLE)} where not released) as ${sql.id('any')}`.execute(db)
  const value = result.rows[0]?.any
  return value === true || Number(value) === 1
}

/** `expression` as text, in the dialect's words (held rows keep keys as text). */
function asText(kind: DialectKind, expression: RawBuilder<unknown>): RawBuilder<string> {
  if (kind === 'postgres') return sql<string>`${expression}::text`
  return kind === 'mysql' ? sql<string>`cast(${expression} as char)` : sql<string>`cast(${expression} as text)`
}

/**
 * True for a row that no standing hold covers, nor any of its descendants along the declared
 * relations (a row cannot be removed without them): raw SQL over `qualifier`, which the plugin
 * does not filter, so descendants are looked at whatever their state. @internal
 */
export function freeOfHolds(context: Context, name: string, qualifier: string, kind: DialectKind, depth = 0): Expression<SqlBool> {
  const table = context.definition.table(name)
  const conditions = [
    sql<SqlBool>`not exists (select 1 from ${sql.table(HELD_ROWS_TABLE)} as ${sql.id(`tombstone_held${depth}`)}
      where ${sql.ref(`tombstone_held${depth}.entity`)} = ${name} and ${sql.ref(`tombstone_held${depth}.entity_id`)} = ${asText(kind, sql.ref(
        `${qualifier}.${table.key}`,
      ))} and not ${sql.ref(`tombstone_held${depth}.released`)})`,
  ]
  for (const relation of context.definition.childrenOf(name)) {
    const alias = `tombstone_h${depth}_${relation.child.replaceAll('.', '_')}`
    conditions.push(sql<SqlBool>`not exists (select 1 from ${sql.table(relation.child)} as ${sql.id(alias)}
      where ${sql.ref(`${alias}.${relation.foreignKey}`)} = ${sql.ref(`${qualifier}.${relation.parentKey}`)}
        and not (${freeOfHolds(context, relation.child, alias, kind, depth + 1)}))`)
  }
  const self = context.definition.selfRelationOf(name)
  if (self !== undefined) {
    // The replies below it, to any depth, along the table's own relation (operations/tree.ts).
    const [t, key, fk, pk] = [sql.table(name), sql.id(table.key), sql.id(self.foreignKey), sql.id(self.parentKey)]
    const tree = sql.id(`tombstone_sub${depth}`)
    if (kind === 'mysql') {
      // MariaDB takes no outer reference inside a CTE: the held rows and their ancestors instead,
      // uncorrelated, and the row looked up among them.
      conditions.push(sql<SqlBool>`not exists (with recursive ${tree}(k, fk) as (
          select c.${key}, c.${fk} from ${t} as c join ${sql.table(HELD_ROWS_TABLE)} as h
            on h.entity = ${name} and h.entity_id = ${asText(kind, sql`c.${key}`)} and not h.released
          union
          select p.${key}, p.${fk} from ${t} as p join ${tree} as r on p.${pk} = r.fk
        ) select 1 from ${tree} as s where s.k = ${sql.ref(`${qualifier}.${table.key}`)})`)
      return sql<SqlBool>`(${sql.join(conditions, sql` and `)})`
    }
    conditions.push(sql<SqlBool>`not exists (with recursive ${tree}(k, pk) as (
        select c.${key}, c.${pk} from ${t} as c where c.${fk} = ${sql.ref(`${qualifier}.${self.parentKey}`)}
        union
        select c.${key}, c.${pk} from ${t} as c join ${tree} as r on c.${fk} = r.pk
      ) select 1 from ${tree} as s join ${sql.table(HELD_ROWS_TABLE)} as h
        on h.entity = ${name} and h.entity_id = ${asText(kind, sql`s.k`)} and not h.released)`)
  }
  return sql<SqlBool>`(${sql.join(conditions, sql` and `)})`
}

