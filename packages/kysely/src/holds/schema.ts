import { sql, type Kysely } from 'kysely'
import type { DialectKind } from '../dialects/adapter.ts'
import type { SoftDeleteDefinition, TableDefinition } from '../definition.ts'
import { installShared, objectName, planned, quoteIdent, quoteLiteral, quoteTable, smallStatement, TRIGGER_SQLSTATE } from '../schema/invariants.ts'

/** The table of legal holds (one row per hold: who, why, when, released by whom). */
export const HOLDS_TABLE = 'tombstone_holds'
/** The rows each hold covers (table, key as text), with the hold's state copied for the guard's index. */
export const HELD_ROWS_TABLE = 'tombstone_held_rows'

/**
 * Installs legal holds in a PostgreSQL (or PGlite) database, for every declared table of a
 * definition (SQLite's and MariaDB's forms: `dialects/sqlite.ts`, `dialects/mysql.ts`). Idempotent;
 * run by {@link installSoftDeletes}, as the tables' owner.
 *
 * - `tombstone_holds` and `tombstone_held_rows`, which nobody but the owner may write: holds are
 *   placed and released only through the `SECURITY DEFINER` functions `tombstone_place_hold()` and
 *   `tombstone_release_hold()`, which also write the audit (`hold` / `release`, one entry per row);
 * - on each declared table, an `AFTER DELETE` statement trigger (transition table) that refuses,
 *   with SQLSTATE `TB006`, any statement removing a held row, whoever runs it and whatever opt-in
 *   it has (`forceDelete`, the purge, a plain `DELETE` after `tombstone_allow_hard_delete()`, a
 *   foreign-key cascade), and a `BEFORE TRUNCATE` trigger refusing a `TRUNCATE` while the table
 *   has a held row.
 *
 * @internal
 */
export async function installHolds(db: Kysely<any>, definition: SoftDeleteDefinition<any>): Promise<void> {
  const schema = await installShared(db)
  await sql.raw(`create table if not exists ${HOLDS_TABLE} (
    id bigint generated always as identity primary key,
    entity text not null,
    deletion_id uuid,
    placed_at timestamptz not null default now(),
    placed_by text,
    reason text not null,
    released_at timestamptz,
    released_by text,
    release_reason text
  )`).execute(db)
  await sql.raw(`create table if not exists ${HELD_ROWS_TABLE} (
    hold_id bigint not null references ${HOLDS_TABLE} (id),
    entity text not null,
    entity_id text not null,
    released boolean not null default false,
    primary key (hold_id, entity, entity_id)
  )`).execute(db)
  // What the guard and the purge probe: active holds on one row.
  await sql.raw(`create index if not exists ${HELD_ROWS_TABLE}_active_idx on ${HELD_ROWS_TABLE} (entity, entity_id) where not released`).execute(db)
  await sql.raw(`create index if not exists ${HOLDS_TABLE}_deletion_idx on ${HOLDS_TABLE} (deletion_id) where deletion_id is not null`).execute(db)
  await sql.raw(`revoke all on table ${HOLDS_TABLE}, ${HELD_ROWS_TABLE} from public`).execute(db)

  const audit = definition.auditTable === undefined ? undefined : quoteTable(definition.auditTable)
  const deletionRows = deletionRowsSql(definition, 'postgres', 'p_deletion')
  const auditInsert = (action: 'hold' | 'release', actor: string, reason: string) =>
    audit === undefined
      ? ''
      : `insert into ${audit} (action, entity, entity_id, actor, reason, deletion_id, hold_id)
         select '${action}', r.entity, r.entity_id, ${actor}, ${reason}, h.deletion_id, h.id
         from ${HELD_ROWS_TABLE} r join ${HOLDS_TABLE} h on h.id = r.hold_id where r.hold_id = p_id order by r.entity, r.entity_id;`
  await sql.raw(`create or replace function tombstone_place_hold(p_entity text, p_keys text[], p_deletion uuid, p_actor text, p_reason text)
    returns bigint language plpgsql security definer set search_path = ${schema}, pg_temp as $$
    declare p_id bigint;
    begin
      if p_reason is null or btrim(p_reason) = '' then
        raise exception 'a legal hold needs a reason' using errcode = '22023';
      end if;
      if p_entity is null or btrim(p_entity) = '' then
        raise exception 'a legal hold needs a table' using errcode = '22023';
      end if;
      insert into ${HOLDS_TABLE} (entity, deletion_id, placed_by, reason) values (p_entity, p_deletion, p_actor, p_reason) returning id into p_id;
      insert into ${HELD_ROWS_TABLE} (hold_id, entity, entity_id)
        select distinct p_id, p_entity, k from unnest(coalesce(p_keys, '{}'::text[])) as k where k is not null
        on conflict do nothing;
      if p_deletion is not null then
        insert into ${HELD_ROWS_TABLE} (hold_id, entity, entity_id)
          select distinct p_id, d.entity, d.entity_id from (${deletionRows}) as d (entity, entity_id)
          on conflict do nothing;
      end if;
      ${auditInsert('hold', 'p_actor', 'p_reason')}
      return p_id;
    end $$`).execute(db)
  await sql.raw(`create or replace function tombstone_release_hold(p_id bigint, p_actor text, p_reason text)
    returns boolean language plpgsql security definer set search_path = ${schema}, pg_temp as $$
    begin
      update ${HOLDS_TABLE} set released_at = now(), released_by = p_actor, release_reason = p_reason
        where id = p_id and released_at is null;
      if not found then
        return false;
      end if;
      update ${HELD_ROWS_TABLE} set released = true where hold_id = p_id;
      ${auditInsert('release', 'p_actor', 'p_reason')}
      return true;
    end $$`).execute(db)
  await sql`revoke execute on function tombstone_place_hold(text, text[], uuid, text, text) from public`.execute(db)
  await sql`revoke execute on function tombstone_release_hold(bigint, text, text) from public`.execute(db)
  await sql.raw(`create or replace function tombstone_hold_truncate_guard() returns trigger language plpgsql
    security definer set search_path = ${schema}, pg_temp as $$
    declare v_hold text;
    begin
      select r.hold_id::text into v_hold from ${HELD_ROWS_TABLE} r where r.entity = tg_argv[0] and not r.released limit 1;
      if v_hold is not null then
        raise exception 'TRUNCATE of % refused: it has rows under legal hold %', tg_argv[0], v_hold
          using errcode = '${TRIGGER_SQLSTATE.legalHold}', schema = tg_table_schema, table = tg_table_name,
                detail = json_build_object('hold_id', v_hold)::text;
      end if;
      return null;
    end $$`).execute(db)
  for (const table of definition.tables.values()) await installHoldGuard(db, schema, table)
}

/** The guard of one table: no statement removes a held row. */
async function installHoldGuard(db: Kysely<any>, schema: string, table: TableDefinition): Promise<void> {
  const fn = quoteIdent(objectName('tombstone_hold_guard_', table.name))
  const name = quoteLiteral(table.name)
  const key = quoteIdent(table.key)
  // Planned for the statement's size (see planned() in schema/invariants.ts).
  const firstHeld = () => `select o.${key}::text, r.hold_id::text
        from tombstone_removed o join ${HELD_ROWS_TABLE} r on r.entity = ${name} and r.entity_id = o.${key}::text and not r.released
        limit 1`
  await sql.raw(`create or replace function ${fn}() returns trigger language plpgsql
    security definer set search_path = ${schema}, pg_temp as $$
    declare
      ${smallStatement('tombstone_removed')}
      v_id text;
      v_hold text;
    begin
      ${planned(firstHeld, { into: 'v_id, v_hold' })}
      if v_id is not null then
        raise exception 'row % of % is under legal hold %: it cannot be removed for good', v_id, ${name}, v_hold
          using errcode = '${TRIGGER_SQLSTATE.legalHold}', schema = tg_table_schema, table = tg_table_name,
                detail = json_build_object('id', v_id, 'hold_id', v_hold)::text,
                hint = 'Release the hold (releaseHold) first.';
      end if;
      return null;
    end $$`).execute(db)
  const target = quoteTable(table.name)
  await sql.raw(`drop trigger if exists tombstone_hold_delete on ${target}`).execute(db)
  await sql.raw(`create trigger tombstone_hold_delete after delete on ${target}
    referencing old table as tombstone_removed for each statement execute function ${fn}()`).execute(db)
  await sql.raw(`drop trigger if exists tombstone_hold_truncate on ${target}`).execute(db)
  await sql.raw(`create trigger tombstone_hold_truncate before truncate on ${target}
    for each statement execute function tombstone_hold_truncate_guard(${name})`).execute(db)
}

/**
 * The rows a hold on a deletion covers, as `select entity, entity_id` (a union): the audit's
 * `soft_delete` entries of the deletion (rows restored since included: a restore does not lift a
 * hold) and the rows carrying its id now. `deletion` is SQL (a parameter's name or a literal).
 * One text for every dialect but its quoting and casts. @internal
 */
export function deletionRowsSql(definition: SoftDeleteDefinition<any>, kind: DialectKind, deletion: string): string {
  const table = kind === 'mysql' ? (name: string) => `\`${name}\`` : quoteTable
  const column = kind === 'mysql' ? (name: string) => `\`${name}\`` : quoteIdent
  const text = (expression: string) => (kind === 'postgres' ? `${expression}::text` : kind === 'mysql' ? `cast(${expression} as char)` : `cast(${expression} as text)`)
  return [
    ...(definition.auditTable === undefined
      ? []
      : [`select a.entity as entity, a.entity_id as entity_id from ${table(definition.auditTable)} a where a.deletion_id = ${deletion} and a.action = 'soft_delete'`]),
    ...[...definition.tables.values()].map(
      (t) => `select ${quoteLiteral(t.name)} as entity, ${text(`t.${column(t.key)}`)} as entity_id from ${table(t.name)} t where t.${column(t.columns.deletionId)} = ${deletion}`,
    ),
  ].join(' union ')
}
