/**
 * Queries compiled once per shape (src/db/query-shapes.ts): the SQL is what a fresh compile gives,
 * read filter included; each run binds its own values; a transaction compiles anew; a shape that
 * binds a value it was not given fails before the database sees it. And the routes built on it (the
 * list and the get of posts) answer each request with its own values, one request after another.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { databaseKinds } from '@tombstone/testing'
import { softDelete } from '@tombstone/kysely'
import type { Kysely } from 'kysely'
import { QueryShapes, type Placeholders } from '../src/db/query-shapes.ts'
import type { Database } from '../src/db/schema.ts'
import { build, createPost, type TestApp, type TestUser } from './helper.ts'

interface Values extends Record<string, unknown> {
  author: number
  limit: number
  title: string | undefined
}

const byAuthor = (db: Kysely<Database>, $: Placeholders<Values>, withTitle: boolean) => {
  let select = db.selectFrom('posts').select(['id', 'author_id', 'title']).where('author_id', '=', $.author).orderBy('id').limit($.limit)
  if (withTitle) select = select.where('title', '=', $.title)
  return select
}

describe.each([...databaseKinds(), 'sqlite' as const])('query shapes on %s', (kind) => {
  let t: TestApp
  let db: Kysely<Database>
  let alice: TestUser
  let bob: TestUser
  const posts = { alice: [] as number[], bob: [] as number[] }

  beforeAll(async () => {
    t = await build(kind)
    db = t.app.db as Kysely<Database>
    alice = await t.user('alice')
    bob = await t.user('bob')
    for (let i = 0; i < 3; i++) posts.alice.push(await createPost(t, alice, { title: `alice ${i}`, published: true }))
    for (let i = 0; i < 2; i++) posts.bob.push(await createPost(t, bob, { title: `bob ${i}`, published: true }))
    // One of alice's posts deleted: every shape must still filter it out.
    await softDelete(t.owner, 'posts', { id: posts.alice[1]! }, { by: String(alice.id) })
  })
  afterAll(async () => t?.close())

  test('the SQL is what a fresh compile gives, read filter included, and each run binds its own values', async () => {
    const shapes = new QueryShapes<Database, Values>()
    const run = (values: Values, withTitle = false) =>
      shapes.execute(db, withTitle ? 'titled' : 'plain', values, (db, $) => byAuthor(db, $, withTitle))
    expect(await run({ author: alice.id, limit: 10, title: undefined })).toEqual([
      { id: posts.alice[0], author_id: alice.id, title: 'alice 0' },
      { id: posts.alice[2], author_id: alice.id, title: 'alice 2' },
    ])
    expect((await run({ author: bob.id, limit: 10, title: undefined })).map((row) => row.id)).toEqual(posts.bob)
    expect((await run({ author: bob.id, limit: 1, title: undefined })).map((row) => row.id)).toEqual([posts.bob[0]])
    expect((await run({ author: alice.id, limit: 10, title: 'alice 2' }, true)).map((row) => row.id)).toEqual([posts.alice[2]])
    expect((await run({ author: alice.id, limit: 10, title: 'alice 1' }, true)).map((row) => row.id)).toEqual([])

    const fresh = byAuthor(db, { author: 1, limit: 1, title: 'x' }, true).compile().sql
    expect(shapes.sqlOf(db, 'titled')).toBe(fresh)
    expect(fresh).toMatch(/deleted_at" is null/)
    expect(shapes.sqlOf(db, 'plain')).toBe(byAuthor(db, { author: 1, limit: 1, title: 'x' }, false).compile().sql)
  })

  test('a transaction compiles its own and keeps none; a value a shape binds but was not given is refused', async () => {
    const shapes = new QueryShapes<Database, Values>()
    const rows = await db.transaction().execute((trx) => shapes.execute(trx, 'plain', { author: bob.id, limit: 10, title: undefined }, (db, $) => byAuthor(db, $, false)))
    expect(rows.map((row) => row.id)).toEqual(posts.bob)
    expect(shapes.sqlOf(db, 'plain')).toBeUndefined()
    await expect(shapes.execute(db, 'titled', { author: bob.id, limit: 10, title: undefined }, (db, $) => byAuthor(db, $, true))).rejects.toThrow(
      /binds title, which has no value/,
    )
  })

  test('the list and the get of posts answer each request with its own values, one after another', async () => {
    for (const [user, ids] of [[alice, [posts.alice[2], posts.alice[0]]], [bob, [...posts.bob].reverse()], [alice, [posts.alice[2], posts.alice[0]]]] as const) {
      const response = await t.request({ method: 'GET', url: `/posts?author_id=${user.id}` })
      expect(response.json<{ items: { id: number }[] }>().items.map((post) => post.id)).toEqual(ids)
    }
    const first = await t.request({ method: 'GET', url: `/posts?author_id=${alice.id}&limit=1` })
    const cursor = first.json<{ next_cursor: string }>().next_cursor
    const second = await t.request({ method: 'GET', url: `/posts?author_id=${alice.id}&limit=1&cursor=${cursor}` })
    expect(second.json<{ items: { id: number }[] }>().items.map((post) => post.id)).toEqual([posts.alice[0]])
    for (const id of [posts.bob[0], posts.alice[0], posts.bob[1]]) {
      expect((await t.request({ method: 'GET', url: `/posts/${id}` })).json<{ id: number }>().id).toBe(id)
    }
    expect((await t.request({ method: 'GET', url: `/posts/${posts.alice[1]}` })).statusCode).toBe(404)
    // An admin's trash view has the deletion fields, from the same route.
    const trash = await t.request({ method: 'GET', url: `/posts?author_id=${alice.id}&only_deleted=true`, token: t.admin.token })
    expect(trash.json<{ items: { id: number; deletion_id: string | null }[] }>().items).toEqual([expect.objectContaining({ id: posts.alice[1], deletion_id: expect.any(String) })])
  })
})
