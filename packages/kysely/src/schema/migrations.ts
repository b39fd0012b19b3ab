import { sql, type CreateTableBuilder, type Kysely } from 'kysely'
import { refusePortableDefinition } from '../operations/policies.ts'
import { DEFAULT_COLUMNS, type SoftDeleteColumns, type SoftDeleteDefinition, type TableDefinition } from '../definition.ts'
import { InvalidArgumentError } from '../errors.ts'
import { installHolds } from '../holds/schema.ts'
import { installInvariants, installShared, quoteIdent, quoteTable } from './invariants.ts'
import { dialectKindOf, type DialectKind } from '../dialects/adapter.ts'
import {
  createMysqlActiveUniqueIndex,
  createMysqlAuditTable,
  installMysqlGuard,
  installMysqlInvariants,
  MYSQL_COLUMN_TYPES,
  removeMysqlGuard,
} from '../dialects/mysql.ts'
import { createSqliteAuditTable, installSqliteGuard, installSqliteInvariants, removeSqliteGuard } from '../dialects/sqlite.ts'

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_$]*$/

/** Options of {@link softDeleteColumns} and {@link addSoftDeleteColumns}. */
export interface ColumnOptions {
  /** Column names; each defaults to its entry in {@link DEFAULT_COLUMNS}. */
  readonly columns?: Partial<SoftDeleteColumns>
  /** SQL type of `deleted_by`. Defaults to `'text'`. */
  readonly deletedByType?: 'text' | 'bigint' | 'integer' | 'uuid'
  /**
   * The dialect whose column types to use: MariaDB/MySQL has no `timestamptz` or `uuid`
   * (`datetime(3)`, `char(36)`, `varchar(255)` there). Defaults to `'postgres'` (SQLite takes those
   * types as they are).
   */
  readonly dialect?: DialectKind
}

function columnsOf(options: ColumnOptions): SoftDeleteColumns {
  const columns = { ...DEFAULT_COLUMNS, ...options.columns }
  for (const name of Object.values(columns)) {
    if (!IDENTIFIER.test(name)) throw new InvalidArgumentError(`Invalid column name "${name}"`)
  }
  return columns
}

/**
 * Adds the five soft-delete columns to a `createTable` builder, for use with `$call`.
 *
 * @example
 * ```ts
 * await db.schema
 *   .createTable('posts')
 *   .addColumn('id', 'serial', (col) => col.primaryKey())
 *   .addColumn('slug', 'text', (col) => col.notNull())
 *   .$call(softDeleteColumns())
 *   .execute()
 * ```
 */
export function softDeleteColumns(options: ColumnOptions = {}) {
  const columns = columnsOf(options)
  const byType = options.deletedByType ?? 'text'
  if (options.dialect === 'mysql') {
    const types = MYSQL_COLUMN_TYPES
    return <TB extends string, C extends string>(builder: CreateTableBuilder<TB, C>) =>
      builder
        .addColumn(columns.deletedAt, sql.raw(types.deletedAt))
        .addColumn(columns.deletedBy, sql.raw(byType === 'text' || byType === 'uuid' ? types.deletedBy : byType))
        .addColumn(columns.deleteReason, sql.raw(types.deleteReason))
        .addColumn(columns.deletionId, sql.raw(types.deletionId))
        .addColumn(columns.purgeAt, sql.raw(types.purgeAt)) as CreateTableBuilder<TB, C>
  }
  return <TB extends string, C extends string>(builder: CreateTableBuilder<TB, C>) =>
    builder
      .addColumn(columns.deletedAt, 'timestamptz')
      .addColumn(columns.deletedBy, sql.raw(byType))
      .addColumn(columns.deleteReason, 'text')
      .addColumn(columns.deletionId, 'uuid')
      .addColumn(columns.purgeAt, 'timestamptz') as CreateTableBuilder<TB, C>
}

/**
 * Adds the five soft-delete columns to an existing table (those it lacks).
 *
 * @example
 * ```ts
 * await addSoftDeleteColumns(db, 'posts')
 * ```
 */
export async function addSoftDeleteColumns(db: Kysely<any>, table: string, options: ColumnOptions = {}): Promise<void> {
  const columns = columnsOf(options)
  const byType = options.deletedByType ?? 'text'
  await sql`alter table ${sql.table(table)}
    add column if not exists ${sql.id(columns.deletedAt)} timestamptz,
    add column if not exists ${sql.id(columns.deletedBy)} ${sql.raw(byType)},
    add column if not exists ${sql.id(columns.deleteReason)} text,
    add column if not exists ${sql.id(columns.deletionId)} uuid,
    add column if not exists ${sql.id(columns.purgeAt)} timestamptz`.execute(db)
}

/** Options of the index helpers. */
export interface IndexOptions {
  /** The index name. Defaults to `<table>_<columns>_active_key` (unique) or `_active_idx`. */
  readonly name?: string
  /** The `deleted_at` column. Defaults to `'deleted_at'`. */
  readonly deletedAt?: string
}

function indexName(table: string, columns: readonly string[], suffix: string, name: string | undefined): string {
  const generated = `${table.replaceAll('.', '_')}_${columns.join('_')}_${suffix}`
  return name ?? generated.slice(0, 63)
}

function checkColumns(columns: readonly string[]): void {
  if (columns.length === 0) throw new InvalidArgumentError('An index needs at least one column')
  for (const column of columns) {
    if (!IDENTIFIER.test(column)) throw new InvalidArgumentError(`Invalid column name "${column}"`)
  }
}

/**
 * Creates a partial unique index over active rows only (`where deleted_at is null`): a deleted row
 * no longer holds its values, so a deleted user's email can be registered again, and a restore that
 * would collide fails with a {@link ConflictError}.
 *
 * @example
 * ```ts
 * await createActiveUniqueIndex(db, 'users', ['email'])
 * // create unique index if not exists "users_email_active_key" on "users" ("email") where "deleted_at" is null
 * ```
 */
export async function createActiveUniqueIndex(
  db: Kysely<any>,
  table: string,
  columns: readonly string[],
  options: IndexOptions = {},
): Promise<string> {
  checkColumns(columns)
  const name = indexName(table, columns, 'active_key', options.name)
  if (dialectKindOf(db) === 'mysql') {
    // No partial indexes: generated columns, null once the row is deleted, under a unique index.
    await createMysqlActiveUniqueIndex(db, table, columns, name, options.deletedAt ?? DEFAULT_COLUMNS.deletedAt)
    return name
  }
  await sql`create unique index if not exists ${sql.id(name)} on ${sql.table(table)} (${sql.join(columns.map((c) => sql.id(c)))})
    where ${sql.id(options.deletedAt ?? DEFAULT_COLUMNS.deletedAt)} is null`.execute(db)
  return name
}

/**
 * Creates a partial index over active rows only, for the lookups reads make (they always carry
 * `deleted_at is null`, so PostgreSQL uses it and it holds no tombstones).
 *
 * @example
 * ```ts
 * await createActiveIndex(db, 'posts', ['author_id', 'created_at'])
 * ```
 */
export async function createActiveIndex(
  db: Kysely<any>,
  table: string,
  columns: readonly string[],
  options: IndexOptions = {},
): Promise<string> {
  checkColumns(columns)
  const name = indexName(table, columns, 'active_idx', options.name)
  if (dialectKindOf(db) === 'mysql') {
    // No partial indexes: deleted_at first, so that the active rows are one range of it.
    await sql`create index if not exists ${sql.id(name)} on ${sql.table(table)} (${sql.id(options.deletedAt ?? DEFAULT_COLUMNS.deletedAt)}, ${sql.join(
      columns.map((c) => sql.id(c)),
    )})`.execute(db)
    return name
  }
  await sql`create index if not exists ${sql.id(name)} on ${sql.table(table)} (${sql.join(columns.map((c) => sql.id(c)))})
    where ${sql.id(options.deletedAt ?? DEFAULT_COLUMNS.deletedAt)} is null`.execute(db)
  return name
}

/**
 * Creates the two indexes the toolkit's own statements use on a soft-deletable table: one on
 * `purge_at` over deleted rows (purge), one on `deletion_id` (cascade and restore).
 *
 * @example
 * ```ts
 * await createSoftDeleteIndexes(db, definition.table('posts'))
 * ```
 */
export async function createSoftDeleteIndexes(db: Kysely<any>, table: TableDefinition): Promise<void> {
  const base = table.name.replaceAll('.', '_')
  const { deletedAt, purgeAt, deletionId } = table.columns
  if (dialectKindOf(db) === 'mysql') {
    await sql`create index if not exists ${sql.id(`${base}_purge_idx`.slice(0, 63))} on ${sql.table(table.name)} (${sql.id(purgeAt)}, ${sql.id(deletedAt)})`.execute(db)
    await sql`create index if not exists ${sql.id(`${base}_deletion_idx`.slice(0, 63))} on ${sql.table(table.name)} (${sql.id(deletionId)})`.execute(db)
    return
  }
  await sql`create index if not exists ${sql.id(`${base}_purge_idx`.slice(0, 63))} on ${sql.table(table.name)}
    (${sql.id(purgeAt)}, ${sql.id(deletedAt)}) where ${sql.id(deletedAt)} is not null`.execute(db)
  await sql`create index if not exists ${sql.id(`${base}_deletion_idx`.slice(0, 63))} on ${sql.table(table.name)}
    (${sql.id(deletionId)}) where ${sql.id(deletionId)} is not null`.execute(db)
}

/**
 * Installs the database guard on tables: a statement trigger that makes any `DELETE` or
 * `TRUNCATE` fail with SQLSTATE `TB001`, from any client, unless the transaction opted in with
 * {@link allowHardDelete} (as {@link forceDelete} and {@link purge} do). The opt-in is a row,
 * keyed by the transaction's id, in a table only the owner can write, written by the
 * `SECURITY DEFINER` function `tombstone_allow_hard_delete()`: no `SET`, `set_config`, role or
 * database default (of any value) is an opt-in, and none outlives its transaction, through a
 * connection pooler too. Idempotent.
 *
 * @example
 * ```ts
 * await installHardDeleteGuard(db, ['users', 'posts', 'comments'])
 * // psql: delete from posts;  ERROR:  hard DELETE on soft-deletable table public.posts refused
 * ```
 */
export async function installHardDeleteGuard(db: Kysely<any>, tables: readonly string[]): Promise<void> {
  if (dialectKindOf(db) === 'sqlite') return installSqliteGuard(db, tables)
  if (dialectKindOf(db) === 'mysql') return installMysqlGuard(db, tables)
  await installShared(db)
  for (const table of tables) {
    const trigger = sql.id(`tombstone_guard_${table.replaceAll('.', '_')}`.slice(0, 63))
    const truncateTrigger = sql.id(`tombstone_guard_truncate_${table.replaceAll('.', '_')}`.slice(0, 63))
    await sql`drop trigger if exists ${trigger} on ${sql.table(table)}`.execute(db)
    await sql`create trigger ${trigger} before delete on ${sql.table(table)}
      for each statement execute function tombstone_refuse_hard_delete()`.execute(db)
    await sql`drop trigger if exists ${truncateTrigger} on ${sql.table(table)}`.execute(db)
    await sql`create trigger ${truncateTrigger} before truncate on ${sql.table(table)}
      for each statement execute function tombstone_refuse_hard_delete()`.execute(db)
  }
}

/**
 * Removes the database guard from a table.
 *
 * @example
 * ```ts
 * await removeHardDeleteGuard(db, 'posts')
 * ```
 */
export async function removeHardDeleteGuard(db: Kysely<any>, table: string): Promise<void> {
  if (dialectKindOf(db) === 'sqlite') return removeSqliteGuard(db, table)
  if (dialectKindOf(db) === 'mysql') return removeMysqlGuard(db, table)
  await sql`drop trigger if exists ${sql.id(`tombstone_guard_${table.replaceAll('.', '_')}`.slice(0, 63))} on ${sql.table(table)}`.execute(db)
  await sql`drop trigger if exists ${sql.id(`tombstone_guard_truncate_${table.replaceAll('.', '_')}`.slice(0, 63))} on ${sql.table(
    table,
  )}`.execute(db)
}

/**
 * Creates the append-only audit table (default `tombstone_audit`) and the trigger that refuses
 * `UPDATE`, `DELETE` and `TRUNCATE` on it (SQLSTATE `TB002`). It holds ids, never row content.
 *
 * @example
 * ```ts
 * await createAuditTable(db)
 * ```
 */
export async function createAuditTable(db: Kysely<any>, table = 'tombstone_audit'): Promise<void> {
  if (dialectKindOf(db) === 'sqlite') return createSqliteAuditTable(db, table)
  if (dialectKindOf(db) === 'mysql') return createMysqlAuditTable(db, table)
  const base = table.replaceAll('.', '_')
  await sql`create table if not exists ${sql.table(table)} (
    id bigint generated always as identity primary key,
    at timestamptz not null default now(),
    action text not null check (action in ('soft_delete', 'restore', 'hard_delete', 'purge')),
    entity text not null,
    entity_id text not null,
    actor text,
    reason text,
    deletion_id uuid
  )`.execute(db)
  // Legal holds (added later: an audit table made before them gains the column and the actions).
  await sql`alter table ${sql.table(table)} add column if not exists hold_id bigint`.execute(db)
  const check = sql.id(`${table.split('.').at(-1) as string}_action_check`)
  await sql`alter table ${sql.table(table)} drop constraint if exists ${check}`.execute(db)
  await sql`alter table ${sql.table(table)} add constraint ${check}
    check (action in ('soft_delete', 'restore', 'hard_delete', 'purge', 'hold', 'release'))`.execute(db)
  await sql`create index if not exists ${sql.id(`${base}_deletion_idx`)} on ${sql.table(table)} (deletion_id, action) where deletion_id is not null`.execute(db)
  await sql`create index if not exists ${sql.id(`${base}_entity_idx`)} on ${sql.table(table)} (entity, entity_id)`.execute(db)
  await sql`create index if not exists ${sql.id(`${base}_actor_idx`)} on ${sql.table(table)} (actor)`.execute(db)
  await sql`create or replace function tombstone_audit_append_only() returns trigger language plpgsql as $$
    begin
      raise exception 'the audit table %.% is append-only (% refused)', tg_table_schema, tg_table_name, tg_op
        using errcode = 'TB002', schema = tg_table_schema, table = tg_table_name;
    end $$`.execute(db)
  await sql`drop trigger if exists ${sql.id(`${base}_append_only`)} on ${sql.table(table)}`.execute(db)
  await sql`create trigger ${sql.id(`${base}_append_only`)} before update or delete on ${sql.table(table)}
    for each row execute function tombstone_audit_append_only()`.execute(db)
  await sql`drop trigger if exists ${sql.id(`${base}_append_only_truncate`)} on ${sql.table(table)}`.execute(db)
  await sql`create trigger ${sql.id(`${base}_append_only_truncate`)} before truncate on ${sql.table(table)}
    for each statement execute function tombstone_audit_append_only()`.execute(db)
  // The database writes the audit (owner's triggers); nobody else writes to it.
  await sql`revoke all on table ${sql.table(table)} from public`.execute(db)
}

/**
 * Creates a plain index on each declared relation's foreign key (`<child>_<fk>_fk_idx`). Cascades,
 * restores, force deletes and purges look children up by it whatever their state, and PostgreSQL's
 * own foreign-key checks on `DELETE` need it: partial indexes over active rows cannot serve them.
 *
 * @example
 * ```ts
 * await createRelationIndexes(db, softDeletes) // comments(post_id), comments(author_id), posts(author_id)
 * ```
 */
export async function createRelationIndexes(db: Kysely<any>, definition: SoftDeleteDefinition<any>): Promise<void> {
  for (const relation of definition.relations) {
    const name = `${relation.child.replaceAll('.', '_')}_${relation.foreignKey}_fk_idx`.slice(0, 63)
    await sql`create index if not exists ${sql.id(name)} on ${sql.table(relation.child)} (${sql.id(relation.foreignKey)})`.execute(db)
  }
}

/**
 * A plain (not partial) unique constraint or index that still covers the columns of an active-only
 * unique index of the same table: while it exists, a deleted row keeps its values taken (a deleted
 * user's email cannot be registered again) and the active-only index changes nothing.
 */
export interface UniqueWarning {
  readonly code: 'PLAIN_UNIQUE_BESIDE_ACTIVE_UNIQUE'
  /** The table, as declared. */
  readonly table: string
  /** The plain unique constraint's or index's name. */
  readonly name: string
  readonly kind: 'constraint' | 'index'
  /** Its columns, in its order. */
  readonly columns: readonly string[]
  /** The active-only unique index (`where deleted_at is null`) over the same columns, or more. */
  readonly activeIndex: string
  /** Why it was left: `convertUniqueConstraints` off, or why converting it would not be safe. */
  readonly reason: string
  /** One line saying all of it, as `onWarning`'s default prints it. */
  readonly message: string
}

/** A plain unique constraint or index that {@link installSoftDeletes} dropped (`convertUniqueConstraints`). */
export interface ConvertedUnique {
  readonly table: string
  readonly name: string
  readonly kind: 'constraint' | 'index'
  readonly columns: readonly string[]
  /** The active-only unique index that now holds uniqueness among active rows. */
  readonly activeIndex: string
}

/** What {@link installSoftDeletes} found and did beyond installing. */
export interface InstallResult {
  /** Plain unique constraints or indexes left beside an active-only one (each also given to `onWarning`). */
  readonly warnings: readonly UniqueWarning[]
  /** Plain unique constraints or indexes dropped by `convertUniqueConstraints`. */
  readonly converted: readonly ConvertedUnique[]
}

/** Options of {@link installSoftDeletes}. */
export interface InstallOptions {
  /** Install the hard-delete guard on every declared table. Defaults to `true`. */
  readonly guard?: boolean
  /**
   * Drop each plain unique constraint or index of a declared table that an active-only unique
   * index over exactly the same columns replaces, in the same migration (transaction), when that is
   * safe: same column set, same collations, same `NULLS [NOT] DISTINCT`, not the primary key, and
   * no foreign key references it (a foreign key needs a plain unique index). One left for one of
   * these reasons is reported as a warning saying which. Create the active-only indexes
   * ({@link createActiveUniqueIndex}) before. Defaults to `false`: warn only.
   */
  readonly convertUniqueConstraints?: boolean
  /**
   * Called with each {@link UniqueWarning}. Defaults to `process.emitWarning(message, { type:
   * 'TombstoneWarning', code })`, which prints one line on stderr (silenced by `--no-warnings`, seen
   * by `process.on('warning')`). The warnings are in the result too.
   */
  readonly onWarning?: (warning: UniqueWarning) => void
}

/**
 * Installs, for every table of a definition, what the toolkit relies on: the purge and deletion
 * indexes, an index on each relation's foreign key, the hard-delete guard (unless `guard: false`),
 * the audit table when the definition has one, and the invariants the database holds for every
 * client: deletion stamps set by the database, the audit written by triggers, no active child
 * (or dependent row) under a deleted parent. Idempotent; run it in a migration, as the tables'
 * owner, after the tables exist.
 *
 * Then it looks for plain unique constraints or indexes that still cover the columns of an
 * active-only unique index (see {@link UniqueWarning}): it warns, or with
 * `convertUniqueConstraints: true` drops them where that is safe.
 *
 * @example
 * ```ts
 * await createActiveUniqueIndex(db, 'users', ['email'])
 * const { warnings, converted } = await installSoftDeletes(db, softDeletes, { convertUniqueConstraints: true })
 * // converted: [{ table: 'users', name: 'users_email_key', kind: 'constraint', columns: ['email'], activeIndex: 'users_email_active_key' }]
 * ```
 */
export async function installSoftDeletes(
  db: Kysely<any>,
  definition: SoftDeleteDefinition<any>,
  options: InstallOptions = {},
): Promise<InstallResult> {
  refusePortableDefinition(db, definition)
  for (const table of definition.tables.values()) await createSoftDeleteIndexes(db, table)
  await createRelationIndexes(db, definition)
  for (const dependent of definition.dependents) {
    const name = `${dependent.table.replaceAll('.', '_')}_${dependent.foreignKey}_fk_idx`.slice(0, 63)
    await sql`create index if not exists ${sql.id(name)} on ${sql.table(dependent.table)} (${sql.id(dependent.foreignKey)})`.execute(db)
  }
  if (options.guard !== false) await installHardDeleteGuard(db, [...definition.tables.keys()])
  if (definition.auditTable !== undefined) await createAuditTable(db, definition.auditTable)
  // The report of plain unique constraints is PostgreSQL's only, so far; each dialect installs its own legal holds.
  const kind = dialectKindOf(db)
  if (kind === 'sqlite' || kind === 'mysql') {
    await (kind === 'sqlite' ? installSqliteInvariants(db, definition) : installMysqlInvariants(db, definition))
    return { warnings: [], converted: [] }
  }
  await installInvariants(db, definition)
  await installHolds(db, definition)

  const warnings: UniqueWarning[] = []
  const converted: ConvertedUnique[] = []
  const warn = options.onWarning ?? ((warning: UniqueWarning) => process.emitWarning(warning.message, { type: 'TombstoneWarning', code: warning.code }))
  for (const table of definition.tables.values()) {
    const indexes = await uniqueIndexesOf(db, table)
    const active = indexes.filter(
      (index) => index.partial && index.valid && !index.expression && index.activePredicate,
    )
    for (const plain of indexes.filter((index) => !index.partial && !index.expression && !index.primary)) {
      const covering = active.filter((index) => plain.columns.every((column) => index.columns.includes(column)))
      if (covering.length === 0) continue
      const same = covering.find(
        (index) => index.columns.length === plain.columns.length && index.signature === plain.signature && index.nullsNotDistinct === plain.nullsNotDistinct,
      )
      const activeIndex = (same ?? covering[0]) as UniqueIndexInfo
      const kind = plain.constraint ? 'constraint' : 'index'
      let reason: string | undefined
      if (same === undefined) {
        reason =
          activeIndex.columns.length > plain.columns.length
            ? `the active-only index covers more columns (${activeIndex.columns.join(', ')}): dropping this one would let active rows share (${plain.columns.join(', ')}); create an active-only unique index over exactly (${plain.columns.join(', ')}) first`
            : `its collations or NULLS [NOT] DISTINCT differ from ${activeIndex.name}'s, so dropping it would change what counts as a duplicate`
      } else if (plain.referenced) {
        reason = 'a foreign key references it (a foreign key needs a plain unique index): keep it, or point the foreign key at the primary key first'
      } else if (options.convertUniqueConstraints !== true) {
        reason = `pass convertUniqueConstraints: true to drop it, or drop it in a migration (${kind === 'constraint' ? `alter table … drop constraint ${plain.name}` : `drop index ${plain.name}`})`
      }
      if (reason === undefined) {
        await sql
          .raw(kind === 'constraint' ? `alter table ${quoteTable(table.name)} drop constraint ${quoteIdent(plain.name)}` : `drop index ${quoteIdent(plain.schema)}.${quoteIdent(plain.name)}`)
          .execute(db)
        converted.push({ table: table.name, name: plain.name, kind, columns: plain.columns, activeIndex: activeIndex.name })
        continue
      }
      const warning: UniqueWarning = {
        code: 'PLAIN_UNIQUE_BESIDE_ACTIVE_UNIQUE',
        table: table.name,
        name: plain.name,
        kind,
        columns: plain.columns,
        activeIndex: activeIndex.name,
        reason,
        message: `Tombstone: the plain unique ${kind} ${plain.name} on ${table.name} (${plain.columns.join(', ')}) still holds the values of deleted rows beside the active-only index ${activeIndex.name}, so they cannot be used again; ${reason}`,
      }
      warnings.push(warning)
      warn(warning)
    }
  }
  return { warnings, converted }
}

interface UniqueIndexInfo {
  readonly name: string
  readonly schema: string
  readonly constraint: boolean
  readonly primary: boolean
  readonly partial: boolean
  readonly expression: boolean
  readonly valid: boolean
  /** The predicate is exactly `deleted_at is null` (the table's column). */
  readonly activePredicate: boolean
  readonly nullsNotDistinct: boolean
  readonly referenced: boolean
  readonly columns: string[]
  /** Columns with their collations, sorted: equal for two indexes that compare values alike. */
  readonly signature: string
}

/** The unique indexes of a table, from the catalog. */
async function uniqueIndexesOf(db: Kysely<any>, table: TableDefinition): Promise<UniqueIndexInfo[]> {
  const result = await sql<{
    name: string
    schema: string
    constraint: boolean
    primary: boolean
    partial: boolean
    expression: boolean
    valid: boolean
    active_predicate: boolean | null
    nulls_not_distinct: boolean
    referenced: boolean
    columns: string
    signature: string
  }>`select c.relname as name, n.nspname as schema,
      exists (select 1 from pg_constraint u where u.conindid = i.indexrelid and u.contype in ('u', 'p') and u.conrelid = i.indrelid) as constraint,
      i.indisprimary as primary, i.indpred is not null as partial, i.indexprs is not null as expression, i.indisvalid as valid,
      pg_get_expr(i.indpred, i.indrelid) = '(' || quote_ident(${table.columns.deletedAt}::text) || ' IS NULL)' as active_predicate, i.indnullsnotdistinct as nulls_not_distinct,
      exists (select 1 from pg_constraint f where f.contype = 'f' and f.conindid = i.indexrelid) as referenced,
      (select string_agg(a.attname::text, ',' order by k.n) from unnest(i.indkey::int2[]) with ordinality as k(attnum, n)
        join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum) as columns,
      (select string_agg(a.attname::text || ':' || k.coll::text, ',' order by a.attname) from unnest(i.indkey::int2[], i.indcollation::oid[]) as k(attnum, coll)
        join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum) as signature
    from pg_index i
    join pg_class c on c.oid = i.indexrelid
    join pg_namespace n on n.oid = c.relnamespace
    where i.indrelid = to_regclass(${quoteTable(table.name)}) and i.indisunique
    order by c.relname`.execute(db)
  return result.rows.map((row) => ({
    name: row.name,
    schema: row.schema,
    constraint: row.constraint,
    primary: row.primary,
    partial: row.partial,
    expression: row.expression,
    valid: row.valid,
    activePredicate: row.active_predicate === true,
    nullsNotDistinct: row.nulls_not_distinct,
    referenced: row.referenced,
    columns: (row.columns ?? '').split(',').filter((column) => column !== ''),
    signature: row.signature ?? '',
  }))
}
