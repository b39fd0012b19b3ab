import Fastify from 'fastify'
import fp from 'fastify-plugin'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { databaseKinds, backdate } from '@tombstone/testing'
import { purgeScheduler } from '../src/plugins/purge-scheduler.ts'
import { build, createPost, type TestApp } from './helper.ts'

describe.each(databaseKinds())('the periodic purge on %s', (kind) => {
  let t: TestApp
  beforeAll(async () => {
    t = await build(kind)
  })
  afterAll(async () => {
    await t?.close()
  })

  test('purges expired rows on its interval, and two schedulers on one database purge each row once', async () => {
    const writer = await t.user('expiring')
    const posts = [await createPost(t, writer), await createPost(t, writer), await createPost(t, writer)]
    for (const post of posts) await t.request({ method: 'DELETE', url: `/posts/${post}`, token: writer.token })
    await backdate(t.owner, sql`update posts set purge_at = now() - interval '1 minute' where id = any(${posts})`)
    // Two "instances": two schedulers on the same database, every 60 ms.
    const instances = await Promise.all(
      [1, 2].map(async () => {
        const instance = Fastify()
        await instance.register(fp(async (scope) => void scope.decorate('db', t.app.db), { name: 'database' }))
        await instance.register(purgeScheduler, { intervalMinutes: 0.001 })
        await instance.ready()
        return instance
      }),
    )
    try {
      for (let waited = 0; waited < 10_000; waited += 100) {
        const left = await sql<{ n: number }>`select count(*)::int as n from posts where id = any(${posts})`.execute(t.app.db)
        if (left.rows[0]?.n === 0) break
        await new Promise((done) => setTimeout(done, 100))
      }
    } finally {
      await Promise.all(instances.map((instance) => instance.close()))
    }
    const audit = await sql<{ n: number }>`select count(*)::int as n from tombstone_audit where action = 'purge' and entity = 'posts' and entity_id = any(${posts.map(String)})`.execute(t.app.db)
    expect(audit.rows[0]?.n).toBe(3)
    const left = await sql<{ n: number }>`select count(*)::int as n from posts where id = any(${posts})`.execute(t.app.db)
    expect(left.rows[0]?.n).toBe(0)
  })
})
