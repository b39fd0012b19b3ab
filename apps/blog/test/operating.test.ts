/**
 * Operating safely: an admin who can sign in is never lost (the last active admin cannot be
 * deleted; a generated password is regenerated until shown); drafts stay hidden from strangers;
 * browser pages carry security headers; concurrent requests cannot beat the slug derivation or the
 * login throttle; signing out revokes a token; scrypt follows OWASP and upgrades old hashes.
 */
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { databaseKinds } from '@tombstone/testing'
import { connect } from '../src/db/connect.ts'
import { migrate } from '../src/db/migrate.ts'
import { bootstrap, markAdminPasswordShown } from '../src/db/seed.ts'
import { blogSoftDeletes } from '../src/db/soft-deletes.ts'
import { hashPassword, verifyPassword } from '../src/services/passwords.ts'
import { loadConfig } from '../src/config.ts'
import { pruneCredentials } from '../src/services/tokens.ts'
import { ADMIN_PASSWORD, build, createPost, problem, type TestApp } from './helper.ts'

describe.each(databaseKinds())('operating safely on %s', (kind) => {
  let t: TestApp
  beforeAll(async () => {
    t = await build(kind)
  })
  afterAll(async () => {
    await t?.close()
  })

  test('the last active admin cannot be deleted, softly or for good; another admin makes it possible', async () => {
    for (const url of [`/users/${t.admin.id}`, `/users/${t.admin.id}/permanent`]) {
      const body = problem(await t.request({ method: 'DELETE', url, token: t.admin.token }), 409, 'conflict')
      expect(String(body.detail)).toMatch(/last active admin/)
    }
    const state = await t.owner.selectFrom('users').select(['deleted_at', 'role']).where('id', '=', t.admin.id).executeTakeFirstOrThrow()
    expect(state).toEqual({ deleted_at: null, role: 'admin' })

    const second = await t.user('second_admin')
    await sql`update users set role = 'admin' where id = ${second.id}`.execute(t.owner)
    expect((await t.request({ method: 'DELETE', url: `/users/${t.admin.id}`, token: second.token })).statusCode).toBe(204)
    // Now the second is the last one.
    problem(await t.request({ method: 'DELETE', url: `/users/${second.id}`, token: second.token }), 409, 'conflict')
    await sql`update users set deleted_at = null where id = ${t.admin.id}`.execute(t.owner)
  })

  test("another user's draft answers DELETE with the 404 of a missing post, never a 403 that reveals it", async () => {
    const author = await t.user('drafter')
    const stranger = await t.user('stranger')
    const draft = await createPost(t, author, { published: false })
    const missing = await t.request({ method: 'DELETE', url: '/posts/2147483000', token: stranger.token })
    const hidden = await t.request({ method: 'DELETE', url: `/posts/${draft}`, token: stranger.token })
    problem(missing, 404, 'not-found')
    problem(hidden, 404, 'not-found')
    const published = await createPost(t, author)
    problem(await t.request({ method: 'DELETE', url: `/posts/${published}`, token: stranger.token }), 403, 'forbidden')
    expect((await t.request({ method: 'DELETE', url: `/posts/${draft}`, token: author.token })).statusCode).toBe(204)
  })

  test('the browser pages (/admin, /docs) carry a CSP, nosniff, a frame policy and a referrer policy; the API does not need them', async () => {
    for (const url of ['/admin', '/docs']) {
      const response = await t.request({ method: 'GET', url })
      expect(response.statusCode).toBe(200)
      expect(String(response.headers['content-security-policy'])).toMatch(/default-src 'self'/)
      expect(String(response.headers['content-security-policy'])).toMatch(/frame-ancestors ('none'|'self')/)
      expect(response.headers['x-content-type-options']).toBe('nosniff')
      expect(response.headers['x-frame-options']).toBe('DENY')
      expect(response.headers['referrer-policy']).toBe('no-referrer')
    }
  })

  test('the ETag after a delete and a restore differs from the one before, so a stale If-Match is refused', async () => {
    const author = await t.user('etag')
    const post = await createPost(t, author)
    const before = (await t.request({ method: 'GET', url: `/posts/${post}` })).headers.etag as string
    expect((await t.request({ method: 'DELETE', url: `/posts/${post}`, token: author.token })).statusCode).toBe(204)
    // A fresh admin token: an earlier test deleted and restored the admin, which revoked the old one.
    const signIn = await t.request({ method: 'POST', url: '/auth/token', payload: { username: 'admin', password: ADMIN_PASSWORD } })
    const adminToken = signIn.json<{ access_token: string }>().access_token
    expect((await t.request({ method: 'POST', url: `/posts/${post}/restore`, token: adminToken })).statusCode).toBe(200)
    const after = (await t.request({ method: 'GET', url: `/posts/${post}` })).headers.etag as string
    expect(after).toEqual(expect.any(String))
    expect(after).not.toBe(before)
    problem(
      await t.request({ method: 'PATCH', url: `/posts/${post}`, token: author.token, headers: { 'if-match': before }, payload: { title: 'Edited' } }),
      412,
      'precondition-failed',
    )
    // The same through the deletion's undo.
    const restored = (await t.request({ method: 'GET', url: `/posts/${post}` })).headers.etag as string
    const again = await t.request({ method: 'DELETE', url: `/posts/${post}`, token: author.token })
    const undo = await t.request({ method: 'POST', url: `/deletions/${String(again.headers['tombstone-deletion'])}/undo`, token: author.token })
    expect(undo.statusCode).toBe(200)
    expect((await t.request({ method: 'GET', url: `/posts/${post}` })).headers.etag).not.toBe(restored)
  })

  test('30 concurrent POST /posts with one title: all 201, each with its own derived slug', async () => {
    const author = await t.user('crowd')
    const responses = await Promise.all(
      Array.from({ length: 30 }, () => t.request({ method: 'POST', url: '/posts', token: author.token, payload: { title: 'Same title', content: 'x' } })),
    )
    expect(responses.map((response) => response.statusCode)).toEqual(Array.from({ length: 30 }, () => 201))
    const slugs = new Set(responses.map((response) => response.json<{ slug: string }>().slug))
    expect(slugs.size).toBe(30)
  })

  test('POST /auth/logout revokes the presented token only; old tokens and login failures are pruned', async () => {
    const user = await t.user('leaving')
    const second = await t.request({ method: 'POST', url: '/auth/token', payload: { username: user.username, password: `password-${user.username}` } })
    const other = second.json<{ access_token: string }>().access_token
    expect((await t.request({ method: 'POST', url: '/auth/logout', token: user.token })).statusCode).toBe(204)
    problem(await t.request({ method: 'POST', url: '/posts', token: user.token, payload: { title: 'x', content: 'y' } }), 401, 'unauthorized')
    problem(await t.request({ method: 'POST', url: '/auth/logout' }), 401, 'unauthorized')
    expect((await t.request({ method: 'POST', url: '/posts', token: other, payload: { title: 'x', content: 'y' } })).statusCode).toBe(201)

    await t.request({ method: 'POST', url: '/auth/token', payload: { username: user.username, password: 'wrong-password' } })
    await sql`update tokens set revoked_at = now() - interval '2 days' where user_id = ${user.id} and revoked_at is not null`.execute(t.owner)
    await sql`update login_failures set at = now() - interval '2 days' where username = ${user.username}`.execute(t.owner)
    const pruned = await pruneCredentials(t.owner)
    expect(pruned).toEqual({ tokens: 1, loginFailures: 1 })
    expect((await t.request({ method: 'POST', url: '/posts', token: other, payload: { title: 'x', content: 'y' } })).statusCode).toBe(201)
  })
})

describe.each(databaseKinds())('the login throttle under concurrency on %s', (kind) => {
  let t: TestApp
  beforeAll(async () => {
    t = await build(kind, { LOGIN_MAX_FAILURES: '10', TRUST_PROXY: 'on', REGISTER_MAX_PER_HOUR: '3' })
  })
  afterAll(async () => {
    await t?.close()
  })

  test('registrations: at most REGISTER_MAX_PER_HOUR accounts per address and hour, even in a burst', async () => {
    const register = (n: number) =>
      t.request({
        method: 'POST',
        url: '/users',
        headers: { 'x-forwarded-for': '198.51.100.9' },
        payload: { username: `burst_${process.pid % 10_000}_${n}`, email: `burst${n}@example.com`, password: 'password-burst' },
      })
    const statuses = (await Promise.all([1, 2, 3, 4, 5, 6].map(register))).map((response) => response.statusCode)
    expect(statuses.filter((status) => status === 201)).toHaveLength(3)
    expect(statuses.filter((status) => status === 429)).toHaveLength(3)
  })

  test('50 concurrent wrong passwords from one address: exactly 10 password checks (401), the rest 429', async () => {
    const victim = await t.user('victim')
    const attempt = (address: string) =>
      t.request({ method: 'POST', url: '/auth/token', headers: { 'x-forwarded-for': address }, payload: { username: victim.username, password: 'wrong-password' } })
    const responses = await Promise.all(Array.from({ length: 50 }, () => attempt('203.0.113.7')))
    const statuses = responses.map((response) => response.statusCode)
    expect(statuses.filter((status) => status === 401)).toHaveLength(10)
    expect(statuses.filter((status) => status === 429)).toHaveLength(40)
    // Behind a trusted proxy, another client (another forwarded address) is not throttled with it.
    expect((await attempt('203.0.113.8')).statusCode).toBe(401)
  })
})

describe('the first start', () => {
  test('a generated admin password never shown (the process died before printing) is replaced at the next start', async () => {
    const handle = await connect('memory://', blogSoftDeletes(30))
    try {
      await migrate(handle.db)
      const first = await bootstrap(handle.db, { adminPassword: undefined, demoData: false })
      expect(first.createdAdmin).toBe(true)
      const lost = first.generatedAdminPassword as string
      // Killed here: the password was never shown. The next start makes a new one.
      const second = await bootstrap(handle.db, { adminPassword: undefined, demoData: false })
      const fresh = second.generatedAdminPassword as string
      expect(fresh).toEqual(expect.any(String))
      expect(fresh).not.toBe(lost)
      const hash = (await handle.db.selectFrom('users').select('password_hash').where('username', '=', 'admin').executeTakeFirstOrThrow()).password_hash
      expect(await verifyPassword(fresh, hash)).toBe(true)
      expect(await verifyPassword(lost, hash)).toBe(false)
      // Shown this time: later starts leave it alone.
      await markAdminPasswordShown(handle.db)
      expect((await bootstrap(handle.db, { adminPassword: undefined, demoData: false })).generatedAdminPassword).toBeUndefined()
    } finally {
      await handle.close()
    }
  })
})

describe.each(databaseKinds())('password hashes on %s', (kind) => {
  let t: TestApp
  beforeAll(async () => {
    t = await build(kind, { PASSWORD_COST: '15' })
  })
  afterAll(async () => {
    await t?.close()
  })

  test('new hashes use the configured scrypt cost (OWASP N=2^17 by default); an older hash is upgraded at sign-in', async () => {
    expect(loadConfig({}).passwordCost).toBe(17)
    expect(await hashPassword('x')).toMatch(/^scrypt\$131072\$8\$1\$/)
    const user = await t.user('upgraded')
    const stored = async () => (await t.owner.selectFrom('users').select('password_hash').where('id', '=', user.id).executeTakeFirstOrThrow()).password_hash
    expect(await stored()).toMatch(/^scrypt\$32768\$/)
    const password = `password-${user.username}`
    await sql`update users set password_hash = ${await hashPassword(password, 14)} where id = ${user.id}`.execute(t.owner)
    const signIn = await t.request({ method: 'POST', url: '/auth/token', payload: { username: user.username, password } })
    expect(signIn.statusCode).toBe(200)
    expect(await stored()).toMatch(/^scrypt\$32768\$/)
    expect(await verifyPassword(password, await stored())).toBe(true)
  })
})
