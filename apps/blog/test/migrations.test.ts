/**
 * Migrations on a database made by an earlier version: 007 re-installs the database's statement
 * triggers that planned their transition-table queries once (PL/pgSQL's cached plans), 008 the
 * hard-delete grant whose prune was a self-join, 009 installs the parent side of the relations'
 * check (absent before); each leaves a database already installed with the current ones as it is.
 */
import { sql, type RawBuilder } from 'kysely'
import { expect, test } from 'vitest'
import { connect } from '../src/db/connect.ts'
import { MIGRATIONS, migrate } from '../src/db/migrate.ts'
import { blogSoftDeletes } from '../src/db/soft-deletes.ts'

const body = async (db: Parameters<typeof migrate>[0], name: string) =>
  (await sql<{ prosrc: string }>`select prosrc from pg_proc where proname = ${name}`.execute(db)).rows[0]?.prosrc ?? ''

/**
 * Runs the migrations again with `forget`'s records removed: on a current database nothing is
 * re-installed, so `identities` (new ones for objects dropped and created again) stay as they were.
 */
async function expectNoReinstall(db: Parameters<typeof migrate>[0], forget: RawBuilder<unknown>, identities: RawBuilder<unknown>): Promise<void> {
  const before = (await identities.execute(db)).rows
  await forget.execute(db)
  await migrate(db)
  expect((await identities.execute(db)).rows).toEqual(before)
}

/** The case of one migration that re-installs a function an earlier version installed otherwise. */
interface Reinstall {
  readonly migration: string
  readonly function: string
  /** Tells the current function from the earlier one. */
  readonly current: RegExp
  /** The earlier version's function. */
  readonly earlier: string
}

const CASES: readonly Reinstall[] = [
  {
    migration: '007-trigger-plans',
    function: 'tombstone_audit_update_posts',
    current: /v_small/,
    // The insert written in the function, planned once per session.
    earlier: `create or replace function tombstone_audit_update_posts() returns trigger language plpgsql as $$
      begin
        insert into tombstone_audit (action, entity, entity_id) select 'soft_delete', 'posts', n.id::text from tombstone_new n;
        return null;
      end $$`,
  },
  {
    migration: '008-grants-prune',
    function: 'tombstone_allow_hard_delete',
    current: /^(?![\s\S]*skip locked)/, // no `skip locked` anywhere in it
    // The prune as a self-join.
    earlier: `create or replace function tombstone_allow_hard_delete(purpose text default 'hard_delete', actor text default null, reason text default null)
      returns void language plpgsql security definer as $$
      begin
        delete from tombstone_hard_delete_grants where txid in (
          select txid from tombstone_hard_delete_grants where at < now() - interval '1 day' for update skip locked);
        insert into tombstone_hard_delete_grants (txid, purpose, actor, reason) values (txid_current(), purpose, actor, reason)
          on conflict (txid) do update set purpose = excluded.purpose, actor = excluded.actor, reason = excluded.reason;
      end $$`,
  },
  {
    migration: '009-children-check',
    function: 'tombstone_children_comments_post_id',
    current: /still deleted at commit/i,
    // None: the function and its constraint trigger on posts did not exist.
    earlier: 'drop function tombstone_children_comments_post_id() cascade',
  },
]

test.each(CASES)('migration $migration re-installs $function as an earlier version made it; on a current database changes nothing', async (entry) => {
  const handle = await connect('memory://', blogSoftDeletes(30))
  try {
    await migrate(handle.db)
    const current = await body(handle.db, entry.function)
    expect(current).toMatch(entry.current)
    await sql.raw(entry.earlier).execute(handle.db)
    expect(await body(handle.db, entry.function)).not.toMatch(entry.current)
    // The migrations after it go too: the migrator runs them in order.
    const forget = sql`delete from kysely_migration where name >= ${entry.migration}`
    await forget.execute(handle.db)
    const upgraded = await migrate(handle.db)
    const rerun = Object.keys(MIGRATIONS).filter((name) => name >= entry.migration)
    expect(upgraded.results?.map((result) => [result.migrationName, result.status])).toEqual(rerun.map((name) => [name, 'Success']))
    expect(await body(handle.db, entry.function)).toBe(current)

    // Run again on a current database (the records removed once more): nothing is re-installed
    // (a re-install drops and creates the triggers again, with new oids).
    await expectNoReinstall(handle.db, forget, sql<{ oid: number }>`select oid from pg_trigger where tgname = 'tombstone_audit_update' order by oid`)
  } finally {
    await handle.close()
  }
})

test('migration 009 on SQLite installs the parent side of the relations\' check on a database made without it; on a current one changes nothing', async () => {
  const handle = await connect('sqlite://:memory:', blogSoftDeletes(30))
  try {
    await migrate(handle.db)
    const triggers = sql<{ name: string; sql: string }>`select name, sql from sqlite_master where type = 'trigger' and name like 'tombstone_children_%' order by name`
    const current = (await triggers.execute(handle.db)).rows
    expect(current.map((row) => row.name)).toEqual(['tombstone_children_comments_author_id', 'tombstone_children_comments_post_id', 'tombstone_children_posts_author_id'])
    await sql`drop trigger tombstone_children_comments_post_id`.execute(handle.db)
    const forget = sql`delete from kysely_migration where name >= '009-children-check'`
    await forget.execute(handle.db)
    await migrate(handle.db)
    expect((await triggers.execute(handle.db)).rows).toEqual(current)
    // Run again on a current database: the triggers stay as they are (a re-install drops and creates
    // them again, with new rows in sqlite_master).
    await expectNoReinstall(handle.db, forget, sql<{ id: number }>`select rowid as id from sqlite_master where type = 'trigger' order by rowid`)
  } finally {
    await handle.close()
  }
})

