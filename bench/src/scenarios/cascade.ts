/**
 * Scenario 3: soft delete then restore a user with many posts and comments: the toolkit (one
 * statement per table), a row-by-row loop (the pattern of the peers), TypeORM `softRemove` with
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

/** The peers' pattern: walk the graph, one UPDATE per row, in one transaction. */
async function loop(bench: BenchDatabase, deleting: boolean): Promise<void> {
  const client = await bench.pool.connect()
  const value = deleting ? 'now()' : 'null'
  const state = deleting ? 'deleted_at is null' : 'deleted_at is not null'
  try {
    await client.query('begin')
    await client.query(`update users set deleted_at = ${value} where id = $1`, [VICTIM])
    const posts = await client.query<{ id: number }>(`select id from posts where author_id = $1 and ${state}`, [VICTIM])
    for (const post of posts.rows) {
      await client.query(`update posts set deleted_at = ${value} where id = $1`, [post.id])
      const comments = await client.query<{ id: number }>(`select id from comments where post_id = $1 and ${state}`, [post.id])
      for (const comment of comments.rows) await client.query(`update comments set deleted_at = ${value} where id = $1`, [comment.id])
    }
    const own = await client.query<{ id: number }>(`select id from comments where author_id = $1 and ${state}`, [VICTIM])
    for (const comment of own.rows) await client.query(`update comments set deleted_at = ${value} where id = $1`, [comment.id])
    await client.query('commit')
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
): Promise<{ delete_ms: number; restore_ms: number | null } | { failure: string }> {
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
    const samples: Record<string, number[]> = {
      'toolkit delete': [],
      'toolkit restore': [],
      'row-by-row loop delete': [],
      'row-by-row loop restore': [],
      'TypeORM softRemove (load + cascade)': [],
      'TypeORM recover (load + cascade)': [],
      'Sequelize paranoid destroy (hooks cascade)': [],
    }
    for (let round = 0; round < options.repetitions; round++) {
      samples['toolkit delete']?.push(await time(() => softDelete(bench.db, 'users', { id: VICTIM }, { by: 'bench' })))
      await check('toolkit')
      samples['toolkit restore']?.push(await time(() => restore(bench.db, 'users', { id: VICTIM })))
      if ((await deletedCount(bench)) !== 0) notes.push('toolkit restore left rows deleted')
      samples['row-by-row loop delete']?.push(await time(() => loop(bench, true)))
      await check('row-by-row loop')
      samples['row-by-row loop restore']?.push(await time(() => loop(bench, false)))
      await resetBySql(bench)
    }

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
    const toolkitDelete = median(samples['toolkit delete'] ?? [])
    const toolkitRestore = median(samples['toolkit restore'] ?? [])
    const loopDelete = median(samples['row-by-row loop delete'] ?? [])
    const loopRestore = median(samples['row-by-row loop restore'] ?? [])
    const limit = 2000
    return {
      scenario: 'cascade',
      description: `soft delete then restore one user with ${posts} posts and ${posts * commentsPerPost} comments on them`,
      sizes: { posts, comments_on_them: posts * commentsPerPost, rows_reached: reach },
      measurements: Object.keys(samples)
        .filter((name) => (samples[name]?.length ?? 0) > 0)
        .map(m),
      ratios: [
        { name: 'loop delete / toolkit delete', value: loopDelete / toolkitDelete, baseline: 'toolkit (higher is better for the toolkit)' },
        { name: 'loop restore / toolkit restore', value: loopRestore / toolkitRestore, baseline: 'toolkit' },
        { name: 'TypeORM softRemove / toolkit delete', value: median(samples['TypeORM softRemove (load + cascade)'] ?? []) / toolkitDelete, baseline: 'toolkit' },
        { name: 'TypeORM recover / toolkit restore', value: median(samples['TypeORM recover (load + cascade)'] ?? []) / toolkitRestore, baseline: 'toolkit' },
        { name: 'Sequelize destroy / toolkit delete', value: median(samples['Sequelize paranoid destroy (hooks cascade)'] ?? []) / toolkitDelete, baseline: 'toolkit' },
      ].filter((ratio) => Number.isFinite(ratio.value)),
      targets: [
        { description: `toolkit delete under ${limit} ms (${toolkitDelete.toFixed(0)} ms)`, met: toolkitDelete < limit },
        { description: `toolkit restore under ${limit} ms (${toolkitRestore.toFixed(0)} ms)`, met: toolkitRestore < limit },
        { description: `delete at least 50x faster than the loop (${(loopDelete / toolkitDelete).toFixed(1)}x)`, met: loopDelete / toolkitDelete >= 50 },
        { description: `restore at least 50x faster than the loop (${(loopRestore / toolkitRestore).toFixed(1)}x)`, met: loopRestore / toolkitRestore >= 50 },
      ],
      notes: [...new Set(notes)],
    }
  } finally {
    await bench.close()
  }
}
