import { sql, type Kysely, type RawBuilder, type SqlBool } from 'kysely'
import type { SoftDeleteDefinition, TableDefinition } from '../definition.ts'
import { DeletePolicyError, InvalidConfigurationError, ParentDeletedError, ReferencedError, type RowKey } from '../errors.ts'
import { dialectKindOf } from '../dialects/adapter.ts'
import { portableFor } from '../dialects/portable.ts'
import { classifyKeyError, classifyOperationError, contextOf, inTransaction, keyIn, keysOf, keyText, type TableResult, type Target } from './context.ts'
import { forceDelete } from './force-delete.ts'
import { softDelete, type SoftDeleteOptions, type SoftDeleteResult } from './soft-delete.ts'

/** Marks the options of a {@link softDelete} this module makes, so that the policy applies once. @internal */
export const POLICY_APPLIED: unique symbol = Symbol('tombstone.policyApplied')

/** Whether a soft delete's options come from {@link softDeleteByPolicy} already. @internal */
export function policyApplied(options: SoftDeleteOptions): boolean {
  return (options as { [POLICY_APPLIED]?: boolean })[POLICY_APPLIED] === true
}

/**
 * On SQLite and MariaDB a definition with a self-referencing relation to another column than the
 * table's key is refused (by `installSoftDeletes` and by the operations): there a tree is followed
 * level by level, by key. @internal
 */
export function refusePortableDefinition(db: Kysely<any>, definition: SoftDeleteDefinition<any>): void {
  const kind = dialectKindOf(db)
  if (kind === 'postgres') return
  for (const relation of definition.relations) {
    if (relation.parent === relation.child && relation.parentKey !== definition.table(relation.child).key) {
      throw new InvalidConfigurationError(
        `"${relation.child}": on ${kind}, a self-referencing relation must reference the table's key (${definition.table(relation.child).key}), not ${relation.parentKey}`,
        relation.child,
      )
    }
  }
}

/**
 * The declared dependents' `onParentSoftDelete` actions, after a soft delete stamped its rows
 * (`stamped`: the tables and keys it stamped, all sharing `deletionId`): per dependent table whose
 * parent got rows, one statement, finding the parents by the deletion id (no keys travel).
 * `'restrict'` throws a {@link ReferencedError}; `'set null'` and `'set default'` rewrite the
 * foreign key and return the rows changed, per dependent table. @internal
 */
export async function applyDependentActions(
  trx: Kysely<any>,
  definition: SoftDeleteDefinition<any>,
  stamped: ReadonlyMap<string, readonly RowKey[]>,
  deletionId: string,
): Promise<Record<string, TableResult>> {
  const changed: Record<string, TableResult> = {}
  const portable = portableFor(trx)
  for (const dependent of definition.dependents) {
    if (dependent.onParentSoftDelete === 'leave' || (stamped.get(dependent.parent)?.length ?? 0) === 0) continue
    const parent = definition.table(dependent.parent)
    const fk = sql.id(dependent.foreignKey)
    const id = portable === undefined ? sql`${deletionId}::uuid` : sql`${deletionId}`
    const parents = sql`(select p.${sql.id(dependent.parentKey)} from ${sql.table(parent.name)} as p where p.${sql.id(parent.columns.deletionId)} = ${id})`
    if (dependent.onParentSoftDelete === 'restrict') {
      const found = await sql<{ key: RowKey; parent: RowKey }>`select d.${sql.id(dependent.key)} as ${sql.id('key')}, d.${fk} as ${sql.id('parent')}
        from ${sql.table(dependent.table)} as d where d.${fk} in ${parents} limit 1`.execute(trx)
      const row = found.rows[0]
      if (row !== undefined) {
        throw new ReferencedError(
          dependent.table,
          undefined,
          undefined,
          `Row ${String(row.parent)} of "${dependent.parent}" is referenced by row ${String(row.key)} of "${dependent.table}" (onParentSoftDelete: 'restrict'): nothing was deleted`,
        )
      }
      continue
    }
    const value = dependent.onParentSoftDelete === 'set null' ? sql`null` : await columnDefault(trx, dependent.table, dependent.foreignKey)
    let ids: RowKey[]
    if (portable === undefined || portable.returning) {
      const rows = await sql<{ key: RowKey }>`update ${sql.table(dependent.table)} set ${fk} = ${value}
        where ${fk} in ${parents} returning ${sql.id(dependent.key)} as key`
        .execute(trx)
        .catch(classifyOperationError)
      ids = keysOf(rows.rows, 'key')
    } else {
      // MariaDB/MySQL: no UPDATE … RETURNING; the rows locked first, then updated by key.
      const rows = await sql<{ key: RowKey }>`select d.${sql.id(dependent.key)} as ${sql.id('key')} from ${sql.table(dependent.table)} as d
        where d.${fk} in ${parents} order by d.${sql.id(dependent.key)} for update`.execute(trx)
      ids = keysOf(rows.rows, 'key')
      if (ids.length > 0) {
        await sql`update ${sql.table(dependent.table)} set ${fk} = ${value} where ${portable.keyIn(dependent.key, ids)}`
          .execute(trx)
          .catch(classifyOperationError)
      }
    }
    if (ids.length > 0) changed[dependent.table] = { ids, count: ids.length }
    // A default that is itself one of the parents deleted here leaves the foreign key unchanged, so
    // the database's parent check (which looks at changed references) does not see it: checked here.
    const left = await sql<{ key: RowKey; parent: RowKey }>`select d.${sql.id(dependent.key)} as ${sql.id('key')}, d.${fk} as ${sql.id('parent')}
      from ${sql.table(dependent.table)} as d where d.${fk} in ${parents} limit 1`.execute(trx)
    const stuck = left.rows[0]
    if (stuck !== undefined) throw new ParentDeletedError(dependent.table, stuck.key, dependent.parent, stuck.parent)
  }
  return changed
}


/**
 * {@link softDelete} of a table whose policy is not `'soft'`: `'never'` refuses; for
 * `'hard-unless-referenced'`, the active target rows are locked (key order), those that no row of a
 * declared relation's child or dependent table references (active or deleted) are removed for good
 * by {@link forceDelete} (audited `hard_delete`), and the others soft-deleted, in one transaction.
 * A row inserted concurrently that references a target waits for the lock, so it is either seen
 * here (the target is soft-deleted) or refused after (`ParentDeletedError` or the foreign key). @internal
 */
export async function softDeleteByPolicy(
  db: Kysely<any>,
  root: TableDefinition,
  keys: readonly RowKey[] | undefined,
  target: Target,
  options: SoftDeleteOptions,
): Promise<SoftDeleteResult> {
  const { definition } = contextOf(db)
  refusePortableDefinition(db, definition)
  if (root.policy === 'never') throw new DeletePolicyError(root.name, 'operation')
  if (keys !== undefined && keys.length === 0) return { ...empty(), hardDeleted: [] }
  return inTransaction(db, async (trx) => {
    // The active targets (the plugin's filter), locked in key order.
    const base = trx.selectFrom(root.name).select(`${root.key} as key`)
    const chosen = (keys === undefined ? base.where(target.where as never) : base.where(keysIn(trx, root.key, keys))).orderBy(root.key)
    const portable = portableFor(trx)
    const rows = await (portable === undefined ? chosen.forUpdate() : portable.lock(chosen))
      .execute()
      .catch((error: unknown) => {
        throw classifyKeyError(error, root.name)
      })
    const candidates = keysOf(rows, 'key')
    const referencing = [
      ...definition.childrenOf(root.name).map((relation) => ({ table: relation.child, foreignKey: relation.foreignKey, parentKey: relation.parentKey })),
      ...definition.dependents.filter((dependent) => dependent.parent === root.name),
    ]
    const referenced = new Set<string>()
    if (candidates.length > 0 && referencing.length > 0) {
      // One statement: the targets some row references, deleted or not (raw SQL: no read filter).
      const result = await sql<{ key: RowKey }>`select t.${sql.id(root.key)} as ${sql.id('key')} from ${sql.table(root.name)} as t
        where ${keysIn(trx, `t.${root.key}`, candidates)} and (${sql.join(
          referencing.map(
            (reference) =>
              sql`exists (select 1 from ${sql.table(reference.table)} as r where r.${sql.id(reference.foreignKey)} = t.${sql.id(reference.parentKey)})`,
          ),
          sql` or `,
        )})`.execute(trx)
      for (const row of result.rows) referenced.add(keyText(row.key))
    }
    const hard = candidates.filter((key) => !referenced.has(keyText(key)))
    if (hard.length > 0) await forceDelete(trx, root.name as never, { ids: hard }, { by: options.by, reason: options.reason })
    const rest = keys === undefined ? target : { ids: keys.filter((key) => !hard.some((removed) => keyText(removed) === keyText(key))) }
    const soft = await softDelete(trx, root.name as never, rest, { ...options, [POLICY_APPLIED]: true } as SoftDeleteOptions)
    return { ...soft, hardDeleted: hard }
  })
}

/**
 * `default` for `set <column> = …`: PostgreSQL and MySQL have the keyword; SQLite has none in an
 * `UPDATE`, so its column's default expression is read from the schema (the owner's own SQL).
 */
async function columnDefault(trx: Kysely<any>, table: string, column: string): Promise<RawBuilder<unknown>> {
  if (dialectKindOf(trx) !== 'sqlite') return sql`default`
  const found = await sql<{ value: string | null }>`select dflt_value as value from pragma_table_info(${table}) where name = ${column}`.execute(trx)
  const value = found.rows[0]?.value
  return value === null || value === undefined ? sql`null` : sql.raw(`(${value})`)
}

/** `column` among `keys`, as the dialect writes it. */
function keysIn(db: Kysely<any>, column: string, keys: readonly RowKey[]): RawBuilder<SqlBool> {
  return portableFor(db)?.keyIn(column, keys) ?? keyIn(column, keys)
}

function empty(): SoftDeleteResult {
  return { deletionId: null, deletedAt: null, count: 0, tables: {}, deleted: [], alreadyDeleted: [], notFound: [] }
}
