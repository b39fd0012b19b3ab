/**
 * Least privilege on PostgreSQL: the service runs as a role that `npm run cli -- grant` made, and
 * that role, used directly (as a compromised service or a psql session with its password would),
 * cannot get around the invariants: no forged or erased audit rows, no DDL, no disabled triggers,
 * no truncate, no hard delete without the recorded opt-in, no stamps moved back. PGlite has a single
 * user, so this suite is PostgreSQL's only.
 */
import { sql, type Kysely } from 'kysely'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { postgresUrl } from '@tombstone/testing'
import type { Database } from '../src/db/schema.ts'
import { build, createPost, type TestApp } from './helper.ts'

const codeOf = async (statement: { execute(db: Kysely<any>): Promise<unknown> }, db: Kysely<any>) =>
  statement.execute(db).then(
    () => 'ok',
    (error: { code?: string }) => error.code ?? 'no code',
  )

describe.skipIf(postgresUrl() === undefined)('the service role on postgres', () => {
  let t: TestApp
  let db: Kysely<Database>
  beforeAll(async () => {
    t = await build('postgres')
    db = t.app.db
  })
  afterAll(async () => {
    await t?.close()
  })

  test('the service connects as the granted role, not as the owner', async () => {
    const who = await sql<{ user: string; owner: string }>`select current_user as user, (select tableowner from pg_tables where tablename = 'posts') as owner`.execute(db)
    expect(who.rows[0]?.user).toMatch(/^tombstone_app_/)
    expect(who.rows[0]?.user).not.toBe(who.rows[0]?.owner)
  })

  test('the role cannot forge, change or erase audit rows, nor grant itself hard deletes', async () => {
    expect(await codeOf(sql`insert into tombstone_audit (action, entity, entity_id) values ('restore', 'posts', '1')`, db)).toBe('42501')
    expect(await codeOf(sql`update tombstone_audit set actor = 'mallory'`, db)).toBe('42501')
    expect(await codeOf(sql`delete from tombstone_audit`, db)).toBe('42501')
    expect(await codeOf(sql`insert into tombstone_hard_delete_grants (txid, purpose) values (txid_current(), 'purge')`, db)).toBe('42501')
  })

  test('the role cannot run DDL, disable triggers, truncate, or bypass them with session_replication_role', async () => {
    expect(await codeOf(sql`alter table posts disable trigger all`, db)).toBe('42501')
    expect(await codeOf(sql`drop trigger tombstone_stamp on posts`, db)).toBe('42501')
    expect(await codeOf(sql`create table evil (id int)`, db)).toBe('42501')
    expect(await codeOf(sql`truncate posts`, db)).toBe('42501')
    expect(await codeOf(sql`set session_replication_role = replica`, db)).toBe('42501')
  })

  test('a plain hard delete is refused whatever the role sets; through the opt-in it is recorded in the audit', async () => {
    const author = await t.user('privileged')
    const post = await createPost(t, author)
    expect(await codeOf(sql`delete from posts where id = ${post}`, db)).toBe('TB001')
    await sql`set tombstone.allow_hard_delete = on`.execute(db)
    expect(await codeOf(sql`delete from posts where id = ${post}`, db)).toBe('TB001')
    await sql`reset tombstone.allow_hard_delete`.execute(db)
    await db.transaction().execute(async (trx) => {
      await sql`select tombstone_allow_hard_delete('hard_delete', 'ops', 'by hand')`.execute(trx)
      await sql`delete from posts where id = ${post}`.execute(trx)
    })
    const audit = await sql<{ action: string; actor: string }>`select action, actor from tombstone_audit where entity = 'posts' and entity_id = ${String(post)}`.execute(db)
    expect(audit.rows).toEqual([{ action: 'hard_delete', actor: 'ops' }])
  })

  test('the role cannot move a deleted row toward its purge', async () => {
    const author = await t.user('mover')
    const post = await createPost(t, author)
    expect((await t.request({ method: 'DELETE', url: `/posts/${post}`, token: author.token })).statusCode).toBe(204)
    expect(await codeOf(sql`update posts set purge_at = now() - interval '1 year' where id = ${post}`, db)).toBe('TB005')
  })
})
