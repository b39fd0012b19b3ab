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
 *   client with `INSERT` on the grants table out (the toolkit writes it from the caller's connection:
 *   grant `INSERT, DELETE` on it only to a role that force-deletes or purges);
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
import { childrenCheckColumns, childrenChecks, parentChecks, type ChildrenCheck, type ParentCheck } from '../schema/invariants.ts'
import { deletionRowsSql, HELD_ROWS_TABLE, HOLDS_TABLE } from '../holds/schema.ts'
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

/**
 * The append-only audit table (UPDATE and DELETE refused with `TB002`; MySQL's TRUNCATE fires no
 * trigger). A table made before legal holds gains `hold_id` and the `hold` and `release` actions.
 */
export async function createMysqlAuditTable(db: Kysely<any>, table: string): Promise<void> {
  const action = `action varchar(16) not null check (action in ('soft_delete', 'restore', 'hard_delete', 'purge', 'hold', 'release'))`
  await sql.raw(`create table if not exists ${id(table)} (
    id bigint primary key auto_increment,
    at datetime(3) not null default current_timestamp(3),
    ${action},
    entity varchar(255) not null,
    entity_id varchar(255) not null,
    actor varchar(255),
    reason text,
    deletion_id char(36),
    hold_id bigint,
    key ${id(`${table}_entity_idx`)} (entity, entity_id),
    key ${id(`${table}_actor_idx`)} (actor)
  )`).execute(db)
  await sql.raw(`alter table ${id(table)} add column if not exists hold_id bigint`).execute(db)
  // A table made before legal holds: MariaDB keeps a column's check with the column, so redefining
  // the column replaces it (once: it may copy the table).
  const shown = await sql.raw<Record<string, string>>(`show create table ${id(table)}`).execute(db)
  if (!(shown.rows[0]?.['Create Table'] ?? '').includes("'hold'")) await sql.raw(`alter table ${id(table)} modify ${action}`).execute(db)
  for (const event of ['update', 'delete'] as const) {
    const trigger = id(`${table}_append_only_${event}`)
    await sql.raw(`drop trigger if exists ${trigger}`).execute(db)
    await sql.raw(`create trigger ${trigger} before ${event} on ${id(table)} for each row
      ${signal('TB002', `json_object('table', ${literal(table)})`)}`).execute(db)
  }
}

/**
 * Legal holds on MariaDB/MySQL, the form of PostgreSQL's (`holds/schema.ts`) this database allows:
 *
 * - `tombstone_holds` and `tombstone_held_rows`, written through two `SQL SECURITY DEFINER`
 *   functions, `tombstone_place_hold()` and `tombstone_release_hold()` (grant the application
 *   `EXECUTE` on them and `SELECT` on the tables, no other right on them: they run with their
 *   definer's). For a client that has rights on the tables anyway, triggers keep the history: a
 *   `DELETE`, or an `UPDATE` that is not a release, is refused with `TB002`;
 * - the audit is written by the database: `tombstone_place_hold()` writes one `hold` entry per held
 *   row (as PostgreSQL's does; a trigger on `tombstone_held_rows` cannot, since the hold on a
 *   deletion reads the audit in the same statement), and a trigger on `tombstone_holds` writes one
 *   `release` entry per row when a hold is released (it marks the rows released itself);
 * - on each declared table, a `BEFORE DELETE` row trigger refuses (`TB006`) the removal of a row a
 *   standing hold covers, whatever opt-in the connection has. InnoDB fires no trigger for the rows a
 *   foreign key's `ON DELETE CASCADE` removes, so the trigger also looks down every chain of
 *   single-column cascading foreign keys (read from the catalog at install, up to four levels) from
 *   the row to a held row of a declared table, and is installed on every table that starts such a
 *   chain (declared or not). A cascading key added after `installSoftDeletes` is covered by running
 *   it again.
 */
async function installMysqlHolds(db: Kysely<any>, definition: SoftDeleteDefinition<any>): Promise<void> {
  await sql.raw(`create table if not exists ${HOLDS_TABLE} (
    id bigint primary key auto_increment,
    entity varchar(255) not null,
    deletion_id char(36),
    placed_at datetime(3) not null default current_timestamp(3),
    placed_by varchar(255),
    reason text not null,
    released_at datetime(3),
    released_by varchar(255),
    release_reason text,
    key ${HOLDS_TABLE}_deletion_idx (deletion_id)
  )`).execute(db)
  await sql.raw(`create table if not exists ${HELD_ROWS_TABLE} (
    hold_id bigint not null,
    entity varchar(255) not null,
    entity_id varchar(255) not null,
    released boolean not null default false,
    primary key (hold_id, entity, entity_id),
    key ${HELD_ROWS_TABLE}_active_idx (entity, entity_id, released),
    foreign key (hold_id) references ${HOLDS_TABLE} (id)
  )`).execute(db)
  const refuse = (table: string) => signal('TB002', `json_object('table', ${literal(table)})`)
  const released = `(select h.released_at from ${HOLDS_TABLE} h where h.id = new.hold_id)`
  const audit = definition.auditTable === undefined ? undefined : id(definition.auditTable)
  const triggers: [string, string][] = [
    [`${HOLDS_TABLE}_append_only_delete`, `before delete on ${HOLDS_TABLE} for each row ${refuse(HOLDS_TABLE)}`],
    [
      `${HOLDS_TABLE}_append_only_update`,
      `before update on ${HOLDS_TABLE} for each row begin
        if not (old.released_at is null and new.released_at is not null and new.id = old.id and new.entity = old.entity
          and new.deletion_id <=> old.deletion_id and new.placed_at = old.placed_at and new.placed_by <=> old.placed_by and new.reason = old.reason) then
          ${refuse(HOLDS_TABLE)};
        end if;
      end`,
    ],
    [
      `${HOLDS_TABLE}_release`,
      `after update on ${HOLDS_TABLE} for each row begin
        if old.released_at is null and new.released_at is not null then
          update ${HELD_ROWS_TABLE} set released = true where hold_id = new.id;
          ${
            audit === undefined
              ? ''
              : `insert into ${audit} (action, entity, entity_id, actor, reason, deletion_id, hold_id)
            select 'release', r.entity, r.entity_id, new.released_by, new.release_reason, new.deletion_id, new.id
            from ${HELD_ROWS_TABLE} r where r.hold_id = new.id order by r.entity, r.entity_id;`
          }
        end if;
      end`,
    ],
    [`${HELD_ROWS_TABLE}_append_only_delete`, `before delete on ${HELD_ROWS_TABLE} for each row ${refuse(HELD_ROWS_TABLE)}`],
    [
      `${HELD_ROWS_TABLE}_append_only_update`,
      `before update on ${HELD_ROWS_TABLE} for each row begin
        if not (not old.released and new.released and new.hold_id = old.hold_id and new.entity = old.entity
          and new.entity_id = old.entity_id and ${released} is not null) then
          ${refuse(HELD_ROWS_TABLE)};
        end if;
      end`,
    ],
    [
      `${HELD_ROWS_TABLE}_append_only_insert`,
      `before insert on ${HELD_ROWS_TABLE} for each row begin
        if new.released or ${released} is not null then
          ${refuse(HELD_ROWS_TABLE)};
        end if;
      end`,
    ],
  ]
  for (const [name, body] of triggers) {
    await sql.raw(`drop trigger if exists ${id(name)}`).execute(db)
    await sql.raw(`create trigger ${id(name)} ${body}`).execute(db)
  }

  const deletionRows = deletionRowsSql(definition, 'mysql', 'p_deletion')
  await sql.raw(`drop function if exists tombstone_place_hold`).execute(db)
  await sql.raw(`create function tombstone_place_hold(p_entity varchar(255), p_keys longtext, p_deletion char(36), p_actor varchar(255), p_reason text)
    returns bigint not deterministic modifies sql data sql security definer
    begin
      declare p_id bigint;
      if p_reason is null or trim(p_reason) = '' or p_entity is null or trim(p_entity) = '' then
        signal sqlstate '22023' set message_text = 'a legal hold needs a table and a reason';
      end if;
      insert into ${HOLDS_TABLE} (entity, deletion_id, placed_by, reason) values (p_entity, p_deletion, p_actor, p_reason);
      set p_id = last_insert_id();
      insert ignore into ${HELD_ROWS_TABLE} (hold_id, entity, entity_id)
        select distinct p_id, p_entity, k.k from json_table(coalesce(p_keys, '[]'), '$[*]' columns (k varchar(255) path '$')) as k
        where k.k is not null order by k.k;
      if p_deletion is not null then
        insert ignore into ${HELD_ROWS_TABLE} (hold_id, entity, entity_id)
          select distinct p_id, d.entity, d.entity_id from (${deletionRows}) as d order by d.entity, d.entity_id;
      end if;
      ${
        audit === undefined
          ? ''
          : `insert into ${audit} (action, entity, entity_id, actor, reason, deletion_id, hold_id)
        select 'hold', r.entity, r.entity_id, p_actor, p_reason, p_deletion, p_id from ${HELD_ROWS_TABLE} r where r.hold_id = p_id order by r.entity, r.entity_id;`
      }
      return p_id;
    end`).execute(db)
  await sql.raw(`drop function if exists tombstone_release_hold`).execute(db)
  await sql.raw(`create function tombstone_release_hold(p_id bigint, p_actor varchar(255), p_reason text)
    returns boolean not deterministic modifies sql data sql security definer
    begin
      update ${HOLDS_TABLE} set released_at = now(3), released_by = p_actor, release_reason = p_reason where id = p_id and released_at is null;
      return row_count() > 0;
    end`).execute(db)

  // The guard: the row itself, and the held rows below it along cascading foreign keys.
  const cascades = await sql<{ child: string; column: string; parent: string; parentColumn: string; name: string }>`
    select k.table_name as child, k.column_name as \`column\`, k.referenced_table_name as parent, k.referenced_column_name as parentColumn, k.constraint_name as name
    from information_schema.referential_constraints r
    join information_schema.key_column_usage k on k.constraint_schema = r.constraint_schema and k.constraint_name = r.constraint_name and k.table_name = r.table_name
    where r.constraint_schema = database() and r.delete_rule = 'CASCADE'
      and (select count(*) from information_schema.key_column_usage c where c.constraint_schema = r.constraint_schema
        and c.constraint_name = r.constraint_name and c.table_name = r.table_name) = 1`.execute(db)
  const below = new Map<string, { child: string; column: string; parentColumn: string }[]>()
  for (const row of cascades.rows) below.set(row.parent, [...(below.get(row.parent) ?? []), { child: row.child, column: row.column, parentColumn: row.parentColumn }])
  const held = (table: string, key: string) =>
    `(select json_object('table', ${literal(table)}, 'id', ${key}, 'hold_id', cast(h.hold_id as char)) from ${HELD_ROWS_TABLE} h
      where h.entity = ${literal(table)} and h.entity_id = ${key} and not h.released order by h.hold_id limit 1)`
  const checks = new Map<string, string[]>()
  for (const table of definition.tables.values()) {
    checks.set(table.name, [held(table.name, `cast(old.${id(table.key)} as char)`)])
  }
  // Every chain parent → … → a declared table, by depth-first search from each table that has children.
  const walk = (start: string, parentColumn: string, path: { child: string; column: string; parentColumn: string }[], seen: Set<string>) => {
    const last = path.at(-1)
    if (last !== undefined) {
      const target = definition.tables.get(last.child)
      if (target !== undefined) {
        const joins = path
          .slice(1)
          .map((step, i) => `join ${id(step.child)} c${i + 1} on c${i + 1}.${id(step.column)} = c${i}.${id(step.parentColumn)}`)
          .join(' ')
        const alias = `c${path.length - 1}`
        const key = `cast(${alias}.${id(target.key)} as char)`
        const first = path[0] as { child: string; column: string; parentColumn: string }
        checks.set(start, [
          ...(checks.get(start) ?? []),
          `(select json_object('table', ${literal(target.name)}, 'id', ${key}, 'hold_id', cast(h.hold_id as char))
            from ${id(first.child)} c0 ${joins}
            join ${HELD_ROWS_TABLE} h on h.entity = ${literal(target.name)} and h.entity_id = ${key} and not h.released
            where c0.${id(first.column)} = old.${id(parentColumn)} order by h.hold_id limit 1)`,
        ])
      }
      if (path.length >= 4) return
    }
    const from = last === undefined ? start : last.child
    for (const step of below.get(from) ?? []) {
      if (seen.has(step.child)) continue
      // The first step starts from the column the chain's first key references.
      if (last === undefined) walk(start, step.parentColumn, [step], new Set([...seen, step.child]))
      else walk(start, parentColumn, [...path, step], new Set([...seen, step.child]))
    }
  }
  for (const parent of below.keys()) walk(parent, '', [], new Set([parent]))
  for (const [table, found] of checks) {
    const trigger = id(`tombstone_hold_delete_${table}`.slice(0, 64))
    await sql.raw(`drop trigger if exists ${trigger}`).execute(db)
    await sql.raw(`create trigger ${trigger} before delete on ${id(table)} for each row
      begin
        declare v_held text;
        set v_held = coalesce(${found.join(', ')});
        if v_held is not null then
          ${signal('TB006', 'v_held')};
        end if;
      end`).execute(db)
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
 * The parent side of a relation's check, for clients outside the toolkit: a row of the parent that
 * becomes deleted while an active child references it is refused at once (`TB003`, naming the
 * child), so such a client deletes the children first. InnoDB has no deferred triggers, and the
 * toolkit's cascade stamps parents before children: inside an operation of the toolkit (its
 * `tombstone_context` row for this connection present) the trigger stands aside, and `softDelete`
 * checks with `cascade: false` itself. A plain read of the children is enough: a child written
 * first holds the parent's shared lock (its own check's read), so this update waits for its commit
 * and then reads it (READ COMMITTED reads afresh; in REPEATABLE READ InnoDB reads a trigger's tables
 * with locks); a child written after waits for this update's lock and is refused. A locking read
 * would take next-key locks on the children's index, in the way of other parents' new children.
 */
async function installMysqlChildrenCheck(db: Kysely<any>, check: ChildrenCheck): Promise<void> {
  const { fk, pk, ck, pAt, cAt } = childrenCheckColumns(check, id)
  const detail = `json_object('table', ${literal(check.child)}, 'id', v_child, 'parent_table', ${literal(check.parent.name)}, 'parent_id', cast(new.${pk} as char))`
  const trigger = id(`tombstone_children_${check.child}_${check.foreignKey}`.slice(0, 64))
  await sql.raw(`drop trigger if exists ${trigger}`).execute(db)
  await sql.raw(`create trigger ${trigger} before update on ${id(check.parent.name)} for each row
    begin
      declare v_child text default null;
      if old.${pAt} is null and new.${pAt} is not null
          and not exists (select 1 from tombstone_context where connection_id = connection_id()) then
        set v_child = (select cast(c.${ck} as char) from ${id(check.child)} c where c.${fk} = new.${pk} and c.${cAt} is null limit 1);
        if v_child is not null then
          ${signal('TB003', detail)};
        end if;
      end if;
    end`).execute(db)
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
  for (const check of childrenChecks(definition)) await installMysqlChildrenCheck(db, check)
  await installMysqlHolds(db, definition)
}
