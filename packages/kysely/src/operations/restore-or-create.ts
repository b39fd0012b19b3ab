import { sql, type Insertable, type Kysely } from 'kysely'
import { ConflictError, InvalidArgumentError, SQLSTATE, sqlStateOf, type RowKey } from '../errors.ts'
import { portableFor, type PortableDialect } from '../dialects/portable.ts'
import type { TableDefinition } from '../definition.ts'
import { withDeleted } from '../plugin/markers.ts'
import { classifyKeyError, classifyOperationError, contextOf, inTransaction, keyIn, keyText, type ActorOptions } from './context.ts'
import { restore, type RestoreResult } from './restore.ts'

/** Options of {@link restoreOrCreate}. */
export interface RestoreOrCreateOptions extends ActorOptions {
  /**
   * The columns of one active-only unique index (`createActiveUniqueIndex(db, table, on)`): a row
   * is identified by its values in these columns. Required, at least one column.
   */
  readonly on: readonly string[]
  /**
   * What the given values of the other columns do to a row that already holds the key:
   * - `'none'` (default): nothing. A revived row comes back exactly as it was deleted (as
   *   {@link restore} brings it back), an active row is left as it is; the values only make new rows.
   * - `'revived'`: the revived rows get the given values, after their restore, in the same
   *   transaction; active rows are left as they are.
   * - `'all'`: revived and active rows get the given values (an upsert that never writes into a
   *   deleted row: it revives it first).
   */
  readonly update?: 'none' | 'revived' | 'all'
}

/** What happened to one given row. */
export interface RestoreOrCreateRow {
  /** The key of the row that now holds the given key values, as the driver returns the key column. */
  readonly id: RowKey
  /** `created`: inserted; `restored`: a deleted row holding the key was revived; `active`: an active row held it. */
  readonly action: 'created' | 'restored' | 'active'
  /** Whether the given values were written into an existing row (`update`). */
  readonly updated: boolean
}

/** What {@link restoreOrCreate} did. */
export interface RestoreOrCreateResult {
  /** One entry per given row, in the order given. */
  readonly rows: readonly RestoreOrCreateRow[]
  readonly created: readonly RowKey[]
  readonly restored: readonly RowKey[]
  readonly active: readonly RowKey[]
  /** The restore of the revived rows, descendants included (their deletion's), or null when none was revived. */
  readonly restore: RestoreResult | null
}

/**
 * Inserts rows by an active-only unique key, reviving a soft-deleted row that holds the key instead
 * of inserting beside it (which would leave a duplicate to conflict at its restore) or writing into
 * it while it is deleted. For each given row, in one transaction (the caller's, when `db` is one):
 * an active row holding the key is left (`active`); else the most recently deleted row holding it is
 * restored with the rows its own deletion took (`restored`, the same as {@link restore}, audited as a
 * restore with `by` and `reason`); else the row is inserted (`created`). Set-based: one lookup for all
 * rows, one restore, one insert, one update.
 *
 * A revived row whose parent is deleted fails the whole call with `ParentDeletedError`, one whose
 * restore collides on another unique index with `ConflictError`; a concurrent insert of the same
 * key wins and this call fails with `ConflictError` (retry it: the key is then `active`). Nothing
 * changes on failure. On SQLite and MariaDB the same, in the fewest statements each allows: one
 * lookup (locking on MariaDB), the restore, one insert (SQLite) or one per new row (MariaDB, for
 * its keys), and one update per row written.
 *
 * @example
 * ```ts
 * await softDelete(db, 'users', { id: 3 })  // carol and her posts
 * const result = await restoreOrCreate(db, 'users', [{ username: 'carol', email: 'carol@example.com' }], { on: ['username'], by: adminId })
 * result.rows      // [{ id: 3, action: 'restored', updated: false }]
 * result.restore?.tables.posts?.count // her posts, deleted with her, are back too
 * ```
 */
export async function restoreOrCreate<DB, T extends keyof DB & string>(
  db: Kysely<DB>,
  table: T,
  values: readonly Insertable<DB[T]>[],
  options: RestoreOrCreateOptions,
): Promise<RestoreOrCreateResult> {
  const context = contextOf(db)
  const root = context.definition.table(table)
  const on = options?.on
  if (!Array.isArray(on) || on.length === 0 || on.some((column) => typeof column !== 'string' || !/^[A-Za-z_][A-Za-z0-9_$]*$/.test(column))) {
    throw new InvalidArgumentError('restoreOrCreate: `on` must name the columns of an active-only unique index', table)
  }
  const update = options.update ?? 'none'
  if (update !== 'none' && update !== 'revived' && update !== 'all') {
    throw new InvalidArgumentError(`restoreOrCreate: update must be 'none', 'revived' or 'all'`, table)
  }
  if (!Array.isArray(values)) throw new InvalidArgumentError('restoreOrCreate: values must be an array of rows', table)
  const seen = new Set<string>()
  for (const row of values as readonly Record<string, unknown>[]) {
    if (typeof row !== 'object' || row === null) throw new InvalidArgumentError('restoreOrCreate: every value is a row object', table)
    for (const column of on) {
      if (row[column] === undefined || row[column] === null) {
        throw new InvalidArgumentError(`restoreOrCreate: every row needs a value for "${column}"`, table)
      }
    }
    const identity = JSON.stringify(on.map((column) => String(row[column])))
    if (seen.has(identity)) throw new InvalidArgumentError(`restoreOrCreate: two rows share the key ${identity}`, table)
    seen.add(identity)
  }
  if (values.length === 0) return { rows: [], created: [], restored: [], active: [], restore: null }
  const rows = values as readonly Record<string, unknown>[]
  const json = JSON.stringify(rows, (_, value: unknown) => (typeof value === 'bigint' ? value.toString() : value))

  try {
    if (portableFor(db as Kysely<any>) !== undefined) return await portableRestoreOrCreate(db as Kysely<any>, root, rows, on, update, options)
    return await inTransaction(db as Kysely<any>, async (trx) => {
      // Per given row (n), the row holding its key: the active one, else the latest deleted. The
      // given values are read as the table's row type (json_populate_recordset), so they compare
      // as the columns' types. The holders are locked, so a concurrent delete or restore waits.
      const match = sql.join(
        on.map((column) => sql`t.${sql.id(column)} = i.${sql.id(column)}`),
        sql` and `,
      )
      const lookup = await sql<{ n: string | number; key: RowKey; deleted: boolean }>`
        select distinct on (i.ordinality) i.ordinality as n, t.${sql.id(root.key)} as key, t.${sql.id(root.columns.deletedAt)} is not null as deleted
        from json_populate_recordset(null::${sql.table(root.name)}, ${json}::json) with ordinality as i
        join ${sql.table(root.name)} as t on ${match}
        order by i.ordinality, t.${sql.id(root.columns.deletedAt)} is null desc, t.${sql.id(root.columns.deletedAt)} desc, t.${sql.id(root.key)} desc`
        .execute(trx)
        .catch((error: unknown) => {
          throw classifyKeyError(error, table)
        })
      const holder = new Map<number, { key: RowKey; deleted: boolean }>()
      for (const row of lookup.rows) holder.set(Number(row.n), { key: row.key, deleted: row.deleted })
      const revive = [...holder.values()].filter((entry) => entry.deleted).map((entry) => entry.key)
      const restoreResult =
        revive.length === 0 ? null : await restore(trx, table, { ids: revive }, { by: options.by, reason: options.reason })

      const fresh = rows.filter((_, index) => !holder.has(index + 1))
      const inserted =
        fresh.length === 0
          ? []
          : await trx
              .insertInto(root.name)
              .values(fresh as never)
              .returning(`${root.key} as key`)
              .execute()
      const createdKeys = inserted.map((row) => row.key as RowKey)

      const written = new Set<string>()
      if (update !== 'none') {
        const targets = [...holder.values()].filter((entry) => update === 'all' || entry.deleted).map((entry) => entry.key)
        const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))].filter(
          (column) => !on.includes(column) && column !== root.key && !Object.values(root.columns).includes(column),
        )
        if (targets.length > 0 && columns.length > 0) {
          // Each target row takes the values of the given row whose key it holds; a column a given
          // row leaves out keeps its value (coalesce over the json's presence, not over null).
          const assignments = columns.map(
            (column) =>
              sql`${sql.id(column)} = case when i.j ? ${column} then (i.r).${sql.id(column)} else t.${sql.id(column)} end`,
          )
          const updatedRows = await sql<{ key: RowKey }>`
            update ${sql.table(root.name)} as t set ${sql.join(assignments)}
            from (select j, json_populate_record(null::${sql.table(root.name)}, j::json) as r
                  from jsonb_array_elements(${json}::jsonb) as e(j)) as i
            where ${sql.join(on.map((column) => sql`t.${sql.id(column)} = (i.r).${sql.id(column)}`), sql` and `)}
              and ${keyIn(`t.${root.key}`, targets)}
            returning t.${sql.id(root.key)} as key`.execute(trx)
          for (const row of updatedRows.rows) written.add(keyText(row.key))
        }
      }

      const result: RestoreOrCreateRow[] = []
      let next = 0
      for (let index = 0; index < rows.length; index++) {
        const found = holder.get(index + 1)
        if (found === undefined) {
          result.push({ id: createdKeys[next++] as RowKey, action: 'created', updated: false })
        } else {
          result.push({ id: found.key, action: found.deleted ? 'restored' : 'active', updated: written.has(keyText(found.key)) })
        }
      }
      const ids = (action: RestoreOrCreateRow['action']) => result.filter((row) => row.action === action).map((row) => row.id)
      return { rows: result, created: ids('created'), restored: ids('restored'), active: ids('active'), restore: restoreResult }
    })
  } catch (error) {
    if (sqlStateOf(error) === SQLSTATE.uniqueViolation) {
      const details = error as { constraint?: string }
      throw new ConflictError({ table: root.name, constraint: details.constraint || undefined, columns: [...on], cause: error })
    }
    return classifyOperationError(error)
  }
}

/**
 * {@link restoreOrCreate} on SQLite and MariaDB/MySQL: the holders found by one lookup (values
 * compared by the database, matched back to the given rows by their text), then the same restore,
 * inserts and updates.
 */
async function portableRestoreOrCreate(
  db: Kysely<any>,
  root: TableDefinition,
  rows: readonly Record<string, unknown>[],
  on: readonly string[],
  update: 'none' | 'revived' | 'all',
  options: RestoreOrCreateOptions,
): Promise<RestoreOrCreateResult> {
  const d = portableFor(db) as PortableDialect
  const identity = (row: Record<string, unknown>) => JSON.stringify(on.map((column) => String(row[column])))
  return inTransaction(db, async (trx) => {
    const query = trx
      .selectFrom(root.name)
      .select([...on, `${root.key} as tombstone_key`, `${root.columns.deletedAt} as tombstone_deleted_at`])
      .where((eb) => eb.or(rows.map((row) => eb.and(on.map((column) => eb(sql.ref(column), '=', row[column] as never))))))
      .$call(withDeleted({ [root.name]: 'include' }))
      .orderBy(root.key)
    const found = await d.lock(query).execute().catch(classifyOperationError)
    // Per key: the active holder, else the latest deleted (by deleted_at, then key).
    const best = new Map<string, { key: RowKey; deleted: boolean; at: number }>()
    for (const row of found as Record<string, unknown>[]) {
      const at = row.tombstone_deleted_at === null ? Infinity : new Date(row.tombstone_deleted_at as string).getTime()
      const entry = { key: row.tombstone_key as RowKey, deleted: row.tombstone_deleted_at !== null, at }
      const current = best.get(identity(row))
      if (current === undefined || at >= current.at) best.set(identity(row), entry)
    }
    const holder = new Map<number, { key: RowKey; deleted: boolean }>()
    rows.forEach((row, index) => {
      const entry = best.get(identity(row))
      if (entry !== undefined) holder.set(index + 1, entry)
    })
    const revive = [...holder.values()].filter((entry) => entry.deleted).map((entry) => entry.key)
    const restoreResult = revive.length === 0 ? null : await restore(trx, root.name, { ids: revive }, { by: options.by, reason: options.reason })

    const fresh = rows.filter((_, index) => !holder.has(index + 1))
    const createdKeys: RowKey[] = []
    if (fresh.length > 0 && d.returning) {
      const inserted = await trx.insertInto(root.name).values(fresh as never).returning(`${root.key} as key`).execute().catch(classifyOperationError)
      createdKeys.push(...inserted.map((row) => row.key as RowKey))
    } else {
      for (const row of fresh) {
        const inserted = await trx.insertInto(root.name).values(row as never).executeTakeFirst().catch(classifyOperationError)
        createdKeys.push((row[root.key] as RowKey | undefined) ?? Number(inserted.insertId))
      }
    }

    const written = new Set<string>()
    if (update !== 'none') {
      const columns = (row: Record<string, unknown>) =>
        Object.keys(row).filter((column) => !on.includes(column) && column !== root.key && !Object.values(root.columns).includes(column))
      for (const [index, entry] of holder) {
        if (update !== 'all' && !entry.deleted) continue
        const row = rows[index - 1] as Record<string, unknown>
        const set = Object.fromEntries(columns(row).map((column) => [column, row[column]]))
        if (Object.keys(set).length === 0) continue
        await trx.updateTable(root.name).set(set).where(d.keyIn(root.key, [entry.key])).execute().catch(classifyOperationError)
        written.add(keyText(entry.key))
      }
    }

    const result: RestoreOrCreateRow[] = []
    let next = 0
    for (let index = 0; index < rows.length; index++) {
      const found = holder.get(index + 1)
      if (found === undefined) result.push({ id: createdKeys[next++] as RowKey, action: 'created', updated: false })
      else result.push({ id: found.key, action: found.deleted ? 'restored' : 'active', updated: written.has(keyText(found.key)) })
    }
    const ids = (action: RestoreOrCreateRow['action']) => result.filter((row) => row.action === action).map((row) => row.id)
    return { rows: result, created: ids('created'), restored: ids('restored'), active: ids('active'), restore: restoreResult }
  })
}
