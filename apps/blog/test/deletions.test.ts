/**
 * Deletions and legal holds in the HTTP contract (docs/service.md): the DELETE names its deletion,
 * its author may undo it within the undo window, admins list, read, preview and restore whole
 * deletions, and place, list and release legal holds that purges and permanent deletes respect.
 */
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { backdate, databaseKinds } from '@tombstone/testing'
import { build, createComment, createPost, problem, type TestApp, type TestUser } from './helper.ts'

describe.each([...databaseKinds(), 'sqlite' as const])('deletions and holds on %s', (kind) => {
  /** `now()` moved back by some days, in the dialect's words. */
  const ago = (days: number) => (kind === 'sqlite' ? sql`strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ${`-${days} days`})` : sql`now() - make_interval(days => ${days})`)
  let t: TestApp
  let alice: TestUser
  let bob: TestUser
  beforeAll(async () => {
    t = await build(kind)
    alice = await t.user('alice')
    bob = await t.user('bob')
  })
  afterAll(async () => {
    await t?.close()
  })

  const deleteAs = async (user: TestUser, url: string) => {
    const response = await t.request({ method: 'DELETE', url, token: user.token })
    expect(response.statusCode).toBe(204)
    return response
  }

  test('DELETE answers 204 naming the deletion (header and Link); deleting again names the same one', async () => {
    const post = await createPost(t, alice)
    const response = await deleteAs(alice, `/posts/${post}`)
    const id = response.headers['tombstone-deletion'] as string
    expect(id).toMatch(/^[0-9a-f-]{36}$/)
    expect(response.headers.link).toBe(`</admin/deletions/${id}>; rel="deletion"`)
    expect(response.body).toBe('')
    expect((await deleteAs(alice, `/posts/${post}`)).headers['tombstone-deletion']).toBe(id)
  })

  test('undo: the one who deleted restores exactly that deletion, within the window; others 404; after it 409', async () => {
    const post = await createPost(t, alice)
    const comment = await createComment(t, bob, post)
    const earlier = await createComment(t, bob, post, 'deleted on its own')
    await deleteAs(bob, `/comments/${earlier}`)
    const id = (await deleteAs(alice, `/posts/${post}?reason=oops`)).headers['tombstone-deletion'] as string
    problem(await t.request({ method: 'POST', url: `/deletions/${id}/undo`, token: bob.token }), 404, 'not-found')
    problem(await t.request({ method: 'POST', url: `/deletions/${id}/undo` }), 401, 'unauthorized')
    const undone = await t.request({ method: 'POST', url: `/deletions/${id}/undo`, token: alice.token })
    expect(undone.statusCode).toBe(200)
    expect(undone.json()).toEqual({ deletion_id: id, count: 2, restored: { post: 1, comment: 1 } })
    expect((await t.request({ method: 'GET', url: `/comments/${comment}` })).statusCode).toBe(200)
    problem(await t.request({ method: 'GET', url: `/comments/${earlier}` }), 404, 'not-found')
    // Nothing left to undo.
    problem(await t.request({ method: 'POST', url: `/deletions/${id}/undo`, token: alice.token }), 409, 'undo-window-closed')

    const late = (await deleteAs(alice, `/posts/${post}`)).headers['tombstone-deletion'] as string
    await backdate(
      t.owner,
      kind === 'sqlite'
        ? sql`update tombstone_audit set at = strftime('%Y-%m-%dT%H:%M:%fZ', at, '-11 minutes') where deletion_id = ${late}`
        : sql`update tombstone_audit set at = at - interval '11 minutes' where deletion_id = ${late}::uuid`,
    )
    problem(await t.request({ method: 'POST', url: `/deletions/${late}/undo`, token: alice.token }), 409, 'undo-window-closed')
    // An admin still restores it.
    const restored = await t.request({ method: 'POST', url: `/admin/deletions/${late}/restore`, token: t.admin.token })
    expect(restored.statusCode).toBe(200)
    expect(restored.json()).toMatchObject({ deletion_id: late, restored: { post: 1, comment: 1 } })
    problem(await t.request({ method: 'POST', url: `/deletions/not-a-uuid/undo`, token: alice.token }), 422, 'validation-failed')
  })

  test('GET /admin/deletions: newest first, per-type counts, filters by actor, type and date, pages; admin only', async () => {
    const carol = await t.user('carol')
    const post = await createPost(t, carol)
    await createComment(t, bob, post)
    const first = (await deleteAs(carol, `/comments/${await createComment(t, carol, post)}`)).headers['tombstone-deletion']
    const second = (await deleteAs(carol, `/users/${carol.id}?reason=account%20closed`)).headers['tombstone-deletion']
    const list = await t.request({ method: 'GET', url: `/admin/deletions?actor_id=${carol.id}`, token: t.admin.token })
    expect(list.statusCode).toBe(200)
    const body = list.json<{ items: { id: string }[]; next_cursor: string | null }>()
    expect(body.items.map((item) => item.id)).toEqual([second, first])
    expect(body.items[0]).toMatchObject({ type: 'user', actor_id: carol.id, reason: 'account closed', count: 3, counts: { user: 1, post: 1, comment: 1 } })
    const onlyUsers = await t.request({ method: 'GET', url: `/admin/deletions?actor_id=${carol.id}&type=user`, token: t.admin.token })
    expect(onlyUsers.json<{ items: { id: string }[] }>().items.map((item) => item.id)).toEqual([second])
    const paged = await t.request({ method: 'GET', url: `/admin/deletions?actor_id=${carol.id}&limit=1`, token: t.admin.token })
    const cursor = paged.json<{ next_cursor: string }>().next_cursor
    const next = await t.request({ method: 'GET', url: `/admin/deletions?actor_id=${carol.id}&limit=1&cursor=${encodeURIComponent(cursor)}`, token: t.admin.token })
    expect(next.json()).toMatchObject({ items: [{ id: first }], next_cursor: null })
    const future = new Date(Date.now() + 3_600_000).toISOString()
    expect((await t.request({ method: 'GET', url: `/admin/deletions?since=${future}`, token: t.admin.token })).json()).toEqual({ items: [], next_cursor: null })
    problem(await t.request({ method: 'GET', url: '/admin/deletions', token: bob.token }), 403, 'forbidden')
    problem(await t.request({ method: 'GET', url: '/admin/deletions?cursor=zzz', token: t.admin.token }), 422, 'validation-failed')

    const one = await t.request({ method: 'GET', url: `/admin/deletions/${second}`, token: t.admin.token })
    expect(one.statusCode).toBe(200)
    expect(one.json()).toMatchObject({
      id: second,
      type: 'user',
      ids: [carol.id],
      count: 3,
      still_deleted: 3,
      tables: { user: { taken: 1, still_deleted: 1, restored: 0, removed: 0 }, comment: { taken: 1 } },
      purge_at: expect.stringMatching(/Z$/),
    })
    problem(await t.request({ method: 'GET', url: '/admin/deletions/00000000-0000-4000-8000-000000000000', token: t.admin.token }), 404, 'not-found')
  })

  test('POST /admin/deletions/{id}/restore?dry_run=true: what would come back and what refuses; nothing changes', async () => {
    const title = `Unique title ${Date.now()}`
    const post = await createPost(t, alice, { title })
    const comment = await createComment(t, bob, post)
    const id = (await deleteAs(alice, `/posts/${post}`)).headers['tombstone-deletion'] as string
    const preview = await t.request({ method: 'POST', url: `/admin/deletions/${id}/restore?dry_run=true`, token: t.admin.token })
    expect(preview.statusCode).toBe(200)
    expect(preview.json()).toEqual({
      dry_run: true,
      count: 2,
      tables: { post: { count: 1, sample: [post] }, comment: { count: 1, sample: [comment] } },
      would_refuse: false,
      parent_deleted: [],
      conflicts: [],
    })
    problem(await t.request({ method: 'GET', url: `/posts/${post}` }), 404, 'not-found')
    // The slug is taken since: the preview names the holder, the restore is refused.
    const holder = await createPost(t, bob, { title })
    const refused = (await t.request({ method: 'POST', url: `/admin/deletions/${id}/restore?dry_run=true`, token: t.admin.token })).json()
    expect(refused).toMatchObject({ would_refuse: true, conflicts: [{ type: 'post', id: post, fields: ['slug'], conflicting_id: holder }] })
    problem(await t.request({ method: 'POST', url: `/admin/deletions/${id}/restore`, token: t.admin.token }), 409, 'conflict')
    problem(await t.request({ method: 'POST', url: `/admin/deletions/${id}/restore`, token: alice.token }), 403, 'forbidden')
  })

  test('holds: place on rows or a deletion, list, release; a held row survives purge and permanent delete', async () => {
    const post = await createPost(t, alice)
    const comment = await createComment(t, bob, post)
    const placed = await t.request({ method: 'POST', url: '/admin/holds', token: t.admin.token, payload: { type: 'comment', ids: [comment, 2_000_000], reason: 'case 7' } })
    expect(placed.statusCode).toBe(201)
    const hold = placed.json<{ hold: { id: number }; not_found: number[] }>()
    expect(hold).toMatchObject({ hold: { type: 'comment', placed_by: t.admin.id, reason: 'case 7', released_at: null, rows: 1 }, not_found: [2_000_000] })
    expect(placed.headers.location).toBe(`/admin/holds/${hold.hold.id}`)

    const refused = problem(await t.request({ method: 'DELETE', url: `/posts/${post}/permanent`, token: t.admin.token }), 409, 'legal-hold')
    expect(refused.hold_id).toBe(hold.hold.id)
    expect((await t.request({ method: 'GET', url: `/posts/${post}` })).statusCode).toBe(200)

    const id = (await deleteAs(alice, `/posts/${post}`)).headers['tombstone-deletion'] as string
    await backdate(t.owner, sql`update posts set deleted_at = ${ago(60)}, purge_at = ${ago(30)} where id = ${post}`)
    await backdate(t.owner, sql`update comments set deleted_at = ${ago(60)}, purge_at = ${ago(30)} where id = ${comment}`)
    const purged = await t.request({ method: 'POST', url: '/admin/purge', token: t.admin.token, payload: { older_than_days: 30, force: true } })
    expect(purged.statusCode).toBe(200)
    expect((await t.request({ method: 'GET', url: `/posts/${post}?include_deleted=true`, token: t.admin.token })).statusCode).toBe(200)

    const onDeletion = await t.request({ method: 'POST', url: '/admin/holds', token: t.admin.token, payload: { deletion_id: id, reason: 'case 8' } })
    expect(onDeletion.json()).toMatchObject({ hold: { type: 'post', deletion_id: id, rows: 2 } })
    const standing = await t.request({ method: 'GET', url: `/admin/holds?active=true&type=comment&id=${comment}`, token: t.admin.token })
    expect(standing.json<{ items: { id: number }[] }>().items.map((item) => item.id)).toEqual([onDeletion.json<{ hold: { id: number } }>().hold.id, hold.hold.id])

    for (const held of [hold.hold.id, onDeletion.json<{ hold: { id: number } }>().hold.id]) {
      const released = await t.request({ method: 'DELETE', url: `/admin/holds/${held}?reason=closed`, token: t.admin.token })
      expect(released.statusCode).toBe(200)
      expect(released.json()).toMatchObject({ id: held, released_by: t.admin.id, release_reason: 'closed', released_at: expect.stringMatching(/Z$/) })
    }
    await t.request({ method: 'POST', url: '/admin/purge', token: t.admin.token, payload: { older_than_days: 30, force: true } })
    problem(await t.request({ method: 'GET', url: `/posts/${post}?include_deleted=true`, token: t.admin.token }), 404, 'not-found')
    const audit = await t.request({ method: 'GET', url: `/admin/audit?entity=comment&entity_id=${comment}`, token: t.admin.token })
    expect(audit.json<{ items: { action: string }[] }>().items.map((item) => item.action)).toEqual(['purge', 'release', 'release', 'hold', 'soft_delete', 'hold'])

    problem(await t.request({ method: 'DELETE', url: '/admin/holds/987654', token: t.admin.token }), 404, 'not-found')
    problem(await t.request({ method: 'POST', url: '/admin/holds', token: t.admin.token, payload: { type: 'post', ids: [post], reason: ' ' } }), 422, 'validation-failed')
    problem(await t.request({ method: 'POST', url: '/admin/holds', token: t.admin.token, payload: { type: 'post', ids: [2_000_001], reason: 'x' } }), 404, 'not-found')
    problem(await t.request({ method: 'POST', url: '/admin/holds', token: bob.token, payload: { type: 'post', ids: [1], reason: 'x' } }), 403, 'forbidden')
    problem(await t.request({ method: 'GET', url: '/admin/holds?id=3', token: t.admin.token }), 422, 'validation-failed')
  })
  test('permanent and bulk deletes offer ?dry_run=true: what would go with it, held rows, nothing changes', async () => {
    const post = await createPost(t, alice)
    const comments = [await createComment(t, bob, post), await createComment(t, alice, post)]
    const preview = await t.request({ method: 'DELETE', url: `/posts/${post}/permanent?dry_run=true`, token: t.admin.token })
    expect(preview.statusCode).toBe(200)
    expect(preview.json()).toEqual({
      dry_run: true,
      count: 3,
      tables: { posts: { count: 1, sample: [post], held: 0 }, comments: { count: 2, sample: comments, held: 0 } },
      held: 0,
      would_refuse: false,
      not_found: [],
      already_deleted: [],
    })
    expect((await t.request({ method: 'GET', url: `/posts/${post}` })).statusCode).toBe(200)
    const placed = await t.request({ method: 'POST', url: '/admin/holds', token: t.admin.token, payload: { type: 'comment', ids: [comments[0]], reason: 'case 9' } })
    const held = (await t.request({ method: 'DELETE', url: `/posts/${post}/permanent?dry_run=true`, token: t.admin.token })).json()
    expect(held).toMatchObject({ held: 1, would_refuse: true, tables: { comments: { held: 1 } } })
    const bulk = await t.request({ method: 'POST', url: '/posts/bulk-delete?dry_run=true', token: t.admin.token, payload: { post_ids: [post, 2_000_002] } })
    expect(bulk.statusCode).toBe(200)
    expect(bulk.json()).toMatchObject({ dry_run: true, count: 3, not_found: [2_000_002], would_refuse: false })
    const hard = await t.request({ method: 'DELETE', url: '/posts/bulk?dry_run=true', token: t.admin.token, payload: { post_ids: [post], hard_delete: true } })
    expect(hard.statusCode).toBe(200)
    expect(hard.json()).toMatchObject({ held: 1, would_refuse: true })
    problem(await t.request({ method: 'DELETE', url: '/posts/bulk', token: t.admin.token, payload: { post_ids: [post], hard_delete: true } }), 409, 'legal-hold')
    expect((await t.request({ method: 'GET', url: `/posts/${post}` })).statusCode).toBe(200)
    problem(await t.request({ method: 'DELETE', url: `/posts/${post}/permanent?dry_run=true`, token: alice.token }), 403, 'forbidden')
    await t.request({ method: 'DELETE', url: `/admin/holds/${placed.json<{ hold: { id: number } }>().hold.id}`, token: t.admin.token })
  })
})
