/**
 * Read routing without a replica at hand (the streaming replica itself is in topology.test.ts): the
 * read URL names the primary's own database (a reader not in recovery counts as caught up), or a
 * port nothing listens on (a replica that is away: reads go to the primary, readiness stays 200).
 * Checks which routes are routed, the consistency token on writes, and the token's parsing.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { postgresUrl } from '@tombstone/testing'
import { sql } from 'kysely'
import { ConfigError, loadConfig } from '../src/config.ts'
import { connect } from '../src/db/connect.ts'
import { CONSISTENCY_COOKIE, consistencyTokenOf, parseLsn } from '../src/db/read-routing.ts'
import { blogSoftDeletes } from '../src/db/soft-deletes.ts'
import { build, createPost, type TestApp } from './helper.ts'

const LSN = /^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/

describe('read routing settings', () => {
  test('DATABASE_READ_URL is a PostgreSQL URL, and only beside a PostgreSQL DATABASE_URL', () => {
    expect(() => loadConfig({ DATABASE_URL: 'memory://', DATABASE_READ_URL: 'postgres://r/blog' })).toThrow(ConfigError)
    expect(() => loadConfig({ DATABASE_URL: 'postgres://p/blog', DATABASE_READ_URL: 'memory://' })).toThrow(/DATABASE_READ_URL/)
    expect(() => loadConfig({ DB_PREPARED_STATEMENTS: 'yes' })).toThrow(/DB_PREPARED_STATEMENTS/)
    const config = loadConfig({ DATABASE_URL: 'postgres://p/blog', DATABASE_READ_URL: 'postgres://r/blog', PURGE_INTERVAL_SECONDS: '30', DB_STATEMENT_TIMEOUT_MS: '0' })
    expect([config.databaseReadUrl, config.preparedStatements, config.purgeIntervalMinutes, config.statementTimeoutMs]).toEqual(['postgres://r/blog', false, 0.5, 0])
  })
})

describe('consistency tokens', () => {
  test('a WAL position parses to a number that orders like the server does', () => {
    expect(parseLsn('0/16B3748')).toBe(0x16b3748n)
    expect(parseLsn('1/0')! > parseLsn('0/FFFFFFFF')!).toBe(true)
    expect(parseLsn('zz/1')).toBeUndefined()
  })

  test('the newest of header and cookie wins; a garbled one counts as not reached, never as none', () => {
    expect(consistencyTokenOf({})).toBeUndefined()
    expect(consistencyTokenOf({ 'tombstone-consistency': '0/10', cookie: `a=b; ${CONSISTENCY_COOKIE}=0%2F20` })).toBe(0x20n)
    expect(consistencyTokenOf({ 'tombstone-consistency': '0/30, 0/5' })).toBe(0x30n)
    expect(consistencyTokenOf({ 'tombstone-consistency': 'garbage' })).toBe(0xffff_ffff_ffff_ffffn)
  })
})

describe.skipIf(postgresUrl() === undefined)('read routing on postgres', () => {
  let t: TestApp
  let away: TestApp
  beforeAll(async () => {
    t = await build('postgres', {}, { readUrl: (url) => url })
    // Port 1: nothing listens there, so every connection is refused at once.
    away = await build('postgres', {}, { readUrl: (url) => Object.assign(new URL(url), { port: '1' }).toString() })
  })
  afterAll(async () => {
    await t?.close()
    await away?.close()
  })

  test('a write answers with its WAL position (header and cookie); a read sending it back is served once replayed', async () => {
    const author = await t.user('ryw')
    const created = await t.request({ method: 'POST', url: '/posts', token: author.token, payload: { title: 'Routed', content: 'x' } })
    expect(created.statusCode).toBe(201)
    const token = created.headers['tombstone-consistency'] as string
    expect(token).toMatch(LSN)
    expect(String(created.headers['set-cookie'])).toContain(`${CONSISTENCY_COOKIE}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Lax`)
    const id = created.json<{ id: number }>().id

    const plain = await t.request({ method: 'GET', url: `/posts/${id}` })
    expect(plain.statusCode).toBe(200)
    expect(plain.headers['tombstone-read-source']).toBe('replica')
    const withToken = await t.request({ method: 'GET', url: `/posts/${id}`, headers: { 'tombstone-consistency': token } })
    expect(withToken.headers['tombstone-read-source']).toBe('replica')
    const withCookie = await t.request({ method: 'GET', url: `/posts/${id}`, headers: { cookie: `${CONSISTENCY_COOKIE}=${encodeURIComponent(token)}` } })
    expect(withCookie.headers['tombstone-read-source']).toBe('replica')
    // A position the reader has not reached (or cannot read) sends the read to the primary.
    const ahead = await t.request({ method: 'GET', url: `/posts/${id}`, headers: { 'tombstone-consistency': 'FFFFFFFF/0' } })
    expect(ahead.statusCode).toBe(200)
    expect(ahead.headers['tombstone-read-source']).toBe('primary')

    const deleted = await t.request({ method: 'DELETE', url: `/posts/${id}`, token: author.token })
    expect(deleted.statusCode).toBe(204)
    expect(parseLsn(deleted.headers['tombstone-consistency'] as string)! >= parseLsn(token)!).toBe(true)
    // An answer that is an error says who served it too.
    const gone = await t.request({ method: 'GET', url: `/posts/${id}`, headers: { 'tombstone-consistency': deleted.headers['tombstone-consistency'] as string } })
    expect([gone.statusCode, gone.headers['tombstone-read-source']]).toEqual([404, 'replica'])
    // A failed write carries none (nothing committed).
    const again = await t.request({ method: 'DELETE', url: '/posts/2147483647', token: author.token })
    expect(again.statusCode).toBe(404)
    expect(again.headers['tombstone-consistency']).toBeUndefined()
  })

  test('only the public reads are routed; an admin, the trash and the caller\'s own account read the primary', async () => {
    const author = await t.user('routes')
    const post = await createPost(t, author)
    for (const url of ['/posts', `/posts/${post}`, `/posts/${post}/comments`, `/users/${author.id}`]) {
      const response = await t.request({ method: 'GET', url })
      expect(response.statusCode, url).toBe(200)
      expect(response.headers['tombstone-read-source'], url).toBe('replica')
      const asAdmin = await t.request({ method: 'GET', url, token: t.admin.token })
      expect(asAdmin.headers['tombstone-read-source'], url).toBe('primary')
    }
    for (const url of ['/users/me', '/posts/deleted']) {
      const response = await t.request({ method: 'GET', url, token: url === '/users/me' ? author.token : t.admin.token })
      expect(response.statusCode, url).toBe(200)
      expect(response.headers['tombstone-read-source'], url).toBeUndefined()
    }
  })

  test('a replica that is away: reads are served by the primary, readiness stays 200 and says so', async () => {
    const author = await away.user('away')
    const post = await createPost(away, author)
    const read = await away.request({ method: 'GET', url: `/posts/${post}` })
    expect(read.statusCode).toBe(200)
    expect(read.headers['tombstone-read-source']).toBe('primary')
    const list = await away.request({ method: 'GET', url: '/posts' })
    expect(list.statusCode).toBe(200)
    const ready = await away.request({ method: 'GET', url: '/readyz' })
    expect(ready.statusCode).toBe(200)
    expect(ready.json()).toEqual({ status: 'ok', database: 'postgres', replica: 'unavailable' })
    expect((await t.request({ method: 'GET', url: '/readyz' })).json()).toEqual({ status: 'ok', database: 'postgres', replica: 'ok' })
  })
})

describe.skipIf(postgresUrl() === undefined)('prepared statements on postgres', () => {
  // What a pooler in transaction mode before PgBouncer 1.21 needs: no named statement by default.
  for (const prepared of [false, true]) {
    test(`DB_PREPARED_STATEMENTS ${prepared ? 'on: each statement is prepared once per connection' : 'off (the default): no named statement is ever created'}`, async () => {
      const handle = await connect(postgresUrl(), blogSoftDeletes(30), prepared ? { preparedStatements: true } : {})
      try {
        const count = await handle.db.connection().execute(async (db) => {
          for (const n of [1, 2, 3]) await sql`select ${n}::int as n`.execute(db)
          return (await sql<{ n: number }>`select count(*)::int as n from pg_prepared_statements`.execute(db)).rows[0]?.n
        })
        // On: the repeated statement once, and the count itself (prepared as it runs).
        expect(count).toBe(prepared ? 2 : 0)
      } finally {
        await handle.close()
      }
    })
  }
})
