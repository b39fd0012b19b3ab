import { sql, type Kysely } from 'kysely'
import type { Retention, SoftDeleteDefinition, TableDefinition } from '../definition.ts'
import { InvalidArgumentError } from '../errors.ts'

import type { installSoftDeletes } from './migrations.ts'

/**
 * The invariants the database holds for every client (psql, another ORM, a concurrent request),
 * installed by {@link installSoftDeletes}. The toolkit's operations only pass who and why, and map
 * the database's refusals to coded errors.
 *
 * - **Stamping** (`BEFORE UPDATE`, per row, with a `WHEN` that is false for the toolkit's own exact
 *   writes, so PL/pgSQL runs only for other clients): on the transition to deleted, `deleted_at` is
 *   the transaction's time, `purge_at` that plus the table's retention (kept here, in the trigger),
 *   `deletion_id` is set; the stamps of a deleted row never change (`purge_at` may only move later);
 *   a restore (or any active row) clears them. SQLSTATE `TB005` for a refused change.
 * - **Audit** (`AFTER UPDATE` / `AFTER DELETE`, per statement, with transition tables): one audit row
 *   per row whose deletion state changed or that was removed, set-based, whoever wrote it. Who and
 *   why come from the transaction's context ({@link contextStatement}); the functions run as the
 *   owner (`SECURITY DEFINER`), so the application role needs no right on the audit table.
 * - **No active child under a deleted parent** (`AFTER INSERT` / `AFTER UPDATE`, per statement, per
 *   relation): the parents the statement's active rows reference are locked `FOR SHARE` in key order
 *   (which waits for, and conflicts with, their soft delete or restore), then checked; an active
 *   child of a deleted parent is refused with SQLSTATE `TB003`. Triggers are named so that a child
 *   with several parents locks them in the cascade's order (parents before children).
 * - **Hard deletes only by an opt-in bound to one transaction** ({@link installHardDeleteGuard}):
 *   `tombstone_allow_hard_delete()` records the transaction's id in a table only the owner can
 *   write; no setting, of any value, at any level, is an opt-in.
 *
 * @internal
 */
export const INVARIANTS = 'stamping, audit, parent checks, hard-delete guard'

/** The setting that carries who and why for one transaction (JSON, bound to its transaction id). */
export const CONTEXT_SETTING = 'tombstone.context'

/** SQLSTATEs raised by the installed triggers. */
export const TRIGGER_SQLSTATE = {
  hardDeleteRefused: 'TB001',
  auditAppendOnly: 'TB002',
  parentDeleted: 'TB003',
  stampChange: 'TB005',
  legalHold: 'TB006',
  deletePolicy: 'TB007',
} as const

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

export function quoteLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`
}

/** `"schema"."table"` or `"table"`. */
export function quoteTable(name: string): string {
  return name.split('.').map(quoteIdent).join('.')
}

/** A database object's name derived from a table's, within PostgreSQL's 63 bytes. */
export function objectName(prefix: string, table: string, suffix = ''): string {
  return `${prefix}${table.replaceAll('.', '_')}${suffix}`.slice(0, 63)
}

/** The SQL interval of a retention, or null. */
export function retentionInterval(retention: Retention | null): string | null {
  if (retention === null) return null
  const { days = 0, hours = 0, minutes = 0, seconds = 0 } = retention
  return `${days} days ${hours} hours ${minutes} minutes ${seconds} seconds`
}

async function currentSchema(db: Kysely<any>): Promise<string> {
  const result = await sql<{ schema: string }>`select current_schema() as schema`.execute(db)
  const schema = result.rows[0]?.schema
  if (schema === undefined || schema === null) throw new InvalidArgumentError('No current schema: set search_path before installing')
  return schema
}

/**
 * The objects every invariant shares: the transaction context reader, the hard-delete grants table
 * (owner-only) and the function that records a grant. Idempotent.
 * @internal
 */
export async function installShared(db: Kysely<any>): Promise<string> {
  const schema = quoteIdent(await currentSchema(db))
  await sql`create table if not exists tombstone_hard_delete_grants (
    txid bigint primary key,
    at timestamptz not null default now(),
    purpose text not null check (purpose in ('hard_delete', 'purge')),
    actor text,
    reason text
  )`.execute(db)
  await sql`create index if not exists tombstone_hard_delete_grants_at_idx on tombstone_hard_delete_grants (at)`.execute(db)
  await sql`revoke all on table tombstone_hard_delete_grants from public`.execute(db)
  // Who and why, for this transaction only: a value left by another transaction (a session-level
  // SET, a role default, a pooled connection's previous client) carries another txid and is ignored.
  await sql.raw(`create or replace function tombstone_context() returns jsonb language plpgsql volatile as $$
    declare c jsonb;
    begin
      begin
        c := nullif(current_setting('${CONTEXT_SETTING}', true), '')::jsonb;
      exception when others then
        return null;
      end;
      if c is null or jsonb_typeof(c) <> 'object' or (c->>'txid') is distinct from txid_current()::text then
        return null;
      end if;
      return c;
    end $$`).execute(db)
  await sql.raw(`create or replace function tombstone_allow_hard_delete(purpose text default 'hard_delete', actor text default null, reason text default null)
    returns void language plpgsql security definer set search_path = ${schema}, pg_temp as $$
    begin
      if purpose is null or purpose not in ('hard_delete', 'purge') then
        raise exception 'tombstone_allow_hard_delete: purpose must be hard_delete or purge' using errcode = '22023';
      end if;
      -- Grants of finished transactions are kept a day for inspection, then pruned by whoever comes:
      -- one transaction at a time (the others skip it rather than wait on its row locks), in one
      -- pass. No self-join: a plan PL/pgSQL cached while the table was nearly empty made the prune
      -- a nested loop rescanning the table per grant, quadratic in a day's grants.
      if pg_try_advisory_xact_lock(hashtext('tombstone:hard-delete-grants')) then
        delete from tombstone_hard_delete_grants where at < now() - interval '1 day';
      end if;
      insert into tombstone_hard_delete_grants (txid, purpose, actor, reason) values (txid_current(), purpose, actor, reason)
        on conflict (txid) do update set purpose = excluded.purpose, actor = excluded.actor, reason = excluded.reason;
    end $$`).execute(db)
  await sql`revoke execute on function tombstone_allow_hard_delete(text, text, text) from public`.execute(db)
  await sql.raw(`create or replace function tombstone_refuse_hard_delete() returns trigger language plpgsql
    security definer set search_path = ${schema}, pg_temp as $$
    begin
      if not exists (select 1 from tombstone_hard_delete_grants where txid = txid_current()) then
        raise exception 'hard % on soft-deletable table %.% refused', tg_op, tg_table_schema, tg_table_name
          using errcode = '${TRIGGER_SQLSTATE.hardDeleteRefused}',
                schema = tg_table_schema,
                table = tg_table_name,
                hint = 'Soft delete the rows instead, or remove them with the toolkit''s forceDelete(), which opts its transaction in with tombstone_allow_hard_delete().';
      end if;
      return null;
    end $$`).execute(db)
  return schema
}

/** Installs the stamping trigger on one table. */
async function installStamping(db: Kysely<any>, table: TableDefinition): Promise<void> {
  const { deletedAt, deletedBy, deleteReason, deletionId, purgeAt } = table.columns
  const [at, by, why, id, purge] = [deletedAt, deletedBy, deleteReason, deletionId, purgeAt].map(quoteIdent) as [string, string, string, string, string]
  const interval = retentionInterval(table.retention)
  const expectedPurge = interval === null ? 'null' : `now() + interval ${quoteLiteral(interval)}`
  const fn = quoteIdent(objectName('tombstone_stamp_', table.name))
  const name = quoteLiteral(table.name)
  await sql.raw(`create or replace function ${fn}() returns trigger language plpgsql as $$
    declare
      c jsonb;
      r text;
    begin
      if old.${at} is null and new.${at} is not null then
        c := tombstone_context();
        -- A per-operation retention travels in the context, per table; else the table's own.
        if c is not null and c->'retention' ? ${name} then
          r := c->'retention'->>${name};
        else
          r := ${interval === null ? 'null' : quoteLiteral(interval)};
        end if;
        new.${at} := now();
        new.${purge} := case when r is null then null else now() + r::interval end;
        new.${id} := coalesce(new.${id}, (c->>'deletion_id')::uuid, gen_random_uuid());
        if new.${by} is null and c is not null then new.${by} := c->>'actor'; end if;
        if new.${why} is null and c is not null then new.${why} := c->>'reason'; end if;
      elsif old.${at} is not null and new.${at} is not null then
        if new.${at} is distinct from old.${at} or new.${id} is distinct from old.${id}
           or new.${by} is distinct from old.${by} or new.${why} is distinct from old.${why}
           or (old.${purge} is null and new.${purge} is not null) or new.${purge} < old.${purge} then
          raise exception 'the deletion stamps of a deleted row of % cannot change (purge_at may only move later)', ${name}
            using errcode = '${TRIGGER_SQLSTATE.stampChange}', schema = tg_table_schema, table = tg_table_name,
                  hint = 'Restore the row to clear them.';
        end if;
      else
        new.${purge} := null;
        new.${id} := null;
        new.${by} := null;
        new.${why} := null;
      end if;
      return new;
    end $$`).execute(db)
  const trigger = quoteIdent('tombstone_stamp')
  await sql.raw(`drop trigger if exists ${trigger} on ${quoteTable(table.name)}`).execute(db)
  // False for the toolkit's own writes (exact stamps), so the function runs only for other clients.
  await sql.raw(`create trigger ${trigger} before update on ${quoteTable(table.name)} for each row when (
      (old.${at} is null and new.${at} is not null and (new.${at} is distinct from now() or new.${id} is null
        or new.${purge} is distinct from ${expectedPurge}))
      or (old.${at} is not null and new.${at} is not null and (new.${at} is distinct from old.${at}
        or new.${id} is distinct from old.${id} or new.${by} is distinct from old.${by} or new.${why} is distinct from old.${why}
        or new.${purge} is distinct from old.${purge}))
      or (new.${at} is null and (new.${purge} is not null or new.${id} is not null or new.${by} is not null or new.${why} is not null))
    ) execute function ${fn}()`).execute(db)
}

/**
 * A table with `policy: 'never'`: a trigger refuses, for every client, an `UPDATE` that stamps a row
 * deleted and every `DELETE` (SQLSTATE `TB007`); restoring a row deleted before stays possible.
 * Dropped again when the table's policy is another. Idempotent.
 */
async function installNeverPolicy(db: Kysely<any>, table: TableDefinition): Promise<void> {
  const at = quoteIdent(table.columns.deletedAt)
  const fn = quoteIdent(objectName('tombstone_never_', table.name))
  const [update, remove] = [quoteIdent('tombstone_never_delete'), quoteIdent('tombstone_never_remove')]
  await sql.raw(`drop trigger if exists ${update} on ${quoteTable(table.name)}`).execute(db)
  await sql.raw(`drop trigger if exists ${remove} on ${quoteTable(table.name)}`).execute(db)
  if (table.policy !== 'never') return
  await sql.raw(`create or replace function ${fn}() returns trigger language plpgsql as $$
    begin
      raise exception 'rows of % are never deleted (delete policy never)', ${quoteLiteral(table.name)}
        using errcode = '${TRIGGER_SQLSTATE.deletePolicy}', schema = tg_table_schema, table = tg_table_name;
    end $$`).execute(db)
  await sql.raw(`create trigger ${update} before update on ${quoteTable(table.name)} for each row
    when (old.${at} is null and new.${at} is not null) execute function ${fn}()`).execute(db)
  await sql.raw(`create trigger ${remove} before delete on ${quoteTable(table.name)} for each row execute function ${fn}()`).execute(db)
}

/**
 * Statements up to this many rows run a trigger's queries on their transition tables as static
 * SQL, whose plan PL/pgSQL caches per connection (planned for a small statement, so cheap for any
 * other small one: no planning per call); larger ones run them through EXECUTE, planned for each
 * statement with its real size.
 */
export const SMALL_STATEMENT_ROWS = 100

/**
 * The PL/pgSQL declaration of `v_small`: whether transition table `relation` holds at most
 * {@link SMALL_STATEMENT_ROWS} rows (counted up to one more, so that its own plan stays cheap for
 * any size and is never JIT-compiled).
 */
export function smallStatement(relation: string): string {
  return `v_small boolean := (select count(*) from (select from ${relation} limit ${SMALL_STATEMENT_ROWS + 1}) as s) <= ${SMALL_STATEMENT_ROWS};`
}

/**
 * Runs a query in a trigger function that declared {@link smallStatement}: static for a small
 * statement, through EXECUTE for a large one. `query` writes the query around its one parameter, if
 * any: the PL/pgSQL expression `using` in the static form, `$1` bound to it in the dynamic one. A
 * plan PL/pgSQL cached would otherwise keep the transition tables' sizes of the statement it was made
 * for: a 100,000-row cascade's plan JIT-compiled again on every later one-row UPDATE (250 ms each),
 * or a one-row nested loop run on a cascade.
 */
export function planned(query: (parameter: string) => string, options: { into?: string; using?: string } = {}): string {
  const into = options.into === undefined ? '' : ` into ${options.into}`
  const using = options.using === undefined ? '' : ` using ${options.using}`
  return `if v_small then
          ${query(options.using ?? '')}${into};
        else
          execute ${quoteLiteral(query('$1'))}${into}${using};
        end if;`
}

/** Installs the audit triggers on one table. */
async function installAudit(db: Kysely<any>, schema: string, table: TableDefinition, auditTable: string): Promise<void> {
  const { deletedAt, deletedBy, deleteReason, deletionId } = table.columns
  const [at, by, why, id, key] = [deletedAt, deletedBy, deleteReason, deletionId, table.key].map(quoteIdent) as [string, string, string, string, string]
  const audit = quoteTable(auditTable)
  const name = quoteLiteral(table.name)
  const updateFn = quoteIdent(objectName('tombstone_audit_update_', table.name))
  const deleteFn = quoteIdent(objectName('tombstone_audit_delete_', table.name))
  const insertUpdates = (c: string) => `insert into ${audit} (action, entity, entity_id, actor, reason, deletion_id)
      select case when n.${at} is null then 'restore' else 'soft_delete' end, ${name}, n.${key}::text,
             coalesce(${c}->>'actor', case when n.${at} is not null then n.${by}::text end),
             coalesce(${c}->>'reason', case when n.${at} is not null then n.${why} end),
             coalesce(n.${id}, o.${id})
      from tombstone_new n join tombstone_old o on o.${key} = n.${key}
      where (o.${at} is null) <> (n.${at} is null)`
  await sql.raw(`create or replace function ${updateFn}() returns trigger language plpgsql
    security definer set search_path = ${schema}, pg_temp as $$
    declare
      c jsonb := tombstone_context();
      ${smallStatement('tombstone_new')}
    begin
      ${planned(insertUpdates, { using: 'c' })}
      return null;
    end $$`).execute(db)
  const insertDeletes = () => `insert into ${audit} (action, entity, entity_id, actor, reason, deletion_id)
      select coalesce(g.purpose, 'hard_delete'), ${name}, o.${key}::text, g.actor, g.reason, o.${id}
      from tombstone_old o left join tombstone_hard_delete_grants g on g.txid = txid_current()`
  await sql.raw(`create or replace function ${deleteFn}() returns trigger language plpgsql
    security definer set search_path = ${schema}, pg_temp as $$
    declare
      ${smallStatement('tombstone_old')}
    begin
      ${planned(insertDeletes)}
      return null;
    end $$`).execute(db)
  const target = quoteTable(table.name)
  await sql.raw(`drop trigger if exists tombstone_audit_update on ${target}`).execute(db)
  await sql.raw(`create trigger tombstone_audit_update after update on ${target}
    referencing old table as tombstone_old new table as tombstone_new for each statement execute function ${updateFn}()`).execute(db)
  await sql.raw(`drop trigger if exists tombstone_audit_delete on ${target}`).execute(db)
  await sql.raw(`create trigger tombstone_audit_delete after delete on ${target}
    referencing old table as tombstone_old for each statement execute function ${deleteFn}()`).execute(db)
}

/** One child → parent reference the database checks: a declared relation or a dependent table. */
export interface ParentCheck {
  readonly parent: TableDefinition
  readonly child: string
  readonly childKey: string
  readonly foreignKey: string
  readonly parentKey: string
  /** The child's `deleted_at`, when the child is soft-deletable (else every row is active). */
  readonly childDeletedAt: string | undefined
  /** Position of the parent in the definition's topological order: the lock order. */
  readonly order: number
}

/** Installs the statement-level triggers refusing an active child of a deleted parent. */
async function installParentCheck(db: Kysely<any>, check: ParentCheck): Promise<void> {
  const child = quoteTable(check.child)
  const parent = quoteTable(check.parent.name)
  const [fk, pk, ck, pAt] = [check.foreignKey, check.parentKey, check.childKey, check.parent.columns.deletedAt].map(quoteIdent) as [
    string,
    string,
    string,
    string,
  ]
  const active = check.childDeletedAt === undefined ? 'true' : `n.${quoteIdent(check.childDeletedAt)} is null`
  const changed =
    check.childDeletedAt === undefined
      ? `o.${fk} is distinct from n.${fk}`
      : `(o.${quoteIdent(check.childDeletedAt)} is not null or o.${fk} is distinct from n.${fk})`
  const suffix = `${check.child.replaceAll('.', '_')}_${check.foreignKey}`
  const fn = quoteIdent(`tombstone_parent_${suffix}`.slice(0, 63))
  const relation = `${check.child}.${check.foreignKey} -> ${check.parent.name}.${check.parentKey}`
  const body = (withOld: boolean) => {
    const from = withOld ? `tombstone_new n join tombstone_old o on o.${ck} = n.${ck}` : 'tombstone_new n'
    const where = withOld ? `${active} and ${changed}` : active
    // One query locks the referenced parents FOR SHARE, in key order, and reads their state as locked
    // (FOR SHARE waits for a concurrent soft delete or restore, an UPDATE, and returns the row as that
    // left it). Parents are found by key only: no condition on deleted_at, which a plan kept for
    // small statements could serve from a partial index of deleted rows. A cascade's soft delete
    // makes no row active, so it costs one scan of its transition table here. Each query is planned
    // for the statement's size (see planned()).
    const anyActive = () => `select exists (select 1 from ${from} where ${where})`
    const lockParents = () => `select min(locked.${pk}::text) filter (where locked.${pAt} is not null)
            from (select p.${pk}, p.${pAt} from ${parent} p where p.${pk} in (select n.${fk} from ${from} where ${where})
                  order by p.${pk} for share of p) as locked`
    const firstChild = (parentKey: string) => `select n.${ck}::text from ${from} where ${where} and n.${fk}::text = ${parentKey} limit 1`
    return `
        ${planned(anyActive, { into: 'v_any' })}
        if v_any then
          ${planned(lockParents, { into: 'v_parent' })}
          if v_parent is not null then
            ${planned(firstChild, { into: 'v_child', using: 'v_parent' })}
          end if;
        end if;`
  }
  await sql.raw(`create or replace function ${fn}() returns trigger language plpgsql as $$
    declare
      ${smallStatement('tombstone_new')}
      v_any boolean;
      v_child text;
      v_parent text;
    begin
      if tg_op = 'INSERT' then${body(false)}
      else${body(true)}
      end if;
      if v_parent is not null then
        raise exception 'an active row of % (%) may not reference a deleted row of % (%)', ${quoteLiteral(check.child)}, v_child,
            ${quoteLiteral(check.parent.name)}, v_parent
          using errcode = '${TRIGGER_SQLSTATE.parentDeleted}', schema = tg_table_schema, table = tg_table_name,
                column = ${quoteLiteral(check.foreignKey)}, constraint = ${quoteLiteral(relation)},
                detail = json_build_object('id', v_child, 'parent_table', ${quoteLiteral(check.parent.name)}, 'parent_id', v_parent)::text;
      end if;
      return null;
    end $$`).execute(db)
  // AFTER triggers of one event fire in name order: the parent's position first, so that a child with
  // several parents locks them parents-first, as a cascade does, and two such statements never deadlock.
  const order = String(check.order).padStart(3, '0')
  for (const event of ['insert', 'update'] as const) {
    const trigger = quoteIdent(`tombstone_parent_${order}_${check.foreignKey}_${event}`.slice(0, 63))
    await sql.raw(`drop trigger if exists ${trigger} on ${child}`).execute(db)
    await sql.raw(`create trigger ${trigger} after ${event} on ${child}
      referencing ${event === 'update' ? 'old table as tombstone_old ' : ''}new table as tombstone_new
      for each statement execute function ${fn}()`).execute(db)
  }
}

/**
 * Installs the other side of a relation's check: a deferred constraint trigger on the parent table
 * refusing, at commit, a row this transaction soft-deleted that still has an active child. A soft
 * delete from any client (psql's `update posts set deleted_at = now()`, `softDelete` with
 * `cascade: false`) must take the children along in the same transaction, in either order: checked
 * at commit, a cascade that stamps the parent first and its children in later statements passes,
 * and a row deleted and restored again in the transaction is not checked. Row-level (constraint
 * triggers have no transition tables): one probe of the child's foreign-key index per parent row the
 * transaction deleted, only for rows that became deleted (the trigger's `WHEN`).
 *
 * Interleavings: the transaction holds the parent's row lock from its `UPDATE` to its commit, so a
 * child statement under it (whose own check locks the parent `FOR SHARE`) waits and is then refused;
 * a child written before the `UPDATE` holds that lock first, so the `UPDATE` waits for its commit,
 * and the check at commit (a new snapshot in READ COMMITTED) sees the child and refuses the delete.
 */
async function installChildrenCheck(db: Kysely<any>, check: ChildrenCheck): Promise<void> {
  const child = quoteTable(check.child)
  const parent = quoteTable(check.parent.name)
  const { fk, pk, ck, pAt, cAt } = childrenCheckColumns(check, quoteIdent)
  const suffix = `${check.child.replaceAll('.', '_')}_${check.foreignKey}`
  const fn = quoteIdent(`tombstone_children_${suffix}`.slice(0, 63))
  const relation = `${check.child}.${check.foreignKey} -> ${check.parent.name}.${check.parentKey}`
  await sql.raw(`create or replace function ${fn}() returns trigger language plpgsql as $$
    declare
      v_child text;
      v_at ${parent}.${pAt}%type;
    begin
      select c.${ck}::text into v_child from ${child} c where c.${fk} = new.${pk} and c.${cAt} is null limit 1;
      if v_child is null then
        return null;
      end if;
      -- Still deleted at commit (a restore later in the transaction brought it back otherwise). By
      -- key alone: a condition on deleted_at let the planner scan the partial index of deleted rows
      -- (0.57 ms a call on a cascade of 10,000 posts).
      select p.${pAt} into v_at from ${parent} p where p.${pk} = new.${pk};
      if v_at is not null then
        raise exception 'an active row of % (%) may not reference a deleted row of % (%): soft-delete it in the same transaction',
            ${quoteLiteral(check.child)}, v_child, ${quoteLiteral(check.parent.name)}, new.${pk}
          using errcode = '${TRIGGER_SQLSTATE.parentDeleted}', schema = ${quoteLiteral(check.child.includes('.') ? (check.child.split('.')[0] as string) : '')},
                table = ${quoteLiteral(check.child.split('.').at(-1) as string)}, column = ${quoteLiteral(check.foreignKey)},
                constraint = ${quoteLiteral(relation)},
                detail = json_build_object('id', v_child, 'parent_table', ${quoteLiteral(check.parent.name)}, 'parent_id', new.${pk}::text)::text;
      end if;
      return null;
    end $$`).execute(db)
  const order = String(check.order).padStart(3, '0')
  const trigger = quoteIdent(`tombstone_children_${order}_${suffix}`.slice(0, 63))
  await sql.raw(`drop trigger if exists ${trigger} on ${parent}`).execute(db)
  await sql.raw(`create constraint trigger ${trigger} after update on ${parent}
    deferrable initially deferred for each row
    when (old.${pAt} is null and new.${pAt} is not null) execute function ${fn}()`).execute(db)
}

/** A relation's check seen from its parent: its child is soft-deletable. */
export type ChildrenCheck = ParentCheck & { readonly childDeletedAt: string }

/**
 * The relations' checks, for their parent side (a dependent table's rows are left to its
 * `onParentSoftDelete`, so dependents have none).
 */
export function childrenChecks(definition: SoftDeleteDefinition<any>): ChildrenCheck[] {
  return parentChecks(definition).filter((check): check is ChildrenCheck => check.childDeletedAt !== undefined)
}

/** A children check's columns, each quoted by the dialect's rule. */
export function childrenCheckColumns(check: ChildrenCheck, quote: (name: string) => string) {
  const [fk, pk, ck, pAt, cAt] = [check.foreignKey, check.parentKey, check.childKey, check.parent.columns.deletedAt, check.childDeletedAt].map(quote)
  return { fk, pk, ck, pAt, cAt } as { readonly [K in 'fk' | 'pk' | 'ck' | 'pAt' | 'cAt']: string }
}

/** Every child → parent reference of a definition the database checks. */
export function parentChecks(definition: SoftDeleteDefinition<any>): ParentCheck[] {
  const order = definition.topologicalOrder()
  const checks: ParentCheck[] = definition.relations.map((relation) => {
    const child = definition.table(relation.child)
    return {
      parent: definition.table(relation.parent),
      child: relation.child,
      childKey: child.key,
      foreignKey: relation.foreignKey,
      parentKey: relation.parentKey,
      childDeletedAt: child.columns.deletedAt,
      order: order.indexOf(relation.parent),
    }
  })
  for (const dependent of definition.dependents) {
    checks.push({
      parent: definition.table(dependent.parent),
      child: dependent.table,
      childKey: dependent.key,
      foreignKey: dependent.foreignKey,
      parentKey: dependent.parentKey,
      childDeletedAt: undefined,
      order: order.indexOf(dependent.parent),
    })
  }
  return checks
}

/**
 * Installs every invariant of a definition: stamping on each table, the audit triggers (when the
 * definition has an audit table), the parent checks of each relation and dependent table.
 * @internal
 */
export async function installInvariants(db: Kysely<any>, definition: SoftDeleteDefinition<any>): Promise<void> {
  const schema = await installShared(db)
  for (const table of definition.tables.values()) {
    await installStamping(db, table)
    await installNeverPolicy(db, table)
    if (definition.auditTable !== undefined) await installAudit(db, schema, table, definition.auditTable)
  }
  for (const check of parentChecks(definition)) await installParentCheck(db, check)
  for (const check of childrenChecks(definition)) await installChildrenCheck(db, check)
}

const ROLE = /^[A-Za-z_][A-Za-z0-9_$]*$/

/**
 * Grants an existing role exactly what the toolkit's runtime needs on a definition's tables, and
 * nothing that could bypass its invariants: `select`, `insert`, `update` and `delete` on the
 * soft-deletable and dependent tables (a `delete` still needs the transaction's opt-in), usage of
 * their sequences, `select` on the audit table (the database writes it), and `execute` on
 * `tombstone_allow_hard_delete`. No DDL, no `truncate`, no trigger, no write to the audit or to the
 * opt-in table. Run it as the tables' owner, after {@link installSoftDeletes}. Idempotent.
 *
 * @example
 * ```ts
 * // as the owner, once: create role blog_app login password '…'
 * await grantSoftDeleteRuntime(ownerDb, softDeletes, 'blog_app')
 * ```
 */
export async function grantSoftDeleteRuntime(db: Kysely<any>, definition: SoftDeleteDefinition<any>, role: string): Promise<void> {
  if (!ROLE.test(role)) throw new InvalidArgumentError(`Invalid role name "${role}"`)
  const grantee = quoteIdent(role)
  const schemas = new Set<string>([quoteIdent(await currentSchema(db))])
  const tables = [
    ...[...definition.tables.values()].map((table) => ({ name: table.name, key: table.key })),
    ...definition.dependents.map((dependent) => ({ name: dependent.table, key: dependent.key })),
  ]
  for (const table of tables) {
    if (table.name.includes('.')) schemas.add(quoteIdent(table.name.split('.')[0] as string))
  }
  for (const schema of schemas) await sql.raw(`grant usage on schema ${schema} to ${grantee}`).execute(db)
  for (const table of tables) {
    await sql.raw(`grant select, insert, update, delete on table ${quoteTable(table.name)} to ${grantee}`).execute(db)
    const sequence = await sql<{ name: string | null }>`select pg_get_serial_sequence(${quoteTable(table.name)}, ${table.key}) as name`.execute(db)
    const name = sequence.rows[0]?.name
    if (name !== null && name !== undefined) await sql.raw(`grant usage, select on sequence ${name} to ${grantee}`).execute(db)
  }
  if (definition.auditTable !== undefined) {
    await sql.raw(`grant select on table ${quoteTable(definition.auditTable)} to ${grantee}`).execute(db)
  }
  await sql.raw(`grant execute on function tombstone_allow_hard_delete(text, text, text) to ${grantee}`).execute(db)
  await sql.raw(`grant execute on function tombstone_context() to ${grantee}`).execute(db)
  // Legal holds: read them; place and release them only through the audited functions.
  await sql.raw(`grant select on table tombstone_holds, tombstone_held_rows to ${grantee}`).execute(db)
  await sql.raw(`grant execute on function tombstone_place_hold(text, text[], uuid, text, text) to ${grantee}`).execute(db)
  await sql.raw(`grant execute on function tombstone_release_hold(bigint, text, text) to ${grantee}`).execute(db)
}
