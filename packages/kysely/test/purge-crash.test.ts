/**
 * A purge killed at random moments (SIGKILL of a child process) loses nothing that was not due,
 * leaves no orphan and no half-audited batch, and the next run completes the job. The moments are
 * counted in committed batches (the child prints a line after each), not in milliseconds, so that a
 * slow machine moves them nowhere.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { Kysely, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { databaseKinds, freshDatabase, type FreshDatabase } from '@tombstone/testing'
import { purge, SoftDeletePlugin } from '../src/index.ts'
import { PGliteDialect } from '../src/pglite/pglite-dialect.ts'
import { createSchema, definition, type Database } from './support/fixture.ts'

const CHILD = resolve(import.meta.dirname, 'support/purge-child.ts')

/** Due posts (each with a comment), deleted posts not due, active posts. */
async function seed(db: Kysely<Database>): Promise<void> {
  await sql`insert into users (id, username, email) values (1, 'crash', 'crash@example.com')`.execute(db)
  await sql`insert into posts (id, author_id, title, slug, deleted_at, deletion_id, purge_at)
    select g, 1, 'due', 'due-' || g, now() - interval '60 days', gen_random_uuid(), now() - interval '30 days' from generate_series(1, 3000) g`.execute(db)
  await sql`insert into comments (post_id, author_id, body, deleted_at, deletion_id, purge_at)
    select g, 1, 'x', now() - interval '60 days', gen_random_uuid(), now() - interval '30 days' from generate_series(1, 3000) g`.execute(db)
  await sql`insert into posts (id, author_id, title, slug, deleted_at, deletion_id, purge_at)
    select g, 1, 'kept', 'kept-' || g, now() - interval '1 day', gen_random_uuid(), now() + interval '29 days' from generate_series(3001, 3500) g`.execute(db)
  await sql`insert into posts (id, author_id, title, slug) select g, 1, 'active', 'active-' || g from generate_series(3501, 4000) g`.execute(db)
  await sql`insert into comments (post_id, author_id, body) select g, 1, 'alive' from generate_series(3501, 4000) g`.execute(db)
}

/** Runs a purge in a child process and kills it once `batches` batches have committed (0: at start-up). */
async function killedRun(target: string, batches: number): Promise<string> {
  const child = spawn(process.execPath, ['--conditions=source', CHILD, target, '25'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const exited = new Promise<void>((done) => child.once('exit', () => done()))
  await new Promise<void>((done) => {
    const committed = () => output.split('\n').filter((line) => line.startsWith('progress ')).length
    const check = () => {
      if (committed() >= batches || output.includes('done ')) done()
    }
    child.stdout.on('data', check)
    child.once('exit', () => done())
    check()
  })
  child.kill('SIGKILL')
  await exited
  return output
}

describe.each(databaseKinds())('purge killed at random moments on %s', (kind) => {
  let folder: string | undefined
  let database: FreshDatabase | undefined
  let target: string

  beforeAll(async () => {
    if (kind === 'postgres') {
      database = await freshDatabase('postgres')
      target = database.url as string
      const db = new Kysely<Database>({ dialect: database.dialect() })
      await createSchema(db)
      await seed(db)
      await db.destroy()
    } else {
      folder = await mkdtemp(join(tmpdir(), 'tombstone-crash-'))
      target = folder
      const pglite = await PGlite.create(folder)
      const db = new Kysely<Database>({ dialect: new PGliteDialect({ pglite }) })
      await createSchema(db)
      await seed(db)
      await db.destroy()
    }
  })
  afterAll(async () => {
    await database?.drop()
    if (folder !== undefined) await rm(folder, { recursive: true, force: true })
  })

  test('nothing not due is lost, nothing is orphaned, every purged row is audited once, the next run finishes', async () => {
    // At start-up, then after a random number of further committed batches each time.
    const kills = [0, ...Array.from({ length: 4 }, () => 1 + Math.floor(Math.random() * 8))]
    for (const batches of kills) await killedRun(target, batches)

    const dialect = kind === 'postgres' ? (database as FreshDatabase).dialect() : new PGliteDialect({ pglite: await PGlite.create(folder as string) })
    const db = new Kysely<Database>({ dialect, plugins: [new SoftDeletePlugin(definition)] })
    try {
      const midway = await sql<{ n: number }>`select
          (select count(*)::int from posts where id <= 3000) + (select count(*)::int from comments where body = 'x') as n`.execute(db)
      // The kills did land mid-job: some due rows were purged (children first), some were left for the next run.
      expect(midway.rows[0]?.n).toBeLessThan(6000)
      expect(midway.rows[0]?.n).toBeGreaterThan(0)
      const final = await purge(db, { batchSize: 500 })
      expect(final.aborted).toBe(false)
      const counts = await sql<{ due: number; kept: number; active: number; alive_comments: number; orphans: number; audited: number; distinct_audited: number }>`
        select
          (select count(*)::int from posts where id <= 3000) as due,
          (select count(*)::int from posts where id between 3001 and 3500) as kept,
          (select count(*)::int from posts where id > 3500) as active,
          (select count(*)::int from comments where body = 'alive') as alive_comments,
          (select count(*)::int from comments c left join posts p on p.id = c.post_id where p.id is null) as orphans,
          (select count(*)::int from tombstone_audit where action = 'purge' and entity = 'posts') as audited,
          (select count(distinct entity_id)::int from tombstone_audit where action = 'purge' and entity = 'posts') as distinct_audited`.execute(db)
      expect(counts.rows[0]).toEqual({ due: 0, kept: 500, active: 500, alive_comments: 500, orphans: 0, audited: 3000, distinct_audited: 3000 })
    } finally {
      await db.destroy()
    }
  })
})
