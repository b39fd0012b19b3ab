/**
 * Requests racing an account's deletion, forced deterministically on PostgreSQL: an admin's
 * deletion of a user is held open in a transaction; the user's request is sent and reaches the
 * database, where the toolkit's parent check waits on the user's row (seen in pg_stat_activity);
 * the deletion commits; the request is refused with a clear problem, not a 5xx, and nothing of it is
 * left behind. PGlite is one connection and cannot interleave, so this suite is PostgreSQL's only.
 */
import { sql, type Kysely } from 'kysely'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { postgresUrl } from '@tombstone/testing'
import { softDelete } from '@tombstone/kysely'
import { build, createPost, problem, type TestApp } from './helper.ts'

/** Resolves once a backend other than `self` waits on a lock while running a statement matching `pattern`. */
async function waitingStatement(db: Kysely<any>, pattern: string): Promise<void> {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const found = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
      where wait_event_type = 'Lock' and query ilike ${pattern} and pid <> pg_backend_pid()`.execute(db)
    if ((found.rows[0]?.n ?? 0) > 0) return
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  throw new Error(`no statement like ${pattern} ever waited on a lock`)
}

describe.skipIf(postgresUrl() === undefined)('requests racing an account deletion on postgres', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await build('postgres')
  })
  afterAll(async () => {
    await t?.close()
  })

  /** Deletes `userId` with the toolkit in an open transaction of the owner, runs `during`, then commits. */
  async function whileDeleting(userId: number, during: () => Promise<void>): Promise<void> {
    const trx = await t.owner.startTransaction().execute()
    try {
      await softDelete(trx, 'users', { id: userId }, { by: 'admin', reason: 'race' })
      await during()
    } finally {
      await trx.commit().execute()
    }
  }

  test('writing a post while the account is being deleted: 401, and no post of a deleted user', async () => {
    const user = await t.user('racer')
    let response: Promise<Awaited<ReturnType<TestApp['request']>>> | undefined
    await whileDeleting(user.id, async () => {
      response = t.request({ method: 'POST', url: '/posts', token: user.token, payload: { title: 'Last words', content: 'x' } })
      await waitingStatement(t.owner, 'insert into "posts"%')
    })
    problem(await (response as Promise<Awaited<ReturnType<TestApp['request']>>>), 401, 'unauthorized')
    const active = await t.owner.selectFrom('posts').select('id').where('author_id', '=', user.id).where('deleted_at', 'is', null).execute()
    expect(active).toEqual([])
  })

  test('commenting while the post is being deleted with its author: 401 or 404, never 5xx, no orphan', async () => {
    const author = await t.user('author')
    const commenter = await t.user('commenter')
    const post = await createPost(t, author)
    let response: Promise<Awaited<ReturnType<TestApp['request']>>> | undefined
    await whileDeleting(author.id, async () => {
      response = t.request({ method: 'POST', url: `/posts/${post}/comments`, token: commenter.token, payload: { body: 'too late' } })
      await waitingStatement(t.owner, 'insert into "comments"%')
    })
    problem(await (response as Promise<Awaited<ReturnType<TestApp['request']>>>), 404, 'not-found')
    const orphans = await sql<{ n: number }>`select count(*)::int as n from comments where post_id = ${post} and deleted_at is null`.execute(t.owner)
    expect(orphans.rows[0]?.n).toBe(0)
  })

  test('signing in while the account is being deleted: 401, and no token for the deleted account', async () => {
    const username = `leaver_${process.pid % 10_000}`
    const password = `password-${username}`
    const created = await t.request({ method: 'POST', url: '/users', payload: { username, email: `${username}@example.com`, password } })
    const id = created.json<{ id: number }>().id
    let response: Promise<Awaited<ReturnType<TestApp['request']>>> | undefined
    await whileDeleting(id, async () => {
      response = t.request({ method: 'POST', url: '/auth/token', payload: { username, password } })
      await waitingStatement(t.owner, 'insert into "tokens"%')
    })
    problem(await (response as Promise<Awaited<ReturnType<TestApp['request']>>>), 401, 'unauthorized')
    const tokens = await sql<{ n: number }>`select count(*)::int as n from tokens where user_id = ${id} and revoked_at is null`.execute(t.owner)
    expect(tokens.rows[0]?.n).toBe(0)
  })
})
