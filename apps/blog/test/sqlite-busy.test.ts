/**
 * SQLite has one writer: a write that finds the database held by another writer past the busy
 * timeout fails with `SQLITE_BUSY`, which the service answers 503 with Retry-After, as it does an
 * unavailable PostgreSQL, never 500. Two real handles on one file; the first holds `BEGIN IMMEDIATE`.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { toProblem } from '../../../packages/fastify/src/problem-details.ts'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { build, createPost } from './helper.ts'

let folder: string
beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'tombstone-sqlite-busy-'))
})
afterAll(async () => {
  await rm(folder, { recursive: true, force: true })
})

test('a write against a database held by another writer is SQLITE_BUSY, answered 503 with Retry-After; after release it succeeds', () => {
  const file = join(folder, 'blog.db')
  const holder = new DatabaseSync(file)
  holder.exec('pragma journal_mode = wal; create table posts (id integer primary key, title text)')
  const writer = new DatabaseSync(file, { timeout: 0 })
  holder.exec('begin immediate')
  let caught: unknown
  try {
    writer.exec(`insert into posts (title) values ('late')`)
  } catch (error) {
    caught = error
  }
  expect(caught).toMatchObject({ code: 'ERR_SQLITE_ERROR', errcode: 5 })
  const problem = toProblem(caught)
  expect(problem.status).toBe(503)
  expect(problem.slug).toBe('service-unavailable')
  expect(problem.headers['retry-after']).toBe('1')
  holder.exec('commit')
  writer.exec(`insert into posts (title) values ('late')`)
  expect(holder.prepare('select count(*) as n from posts').get()).toEqual({ n: 1 })
  writer.close()
  holder.close()
})

test('the service on sqlite://file answers a write 503 with Retry-After while another writer holds the file, and loses nothing', async () => {
  // The busy timeout is DB_LOCK_TIMEOUT_MS: short here, so the held write gives up at once.
  const t = await build('sqlite', { DB_LOCK_TIMEOUT_MS: '50' })
  const holder = new DatabaseSync(t.file as string)
  try {
    const alice = await t.user('busy')
    holder.exec('begin immediate')
    const held = await t.request({ method: 'POST', url: '/posts', token: alice.token, payload: { title: 'While held', content: 'Some content' } })
    expect(held.statusCode).toBe(503)
    expect(held.headers['content-type']).toMatch(/application\/problem\+json/)
    expect(held.headers['retry-after']).toBe('1')
    expect(held.json()).toMatchObject({ status: 503 })
    // Reads still answer while the file is held (WAL: readers do not wait for the writer).
    expect((await t.request({ method: 'GET', url: '/posts' })).statusCode).toBe(200)
    holder.exec('commit')
    const post = await createPost(t, alice, { title: 'After release' })
    const titles = (await t.request({ method: 'GET', url: `/posts?author_id=${alice.id}` })).json<{ items: { id: number; title: string }[] }>()
    expect(titles.items.map((item) => item.title)).toEqual(['After release'])
    expect(titles.items[0]?.id).toBe(post)
  } finally {
    holder.close()
    await t.close()
  }
})
