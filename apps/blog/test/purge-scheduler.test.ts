import Fastify from 'fastify'
import fp from 'fastify-plugin'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { databaseKinds, backdate } from '@tombstone/testing'
import { loadConfig } from '../src/config.ts'
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

  test('paced as configured: the run says so in its log line', async () => {
    const writer = await t.user('paced')
    const posts = [await createPost(t, writer), await createPost(t, writer)]
    for (const post of posts) await t.request({ method: 'DELETE', url: `/posts/${post}`, token: writer.token })
    await backdate(t.owner, sql`update posts set purge_at = now() - interval '1 minute' where id = any(${posts})`)
    const lines: Record<string, unknown>[] = []
    const stream = { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) }
    const instance = Fastify({ logger: { level: 'info', stream } })
    await instance.register(fp(async (scope) => void scope.decorate('db', t.app.db), { name: 'database' }))
    await instance.register(purgeScheduler, { intervalMinutes: 0.001, targetBatchMs: 25, dutyCycle: 0.5 })
    await instance.ready()
    try {
      for (let waited = 0; waited < 10_000 && !lines.some((line) => line.msg === 'periodic purge'); waited += 100) {
        await new Promise((done) => setTimeout(done, 100))
      }
    } finally {
      await instance.close()
    }
    const run = lines.find((line) => line.msg === 'periodic purge')
    expect(run).toMatchObject({ purged: 2, pacing: { targetBatchMs: 25, dutyCycle: 0.5, smallestBatchSize: 100, largestBatchSize: 100 } })
  })
})

describe('the periodic purge settings', () => {
  test('PURGE_TARGET_BATCH_MS and PURGE_DUTY_CYCLE pace it (docs/service.md); a bad value names its variable', () => {
    expect(loadConfig({ PURGE_TARGET_BATCH_MS: '20', PURGE_DUTY_CYCLE: '0.25' })).toMatchObject({ purgeTargetBatchMs: 20, purgeDutyCycle: 0.25 })
    expect(loadConfig({})).toMatchObject({ purgeTargetBatchMs: 0, purgeDutyCycle: 1 })
    for (const bad of ['0', '1.5', 'half', '-0.5']) expect(() => loadConfig({ PURGE_DUTY_CYCLE: bad })).toThrow(/PURGE_DUTY_CYCLE/)
    expect(() => loadConfig({ PURGE_TARGET_BATCH_MS: '20ms' })).toThrow(/PURGE_TARGET_BATCH_MS/)
  })
})
