/**
 * Scenario 3: soft delete then restore a user with many posts and comments: the toolkit (one
 * statement per table), the physical limit (the same UPDATEs by hand on twins with only primary and
 * foreign-key indexes), a row-by-row loop (the pattern of the peers, its rate over a time budget), TypeORM `softRemove` with
 * cascade, and Sequelize paranoid `destroy` with `onDelete: 'CASCADE', hooks: true`. Same tables,
 * same database, same run.
 */
import { sql } from 'kysely'
import { restore, softDelete } from '@tombstone/kysely'
import { spawn } from 'node:child_process'
import { resolve } from 'node:path'
import type { Server } from '../postgres.ts'
import type { ScenarioResult } from '../report.ts'
import { blogDatabase, type BenchDatabase } from '../setup.ts'
import { measurement, median, time } from '../stats.ts'

const VICTIM = 1

export async function seed(bench: BenchDatabase, posts: number, commentsPerPost: number): Promise<void> {
  const others = 200
  await sql`insert into users (id, username, email, password_hash) overriding system value
    select g, 'user_' || g, 'user_' || g || '@x', 'x' from generate_series(1, ${others + 1}::int) g`.execute(bench.plain)
  await sql`select setval(pg_get_serial_sequence('users', 'id'), ${others + 1})`.execute(bench.plain)
  // The victim's posts, each with comments by others; others' posts, with some comments by the victim.
  await sql`insert into posts (author_id, title, slug, content) select ${VICTIM}, 'victim ' || g, 'v-' || g, 'x' from generate_series(1, ${posts}::int) g`.execute(bench.plain)
  await sql`insert into posts (author_id, title, slug, content) select 2 + (g % ${others}::int), 'other ' || g, 'o-' || g, 'x' from generate_series(1, ${posts}::int) g`.execute(bench.plain)
  await sql`insert into comments (post_id, author_id, body)
    select p.id, 2 + ((p.id * 31 + n) % ${others}::int), 'c' from posts p cross join generate_series(1, ${commentsPerPost}::int) n where p.author_id = ${VICTIM}`.execute(bench.plain)
  await sql`insert into comments (post_id, author_id, body)
    select p.id, case when p.id % 10 = 0 then ${VICTIM} else 2 + (p.id % ${others}::int) end, 'c' from posts p where p.author_id <> ${VICTIM}`.execute(bench.plain)
  await sql`vacuum analyze`.execute(bench.plain)
}

/** Rows the cascade must reach: the user, their posts, comments on those, their comments elsewhere. */
export async function expected(bench: BenchDatabase): Promise<number> {
  const { rows } = await sql<{ n: number }>`select 1
    + (select count(*) from posts where author_id = ${VICTIM})
    + (select count(*) from comments c where c.author_id = ${VICTIM} or c.post_id in (select id from posts where author_id = ${VICTIM})) as n`.execute(bench.plain)
  return Number(rows[0]?.n)
}

export async function deletedCount(bench: BenchDatabase): Promise<number> {
  const { rows } = await sql<{ n: number }>`select
    (select count(*) from users where deleted_at is not null) + (select count(*) from posts where deleted_at is not null)
    + (select count(*) from comments where deleted_at is not null) as n`.execute(bench.plain)
  return Number(rows[0]?.n)
}

async function resetBySql(bench: BenchDatabase): Promise<void> {
  for (const table of ['users', 'posts', 'comments']) {
    await sql`update ${sql.table(table)} set deleted_at = null, deleted_by = null, delete_reason = null, deletion_id = null, purge_at = null where deleted_at is not null`.execute(bench.plain)
  }
}

/**
 * The peers' pattern: walk the graph, one UPDATE per row, in one transaction, for at most
 * `budgetMs`; then rolled back whatever happened, so that the state is as before. Returns the rows
 * it updated per second (with the database's triggers, each single-row UPDATE pays them, so the
 * whole walk of 111,001 rows would take many minutes: the rate is what is compared).
 */
async function loop(bench: BenchDatabase, deleting: boolean, budgetMs: number): Promise<{ rows: number; ms: number; finished: boolean }> {
  const client = await bench.pool.connect()
  const value = deleting ? 'now()' : 'null'
  const state = deleting ? 'deleted_at is null' : 'deleted_at is not null'
  const started = performance.now()
  let rows = 0
  const over = () => performance.now() - started > budgetMs
  const update = async (table: string, id: number) => {
    await client.query(`update ${table} set deleted_at = ${value} where id = $1`, [id])
    rows += 1
  }
  try {
    await client.query('begin')
    await update('users', VICTIM)
    const posts = await client.query<{ id: number }>(`select id from posts where author_id = $1 and ${state}`, [VICTIM])
    for (const post of posts.rows) {
      if (over()) break
      await update('posts', post.id)
      const comments = await client.query<{ id: number }>(`select id from comments where post_id = $1 and ${state}`, [post.id])
      for (const comment of comments.rows) await update('comments', comment.id)
    }
    const own = over() ? { rows: [] } : await client.query<{ id: number }>(`select id from comments where author_id = $1 and ${state}`, [VICTIM])
    for (const comment of own.rows) {
      if (over()) break
      await update('comments', comment.id)
    }
    const ms = performance.now() - started
    return { rows, ms, finished: !over() }
  } finally {
    await client.query('rollback').catch(() => undefined)
    client.release()
  }
}

/**
 * The physical limit: the toolkit's tables copied as they are to `ceiling_*` twins with only their
 * primary keys, foreign keys and foreign-key indexes (no partial indexes, no triggers, no audit).
 */
async function ceilingTables(bench: BenchDatabase): Promise<void> {
  for (const table of ['users', 'posts', 'comments']) {
    await sql.raw(`drop table if exists ceiling_${table} cascade`).execute(bench.plain)
    await sql.raw(`create table ceiling_${table} (like ${table} including defaults)`).execute(bench.plain)
    await sql.raw(`insert into ceiling_${table} select * from ${table}`).execute(bench.plain)
    await sql.raw(`alter table ceiling_${table} add primary key (id)`).execute(bench.plain)
  }
  await sql.raw(`alter table ceiling_posts add foreign key (author_id) references ceiling_users (id)`).execute(bench.plain)
  await sql.raw(`alter table ceiling_comments add foreign key (post_id) references ceiling_posts (id), add foreign key (author_id) references ceiling_users (id)`).execute(bench.plain)
  await sql.raw(`create index on ceiling_posts (author_id)`).execute(bench.plain)
  await sql.raw(`create index on ceiling_comments (post_id)`).execute(bench.plain)
  await sql.raw(`create index on ceiling_comments (author_id)`).execute(bench.plain)
  await sql.raw(`vacuum analyze ceiling_users, ceiling_posts, ceiling_comments`).execute(bench.plain)
}

/** The toolkit's cascade written by hand on the twins: one UPDATE per table, the same columns written. */
async function ceiling(bench: BenchDatabase, deleting: boolean): Promise<number> {
  const client = await bench.pool.connect()
  try {
    await client.query('begin')
    let rows = 0
    const set = deleting
      ? `deleted_at = now(), deleted_by = 'bench', delete_reason = null, deletion_id = '00000000-0000-4000-8000-000000000001', purge_at = now() + interval '30 days'`
      : 'deleted_at = null, deleted_by = null, delete_reason = null, deletion_id = null, purge_at = null'
    const state = deleting ? 'deleted_at is null' : `deletion_id = '00000000-0000-4000-8000-000000000001'`
    rows += (await client.query(`update ceiling_users set ${set} where id = $1 and ${state}`, [VICTIM])).rowCount ?? 0
    rows += (await client.query(`update ceiling_posts set ${set} where author_id = $1 and ${state}`, [VICTIM])).rowCount ?? 0
    rows += (
      await client.query(
        `update ceiling_comments set ${set} where (post_id in (select id from ceiling_posts where author_id = $1) or author_id = $1) and ${state}`,
        [VICTIM],
      )
    ).rowCount ?? 0
    await client.query('commit')
    return rows
  } catch (error) {
    await client.query('rollback')
    throw error
  } finally {
    client.release()
  }
}

/** Runs one peer's delete (and restore) in a child process with a time limit. */
async function peerRun(
  orm: 'typeorm' | 'sequelize',
  url: string,
  timeoutMs: number,
): Promise<{ delete_ms: number; restore_ms: number | null } | { failure: string } | { refused: string }> {
  const started = performance.now()
  const child = spawn(process.execPath, ['--max-old-space-size=4096', '--conditions=source', resolve(import.meta.dirname, '../peer-cascade.ts'), orm, url, String(VICTIM)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  let errors = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()))
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  const code = await new Promise<number | null>((done) => child.once('exit', (exit) => done(exit)))
  clearTimeout(timer)
  const seconds = ((performance.now() - started) / 1000).toFixed(0)
  if (code === 0) return JSON.parse(output.trim().split('\n').at(-1) as string)
  if (/heap out of memory/.test(errors)) return { failure: `ran out of its 4 GB heap after ${seconds} s` }
  if (code === null) return { failure: `did not finish within ${seconds} s (stopped)` }
  return { failure: `failed (exit ${code}): ${errors.trim().split('\n').at(-1) ?? ''}` }
}

export async function cascade(server: Server, options: { quick: boolean; repetitions: number }): Promise<ScenarioResult> {
  const posts = options.quick ? 500 : 10_000
  const commentsPerPost = 10
  const bench = await blogDatabase(server, 'bench_cascade')
  const notes: string[] = []
  try {
    await seed(bench, posts, commentsPerPost)
    const reach = await expected(bench)
    const check = async (variant: string) => {
      const n = await deletedCount(bench)
      if (n !== reach) notes.push(`${variant} soft-deleted ${n} rows where the cascade reaches ${reach}`)
    }
    await ceilingTables(bench)
    const loopBudgetMs = options.quick ? 2_000 : 10_000
    const samples: Record<string, number[]> = {
      'toolkit delete': [],
      'toolkit restore': [],
      'physical limit delete (by hand, PK and FK indexes only)': [],
      'physical limit restore (by hand, PK and FK indexes only)': [],
      'TypeORM softRemove (load + cascade)': [],
      'TypeORM recover (load + cascade)': [],
      'Sequelize paranoid destroy (hooks cascade)': [],
    }
    const rates: Record<string, number[]> = {
      'toolkit delete': [],
      'toolkit restore': [],
      'physical limit delete': [],
      'physical limit restore': [],
      'row-by-row loop delete': [],
      'row-by-row loop restore': [],
    }
    const perSecond = (rows: number, ms: number) => (rows / ms) * 1000
    for (let round = 0; round < options.repetitions; round++) {
      // Each round: the toolkit's delete and restore, then the same cascade by hand on the twins.
      const deleting = await time(() => softDelete(bench.db, 'users', { id: VICTIM }, { by: 'bench' }))
      samples['toolkit delete']?.push(deleting)
      rates['toolkit delete']?.push(perSecond(reach, deleting))
      await check('toolkit')
      const restoring = await time(() => restore(bench.db, 'users', { id: VICTIM }))
      samples['toolkit restore']?.push(restoring)
      rates['toolkit restore']?.push(perSecond(reach, restoring))
      if ((await deletedCount(bench)) !== 0) notes.push('toolkit restore left rows deleted')
      for (const [deletingByHand, name] of [[true, 'delete'], [false, 'restore']] as const) {
        let rows = 0
        const ms = await time(async () => {
          rows = await ceiling(bench, deletingByHand)
        })
        if (rows !== reach) notes.push(`the physical limit's ${name} wrote ${rows} rows where the cascade reaches ${reach}`)
        samples[`physical limit ${name} (by hand, PK and FK indexes only)`]?.push(ms)
        rates[`physical limit ${name}`]?.push(perSecond(rows, ms))
      }
    }
    // The loop last, once per direction, rolled back (a toolkit run right after a rolled-back loop
    // was seen far slower in a quick run: not the toolkit's steady state, so not measured there).
    const loopDelete = await loop(bench, true, loopBudgetMs)
    rates['row-by-row loop delete']?.push(perSecond(loopDelete.rows, loopDelete.ms))
    await softDelete(bench.db, 'users', { id: VICTIM }, { by: 'bench' })
    const loopRestore = await loop(bench, false, loopBudgetMs)
    rates['row-by-row loop restore']?.push(perSecond(loopRestore.rows, loopRestore.ms))
    await resetBySql(bench)
    notes.push(
      `the row-by-row loop runs for at most ${loopBudgetMs / 1000} s per direction and is rolled back: its rate (rows/s) is compared, since every single-row UPDATE pays the database's triggers and the whole walk would take many minutes`,
    )

    // The peers, on the same tables, each run in its own process (one ran out of memory at the full
    // size): slow ones get fewer repetitions within a time budget, and a run that fails or times out
    // is reported as such.
    const budgetMs = options.quick ? 15_000 : 240_000
    for (const orm of ['typeorm', 'sequelize'] as const) {
      const started = performance.now()
      for (let round = 0; round < options.repetitions && (round === 0 || performance.now() - started < budgetMs); round++) {
        const outcome = await peerRun(orm, bench.url, budgetMs)
        if ('failure' in outcome) {
          notes.push(`${orm === 'typeorm' ? 'TypeORM' : 'Sequelize'} at this size: ${outcome.failure}`)
          break
        }
        if ('refused' in outcome) {
          notes.push(`${orm === 'typeorm' ? 'TypeORM' : 'Sequelize'}'s delete was refused by the database (it left rows active under a deleted one): ${outcome.refused}`)
          break
        }
        if (orm === 'typeorm') {
          samples['TypeORM softRemove (load + cascade)']?.push(outcome.delete_ms)
          samples['TypeORM recover (load + cascade)']?.push(outcome.restore_ms as number)
          const left = await deletedCount(bench)
          if (left !== 0) notes.push(`TypeORM recover left ${left} rows deleted`)
        } else {
          samples['Sequelize paranoid destroy (hooks cascade)']?.push(outcome.delete_ms)
          await check('Sequelize destroy')
        }
        await resetBySql(bench)
      }
      await resetBySql(bench)
    }
    notes.push('Sequelize has no cascading restore for paranoid models (restore() brings back the one row), so it has no restore figure')

    const m = (name: string) => measurement(name, samples[name] ?? [], 'ms')
    const rate = (name: string) => median(rates[name] ?? [])
    const toolkitDelete = median(samples['toolkit delete'] ?? [])
    const toolkitRestore = median(samples['toolkit restore'] ?? [])
    const floor = 150_000
    return {
      scenario: 'cascade',
      description: `soft delete then restore one user with ${posts} posts and ${posts * commentsPerPost} comments on them`,
      sizes: { posts, comments_on_them: posts * commentsPerPost, rows_reached: reach, loop_budget_ms: loopBudgetMs },
      measurements: [
        ...Object.keys(samples)
          .filter((name) => (samples[name]?.length ?? 0) > 0)
          .map(m),
        ...Object.keys(rates).map((name) => measurement(`${name}, rate`, rates[name] ?? [], 'rows/s')),
      ],
      ratios: [
        { name: 'toolkit delete / physical limit (rows/s)', value: rate('toolkit delete') / rate('physical limit delete'), baseline: 'the same UPDATEs by hand, PK and FK indexes only' },
        { name: 'toolkit restore / physical limit (rows/s)', value: rate('toolkit restore') / rate('physical limit restore'), baseline: 'the same UPDATEs by hand, PK and FK indexes only' },
        { name: 'toolkit delete / row-by-row loop (rows/s)', value: rate('toolkit delete') / rate('row-by-row loop delete'), baseline: 'row-by-row loop (higher is better for the toolkit)' },
        { name: 'toolkit restore / row-by-row loop (rows/s)', value: rate('toolkit restore') / rate('row-by-row loop restore'), baseline: 'row-by-row loop' },
        { name: 'TypeORM softRemove / toolkit delete', value: median(samples['TypeORM softRemove (load + cascade)'] ?? []) / toolkitDelete, baseline: 'toolkit' },
        { name: 'TypeORM recover / toolkit restore', value: median(samples['TypeORM recover (load + cascade)'] ?? []) / toolkitRestore, baseline: 'toolkit' },
        { name: 'Sequelize destroy / toolkit delete', value: median(samples['Sequelize paranoid destroy (hooks cascade)'] ?? []) / toolkitDelete, baseline: 'toolkit' },
      ].filter((ratio) => Number.isFinite(ratio.value)),
      targets: [
        { description: `toolkit delete at least ${floor} rows/s (${rate('toolkit delete').toFixed(0)})`, met: rate('toolkit delete') >= floor },
        { description: `toolkit restore at least ${floor} rows/s (${rate('toolkit restore').toFixed(0)})`, met: rate('toolkit restore') >= floor },
        { description: `delete at least 50x the row-by-row loop's rate (${(rate('toolkit delete') / rate('row-by-row loop delete')).toFixed(1)}x)`, met: rate('toolkit delete') / rate('row-by-row loop delete') >= 50 },
        { description: `restore at least 50x the row-by-row loop's rate (${(rate('toolkit restore') / rate('row-by-row loop restore')).toFixed(1)}x)`, met: rate('toolkit restore') / rate('row-by-row loop restore') >= 50 },
      ],
      notes: [...new Set(notes)],
    }
  } finally {
    await bench.close()
  }
}
