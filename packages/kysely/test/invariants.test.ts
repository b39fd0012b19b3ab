/**
 * The invariants the database holds for every client, not only for the toolkit: deletion stamps set
 * by the database, the audit written by the database, no active row under a deleted parent, and the
 * hard-delete opt-in bound to one transaction. Part one writes as psql would (the `raw` instance has
 * no plugin) on both databases; part two forces interleavings of two real connections on PostgreSQL
 * (PGlite is one connection, so it cannot interleave), waiting until the database shows a
 * connection blocked on a lock, never sleeping and hoping.
 */
import { Kysely, sql, type ControlledTransaction } from 'kysely'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, test, test as vitestTest } from 'vitest'
import { dialectKinds, postgresUrl, type DatabaseKind } from '@tombstone/testing'
import {
  classifyDatabaseError,
  DeletionStampedError,
  ParentDeletedError,
  restore,
  softDelete,
  sqlStateOf,
} from '../src/index.ts'
import { createFixture, type Database, type Fixture } from './support/fixture.ts'
import { insertComment, insertPost, insertUser, stateOf } from './support/data.ts'
import { daysFromNow } from './support/dialect-sql.ts'

const error = (promise: Promise<unknown>) => promise.then(() => undefined, (caught: unknown) => caught)

/** What a dialect cannot run of this table, by test name, with the reason. */
const lacks: Partial<Record<DatabaseKind, Readonly<Record<string, string>>>> = {
  sqlite: {
    "who and why come from the toolkit's context of this transaction only":
      'SQLite has no settings or transaction ids: its context is a row the toolkit writes and removes inside the transaction (docs/dialects.md)',
    'no setting of any value is a hard-delete opt-in; the opt-in is recorded and ends with its transaction':
      'SQLite has no settings; its opt-in is a grant row, removed before every commit (tested in operations.test.ts: the database guard)',
  },
  mysql: {
    "who and why come from the toolkit's context of this transaction only":
      'MariaDB has no transaction-bound settings: its context is a row keyed by the connection, removed by the toolkit before the operation ends (docs/dialects.md)',
    'no setting of any value is a hard-delete opt-in; the opt-in is recorded and ends with its transaction':
      'MariaDB has no settings; its opt-in is a connection-keyed grant row that withHardDeletes removes (tested in operations.test.ts: the database guard)',
  },
}

const DAY = 86_400_000

describe.each(dialectKinds())('database invariants on %s', (kind) => {
  const test = (name: string, fn: () => Promise<void>) => {
    const reason = lacks[kind]?.[name]
    return vitestTest.skipIf(reason !== undefined)(reason === undefined ? name : `${name} (skipped: ${reason})`, fn)
  }
  let fixture: Fixture
  let db: Kysely<Database>
  let raw: Kysely<Database>
  beforeAll(async () => {
    fixture = await createFixture(kind)
    db = fixture.db
    raw = fixture.raw
  })
  afterAll(async () => {
    await fixture?.close()
  })

  const auditOf = (entity: string, id: number) =>
    raw
      .selectFrom('tombstone_audit' as any)
      .select(['action', 'actor', 'reason', 'deletion_id'])
      .where('entity', '=', entity)
      .where('entity_id', '=', String(id))
      .orderBy('id')
      .execute()

  test('a plain UPDATE that deletes is stamped by the database and audited; a plain restore too', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    // A year in the past and no purge date: the database takes its own clock and the table's retention.
    await sql`update posts set deleted_at = ${daysFromNow(kind, -365)} where id = ${post}`.execute(raw)
    const stamped = await stateOf(raw, 'posts', post)
    const deletedAt = new Date(stamped!.deleted_at!).getTime()
    expect(Date.now() - deletedAt).toBeLessThan(60_000)
    expect(new Date(stamped!.purge_at!).getTime() - deletedAt).toBe(30 * DAY)
    expect(stamped?.deletion_id).toEqual(expect.any(String))
    expect(await auditOf('posts', post)).toEqual([expect.objectContaining({ action: 'soft_delete', deletion_id: stamped?.deletion_id })])

    await sql`update posts set deleted_at = null where id = ${post}`.execute(raw)
    expect(await stateOf(raw, 'posts', post)).toEqual({ deleted_at: null, deleted_by: null, delete_reason: null, deletion_id: null, purge_at: null })
    expect((await auditOf('posts', post)).map((row) => row.action)).toEqual(['soft_delete', 'restore'])
  })

  test("a deleted row's stamps never move earlier or change; purge_at may move later", async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    await softDelete(db, 'posts', { id: post }, { by: 'alice', reason: 'spam' })
    for (const change of [
      sql`update posts set purge_at = ${daysFromNow(kind, -365)} where id = ${post}`,
      sql`update posts set deleted_at = ${daysFromNow(kind, -365)} where id = ${post}`,
      sql`update posts set deletion_id = '00000000-0000-4000-8000-000000000999' where id = ${post}`,
      sql`update posts set deleted_by = 'mallory' where id = ${post}`,
    ]) {
      const caught = await error(change.execute(raw))
      expect(sqlStateOf(caught)).toBe('TB005')
      expect(classifyDatabaseError(caught)).toBeInstanceOf(DeletionStampedError)
    }
    await sql`update posts set purge_at = ${daysFromNow(kind, 365)} where id = ${post}`.execute(raw)
    expect((await stateOf(raw, 'posts', post))?.deleted_by).toBe('alice')
  })

  test("who and why come from the toolkit's context of this transaction only", async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    // Another transaction's context (as a session-level SET through a pooler would leave it) is ignored.
    await sql`select set_config('tombstone.context', json_build_object('txid', '1', 'actor', 'mallory')::text, false)`.execute(raw)
    await sql`update posts set deleted_at = now() where id = ${post}`.execute(raw)
    expect(await auditOf('posts', post)).toEqual([expect.objectContaining({ action: 'soft_delete', actor: null })])
    await sql`select set_config('tombstone.context', '', false)`.execute(raw)
    await restore(db, 'posts', { id: post }, { by: 'bob', reason: 'mistake' })
    expect((await auditOf('posts', post)).at(-1)).toMatchObject({ action: 'restore', actor: 'bob', reason: 'mistake' })
  })

  test('no setting of any value is a hard-delete opt-in; the opt-in is recorded and ends with its transaction', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    for (const attempt of [
      sql`set tombstone.allow_hard_delete = on`,
      sql`select set_config('tombstone.allow_hard_delete', 'on', false)`,
      sql`select set_config('tombstone.context', json_build_object('txid', txid_current()::text)::text, false)`,
    ]) {
      await attempt.execute(raw)
      expect(((await error(sql`delete from posts where id = ${post}`.execute(raw))) as { code?: string }).code).toBe('TB001')
    }
    await sql`reset tombstone.allow_hard_delete`.execute(raw)
    await raw.transaction().execute(async (trx) => {
      await sql`select tombstone_allow_hard_delete('hard_delete', 'ops', 'cleanup')`.execute(trx)
      await sql`delete from posts where id = ${post}`.execute(trx)
    })
    expect(await auditOf('posts', post)).toEqual([expect.objectContaining({ action: 'hard_delete', actor: 'ops', reason: 'cleanup' })])
    expect(((await error(sql`delete from posts where id = -1`.execute(raw))) as { code?: string }).code).toBe('TB001')
  })

  test('an active row under a deleted parent is refused, from any client: insert, restore by hand, dependents', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    const comment = await insertComment(db, post, user)
    const other = await insertUser(db)
    await softDelete(db, 'posts', { id: post })
    const inserted = await error(sql`insert into comments (post_id, author_id, body) values (${post}, ${other}, 'late')`.execute(raw))
    expect(sqlStateOf(inserted)).toBe('TB003')
    expect(classifyDatabaseError(inserted)).toMatchObject({ code: 'PARENT_DELETED', table: 'comments', parentTable: 'posts', parentId: String(post) })
    const revived = await error(sql`update comments set deleted_at = null where id = ${comment}`.execute(raw))
    expect(classifyDatabaseError(revived)).toBeInstanceOf(ParentDeletedError)
    // Moving a comment under a deleted post is refused too.
    const live = await insertPost(db, other)
    const moved = await insertComment(db, live, other)
    expect(sqlStateOf(await error(sql`update comments set post_id = ${post} where id = ${moved}`.execute(raw)))).toBe('TB003')
    // A table that is not soft-deletable but depends on a user (sessions, tokens) cannot gain rows under a deleted user.
    await softDelete(db, 'users', { id: other })
    const session = await error(sql`insert into sessions (user_id) values (${other})`.execute(raw))
    expect(classifyDatabaseError(session)).toMatchObject({ code: 'PARENT_DELETED', table: 'sessions', parentTable: 'users' })
    expect(await raw.selectFrom('comments').select('id').where('post_id', '=', post).where('deleted_at', 'is', null).execute()).toEqual([])
  })

  test('restoring a user leaves deleted a descendant whose other parent was deleted on its own since', async () => {
    const alice = await insertUser(db)
    const bob = await insertUser(db)
    const bobsPost = await insertPost(db, bob)
    const alicesComment = await insertComment(db, bobsPost, alice)
    await softDelete(db, 'users', { id: alice })
    await softDelete(db, 'posts', { id: bobsPost })
    const result = await restore(db, 'users', { id: alice })
    expect(result.restored).toEqual([alice])
    expect((await stateOf(raw, 'comments', alicesComment))?.deleted_at).not.toBeNull()
  })
})

/** Connections of their own, to interleave by hand. */
async function client(url: string): Promise<pg.Client & { pid: number }> {
  const connection = new pg.Client({ connectionString: url }) as pg.Client & { pid: number }
  await connection.connect()
  connection.pid = (await connection.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]?.pid as number
  return connection
}

/** Resolves once the backend `pid` waits on a lock (polling pg_stat_activity; fails after 10 s). */
async function blocked(admin: pg.Client, pid: number): Promise<void> {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const result = await admin.query<{ wait: string | null }>('select wait_event_type as wait from pg_stat_activity where pid = $1', [pid])
    if (result.rows[0]?.wait === 'Lock') return
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  throw new Error(`backend ${pid} never waited on a lock`)
}

/** A toolkit transaction kept open, with its backend's pid. */
async function openTransaction(db: Kysely<Database>): Promise<{ trx: ControlledTransaction<Database>; pid: number }> {
  const trx = await db.startTransaction().execute()
  const pid = (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx)).rows[0]?.pid as number
  return { trx, pid }
}

describe.skipIf(postgresUrl() === undefined)('database invariants under forced interleavings on postgres (two connections)', () => {
  let fixture: Fixture
  let db: Kysely<Database>
  let raw: Kysely<Database>
  let admin: pg.Client
  let other: pg.Client & { pid: number }
  beforeAll(async () => {
    fixture = await createFixture('postgres')
    db = fixture.db
    raw = fixture.raw
    admin = await client(fixture.database.url as string)
    other = await client(fixture.database.url as string)
  })
  afterAll(async () => {
    await other?.end()
    await admin?.end()
    await fixture?.close()
  })

  const activePostsOf = async (user: number) =>
    raw.selectFrom('posts').select('id').where('author_id', '=', user).where('deleted_at', 'is', null).execute()

  test('insert child while the parent is being deleted: the insert waits, then is refused', async () => {
    const user = await insertUser(db)
    const { trx } = await openTransaction(db)
    await softDelete(trx, 'users', { id: user })
    const insert = error(other.query(`insert into posts (author_id, title, slug) values ($1, 'late', $2)`, [user, `late-${user}`]))
    await blocked(admin, other.pid)
    await trx.commit().execute()
    expect(classifyDatabaseError(await insert)).toBeInstanceOf(ParentDeletedError)
    expect(await activePostsOf(user)).toEqual([])
  })

  test('parent delete while a child is being inserted: the delete waits, then cascades to it', async () => {
    const user = await insertUser(db)
    await other.query('begin')
    await other.query(`insert into posts (author_id, title, slug) values ($1, 'early', $2)`, [user, `early-${user}`])
    const { trx, pid } = await openTransaction(db)
    const deleting = softDelete(trx, 'users', { id: user })
    await blocked(admin, pid)
    await other.query('commit')
    const result = await deleting
    await trx.commit().execute()
    expect(result.tables.posts?.count).toBe(1)
    expect(await activePostsOf(user)).toEqual([])
  })

  test('restore a child while its parent is being deleted: the restore waits, then is refused', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    await softDelete(db, 'posts', { id: post })
    const { trx } = await openTransaction(db)
    await softDelete(trx, 'users', { id: user })
    await other.query('begin')
    const restoring = error(other.query(`update posts set deleted_at = null where id = $1`, [post]))
    await blocked(admin, other.pid)
    await trx.commit().execute()
    expect(classifyDatabaseError(await restoring)).toBeInstanceOf(ParentDeletedError)
    await other.query('rollback')
    expect(await activePostsOf(user)).toEqual([])
  })

  test('delete a parent while a child is being restored: the delete waits, then cascades to the restored child', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    await softDelete(db, 'posts', { id: post })
    const restoring = await openTransaction(db)
    await restore(restoring.trx, 'posts', { id: post })
    const deleting = await openTransaction(db)
    const deleted = softDelete(deleting.trx, 'users', { id: user })
    await blocked(admin, deleting.pid)
    await restoring.trx.commit().execute()
    expect((await deleted).tables.posts?.count).toBe(1)
    await deleting.trx.commit().execute()
    expect(await activePostsOf(user)).toEqual([])
  })

  test('delete a child on its own while its parent is being restored: it sees the state before the restore, and no child is left under a deleted parent', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    const comment = await insertComment(db, post, user)
    await softDelete(db, 'users', { id: user })
    const restoring = await openTransaction(db)
    await restore(restoring.trx, 'users', { id: user })
    // READ COMMITTED: the restore is not committed, so the post is still deleted to this statement,
    // which has nothing to lock and nothing to do.
    const deleted = await softDelete(db, 'posts', { id: post })
    expect(deleted.alreadyDeleted).toEqual([post])
    await restoring.trx.commit().execute()
    const orphans = await sql<{ n: number }>`select count(*)::int as n from comments c join posts p on p.id = c.post_id
      where c.deleted_at is null and p.deleted_at is not null`.execute(raw)
    expect(orphans.rows[0]?.n).toBe(0)
    expect((await stateOf(raw, 'comments', comment))?.deleted_at).toBeNull()
  })

  test('a user cascade and a bulk delete of the same posts, heap order unlike key order: no deadlock', async () => {
    const user = await insertUser(db)
    const first = await insertPost(db, user)
    const second = await insertPost(db, user)
    // Rewrite the first post so that its row now lies after the second in the heap.
    await sql`update posts set title = title || '' where id = ${first}`.execute(raw)
    const order = await sql<{ id: number }>`select id from posts where author_id = ${user} order by ctid`.execute(raw)
    expect(order.rows.map((row) => row.id)).toEqual([second, first])
    // A third connection holds the second post, so both operations queue behind it in a known order.
    await other.query('begin')
    await other.query('select 1 from posts where id = $1 for update', [second])
    const cascade = await openTransaction(db)
    // The cascade reads the posts in heap order (a sequential scan), as it does on a large table.
    await sql`set local enable_indexscan = off`.execute(cascade.trx)
    await sql`set local enable_bitmapscan = off`.execute(cascade.trx)
    const cascading = error(softDelete(cascade.trx, 'users', { id: user }))
    await blocked(admin, cascade.pid)
    const bulk = await openTransaction(db)
    const bulkDeleting = error(softDelete(bulk.trx, 'posts', { ids: [first, second] }))
    await blocked(admin, bulk.pid)
    await other.query('commit')
    expect(await cascading).toBeUndefined()
    await cascade.trx.commit().execute()
    expect(await bulkDeleting).toBeUndefined()
    await bulk.trx.commit().execute()
    expect(await activePostsOf(user)).toEqual([])
  })

  test('a session (dependent row) created while its user is being deleted: waits, then is refused; the other order cascades nothing and leaves it to the app', async () => {
    const user = await insertUser(db)
    const { trx } = await openTransaction(db)
    await softDelete(trx, 'users', { id: user })
    const login = error(other.query('insert into sessions (user_id) values ($1)', [user]))
    await blocked(admin, other.pid)
    await trx.commit().execute()
    expect(classifyDatabaseError(await login)).toMatchObject({ code: 'PARENT_DELETED', table: 'sessions' })
    expect(await raw.selectFrom('sessions').select('id').where('user_id', '=', user).execute()).toEqual([])
  })
})
