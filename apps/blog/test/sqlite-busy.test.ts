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
