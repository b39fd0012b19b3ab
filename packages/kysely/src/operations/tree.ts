import { sql, type Kysely, type RawBuilder } from 'kysely'
import type { RelationDefinition, TableDefinition } from '../definition.ts'
import type { RowKey } from '../errors.ts'
import { withDeleted } from '../plugin/markers.ts'
import { classifyOperationError, inLockedKeys, keyIn, keysOf, WRITTEN, type Context } from './context.ts'

/**
 * Self-referencing relations (threaded comments, category trees), on PostgreSQL and PGlite. A table's
 * relation to itself is not an edge between tables (definition.ts keeps it apart), so each operation
 * follows it here, through the whole tree, with one recursive statement per table.
 * @internal
 */

/**
 * After `name`'s rows of this deletion are stamped, stamps the active rows below them along the
 * table's self-reference, to any depth, with the same deletion (one `UPDATE` over a recursive
 * query, locking in key order). A reply deleted on its own earlier is not entered: its subtree went
 * with it. Returns the keys stamped.
 */
export async function stampSubtrees(
  trx: Kysely<any>,
  context: Context,
  table: TableDefinition,
  deletionId: string,
  stamp: Record<string, unknown>,
): Promise<RowKey[]> {
  const self = context.definition.selfRelationOf(table.name)
  if (self === undefined) return []
  const { deletedAt, deletionId: deletionColumn } = table.columns
  const [t, key, fk, pk] = [sql.table(table.name), sql.id(table.key), sql.id(self.foreignKey), sql.id(self.parentKey)]
  const tree = sql`with recursive tombstone_tree(k, pk) as (
      select c.${key}, c.${pk} from ${t} as c
      where c.${sql.id(deletedAt)} is null
        and c.${fk} in (select p.${pk} from ${t} as p where p.${sql.id(deletionColumn)} = ${deletionId})
      union
      select c.${key}, c.${pk} from ${t} as c join tombstone_tree as r on c.${fk} = r.pk
      where c.${sql.id(deletedAt)} is null
    ) select k from tombstone_tree`
  // Until a pass finds nothing: a reply inserted below the tree by a transaction that committed
  // while this statement waited for its lock is not in the statement's snapshot (PostgreSQL
  // re-checks only the rows it locks), so the next pass, with a fresh snapshot, takes it.
  const stamped: RowKey[] = []
  for (;;) {
    const keys = await stampPass()
    if (keys.length === 0) return stamped
    stamped.push(...keys)
  }

  async function stampPass(): Promise<RowKey[]> {
    const rows = await trx
      .updateTable(`${table.name} as ${WRITTEN}`)
      .set(stamp)
      .where((eb: any) =>
        inLockedKeys(
          eb,
          table.key,
          eb
            .selectFrom(`${table.name} as tombstone_subtree`)
            .select(`tombstone_subtree.${table.key}`)
            .where(sql.ref(`tombstone_subtree.${table.key}`), 'in', sql`(${tree})`)
            .orderBy(`tombstone_subtree.${table.key}`)
            .forUpdate(),
        ),
      )
      .$call(withDeleted({ [WRITTEN]: 'include' }))
      .returning(`${table.key} as key`)
      .execute()
      .catch(classifyOperationError)
    return keysOf(rows, 'key')
  }
}

/**
 * The rows below `rows` along `table`'s self-reference, whatever their state, locked in key order,
 * with `selection`'s columns: what a force delete or purge removes with them (a row cannot go while
 * a reply references it).
 */
export async function lockSubtrees(
  trx: Kysely<any>,
  context: Context,
  table: TableDefinition,
  rows: readonly Record<string, unknown>[],
  selection: readonly string[],
): Promise<Record<string, unknown>[]> {
  const self = context.definition.selfRelationOf(table.name)
  if (self === undefined || rows.length === 0) return []
  const [t, key, fk, pk] = [sql.table(table.name), sql.id(table.key), sql.id(self.foreignKey), sql.id(self.parentKey)]
  const known = new Set(keysOf(rows, table.key).map(String))
  const found: Record<string, unknown>[] = []
  // Until a pass finds nothing new, for the reason stampSubtrees gives.
  let seeds = keysOf(rows, self.parentKey)
  while (seeds.length > 0) {
    const tree = sql`with recursive tombstone_tree(k, pk) as (
        select c.${key}, c.${pk} from ${t} as c where ${keyIn(`c.${self.foreignKey}`, seeds)}
        union
        select c.${key}, c.${pk} from ${t} as c join tombstone_tree as r on c.${fk} = r.pk
      ) select k from tombstone_tree`
    const below = await trx
      .selectFrom(table.name)
      .select(selection as string[])
      .where(sql.ref(table.key), 'in', sql`(${tree})`)
      .$call(withDeleted({ '*': 'include' }))
      .orderBy(table.key)
      .forUpdate()
      .execute()
    const fresh = below.filter((row) => !known.has(String(row[table.key])))
    for (const row of fresh) known.add(String(row[table.key]))
    found.push(...fresh)
    seeds = keysOf(fresh, self.parentKey)
  }
  return found
}

/**
 * The self-reference's part of a restore's row selection: `base` (a query giving `k`, `d`, `p`:
 * key, deletion id and the referenced key of the rows chosen directly) grown to the deleted rows
 * below them that carry the same deletion id, to any depth. A reply deleted on its own before keeps
 * its own deletion id, so it is not brought back.
 */
export function restoreSubtree(table: TableDefinition, self: RelationDefinition, base: RawBuilder<unknown>, extra: RawBuilder<unknown> | undefined): RawBuilder<unknown> {
  const [t, key, fk, pk] = [sql.table(table.name), sql.id(table.key), sql.id(self.foreignKey), sql.id(self.parentKey)]
  const deletion = sql.id(table.columns.deletionId)
  return sql`with recursive tombstone_tree(k, d, p) as (
      ${base}
      union
      select c.${key}, c.${deletion}, c.${pk} from ${t} as c join tombstone_tree as r on c.${fk} = r.p and c.${deletion} = r.d
      where c.${sql.id(table.columns.deletedAt)} is not null${extra === undefined ? sql`` : sql` and ${extra}`}
    ) select k from tombstone_tree`
}
