/**
 * MariaDB's (10.6+) and MySQL's (8+) form of the database-held invariants and operations. Neither
 * has partial indexes, statement triggers, transaction ids or `RETURNING` on `UPDATE` (MariaDB), so:
 *
 * - **uniqueness among active rows**: one generated column per indexed column,
 *   `tombstone_active_<column>` (the value while the row is active, null once deleted), under a
 *   unique index: nulls never collide;
 * - **who and why** and **the hard-delete opt-in** are rows keyed by `CONNECTION_ID()`
 *   (`tombstone_context`, `tombstone_hard_delete_grants`), written and removed by the toolkit inside
 *   its transaction. InnoDB shows an uncommitted row to its own transaction only, so another
 *   connection never sees an opt-in; what binds it to one transaction is that the toolkit removes it
 *   before the transaction ends. A client that commits a grant row of its own leaves its connection
 *   opted in until it removes it: MySQL has no commit hook to do it, and no privilege keeps a
 *   client with `INSERT` on the grants table out (grant the application no right on it);
 * - **refusals** are `SIGNAL SQLSTATE 'TB00n'` with a JSON `MESSAGE_TEXT`; drivers report the
 *   SQLSTATE as such (mysql2's `sqlState`);
 * - **stamping** is a `BEFORE UPDATE` trigger (MySQL can set `NEW` columns), **audit** row triggers;
 * - **operations** lock rows with `SELECT … FOR UPDATE` in key order, then write them by key;
 *   **purge** takes its batches with `FOR UPDATE SKIP LOCKED`.
 *
 * @module
 */
import { sql, type Kysely, type SqlBool } from 'kysely'
import type { Retention, SoftDeleteDefinition, TableDefinition } from '../definition.ts'
import { InvalidArgumentError } from '../errors.ts'
import { parentChecks, type ParentCheck } from '../schema/invariants.ts'
import { plainKey } from './adapter.ts'
import { groupIndexes, registerPortable, type PortableDialect } from './portable.ts'

function id(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_$]*$/.test(name)) throw new InvalidArgumentError(`Invalid MySQL identifier "${name}"`)
  return `\`${name}\``
}

function literal(text: string): string {
  return `'${text.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`
}

/** The generated column that holds `column` while the row is active. */
export function activeColumnName(column: string): string {
  return `tombstone_active_${column}`.slice(0, 64)
}

/** MariaDB/MySQL: row locks, keys by value, state rows keyed by the connection. @internal */
export const MYSQL: PortableDialect = {
  kind: 'mysql',
  returning: false,
  keyIn: (column, keys) =>
    keys.length === 0 ? sql<SqlBool>`1 = 0` : sql<SqlBool>`${sql.ref(column)} in (${sql.join(keys.map((key) => sql.val(plainKey(key))))})`,
  pairIn: (a, b, pairs) =>
    pairs.length === 0
      ? sql<SqlBool>`1 = 0`
      : sql<SqlBool>`(${sql.ref(a)}, ${sql.ref(b)}) in (${sql.join(pairs.map(([key, deletion]) => sql`(${plainKey(key)}, ${deletion})`))})`,
  lock: (query) => query.forUpdate(),
  lockSkipLocked: (query) => query.forUpdate().skipLocked(),
  now: async (db) => {
    const row = await sql<{ now: Date }>`select now(3) as now`.execute(db)
    return new Date(row.rows[0]?.now as Date).getTime()
  },
  timestamp: (ms) => new Date(ms),
  setContext: async (trx, entry) => {
    await sql`replace into tombstone_context (connection_id, actor, reason, deletion_id) values (connection_id(), ${entry.actor}, ${entry.reason}, ${entry.deletionId})`.execute(trx)
  },
  clearContext: async (trx) => {
    await sql`delete from tombstone_context where connection_id = connection_id()`.execute(trx)
  },
  grant: async (trx, entry) => {
    await sql`replace into tombstone_hard_delete_grants (connection_id, purpose, actor, reason) values (connection_id(), ${entry.purpose}, ${entry.actor}, ${entry.reason})`.execute(trx)
  },
  revoke: async (trx) => {
    await sql`delete from tombstone_hard_delete_grants where connection_id = connection_id()`.execute(trx)
  },
  uniqueIndexes: async (trx, table) => {
    const rows = await sql<{ name: string; column: string | null }>`select index_name as name, column_name as \`column\`
      from information_schema.statistics where table_schema = database() and table_name = ${table} and non_unique = 0 and index_name <> 'PRIMARY'
      order by index_name, seq_in_index`.execute(trx)
    return groupIndexes(rows.rows.map((row) => ({ name: row.name, column: row.column === null ? null : row.column.replace(/^tombstone_active_/, '') })))
  },
  // SKIP LOCKED keeps two runs apart row by row: each takes batches the other does not hold.
  tryPurgeLock: async () => true,
}
registerPortable(MYSQL)

/** The column types of the five soft-delete columns on MariaDB/MySQL. */
export const MYSQL_COLUMN_TYPES = {
  deletedAt: 'datetime(3)',
  deletedBy: 'varchar(255)',
  deleteReason: 'text',
  deletionId: 'char(36)',
  purgeAt: 'datetime(3)',
} as const

/** The active-only unique index: generated columns and a unique index over them. Idempotent. */
export async function createMysqlActiveUniqueIndex(db: Kysely<any>, table: string, columns: readonly string[], name: string, deletedAt: string): Promise<void> {
  const existing = await sql<{ column: string }>`select column_name as \`column\` from information_schema.columns
    where table_schema = database() and table_name = ${table}`.execute(db)
  const present = new Set(existing.rows.map((row) => row.column))
  for (const column of columns) {
    const generated = activeColumnName(column)
    if (present.has(generated)) continue
    const type = await sql<{ type: string }>`select column_type as type from information_schema.columns
      where table_schema = database() and table_name = ${table} and column_name = ${column}`.execute(db)
    const columnType = type.rows[0]?.type
    if (columnType === undefined) throw new InvalidArgumentError(`No column "${column}" in "${table}"`, table)
    await sql.raw(`alter table ${id(table)} add column ${id(generated)} ${columnType}
      generated always as (case when ${id(deletedAt)} is null then ${id(column)} end) virtual`).execute(db)
  }
  const index = await sql`select 1 from information_schema.statistics where table_schema = database() and table_name = ${table} and index_name = ${name}`.execute(db)
  if (index.rows.length > 0) return
  await sql.raw(`create unique index ${id(name)} on ${id(table)} (${columns.map((column) => id(activeColumnName(column))).join(', ')})`).execute(db)
}

/** The shared tables (context, grants). */
async function installMysqlShared(db: Kysely<any>): Promise<void> {
  await sql`create table if not exists tombstone_context (
    connection_id bigint unsigned primary key,
    actor varchar(255),
    reason text,
    deletion_id char(36)
  )`.execute(db)
  await sql`create table if not exists tombstone_hard_delete_grants (
    connection_id bigint unsigned primary key,
    purpose varchar(16) not null check (purpose in ('hard_delete', 'purge')),
    actor varchar(255),
    reason text
  )`.execute(db)
}

/** The current transaction's grant row, as a FROM item. */
const GRANT = '(select * from tombstone_hard_delete_grants where connection_id = connection_id())'

function signal(code: string, json: string): string {
  return `begin declare v_message varchar(128) default left(${json}, 128); signal sqlstate '${code}' set message_text = v_message; end`
}

/** The guard: BEFORE DELETE per row, `TB001` unless this connection holds a grant. */
export async function installMysqlGuard(db: Kysely<any>, tables: readonly string[]): Promise<void> {
  await installMysqlShared(db)
  for (const table of tables) {
    const trigger = id(`tombstone_guard_${table}`.slice(0, 64))
    await sql.raw(`drop trigger if exists ${trigger}`).execute(db)
    await sql.raw(`create trigger ${trigger} before delete on ${id(table)} for each row
      begin
        if not exists (select 1 from ${GRANT} as g) then
          ${signal('TB001', `json_object('table', ${literal(table)})`)};
        end if;
      end`).execute(db)
  }
}

/** Removes the guard from a table. */
export async function removeMysqlGuard(db: Kysely<any>, table: string): Promise<void> {
  await sql.raw(`drop trigger if exists ${id(`tombstone_guard_${table}`.slice(0, 64))}`).execute(db)
}

/** The append-only audit table (UPDATE and DELETE refused with `TB002`; MySQL's TRUNCATE fires no trigger). */
export async function createMysqlAuditTable(db: Kysely<any>, table: string): Promise<void> {
  await sql.raw(`create table if not exists ${id(table)} (
    id bigint primary key auto_increment,
    at datetime(3) not null default current_timestamp(3),
    action varchar(16) not null check (action in ('soft_delete', 'restore', 'hard_delete', 'purge')),
    entity varchar(255) not null,
    entity_id varchar(255) not null,
    actor varchar(255),
    reason text,
    deletion_id char(36),
    key ${id(`${table}_entity_idx`)} (entity, entity_id),
    key ${id(`${table}_actor_idx`)} (actor)
  )`).execute(db)
  for (const event of ['update', 'delete'] as const) {
    const trigger = id(`${table}_append_only_${event}`)
    await sql.raw(`drop trigger if exists ${trigger}`).execute(db)
    await sql.raw(`create trigger ${trigger} before ${event} on ${id(table)} for each row
      ${signal('TB002', `json_object('table', ${literal(table)})`)}`).execute(db)
  }
}

function interval(retention: Retention | null): string {
  if (retention === null) return 'null'
  const { days = 0, hours = 0, minutes = 0, seconds = 0 } = retention
  return `now(3) + interval ${((days * 24 + hours) * 60 + minutes) * 60 + seconds} second`
}

/** Stamping (BEFORE UPDATE) and audit (AFTER UPDATE / DELETE) on one table. */
async function installMysqlTable(db: Kysely<any>, table: TableDefinition, auditTable: string | undefined): Promise<void> {
  const t = id(table.name)
  const [at, by, why, did, purge, key] = [
    table.columns.deletedAt,
    table.columns.deletedBy,
    table.columns.deleteReason,
    table.columns.deletionId,
    table.columns.purgeAt,
    table.key,
  ].map(id) as [string, string, string, string, string, string]
  const name = literal(table.name)
  const ctx = (column: string) => `(select ${column} from tombstone_context where connection_id = connection_id())`
  const stamp = id(`tombstone_stamp_${table.name}`.slice(0, 64))
  await sql.raw(`drop trigger if exists ${stamp}`).execute(db)
  // The toolkit's writes carry a deletion id and exact stamps; a plain client's are stamped here.
  await sql.raw(`create trigger ${stamp} before update on ${t} for each row
    begin
      if old.${at} is null and new.${at} is not null then
        if new.${did} is null then
          set new.${at} = now(3);
          set new.${purge} = ${interval(table.retention)};
          set new.${did} = coalesce(${ctx('deletion_id')}, uuid());
          set new.${by} = coalesce(new.${by}, ${ctx('actor')});
          set new.${why} = coalesce(new.${why}, ${ctx('reason')});
        end if;
      elseif old.${at} is not null and new.${at} is not null then
        if not (new.${at} <=> old.${at}) or not (new.${did} <=> old.${did}) or not (new.${by} <=> old.${by}) or not (new.${why} <=> old.${why})
           or (old.${purge} is null and new.${purge} is not null) or new.${purge} < old.${purge} then
          ${signal('TB005', `json_object('table', ${name})`)};
        end if;
      else
        set new.${did} = null, new.${by} = null, new.${why} = null, new.${purge} = null;
      end if;
    end`).execute(db)
  if (auditTable === undefined) return
  const a = id(auditTable)
  const update = id(`tombstone_audit_update_${table.name}`.slice(0, 64))
  const remove = id(`tombstone_audit_delete_${table.name}`.slice(0, 64))
  await sql.raw(`drop trigger if exists ${update}`).execute(db)
  await sql.raw(`create trigger ${update} after update on ${t} for each row
    begin
      if (old.${at} is null) <> (new.${at} is null) then
        insert into ${a} (action, entity, entity_id, actor, reason, deletion_id) values (
          case when new.${at} is null then 'restore' else 'soft_delete' end, ${name}, cast(new.${key} as char),
          coalesce(${ctx('actor')}, case when new.${at} is not null then new.${by} end),
          coalesce(${ctx('reason')}, case when new.${at} is not null then new.${why} end),
          coalesce(new.${did}, old.${did}));
      end if;
    end`).execute(db)
  const grant = (column: string) => `(select g.${column} from ${GRANT} as g)`
  await sql.raw(`drop trigger if exists ${remove}`).execute(db)
  await sql.raw(`create trigger ${remove} after delete on ${t} for each row
    insert into ${a} (action, entity, entity_id, actor, reason, deletion_id) values (
      coalesce(${grant('purpose')}, 'hard_delete'), ${name}, cast(old.${key} as char), ${grant('actor')}, ${grant('reason')}, old.${did})`).execute(db)
}

/** BEFORE INSERT / UPDATE on the child: an active row under a deleted parent is refused (`TB003`). */
async function installMysqlParentCheck(db: Kysely<any>, check: ParentCheck): Promise<void> {
  const [fk, pk, ck, pAt] = [check.foreignKey, check.parentKey, check.childKey, check.parent.columns.deletedAt].map(id) as [string, string, string, string]
  const active = check.childDeletedAt === undefined ? 'true' : `new.${id(check.childDeletedAt)} is null`
  const changed = check.childDeletedAt === undefined ? `not (old.${fk} <=> new.${fk})` : `(old.${id(check.childDeletedAt)} is not null or not (old.${fk} <=> new.${fk}))`
  // LOCK IN SHARE MODE: waits for a concurrent soft delete or restore of the parent, then reads it as committed.
  const deleted = `exists (select 1 from ${id(check.parent.name)} p where p.${pk} = new.${fk} and p.${pAt} is not null lock in share mode)`
  const detail = `json_object('table', ${literal(check.child)}, 'id', cast(new.${ck} as char), 'parent_table', ${literal(check.parent.name)}, 'parent_id', cast(new.${fk} as char))`
  for (const event of ['insert', 'update'] as const) {
    const trigger = id(`tombstone_parent_${check.child}_${check.foreignKey}_${event}`.slice(0, 64))
    await sql.raw(`drop trigger if exists ${trigger}`).execute(db)
    await sql.raw(`create trigger ${trigger} before ${event} on ${id(check.child)} for each row
      begin
        if ${active}${event === 'update' ? ` and ${changed}` : ''} and ${deleted} then
          ${signal('TB003', detail)};
        end if;
      end`).execute(db)
  }
}

/**
 * `policy: 'never'`: a soft delete (`deleted_at` set) and a `DELETE` of the table's rows are refused
 * (`TB007`), for every client, opt-in or not; the triggers are dropped when the policy is another.
 */
async function installMysqlNeverPolicy(db: Kysely<any>, table: TableDefinition): Promise<void> {
  const [update, remove] = [id(`tombstone_never_delete_${table.name}`.slice(0, 64)), id(`tombstone_never_remove_${table.name}`.slice(0, 64))]
  await sql.raw(`drop trigger if exists ${update}`).execute(db)
  await sql.raw(`drop trigger if exists ${remove}`).execute(db)
  if (table.policy !== 'never') return
  const at = id(table.columns.deletedAt)
  const refusal = signal('TB007', `json_object('table', ${literal(table.name)})`)
  await sql.raw(`create trigger ${update} before update on ${id(table.name)} for each row
    begin if old.${at} is null and new.${at} is not null then ${refusal}; end if; end`).execute(db)
  await sql.raw(`create trigger ${remove} before delete on ${id(table.name)} for each row begin ${refusal}; end`).execute(db)
}

/** Every invariant of a definition on MariaDB/MySQL. Idempotent. @internal */
export async function installMysqlInvariants(db: Kysely<any>, definition: SoftDeleteDefinition<any>): Promise<void> {
  await installMysqlShared(db)
  for (const table of definition.tables.values()) await installMysqlTable(db, table, definition.auditTable)
  for (const table of definition.tables.values()) await installMysqlNeverPolicy(db, table)
  for (const check of parentChecks(definition)) await installMysqlParentCheck(db, check)
}
