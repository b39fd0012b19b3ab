/**
 * The database's statement-level triggers (audit, parent check, legal-hold guard) query their
 * transition tables. A plan PL/pgSQL caches keeps the sizes of the statement it was made for: a
 * 100,000-row cascade's plan, JIT-compiled again on every later one-row UPDATE (250 ms each, the
 * bench's row-by-row loop), or a one-row plan run on a cascade. The triggers plan each statement
 * afresh; this suite reads their plans (auto_explain, nested statements, as notices) and checks
 * that every scan of a transition table is estimated at the statement's real size, in both orders
 * and past PL/pgSQL's five custom plans. PostgreSQL only: PGlite ships no auto_explain.
 */
import { sql } from 'kysely'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { postgresUrl } from '@tombstone/testing'
import { placeHold } from '../src/index.ts'
import { createFixture, type Fixture } from './support/fixture.ts'
import { insertPost, insertUser } from './support/data.ts'

const LARGE = 2_000

describe.skipIf(postgresUrl() === undefined)('trigger plans on postgres', () => {
  let fixture: Fixture
  let client: pg.Client
  let plans: string[] = []
  let author: number

  beforeAll(async () => {
    fixture = await createFixture('postgres')
    author = await insertUser(fixture.raw)
    client = new pg.Client({ connectionString: fixture.database.url })
    await client.connect()
    client.on('notice', (notice) => {
      if (notice.message?.includes('Query Text:') === true) plans.push(notice.message)
    })
    for (const setting of [
      "load 'auto_explain'",
      'set auto_explain.log_min_duration = 0',
      'set auto_explain.log_nested_statements = on',
      "set auto_explain.log_level = 'notice'",
    ]) {
      await client.query(setting)
    }
  })
  afterAll(async () => {
    await client?.end()
    await fixture?.close()
  })

  /** Runs one statement; returns the estimated rows of every transition-table scan its triggers planned. */
  const estimates = async (statement: string, values: unknown[] = []): Promise<number[]> => {
    plans = []
    await client.query(statement, values)
    return plans.flatMap((plan) =>
      [...plan.matchAll(/Named Tuplestore Scan\s+\(cost=[\d.]+\.\.[\d.]+ rows=(\d+)/g)].map((match) => Number(match[1])),
    )
  }
  /**
   * One row: every scan estimated at one row. Many rows: none estimated at one row (a scan with a
   * filter is estimated at the rows the filter keeps, a share of the real size).
   */
  const expectSized = (scans: number[], rows: number) => {
    expect(scans.length).toBeGreaterThan(0)
    const sized = rows === 1 ? scans.every((estimate) => estimate === 1) : scans.every((estimate) => estimate > 1 && estimate <= rows)
    expect(sized, `estimates ${scans.join(', ')} for ${rows} rows`).toBe(true)
  }

  test('UPDATEs of one row and of many rows, in turns, each plan with their own size', async () => {
    await sql`insert into posts (author_id, title, slug) select ${author}, 'p', 'plan-' || g from generate_series(1, ${LARGE}::int) g`.execute(fixture.raw)
    const { rows } = await client.query<{ id: number }>('select min(id) as id from posts where author_id = $1', [author])
    const one = rows[0]?.id
    // Six rounds: past the five custom plans after which PL/pgSQL may keep a generic plan.
    for (let round = 0; round < 6; round++) {
      expectSized(await estimates('update posts set deleted_at = now() where id = $1', [one]), 1)
      expectSized(await estimates('update posts set deleted_at = now() where author_id = $1 and deleted_at is null', [author]), LARGE - 1)
      // A restore makes rows active: the parent check locks and reads their parents too.
      expectSized(await estimates('update posts set deleted_at = null where author_id = $1 and id <> $2', [author, one]), LARGE - 1)
      expectSized(await estimates('update posts set deleted_at = null where id = $1', [one]), 1)
    }
  })

  test('INSERTs of many rows then of one row (parent check) each plan with their own size', async () => {
    const post = await insertPost(fixture.raw, author)
    const insert = (count: number) =>
      estimates(`insert into comments (post_id, author_id, body) select $1, $2, 'c' from generate_series(1, ${count}) g`, [post, author])
    for (let round = 0; round < 6; round++) {
      expectSized(await insert(LARGE), LARGE)
      expectSized(await insert(1), 1)
    }
  })

  test('hard DELETEs of many rows then of one row (audit and legal-hold guard) each plan with their own size', async () => {
    // A held row elsewhere, so that the guard's join has rows to look at.
    const held = await insertPost(fixture.raw, await insertUser(fixture.raw))
    await placeHold(fixture.db, { table: 'posts', id: held }, { by: 'legal', reason: 'case 1' })
    const remove = async (count: number) => {
      const { rows } = await client.query<{ id: number }>('select id from posts where author_id = $1 order by id limit $2', [author, count])
      await client.query('begin')
      await client.query('select tombstone_allow_hard_delete()')
      const scans = await estimates('delete from posts where id = any($1)', [rows.map((row) => row.id)])
      await client.query('commit')
      return scans
    }
    for (let round = 0; round < 6; round++) {
      expectSized(await remove(100), 100)
      expectSized(await remove(1), 1)
    }
  })
})
