/**
 * Migrations on a database made by an earlier version: 007 re-installs the database's statement
 * triggers that planned their transition-table queries once (PL/pgSQL's cached plans), and leaves a
 * database already installed with the current ones as it is.
 */
import { sql } from 'kysely'
import { describe, expect, test } from 'vitest'
import { connect } from '../src/db/connect.ts'
import { migrate } from '../src/db/migrate.ts'
import { blogSoftDeletes } from '../src/db/soft-deletes.ts'

const body = async (db: Parameters<typeof migrate>[0], name: string) =>
  (await sql<{ prosrc: string }>`select prosrc from pg_proc where proname = ${name}`.execute(db)).rows[0]?.prosrc ?? ''

describe('migration 007-trigger-plans', () => {
  test('re-installs triggers whose transition-table queries were static; on a current database changes nothing', async () => {
    const handle = await connect('memory://', blogSoftDeletes(30))
    try {
      await migrate(handle.db)
      const current = await body(handle.db, 'tombstone_audit_update_posts')
      expect(current).toMatch(/v_small/)
      // As an earlier version installed it: the insert written in the function, planned once per session.
      await sql.raw(`create or replace function tombstone_audit_update_posts() returns trigger language plpgsql as $$
        begin
          insert into tombstone_audit (action, entity, entity_id) select 'soft_delete', 'posts', n.id::text from tombstone_new n;
          return null;
        end $$`).execute(handle.db)
      await sql`delete from kysely_migration where name = '007-trigger-plans'`.execute(handle.db)
      const upgraded = await migrate(handle.db)
      expect(upgraded.results?.map((result) => [result.migrationName, result.status])).toEqual([['007-trigger-plans', 'Success']])
      expect(await body(handle.db, 'tombstone_audit_update_posts')).toBe(current)

      // Run again on a current database (the record removed once more): nothing is re-installed
      // (a re-install drops and creates the triggers again, with new oids).
      const triggers = sql<{ oid: number }>`select oid from pg_trigger where tgname = 'tombstone_audit_update' order by oid`
      const before = (await triggers.execute(handle.db)).rows
      await sql`delete from kysely_migration where name = '007-trigger-plans'`.execute(handle.db)
      await migrate(handle.db)
      expect((await triggers.execute(handle.db)).rows).toEqual(before)
    } finally {
      await handle.close()
    }
  })
})
