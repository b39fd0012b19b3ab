/**
 * Operating safely: the installation always keeps an admin who can sign in. The last active admin
 * can be neither soft-deleted nor deleted for good (409, nothing changed); with a second admin, the
 * first one can go.
 */
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { databaseKinds } from '@tombstone/testing'
import { build, problem, type TestApp } from './helper.ts'

describe.each(databaseKinds())('the last admin on %s', (kind) => {
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
})
