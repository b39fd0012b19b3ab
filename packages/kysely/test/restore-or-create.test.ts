/**
 * restoreOrCreate: inserts by an active-only unique key, reviving a soft-deleted holder of the key
 * (with its own deletion's descendants) instead of inserting beside it or writing into it.
 */
import pg from 'pg'
import { sql, type Kysely } from 'kysely'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { dialectKinds, postgresUrl } from '@tombstone/testing'
import {
  ConflictError,
  InvalidArgumentError,
  ParentDeletedError,
  readAudit,
  restoreOrCreate,
  softDelete,
} from '../src/index.ts'
import { createFixture, type Database, type Fixture } from './support/fixture.ts'
import { insertPost, insertUser, unique } from './support/data.ts'

const error = (promise: Promise<unknown>) => promise.then(() => undefined, (caught: unknown) => caught)

describe.each(dialectKinds())('restoreOrCreate on %s', (kind) => {
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

  const user = (id: number) => raw.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
  const countByName = async (username: string) =>
    Number((await raw.selectFrom('users').select((eb) => eb.fn.countAll().as('n')).where('username', '=', username).executeTakeFirstOrThrow()).n)

  test('revives the deleted holder with its deletion, not what was deleted on its own; audited as a restore', async () => {
    const name = unique('carol')
    const carol = await insertUser(db, name)
    const [withHer, earlier] = [await insertPost(db, carol), await insertPost(db, carol)]
    await softDelete(db, 'posts', { id: earlier })
    await softDelete(db, 'users', { id: carol })

    const result = await restoreOrCreate(db, 'users', [{ username: name, email: `other-${name}@example.com` }], {
      on: ['username'],
      by: 'admin',
      reason: 'came back',
    })
    expect(result.rows).toEqual([{ id: carol, action: 'restored', updated: false }])
    expect(result.restored).toEqual([carol])
    expect(result.restore?.tables.posts?.ids).toEqual([withHer])
    expect(await countByName(name)).toBe(1)
    // update: 'none' (the default): the revived row is as it was deleted, the given email unused.
    expect(await user(carol)).toMatchObject({ email: `${name}@example.com`, deleted_at: null, deletion_id: null })
    const posts = await raw.selectFrom('posts').select(['id', 'deleted_at']).where('author_id', '=', carol).orderBy('id').execute()
    expect(posts.map((post) => [post.id, post.deleted_at === null])).toEqual([
      [withHer, true],
      [earlier, false],
    ])
    const audit = await readAudit(db, { entity: 'users', entityId: carol })
    expect(audit[0]).toMatchObject({ action: 'restore', actor: 'admin', reason: 'came back' })
  })

  test('set-based: creates, revives and leaves active rows in one call, in the order given', async () => {
    const [a, b, c] = [unique('a'), unique('b'), unique('c')]
    const active = await insertUser(db, a)
    const deleted = await insertUser(db, b)
    await softDelete(db, 'users', { id: deleted })
    const result = await restoreOrCreate(
      db,
      'users',
      [
        { username: c, email: `${c}@example.com` },
        { username: a, email: `x-${a}@example.com` },
        { username: b, email: `x-${b}@example.com` },
      ],
      { on: ['username'] },
    )
    const created = result.created[0] as number
    expect(result.rows).toEqual([
      { id: created, action: 'created', updated: false },
      { id: active, action: 'active', updated: false },
      { id: deleted, action: 'restored', updated: false },
    ])
    expect(await user(created)).toMatchObject({ username: c, email: `${c}@example.com`, deleted_at: null })
    expect((await user(active)).email).toBe(`${a}@example.com`)
    for (const name of [a, b, c]) expect(await countByName(name)).toBe(1)
  })

  test("of several deleted holders, the latest deleted is revived", async () => {
    const name = unique('twice')
    const first = await insertUser(db, name)
    await softDelete(db, 'users', { id: first })
    const second = await insertUser(db, name)
    await softDelete(db, 'users', { id: second })
    const result = await restoreOrCreate(db, 'users', [{ username: name, email: `${name}@example.com` }], { on: ['username'] })
    expect(result.restored).toEqual([second])
    expect((await user(first)).deleted_at).not.toBeNull()
  })

  test("update: 'revived' writes the given values into revived rows after their restore; 'all' into active ones too", async () => {
    const [r, s] = [unique('r'), unique('s')]
    const revived = await insertUser(db, r)
    const active = await insertUser(db, s)
    await softDelete(db, 'users', { id: revived })
    const rows = [
      { username: r, email: `new-${r}@example.com` },
      { username: s, email: `new-${s}@example.com` },
    ]
    const first = await restoreOrCreate(db, 'users', rows, { on: ['username'], update: 'revived' })
    expect(first.rows).toEqual([
      { id: revived, action: 'restored', updated: true },
      { id: active, action: 'active', updated: false },
    ])
    expect((await user(revived)).email).toBe(`new-${r}@example.com`)
    expect((await user(active)).email).toBe(`${s}@example.com`)

    const second = await restoreOrCreate(db, 'users', rows, { on: ['username'], update: 'all' })
    expect(second.rows.map((row) => [row.action, row.updated])).toEqual([
      ['active', true],
      ['active', true],
    ])
    expect((await user(active)).email).toBe(`new-${s}@example.com`)
  })

  test('a revived row whose parent is deleted fails the whole call: nothing changes', async () => {
    const author = await insertUser(db)
    const slug = unique('slug')
    const post = await insertPost(db, author, slug)
    await softDelete(db, 'posts', { id: post })
    await softDelete(db, 'users', { id: author })
    const other = await insertUser(db)
    const fresh = unique('fresh')
    const caught = await error(
      restoreOrCreate(
        db,
        'posts',
        [
          { author_id: other, title: 'new', slug: fresh },
          { author_id: other, title: 'again', slug },
        ],
        { on: ['slug'] },
      ),
    )
    expect(caught).toBeInstanceOf(ParentDeletedError)
    expect(await raw.selectFrom('posts').select('id').where('slug', '=', fresh).execute()).toEqual([])
  })

  test('a collision on another active-unique index is a coded ConflictError, never a raw 23505', async () => {
    // email is active-unique too: the new row's email is an active user's.
    const [taken, name] = [unique('taken'), unique('new')]
    await insertUser(db, taken)
    const caught = await error(restoreOrCreate(db, 'users', [{ username: name, email: `${taken}@example.com` }], { on: ['username'] }))
    expect(caught).toBeInstanceOf(ConflictError)
    expect(caught).toMatchObject({ code: 'CONFLICT', table: 'users' })
    expect(await countByName(name)).toBe(0)
  })

  test('bad input is a coded InvalidArgumentError', async () => {
    const name = unique('bad')
    const row = { username: name, email: `${name}@example.com` }
    for (const options of [{ on: [] }, { on: ['user name'] }, { on: 'username' }, { on: ['username'], update: 'yes' }]) {
      expect(await error(restoreOrCreate(db, 'users', [row], options as never))).toBeInstanceOf(InvalidArgumentError)
    }
    expect(await error(restoreOrCreate(db, 'users', [row, row], { on: ['username'] }))).toBeInstanceOf(InvalidArgumentError)
    expect(await error(restoreOrCreate(db, 'users', [{ email: 'x@example.com' } as never], { on: ['username'] }))).toBeInstanceOf(
      InvalidArgumentError,
    )
    expect(await error(restoreOrCreate(db, 'users', row as never, { on: ['username'] }))).toBeInstanceOf(InvalidArgumentError)
    expect(await restoreOrCreate(db, 'users', [], { on: ['username'] })).toMatchObject({ rows: [], restore: null })
    expect(await countByName(name)).toBe(0)
  })
})

describe.skipIf(postgresUrl() === undefined)('restoreOrCreate under a forced interleaving on postgres (two connections)', () => {
  test('a concurrent insert of the same key: this call waits on it, then fails with ConflictError; a retry finds it active', async () => {
    const fixture = await createFixture('postgres')
    const connect = async () => {
      const connection = new pg.Client({ connectionString: fixture.database.url as string })
      await connection.connect()
      return connection
    }
    const [admin, other] = [await connect(), await connect()]
    try {
      const name = unique('race')
      const row = { username: name, email: `${name}@example.com` }
      await other.query('begin')
      const inserted = await other.query<{ id: number }>('insert into users (username, email) values ($1, $2) returning id', [name, row.email])
      const trx = await fixture.db.startTransaction().execute()
      const pid = (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx)).rows[0]?.pid as number
      const racing = error(restoreOrCreate(trx, 'users', [row], { on: ['username'] }))
      // Its insert waits on the other transaction's uncommitted key (the unique index's check).
      for (let attempt = 0; ; attempt++) {
        const wait = await admin.query<{ wait: string | null }>('select wait_event_type as wait from pg_stat_activity where pid = $1', [pid])
        if (wait.rows[0]?.wait === 'Lock') break
        if (attempt > 1000) throw new Error('never waited on a lock')
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
      await other.query('commit')
      expect(await racing).toMatchObject({ code: 'CONFLICT', table: 'users' })
      await trx.rollback().execute()
      const retry = await restoreOrCreate(fixture.db, 'users', [row], { on: ['username'] })
      expect(retry.rows).toEqual([{ id: inserted.rows[0]?.id, action: 'active', updated: false }])
    } finally {
      await other.end()
      await admin.end()
      await fixture.close()
    }
  })
})
