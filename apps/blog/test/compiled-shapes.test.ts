/**
 * The routes whose queries are compiled once per shape (`QueryShapes` of @tombstone/kysely, tested
 * on its own in packages/kysely/test/query-shapes.test.ts): the list and the get of posts, and the
 * token check, answer each request with its own values, one request after another on one app.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { databaseKinds } from '@tombstone/testing'
import { softDelete } from '@tombstone/kysely'
import { build, createPost, type TestApp, type TestUser } from './helper.ts'

describe.each([...databaseKinds(), 'sqlite' as const])('routes on compiled query shapes on %s', (kind) => {
  let t: TestApp
  let alice: TestUser
  let bob: TestUser
  const posts = { alice: [] as number[], bob: [] as number[] }

  beforeAll(async () => {
    t = await build(kind)
    alice = await t.user('alice')
    bob = await t.user('bob')
    for (let i = 0; i < 3; i++) posts.alice.push(await createPost(t, alice, { title: `alice ${i}`, published: true }))
    for (let i = 0; i < 2; i++) posts.bob.push(await createPost(t, bob, { title: `bob ${i}`, published: true }))
    // One of alice's posts deleted: every shape must still filter it out.
    await softDelete(t.owner, 'posts', { id: posts.alice[1]! }, { by: String(alice.id) })
  })
  afterAll(async () => t?.close())

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
    // The token check: each token names its own user, one after another; a revoked one stops at once.
    for (const user of [alice, bob, alice]) {
      expect((await t.request({ method: 'GET', url: '/users/me', token: user.token })).json<{ id: number }>().id).toBe(user.id)
    }
    expect((await t.request({ method: 'POST', url: '/auth/logout', token: bob.token })).statusCode).toBe(204)
    expect((await t.request({ method: 'GET', url: '/users/me', token: bob.token })).statusCode).toBe(401)
    expect((await t.request({ method: 'GET', url: '/users/me', token: alice.token })).statusCode).toBe(200)
    // An admin's trash view has the deletion fields, from the same route.
    const trash = await t.request({ method: 'GET', url: `/posts?author_id=${alice.id}&only_deleted=true`, token: t.admin.token })
    expect(trash.json<{ items: { id: number; deletion_id: string | null }[] }>().items).toEqual([expect.objectContaining({ id: posts.alice[1], deletion_id: expect.any(String) })])
  })
})
