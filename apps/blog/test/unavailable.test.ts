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
    t = await build('postgres')
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
    await sql`alter role ${sql.id(role)} connection limit -1`.execute(t.owner)
    const back = await t.request({ method: 'GET', url: `/posts/${post}` })
    expect(back.statusCode).toBe(200)
    const state = await t.owner.selectFrom('posts').select('deleted_at').where('id', '=', post).executeTakeFirstOrThrow()
    expect(state.deleted_at).toBeNull()
    const during = await t.owner.selectFrom('posts').select('id').where('title', '=', 'During the outage').execute()
    expect(during).toEqual([])
  })
})
