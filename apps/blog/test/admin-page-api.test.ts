/**
 * What the admin page reads beyond the contract (docs/service.md, "Deletions, undo and legal
 * holds"): deletions and purges per day for the audit chart, the deletion list's names, the trash's
 * and the deletion list's `held` flags, the purge dry run's `held_count`.
 */
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { backdate, databaseKinds } from '@tombstone/testing'
import { build, createComment, createPost, problem, type TestApp, type TestUser } from './helper.ts'

describe.each(databaseKinds())('admin page API on %s', (kind) => {
  let t: TestApp
  let alice: TestUser
  beforeAll(async () => {
    t = await build(kind)
    alice = await t.user('alice')
  })
  afterAll(async () => {
    await t?.close()
  })

  const admin = (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object) =>
    t.request({ method, url, token: t.admin.token, ...(payload === undefined ? {} : { payload }) })
  const utcDay = (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10)

  test('GET /admin/audit/daily: every day of the range, oldest first, counting deleted, restored and purged rows', async () => {
    const before = (await admin('GET', '/admin/audit/daily?days=30')).json() as { days: { date: string; soft_delete: number; restore: number; purge: number }[] }
    const old = await createPost(t, alice, { title: 'Deleted two days ago' })
    await createComment(t, alice, old)
    const deleted = await t.request({ method: 'DELETE', url: `/posts/${old}`, token: alice.token })
    const deletion = deleted.headers['tombstone-deletion'] as string
    // Two rows (the post and its comment) deleted two days ago.
    await backdate(t.owner, sql`update tombstone_audit set at = at - interval '2 days' where deletion_id = ${deletion}::uuid`)
    const today = await createPost(t, alice, { title: 'Deleted and restored today' })
    await t.request({ method: 'DELETE', url: `/posts/${today}`, token: alice.token })
    expect((await admin('POST', `/posts/${today}/restore`)).statusCode).toBe(200)
    const gone = await createPost(t, alice, { title: 'Purged today' })
    await t.request({ method: 'DELETE', url: `/posts/${gone}`, token: alice.token })
    expect((await admin('POST', '/admin/purge', { older_than_days: 0, force: true })).statusCode).toBe(200)

    const response = await admin('GET', '/admin/audit/daily?days=30')
    expect(response.statusCode).toBe(200)
    const { days } = response.json() as typeof before
    expect(days).toHaveLength(30)
    expect(days.at(-1)?.date).toBe(utcDay(0))
    expect(days[0]?.date).toBe(utcDay(-29))
    const delta = (date: string, field: 'soft_delete' | 'restore' | 'purge') =>
      (days.find((day) => day.date === date)?.[field] ?? 0) - (before.days.find((day) => day.date === date)?.[field] ?? 0)
    expect(delta(utcDay(-2), 'soft_delete')).toBe(2)
    expect(delta(utcDay(0), 'soft_delete')).toBe(2)
    expect(delta(utcDay(0), 'restore')).toBe(1)
    // The purge took what was deleted: the two rows of two days ago and today's post.
    expect(delta(utcDay(0), 'purge')).toBe(3)
    expect((await admin('GET', '/admin/audit/daily')).json().days).toHaveLength(30)
    expect((await admin('GET', '/admin/audit/daily?days=1')).json().days).toEqual([days.at(-1)])
  })

  test('GET /admin/audit/daily: bad input is a 422 problem; without a token 401, for a non-admin 403', async () => {
    for (const days of ['0', '367', 'abc', '1.5', '-3']) problem(await admin('GET', `/admin/audit/daily?days=${days}`), 422, 'validation-failed')
    problem(await t.request({ method: 'GET', url: '/admin/audit/daily' }), 401, 'unauthorized')
    problem(await t.request({ method: 'GET', url: '/admin/audit/daily', token: alice.token }), 403, 'forbidden')
  })

  test('the deletion list names the actor and the first target; held flags on deletions and trash rows; held_count in the purge dry run', async () => {
    const post = await createPost(t, alice, { title: 'Kept for the lawyers' })
    await createComment(t, alice, post)
    const deletion = (await t.request({ method: 'DELETE', url: `/posts/${post}?reason=spam`, token: alice.token })).headers['tombstone-deletion'] as string
    const listed = () => admin('GET', `/admin/deletions?actor_id=${alice.id}`).then((r) => (r.json() as { items: Record<string, unknown>[] }).items.find((item) => item.id === deletion))
    expect(await listed()).toMatchObject({ actor_username: alice.username, root_id: post, root_count: 1, label: 'Kept for the lawyers', held: false, reason: 'spam', counts: { post: 1, comment: 1 } })
    const trashRow = () => admin('GET', '/admin/trash?type=post&q=Kept%20for%20the').then((r) => (r.json() as { items: { id: number; held: boolean }[] }).items.find((item) => item.id === post))
    expect((await trashRow())?.held).toBe(false)
    const placed = await admin('POST', '/admin/holds', { deletion_id: deletion, reason: 'litigation' })
    expect(placed.statusCode).toBe(201)
    expect((await listed())?.held).toBe(true)
    expect((await trashRow())?.held).toBe(true)
    const preview = (await admin('POST', '/admin/purge', { older_than_days: 0 })).json() as { purge_count: number; held_count: number }
    expect(preview.held_count).toBe(2)
    const hold = (placed.json() as { hold: { id: number } }).hold.id
    expect((await admin('DELETE', `/admin/holds/${hold}?reason=settled`)).statusCode).toBe(200)
    expect((await listed())?.held).toBe(false)
    expect((await trashRow())?.held).toBe(false)
    expect(((await admin('POST', '/admin/purge', { older_than_days: 0 })).json() as { held_count: number }).held_count).toBe(0)
  })
})
