/**
 * The database's statement-level triggers (audit, parent check, legal-hold guard) query their
 * transition tables. A plan PL/pgSQL caches keeps the sizes of the statement it was made for: a
 * 100,000-row cascade's plan, JIT-compiled again on every later one-row UPDATE (250 ms each, the
 * bench's row-by-row loop), or a one-row plan run on a cascade. The triggers plan each statement
 * afresh; this suite reads their plans (auto_explain, nested statements, as notices) and checks
 * that every scan of a transition table is estimated at the statement's real size, in both orders
 * and past PL/pgSQL's five custom plans. The hard-delete grants prune, whose plan is cached too, is
 * read by the rows it visits. PostgreSQL only: PGlite ships no auto_explain.
 */
import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { postgresUrl } from '@tombstone/testing'
import { placeHold, restore, softDelete, SoftDeletePlugin } from '../src/index.ts'
import { SMALL_STATEMENT_ROWS } from '../src/schema/invariants.ts'
import { createFixture, definition, type Database, type Fixture } from './support/fixture.ts'
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

  /**
   * Runs one statement; returns the estimated rows of every unfiltered transition-table scan its
   * triggers planned (a filtered scan is estimated at a share of its size; the triggers' size probe,
   * bounded by its LIMIT, is left out).
   */
  const estimates = async (statement: string, values: unknown[] = []): Promise<number[]> => {
    plans = []
    await client.query(statement, values)
    return plans
      .filter((plan) => !plan.includes(`limit ${SMALL_STATEMENT_ROWS + 1}`))
      .flatMap((plan) => {
        const lines = plan.split('\n')
        return lines.flatMap((line, index) => {
          const match = /Named Tuplestore Scan\s+\(cost=[\d.]+\.\.[\d.]+ rows=(\d+)/.exec(line)
          const filtered = /^\s*Filter:/.test(lines[index + 1] ?? '')
          return match === null || filtered ? [] : [Number(match[1])]
        })
      })
  }
  /**
   * A large statement: every scan estimated at its real size (planned for it). A small one: none
   * estimated above the small-statement bound (a plan made for a large statement never serves it).
   */
  const expectSized = (scans: number[], rows: number) => {
    expect(scans.length).toBeGreaterThan(0)
    const sized = rows > SMALL_STATEMENT_ROWS ? scans.every((estimate) => estimate === rows) : scans.every((estimate) => estimate <= SMALL_STATEMENT_ROWS)
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
    // Sessions, a dependent of users without deleted_at of its own: the check's scans have no filter.
    const insert = (count: number) => estimates(`insert into sessions (user_id) select $1 from generate_series(1, ${count}) g`, [author])
    for (let round = 0; round < 6; round++) {
      expectSized(await insert(LARGE), LARGE)
      expectSized(await insert(1), 1)
    }
  })

  test('hard DELETEs of many rows then of one row (audit and legal-hold guard) each plan with their own size', async () => {
    // A held row elsewhere, so that the guard's join has rows to look at.
    const held = await insertPost(fixture.raw, await insertUser(fixture.raw))
    await placeHold(fixture.db, { table: 'posts', id: held }, { by: 'legal', reason: 'case 1' })
    const owner = await insertUser(fixture.raw)
    await sql`insert into posts (author_id, title, slug) select ${owner}, 'p', 'gone-' || g from generate_series(1, ${6 * 201}::int) g`.execute(fixture.raw)
    const remove = async (count: number) => {
      const { rows } = await client.query<{ id: number }>('select id from posts where author_id = $1 order by id limit $2', [owner, count])
      await client.query('begin')
      await client.query('select tombstone_allow_hard_delete()')
      const scans = await estimates('delete from posts where id = any($1)', [rows.map((row) => row.id)])
      await client.query('commit')
      return scans
    }
    for (let round = 0; round < 6; round++) {
      expectSized(await remove(200), 200)
      expectSized(await remove(1), 1)
    }
  })

  test('the hard-delete grants prune reads each grant once, however the table grew after its plan was made', async () => {
    // A fresh session caches the prune's plan while the grants table is empty and analyzed (a
    // nightly VACUUM ANALYZE between two purges), past PL/pgSQL's five custom plans…
    await sql`delete from tombstone_hard_delete_grants`.execute(fixture.raw)
    await sql`vacuum analyze tombstone_hard_delete_grants`.execute(fixture.raw)
    const session = new pg.Client({ connectionString: fixture.database.url })
    await session.connect()
    try {
      for (let round = 0; round < 6; round++) {
        await session.query('begin')
        await session.query('select tombstone_allow_hard_delete()')
        await session.query('rollback')
      }
      // …then a day's grants arrive (finished transactions, negative txids that no real one takes), and one older.
      const day = 2_000
      await sql`insert into tombstone_hard_delete_grants (txid, purpose) select -g, 'purge' from generate_series(1, ${day}::int) g`.execute(fixture.raw)
      await sql`insert into tombstone_hard_delete_grants (txid, purpose, at) values (${-(day + 1)}::bigint, 'hard_delete', now() - interval '25 hours')`.execute(fixture.raw)
      await session.query('begin')
      await session.query('select tombstone_allow_hard_delete()')
      const { rows } = await session.query<{ read: string }>(
        `select seq_tup_read + coalesce(idx_tup_fetch, 0) as read from pg_stat_xact_user_tables where relname = 'tombstone_hard_delete_grants'`,
      )
      await session.query('commit')
      // One pass: about a read per grant. The self-joined prune read day² (4,000,000) rows here.
      expect(Number(rows[0]?.read)).toBeLessThanOrEqual(2 * (day + 1))
      const left = await sql<{ old: number; recent: number }>`select count(*) filter (where at < now() - interval '1 day')::int as old,
        count(*) filter (where txid < 0 and at >= now() - interval '1 day')::int as recent from tombstone_hard_delete_grants`.execute(fixture.raw)
      expect(left.rows[0]).toEqual({ old: 0, recent: day })
    } finally {
      await session.end()
    }
  })

  test("a cascade planned on statistics taken while its rows were deleted fetches them by key, not by re-reading its locked subquery", async () => {
    // A session of the toolkit's own whose plans auto_explain reports.
    const pool = new pg.Pool({ connectionString: fixture.database.url, max: 1 })
    const cascadePlans: string[] = []
    pool.on('connect', (connection) => {
      connection.on('notice', (notice) => {
        if (notice.message?.includes('Query Text:') === true) cascadePlans.push(notice.message)
      })
    })
    const db = new Kysely<Database>({
      dialect: new PostgresDialect({
        pool,
        onCreateConnection: async (connection) => {
          for (const setting of ["load 'auto_explain'", 'set auto_explain.log_min_duration = 0', "set auto_explain.log_level = 'notice'"]) {
            await connection.executeQuery({ sql: setting, parameters: [], query: { kind: 'RawNode' } as never, queryId: { queryId: setting } })
          }
        },
      }),
      plugins: [new SoftDeletePlugin(definition)],
    })
    try {
      const user = await insertUser(fixture.raw)
      await sql`insert into posts (author_id, title, slug) select ${user}, 'p', 'cascade-plan-' || g from generate_series(1, 200) g`.execute(fixture.raw)
      await sql`insert into comments (post_id, author_id, body) select p.id, ${user}, 'c' from posts p, generate_series(1, 5) where p.author_id = ${user}`.execute(fixture.raw)
      await softDelete(db, 'users', { id: user })
      // What an autovacuum ANALYZE after a big delete leaves: the tables' active rows look like none.
      await sql`analyze posts`.execute(fixture.raw)
      await sql`analyze comments`.execute(fixture.raw)
      await restore(db, 'users', { id: user })
      cascadePlans.length = 0
      const result = await softDelete(db, 'users', { id: user })
      expect([result.tables.posts?.count, result.tables.comments?.count]).toEqual([200, 1000])
      const updates = cascadePlans.filter((plan) => /Query Text: update "(posts|comments)"/.test(plan))
      expect(updates).toHaveLength(2)
      // `key in (select … order by key for update)` was planned as a nested loop re-reading the
      // sorted, locked subquery for every row (quadratic); by key, an InitPlan runs it once.
      for (const plan of updates) {
        expect(plan).not.toMatch(/Nested Loop[^\n]*\n(?:[\s\S]*?)LockRows/)
        expect(plan).toMatch(/InitPlan/)
      }
    } finally {
      await db.destroy()
      await sql`analyze`.execute(fixture.raw)
    }
  })
})
