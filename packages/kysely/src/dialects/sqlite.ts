/**
 * SQLite's form of the database-held invariants (installed by `installSoftDeletes` when the
 * Kysely instance uses Kysely's `SqliteAdapter`). SQLite has row triggers only, no transaction id,
 * no session settings and no privileges; one connection writes at a time. So:
 *
 * - **who and why** travel in a one-row table, `tombstone_context`, that the toolkit writes and
 *   removes inside its transaction; **the hard-delete opt-in** is a row of
 *   `tombstone_hard_delete_grants`, written and removed the same way (and removed by
 *   `NodeSqliteDialect` before every commit). While the transaction holds the write lock no other
 *   connection can see or write either table, so an opt-in binds to the transaction that wrote it;
 *   what SQLite cannot do is stop a client that writes the database file directly from inserting a
 *   grant row or dropping a trigger: there is no owner to keep it out.
 * - **refusals** are `RAISE(ABORT, 'TB00n {json}')`: the driver's error has `errcode` 1811
 *   (`SQLITE_CONSTRAINT_TRIGGER`) and a message that starts with the toolkit's code, then the
 *   structured detail. That message is written by our trigger, not by SQLite.
 *
 * @module
 */
import { sql, type Kysely } from 'kysely'
import type { Retention, SoftDeleteDefinition, TableDefinition } from '../definition.ts'
import { childrenCheckColumns, childrenChecks, parentChecks, quoteIdent, quoteLiteral, type ChildrenCheck, type ParentCheck } from '../schema/invariants.ts'
import { HELD_ROWS_TABLE, HOLDS_TABLE } from '../holds/schema.ts'

/** The time format every stamp uses: ISO 8601 in UTC with milliseconds, as `Date#toISOString`. */
export const SQLITE_NOW = `strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`

/** A random version 4 UUID, in SQL. */
const UUID = `lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-' ||
  substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))`

function ident(name: string): string {
  if (name.includes('.')) throw new Error(`SQLite tables are not schema-qualified here: ${name}`)
  return quoteIdent(name)
}

/** The SQL modifiers of a retention for `strftime`, e.g. `, '+30 days', '+0 hours'`. */
function retentionModifiers(retention: Retention): string {
  const { days = 0, hours = 0, minutes = 0, seconds = 0 } = retention
  return [`'+${days} days'`, `'+${hours} hours'`, `'+${minutes} minutes'`, `'+${seconds} seconds'`].join(', ')
}

/** The raised message: the toolkit's code, a space, a JSON object of details. */
function raise(code: string, detail: string): string {
  return `select raise(abort, '${code} ' || ${detail})`
}

/** The shared tables: context (who and why) and hard-delete grants. Idempotent. */
export async function installSqliteShared(db: Kysely<any>): Promise<void> {
  await sql`create table if not exists tombstone_context (
    id integer primary key check (id = 1),
    actor text,
    reason text,
    deletion_id text
  )`.execute(db)
  await sql`create table if not exists tombstone_hard_delete_grants (
    id integer primary key check (id = 1),
    purpose text not null check (purpose in ('hard_delete', 'purge')),
    actor text,
    reason text
  )`.execute(db)
}

/** The hard-delete guard on tables: `BEFORE DELETE` per row, unless a grant row is visible. */
export async function installSqliteGuard(db: Kysely<any>, tables: readonly string[]): Promise<void> {
  await installSqliteShared(db)
  for (const table of tables) {
    const trigger = ident(`tombstone_guard_${table}`)
    await sql.raw(`drop trigger if exists ${trigger}`).execute(db)
    await sql.raw(`create trigger ${trigger} before delete on ${ident(table)} for each row
      when not exists (select 1 from tombstone_hard_delete_grants)
      begin ${raise('TB001', `json_object('table', ${quoteLiteral(table)})`)}; end`).execute(db)
  }
}

/** Removes the guard from a table. */
export async function removeSqliteGuard(db: Kysely<any>, table: string): Promise<void> {
  await sql.raw(`drop trigger if exists ${ident(`tombstone_guard_${table}`)}`).execute(db)
}

/** The audit table's columns (legal holds' `hold` and `release` entries included). */
function sqliteAuditColumns(): string {
  return `id integer primary key autoincrement,
    at text not null default (${SQLITE_NOW}),
    action text not null check (action in ('soft_delete', 'restore', 'hard_delete', 'purge', 'hold', 'release')),
    entity text not null,
    entity_id text not null,
    actor text,
    reason text,
    deletion_id text,
    hold_id integer`
}

/**
 * The append-only audit table: `BEFORE UPDATE` and `BEFORE DELETE` raise `TB002`. A table made
 * before legal holds (its check refuses `hold`) is rebuilt with the same rows: SQLite cannot alter a
 * check. Dropping it drops its triggers first, so the copy is not refused.
 */
export async function createSqliteAuditTable(db: Kysely<any>, table: string): Promise<void> {
  const name = ident(table)
  const existing = await sql<{ sql: string }>`select sql from sqlite_master where type = 'table' and name = ${table}`.execute(db)
  const definitionSql = existing.rows[0]?.sql
  if (definitionSql !== undefined && !definitionSql.includes("'hold'")) {
    const copy = ident(`${table}_tombstone_rebuild`)
    await sql.raw(`drop table if exists ${copy}`).execute(db)
    await sql.raw(`create table ${copy} (${sqliteAuditColumns()})`).execute(db)
    await sql.raw(`insert into ${copy} (id, at, action, entity, entity_id, actor, reason, deletion_id)
      select id, at, action, entity, entity_id, actor, reason, deletion_id from ${name} order by id`).execute(db)
    await sql.raw(`drop table ${name}`).execute(db)
    // Legacy mode: the other tables' triggers name the audit table, which does not exist for a moment.
    await sql.raw(`pragma legacy_alter_table = on`).execute(db)
    try {
      await sql.raw(`alter table ${copy} rename to ${name}`).execute(db)
    } finally {
      await sql.raw(`pragma legacy_alter_table = off`).execute(db)
    }
  }
  await sql.raw(`create table if not exists ${name} (${sqliteAuditColumns()})`).execute(db)
  await sql.raw(`create index if not exists ${ident(`${table}_entity_idx`)} on ${name} (entity, entity_id)`).execute(db)
  await sql.raw(`create index if not exists ${ident(`${table}_actor_idx`)} on ${name} (actor)`).execute(db)
  for (const event of ['update', 'delete'] as const) {
    const trigger = ident(`${table}_append_only_${event}`)
    await sql.raw(`drop trigger if exists ${trigger}`).execute(db)
    await sql.raw(`create trigger ${trigger} before ${event} on ${name} for each row
      begin ${raise('TB002', `json_object('table', ${quoteLiteral(table)})`)}; end`).execute(db)
  }
}

/**
 * Legal holds on SQLite (see `holds/schema.ts` for PostgreSQL's form): the same two tables, and
 * triggers instead of owner-only tables and functions (SQLite has no roles):
 *
 * - `tombstone_holds` and `tombstone_held_rows` keep their history: a `DELETE` of either, or an
 *   `UPDATE` that is not a release (a standing hold's `released_at` set, nothing else changed; a held
 *   row's `released` set once its hold is released), is refused with `TB002`, whoever runs it;
 * - the audit is written by the database: one `hold` entry per row inserted into
 *   `tombstone_held_rows`, one `release` entry per row when its hold is released (the release marks
 *   the rows released itself);
 * - on each declared table, a `BEFORE DELETE` row trigger refuses (`TB006`) the removal of a row a
 *   standing hold covers, whatever opt-in the transaction has. SQLite fires it for the rows a
 *   foreign key's `ON DELETE CASCADE` removes too.
 *
 * What SQLite cannot do, as for the opt-in: keep out a client that writes the file itself and drops
 * a trigger.
 */
async function installSqliteHolds(db: Kysely<any>, definition: SoftDeleteDefinition<any>): Promise<void> {
  await sql.raw(`create table if not exists ${HOLDS_TABLE} (
    id integer primary key autoincrement,
    entity text not null check (trim(entity) <> ''),
    deletion_id text,
    placed_at text not null default (${SQLITE_NOW}),
    placed_by text,
    reason text not null check (trim(reason) <> ''),
    released_at text,
    released_by text,
    release_reason text
  )`).execute(db)
  await sql.raw(`create table if not exists ${HELD_ROWS_TABLE} (
    hold_id integer not null references ${HOLDS_TABLE} (id),
    entity text not null,
    entity_id text not null,
    released integer not null default 0 check (released in (0, 1)),
    primary key (hold_id, entity, entity_id)
  )`).execute(db)
  await sql.raw(`create index if not exists ${HELD_ROWS_TABLE}_active_idx on ${HELD_ROWS_TABLE} (entity, entity_id) where not released`).execute(db)
  await sql.raw(`create index if not exists ${HOLDS_TABLE}_deletion_idx on ${HOLDS_TABLE} (deletion_id) where deletion_id is not null`).execute(db)
  const refuse = (table: string) => raise('TB002', `json_object('table', ${quoteLiteral(table)})`)
  const released = `(select h.released_at from ${HOLDS_TABLE} h where h.id = new.hold_id)`
  const triggers: [string, string][] = [
    [`${HOLDS_TABLE}_append_only_delete`, `before delete on ${HOLDS_TABLE} for each row begin ${refuse(HOLDS_TABLE)}; end`],
    [
      `${HOLDS_TABLE}_append_only_update`,
      `before update on ${HOLDS_TABLE} for each row
        when not (old.released_at is null and new.released_at is not null and new.id = old.id and new.entity = old.entity
          and new.deletion_id is old.deletion_id and new.placed_at = old.placed_at and new.placed_by is old.placed_by and new.reason = old.reason)
        begin ${refuse(HOLDS_TABLE)}; end`,
    ],
    [`${HELD_ROWS_TABLE}_append_only_delete`, `before delete on ${HELD_ROWS_TABLE} for each row begin ${refuse(HELD_ROWS_TABLE)}; end`],
    [
      `${HELD_ROWS_TABLE}_append_only_update`,
      `before update on ${HELD_ROWS_TABLE} for each row
        when not (old.released = 0 and new.released = 1 and new.hold_id = old.hold_id and new.entity = old.entity
          and new.entity_id = old.entity_id and ${released} is not null)
        begin ${refuse(HELD_ROWS_TABLE)}; end`,
    ],
    [
      `${HELD_ROWS_TABLE}_append_only_insert`,
      `before insert on ${HELD_ROWS_TABLE} for each row when new.released <> 0 or ${released} is not null
        begin ${refuse(HELD_ROWS_TABLE)}; end`,
    ],
  ]
  const audit = definition.auditTable === undefined ? undefined : ident(definition.auditTable)
  triggers.push([
    `${HOLDS_TABLE}_release`,
    `after update of released_at on ${HOLDS_TABLE} for each row when old.released_at is null and new.released_at is not null
      begin
        update ${HELD_ROWS_TABLE} set released = 1 where hold_id = new.id;
        ${
          audit === undefined
            ? ''
            : `insert into ${audit} (action, entity, entity_id, actor, reason, deletion_id, hold_id)
          select 'release', r.entity, r.entity_id, new.released_by, new.release_reason, new.deletion_id, new.id
          from ${HELD_ROWS_TABLE} r where r.hold_id = new.id order by r.entity, r.entity_id;`
        }
      end`,
  ])
  if (audit !== undefined) {
    triggers.push([
      `${HELD_ROWS_TABLE}_audit`,
      `after insert on ${HELD_ROWS_TABLE} for each row
        begin
          insert into ${audit} (action, entity, entity_id, actor, reason, deletion_id, hold_id)
          select 'hold', new.entity, new.entity_id, h.placed_by, h.reason, h.deletion_id, h.id from ${HOLDS_TABLE} h where h.id = new.hold_id;
        end`,
    ])
  } else await sql.raw(`drop trigger if exists ${HELD_ROWS_TABLE}_audit`).execute(db)
  for (const [name, body] of triggers) {
    await sql.raw(`drop trigger if exists ${ident(name)}`).execute(db)
    await sql.raw(`create trigger ${ident(name)} ${body}`).execute(db)
  }
  for (const table of definition.tables.values()) {
    const trigger = ident(`tombstone_hold_delete_${table.name}`)
    const key = `cast(old.${quoteIdent(table.key)} as text)`
    const holding = `select r.hold_id from ${HELD_ROWS_TABLE} r where r.entity = ${quoteLiteral(table.name)} and r.entity_id = ${key} and not r.released`
    await sql.raw(`drop trigger if exists ${trigger}`).execute(db)
    await sql.raw(`create trigger ${trigger} before delete on ${ident(table.name)} for each row
      when exists (${holding})
      begin ${raise('TB006', `json_object('table', ${quoteLiteral(table.name)}, 'id', ${key}, 'hold_id', (select cast(hold_id as text) from (${holding} order by r.hold_id limit 1)))`)}; end`).execute(db)
  }
}

/**
 * Stamping, audit and stamp protection on one table, as row triggers:
 * - `tombstone_stamp_protect` (BEFORE UPDATE): the stamps of a deleted row never change, `purge_at`
 *   only moves later (`TB005`);
 * - `tombstone_stamp` (AFTER UPDATE): a row turned deleted without a deletion id (a plain client's
 *   `set deleted_at = …`) is stamped as the toolkit would: the statement's time, a fresh deletion id,
 *   `purge_at` by the table's retention, who and why from the context, then audited;
 * - `tombstone_clear` (AFTER UPDATE): an active row's other stamps are cleared (a restore);
 * - `tombstone_audit_update` / `_delete` (AFTER, per row): one audit row per change of state or
 *   removal, with who and why from the context or the grant.
 */
async function installSqliteTable(db: Kysely<any>, table: TableDefinition, auditTable: string | undefined): Promise<void> {
  const t = ident(table.name)
  const [at, by, why, id, purge, key] = [
    table.columns.deletedAt,
    table.columns.deletedBy,
    table.columns.deleteReason,
    table.columns.deletionId,
    table.columns.purgeAt,
    table.key,
  ].map(quoteIdent) as [string, string, string, string, string, string]
  const name = quoteLiteral(table.name)
  const triggers = {
    protect: ident(`tombstone_stamp_protect_${table.name}`),
    stamp: ident(`tombstone_stamp_${table.name}`),
    clear: ident(`tombstone_clear_${table.name}`),
    auditUpdate: ident(`tombstone_audit_update_${table.name}`),
    auditDelete: ident(`tombstone_audit_delete_${table.name}`),
  }
  for (const trigger of Object.values(triggers)) await sql.raw(`drop trigger if exists ${trigger}`).execute(db)
  const purgeAt = table.retention === null ? 'null' : `strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ${retentionModifiers(table.retention)})`
  // old.deletion_id is null for a row stamped by tombstone_stamp's own UPDATE: it may be completed.
  await sql.raw(`create trigger ${triggers.protect} before update on ${t} for each row
    when old.${at} is not null and new.${at} is not null and old.${id} is not null and (
      new.${at} is not old.${at} or new.${id} is not old.${id} or new.${by} is not old.${by} or new.${why} is not old.${why}
      or (old.${purge} is null and new.${purge} is not null) or new.${purge} < old.${purge})
    begin ${raise('TB005', `json_object('table', ${name})`)}; end`).execute(db)
  const stampAudit =
    auditTable === undefined
      ? ''
      : `insert into ${ident(auditTable)} (action, entity, entity_id, actor, reason, deletion_id)
         select 'soft_delete', ${name}, cast(s.${key} as text), s.${by}, s.${why}, s.${id} from ${t} as s where s.${key} = new.${key};`
  await sql.raw(`create trigger ${triggers.stamp} after update of ${at} on ${t} for each row
    when old.${at} is null and new.${at} is not null and new.${id} is null
    begin
      update ${t} set ${at} = ${SQLITE_NOW}, ${purge} = ${purgeAt},
        ${id} = coalesce((select deletion_id from tombstone_context), ${UUID}),
        ${by} = coalesce(new.${by}, (select actor from tombstone_context)),
        ${why} = coalesce(new.${why}, (select reason from tombstone_context))
      where ${key} = new.${key};
      ${stampAudit}
    end`).execute(db)
  await sql.raw(`create trigger ${triggers.clear} after update on ${t} for each row
    when new.${at} is null and (new.${id} is not null or new.${by} is not null or new.${why} is not null or new.${purge} is not null)
    begin
      update ${t} set ${id} = null, ${by} = null, ${why} = null, ${purge} = null where ${key} = new.${key};
    end`).execute(db)
  if (auditTable !== undefined) {
    const a = ident(auditTable)
    await sql.raw(`create trigger ${triggers.auditUpdate} after update of ${at} on ${t} for each row
      when (old.${at} is null) <> (new.${at} is null) and not (old.${at} is null and new.${id} is null)
      begin
        insert into ${a} (action, entity, entity_id, actor, reason, deletion_id) values (
          case when new.${at} is null then 'restore' else 'soft_delete' end, ${name}, cast(new.${key} as text),
          coalesce((select actor from tombstone_context), case when new.${at} is not null then new.${by} end),
          coalesce((select reason from tombstone_context), case when new.${at} is not null then new.${why} end),
          coalesce(new.${id}, old.${id}));
      end`).execute(db)
    await sql.raw(`create trigger ${triggers.auditDelete} after delete on ${t} for each row
      begin
        insert into ${a} (action, entity, entity_id, actor, reason, deletion_id) values (
          coalesce((select purpose from tombstone_hard_delete_grants), 'hard_delete'), ${name}, cast(old.${key} as text),
          (select actor from tombstone_hard_delete_grants), (select reason from tombstone_hard_delete_grants), old.${id});
      end`).execute(db)
  }
}

/** The parent checks of one reference: BEFORE INSERT / UPDATE, `TB003` with the ids as detail. */
async function installSqliteParentCheck(db: Kysely<any>, check: ParentCheck): Promise<void> {
  const child = ident(check.child)
  const [fk, pk, ck, pAt] = [check.foreignKey, check.parentKey, check.childKey, check.parent.columns.deletedAt].map(quoteIdent) as [
    string,
    string,
    string,
    string,
  ]
  const active = check.childDeletedAt === undefined ? '1' : `new.${quoteIdent(check.childDeletedAt)} is null`
  const changed =
    check.childDeletedAt === undefined ? `old.${fk} is not new.${fk}` : `(old.${quoteIdent(check.childDeletedAt)} is not null or old.${fk} is not new.${fk})`
  const deletedParent = `exists (select 1 from ${ident(check.parent.name)} p where p.${pk} = new.${fk} and p.${pAt} is not null)`
  const detail = `json_object('table', ${quoteLiteral(check.child)}, 'id', cast(new.${ck} as text), 'parent_table', ${quoteLiteral(
    check.parent.name,
  )}, 'parent_id', cast(new.${fk} as text), 'constraint', ${quoteLiteral(`${check.child}.${check.foreignKey} -> ${check.parent.name}.${check.parentKey}`)})`
  for (const event of ['insert', 'update'] as const) {
    const trigger = ident(`tombstone_parent_${check.child}_${check.foreignKey}_${event}`)
    await sql.raw(`drop trigger if exists ${trigger}`).execute(db)
    await sql.raw(`create trigger ${trigger} before ${event} on ${child} for each row
      when ${active}${event === 'update' ? ` and ${changed}` : ''} and ${deletedParent}
      begin ${raise('TB003', detail)}; end`).execute(db)
  }
}

/**
 * The parent side of a relation's check, for clients outside the toolkit: a row of the parent that
 * becomes deleted while an active child references it is refused at once (`TB003`, naming the
 * child), so such a client deletes the children first. SQLite has no deferred triggers, and the
 * toolkit's cascade stamps parents before children: inside an operation of the toolkit (its
 * `tombstone_context` row present) the trigger stands aside, and `softDelete` checks with
 * `cascade: false` itself.
 */
async function installSqliteChildrenCheck(db: Kysely<any>, check: ChildrenCheck): Promise<void> {
  const { fk, pk, ck, pAt, cAt } = childrenCheckColumns(check, quoteIdent)
  const firstChild = `(select cast(c.${ck} as text) from ${ident(check.child)} c where c.${fk} = new.${pk} and c.${cAt} is null limit 1)`
  const detail = `json_object('table', ${quoteLiteral(check.child)}, 'id', ${firstChild}, 'parent_table', ${quoteLiteral(
    check.parent.name,
  )}, 'parent_id', cast(new.${pk} as text), 'constraint', ${quoteLiteral(`${check.child}.${check.foreignKey} -> ${check.parent.name}.${check.parentKey}`)})`
  const trigger = ident(`tombstone_children_${check.child}_${check.foreignKey}`)
  await sql.raw(`drop trigger if exists ${trigger}`).execute(db)
  await sql.raw(`create trigger ${trigger} before update on ${ident(check.parent.name)} for each row
    when old.${pAt} is null and new.${pAt} is not null and not exists (select 1 from tombstone_context) and ${firstChild} is not null
    begin ${raise('TB003', detail)}; end`).execute(db)
}

/**
 * `policy: 'never'`: a soft delete (`deleted_at` set) and a `DELETE` of the table's rows are refused
 * (`TB007`), for every client, opt-in or not; the triggers are dropped when the policy is another.
 */
async function installSqliteNeverPolicy(db: Kysely<any>, table: TableDefinition): Promise<void> {
  const [update, remove] = [ident(`tombstone_never_delete_${table.name}`), ident(`tombstone_never_remove_${table.name}`)]
  await sql.raw(`drop trigger if exists ${update}`).execute(db)
  await sql.raw(`drop trigger if exists ${remove}`).execute(db)
  if (table.policy !== 'never') return
  const at = quoteIdent(table.columns.deletedAt)
  const refusal = raise('TB007', `json_object('table', ${quoteLiteral(table.name)})`)
  await sql.raw(`create trigger ${update} before update on ${ident(table.name)} for each row
    when old.${at} is null and new.${at} is not null begin ${refusal}; end`).execute(db)
  await sql.raw(`create trigger ${remove} before delete on ${ident(table.name)} for each row begin ${refusal}; end`).execute(db)
}

/** Every invariant of a definition on SQLite. Idempotent. @internal */
export async function installSqliteInvariants(db: Kysely<any>, definition: SoftDeleteDefinition<any>): Promise<void> {
  await installSqliteShared(db)
  for (const table of definition.tables.values()) await installSqliteTable(db, table, definition.auditTable)
  for (const table of definition.tables.values()) await installSqliteNeverPolicy(db, table)
  for (const check of parentChecks(definition)) await installSqliteParentCheck(db, check)
  for (const check of childrenChecks(definition)) await installSqliteChildrenCheck(db, check)
  await installSqliteHolds(db, definition)
}
