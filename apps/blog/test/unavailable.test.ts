/**
 * The database away: the service answers 503 with Retry-After (never a 500), changes nothing, and
 * recovers by itself when the database is back. Forced on PostgreSQL by refusing the service's role
 * any connection (`connection limit 0`, SQLSTATE 53300) and ending the ones it has.
 */
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { postgresUrl } from '@tombstone/testing'
import { build, createPost, problem, type TestApp } from './helper.ts'

describe.skipIf(postgresUrl() === undefined)('the database away on postgres', () => {
  let t: TestApp
  let role: string
  beforeAll(async () => {
    t = await build('postgres', { DB_LOCK_TIMEOUT_MS: '300', DB_STATEMENT_TIMEOUT_MS: '5000' })
    role = (await sql<{ user: string }>`select current_user as user`.execute(t.app.db)).rows[0]?.user as string
  })
  afterAll(async () => {
    await sql`alter role ${sql.id(role)} connection limit -1`.execute(t.owner).catch(() => undefined)
    await t?.close()
  })

  test('503 with Retry-After while no connection can be had, nothing changed, and recovery after', async () => {
    const author = await t.user('outage')
    const post = await createPost(t, author)
    await sql`alter role ${sql.id(role)} connection limit 0`.execute(t.owner)
    await sql`select pg_terminate_backend(pid) from pg_stat_activity where usename = ${role}`.execute(t.owner)
    for (const request of [
      { method: 'GET' as const, url: `/posts/${post}` },
      { method: 'GET' as const, url: '/posts' },
      { method: 'DELETE' as const, url: `/posts/${post}`, token: author.token },
      { method: 'POST' as const, url: '/posts', token: author.token, payload: { title: 'During the outage', content: 'x' } },
    ]) {
      const response = await t.request(request)
      const body = problem(response, 503, 'service-unavailable')
      expect(response.headers['retry-after']).toBe('1')
      expect(String(body.detail)).not.toMatch(/53300|connection limit|role/i)
    }
    // Readiness says so; liveness does not restart an instance for a database outage.
    problem(await t.request({ method: 'GET', url: '/readyz' }), 503, 'service-unavailable')
    problem(await t.request({ method: 'GET', url: '/healthz' }), 503, 'service-unavailable')
    expect((await t.request({ method: 'GET', url: '/livez' })).statusCode).toBe(200)
    await sql`alter role ${sql.id(role)} connection limit -1`.execute(t.owner)
    const back = await t.request({ method: 'GET', url: `/posts/${post}` })
    expect(back.statusCode).toBe(200)
    const state = await t.owner.selectFrom('posts').select('deleted_at').where('id', '=', post).executeTakeFirstOrThrow()
    expect(state.deleted_at).toBeNull()
    const during = await t.owner.selectFrom('posts').select('id').where('title', '=', 'During the outage').execute()
    expect(during).toEqual([])
    expect((await t.request({ method: 'GET', url: '/readyz' })).statusCode).toBe(200)
  })

  test('a lock held elsewhere past DB_LOCK_TIMEOUT_MS: 503, not a request hanging; health stays bounded', async () => {
    const author = await t.user('locked')
    const post = await createPost(t, author)
    const holder = await t.owner.startTransaction().execute()
    try {
      await sql`lock table posts in access exclusive mode`.execute(holder)
      const started = Date.now()
      const response = await t.request({ method: 'GET', url: `/posts/${post}` })
      problem(response, 503, 'service-unavailable')
      expect(Date.now() - started).toBeLessThan(4_000)
      expect((await t.request({ method: 'GET', url: '/readyz' })).statusCode).toBe(200)
    } finally {
      await holder.rollback().execute()
    }
    expect((await t.request({ method: 'GET', url: `/posts/${post}` })).statusCode).toBe(200)
  })
})
