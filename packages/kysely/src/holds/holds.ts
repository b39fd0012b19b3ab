import { sql, type Expression, type Kysely, type SqlBool } from 'kysely'
import { InvalidArgumentError, InvalidConfigurationError, NotFoundError, sqlStateOf, type RowKey } from '../errors.ts'
import { dialectKindOf } from '../dialects/adapter.ts'
import { targetVisibility } from '../plugin/markers.ts'
import { notInstalled } from '../operations/force-delete.ts'
import { actorValue, contextOf, inTransaction, keyIn, keysOf, keyText, missingKeys, targetKeys, type ActorOptions, type Context, type Target } from '../operations/context.ts'
import { HELD_ROWS_TABLE, HOLDS_TABLE } from './schema.ts'

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
 * the hard-delete opt-in, `TRUNCATE`; SQLSTATE `TB006`, {@link LegalHoldError}), and {@link purge}
 * skips the held rows (and the rows above them, which cannot go without them) and counts them. The
 * held rows are fixed when it is placed: a row inserted later is not covered. The target rows are
 * locked `FOR SHARE` while the hold is written, so a concurrent force delete either finished before
 * (the row is in `notFound`) or is refused. Audited: one `hold` entry per held row.
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
  refuseUnlessPostgres(db as Kysely<any>)
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
          .forShare()
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
        .forShare()
      select = wanted === undefined ? select.where((target as { where: (eb: any) => Expression<SqlBool> }).where as never) : select.where(keyIn(table.key, wanted))
      const found = keysOf(await select.execute(), 'key')
      if (wanted !== undefined) notFound = missingKeys(wanted, found)
      if (found.length === 0) throw new NotFoundError(table.name, wanted ?? [])
      keys = found.map(keyText)
    }
    const placed = await sql<{ id: string | number }>`select tombstone_place_hold(${entity}, ${keys}::text[], ${deletionId}::uuid, ${
      actor === null ? null : String(actor)
    }::text, ${options.reason}::text) as id`
      .execute(trx)
      .catch(holdsError)
    const hold = await readHold(trx, Number(placed.rows[0]?.id))
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
  refuseUnlessPostgres(db as Kysely<any>)
  contextOf(db as Kysely<any>)
  if (!Number.isSafeInteger(holdId) || holdId < 1) throw new InvalidArgumentError('holdId must be a positive integer')
  const actor = actorValue(options.by)
  return inTransaction(db as Kysely<any>, async (trx) => {
    const result = await sql<{ released: boolean }>`select tombstone_release_hold(${holdId}::bigint, ${actor === null ? null : String(actor)}::text, ${
      options.reason ?? null
    }::text) as released`
      .execute(trx)
      .catch(holdsError)
    const hold = await readHold(trx, holdId)
    if (hold === undefined) throw new NotFoundError(HOLDS_TABLE, [holdId])
    return { hold, released: result.rows[0]?.released === true }
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
  refuseUnlessPostgres(db as Kysely<any>)
  const context = contextOf(db as Kysely<any>)
  const limit = query.limit ?? 100
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) throw new InvalidArgumentError('limit must be between 1 and 1000')
  if (query.key !== undefined && query.table === undefined) throw new InvalidArgumentError('key needs table')
  if (query.table !== undefined) context.definition.table(query.table)
  if (query.deletionId !== undefined && !UUID.test(query.deletionId)) throw new InvalidArgumentError('deletionId must be a UUID')
  if (query.beforeId !== undefined && !Number.isSafeInteger(query.beforeId)) throw new InvalidArgumentError('beforeId must be an integer')
  const conditions = [sql`true`]
  if (query.active !== undefined) conditions.push(query.active ? sql`h.released_at is null` : sql`h.released_at is not null`)
  if (query.key !== undefined) {
    conditions.push(sql`exists (select 1 from ${sql.table(HELD_ROWS_TABLE)} r where r.hold_id = h.id and r.entity = ${query.table} and r.entity_id = ${keyText(query.key)})`)
  } else if (query.table !== undefined) conditions.push(sql`h.entity = ${query.table}`)
  if (query.deletionId !== undefined) conditions.push(sql`h.deletion_id = ${query.deletionId}::uuid`)
  if (query.beforeId !== undefined) conditions.push(sql`h.id < ${query.beforeId}`)
  const rows = await sql<HoldRow>`${holdSelect} where ${sql.join(conditions, sql` and `)} order by h.id desc limit ${limit}`
    .execute(db)
    .catch(holdsError)
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
  (select count(*) from ${sql.table(HELD_ROWS_TABLE)} r where r.hold_id = h.id)::int as rows
  from ${sql.table(HOLDS_TABLE)} h`

async function readHold(db: Kysely<any>, id: number): Promise<Hold | undefined> {
  const rows = await sql<HoldRow>`${holdSelect} where h.id = ${id}`.execute(db).catch(holdsError)
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

function holdsError(error: unknown): never {
  // 42P01 undefined table / 42883 undefined function: the holds were never installed.
  const state = sqlStateOf(error)
  if (state === '42P01' || state === '42883') throw notInstalled(error)
  if (state === '22023') throw new InvalidArgumentError((error as Error).message)
  throw error
}

/** True when the database has the holds tables (installed by a recent `installSoftDeletes`). @internal */
export async function holdsInstalled(db: Kysely<any>): Promise<boolean> {
  if (dialectKindOf(db) !== 'postgres') return false
  const result = await sql<{ present: boolean }>`select to_regclass(${HELD_ROWS_TABLE}) is not null as present`.execute(db)
  return result.rows[0]?.present === true
}

/** True when some hold stands (on any row). @internal */
export async function standingHolds(db: Kysely<any>): Promise<boolean> {
  const result = await sql<{ any: boolean }>`select exists (select 1 from ${sql.table(HELD_ROWS_TABLE)} where not released) as any`.execute(db)
  return result.rows[0]?.any === true
}

/**
 * True for a row that no standing hold covers, nor any of its descendants along the declared
 * relations (a row cannot be removed without them): raw SQL over `qualifier`, which the plugin
 * does not filter, so descendants are looked at whatever their state. @internal
 */
export function freeOfHolds(context: Context, name: string, qualifier: string, depth = 0): Expression<SqlBool> {
  const table = context.definition.table(name)
  const conditions = [
    sql<SqlBool>`not exists (select 1 from ${sql.table(HELD_ROWS_TABLE)} as ${sql.id(`tombstone_held${depth}`)}
      where ${sql.ref(`tombstone_held${depth}.entity`)} = ${name} and ${sql.ref(`tombstone_held${depth}.entity_id`)} = ${sql.ref(
        `${qualifier}.${table.key}`,
      )}::text and not ${sql.ref(`tombstone_held${depth}.released`)})`,
  ]
  for (const relation of context.definition.childrenOf(name)) {
    const alias = `tombstone_h${depth}_${relation.child.replaceAll('.', '_')}`
    conditions.push(sql<SqlBool>`not exists (select 1 from ${sql.table(relation.child)} as ${sql.id(alias)}
      where ${sql.ref(`${alias}.${relation.foreignKey}`)} = ${sql.ref(`${qualifier}.${relation.parentKey}`)}
        and not (${freeOfHolds(context, relation.child, alias, depth + 1)}))`)
  }
  const self = context.definition.selfRelationOf(name)
  if (self !== undefined) {
    // The replies below it, to any depth, along the table's own relation (operations/tree.ts).
    const [t, key, fk, pk] = [sql.table(name), sql.id(table.key), sql.id(self.foreignKey), sql.id(self.parentKey)]
    const tree = sql.id(`tombstone_sub${depth}`)
    conditions.push(sql<SqlBool>`not exists (with recursive ${tree}(k, pk) as (
        select c.${key}, c.${pk} from ${t} as c where c.${fk} = ${sql.ref(`${qualifier}.${self.parentKey}`)}
        union
        select c.${key}, c.${pk} from ${t} as c join ${tree} as r on c.${fk} = r.pk
      ) select 1 from ${tree} as s join ${sql.table(HELD_ROWS_TABLE)} as h
        on h.entity = ${name} and h.entity_id = s.k::text and not h.released)`)
  }
  return sql<SqlBool>`(${sql.join(conditions, sql` and `)})`
}

/** Legal holds are PostgreSQL's and PGlite's so far (docs/dialects.md): a coded error elsewhere. */
function refuseUnlessPostgres(db: Kysely<any>): void {
  const kind = dialectKindOf(db)
  if (kind !== 'postgres') throw new InvalidConfigurationError(`Legal holds are supported on PostgreSQL and PGlite only, not on ${kind}`)
}
