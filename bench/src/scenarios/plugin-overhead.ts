/**
 * Scenario 1: what the read-filter plugin costs. Compile time with and without it (a simple query;
 * one with 3 joins, a CTE and 2 subqueries), the plugin's own share in µs against its targets, and
 * end to end on PostgreSQL against the same query written by hand (same filter) through `pg`.
 */
import { sql, type Kysely } from 'kysely'
import { QueryShapes } from '@tombstone/kysely'
import type { Database } from '../../../apps/blog/src/db/schema.ts'
import type { Server } from '../postgres.ts'
import type { ScenarioResult } from '../report.ts'
import { blogDatabase } from '../setup.ts'
import { interleaved, measurement, median, paired } from '../stats.ts'

/** The plugin's compile-time budget over Kysely alone, per query (issue 14). */
const COMPILE_OVERHEAD_TARGETS = { simple: 1.5, complex: 10 } as const

function simple(db: Kysely<Database>, id: number) {
  return db.selectFrom('posts').selectAll().where('id', '=', id)
}

function complex(db: Kysely<Database>, authorId: number) {
  return db
    .with('recent', (qb) => qb.selectFrom('posts').select(['posts.id', 'posts.author_id']).where('posts.author_id', '=', authorId))
    .selectFrom('recent')
    .innerJoin('posts', 'posts.id', 'recent.id')
    .innerJoin('users', 'users.id', 'posts.author_id')
    .leftJoin('comments', 'comments.post_id', 'posts.id')
    .select((eb) => [
      'posts.id',
      'posts.title',
      'users.username',
      eb.selectFrom('comments as c').select(eb.fn.countAll<number>().as('n')).whereRef('c.post_id', '=', 'posts.id').as('comment_count'),
    ])
    .where('users.id', 'in', (eb) => eb.selectFrom('users as u').select('u.id').where('u.role', '=', 'user'))
    .orderBy('posts.id', 'desc')
    .limit(20)
}

export async function pluginOverhead(server: Server, options: { quick: boolean; repetitions: number }): Promise<ScenarioResult> {
  const bench = await blogDatabase(server, 'bench_plugin_overhead')
  const users = options.quick ? 200 : 1000
  const postsPerUser = 10
  try {
    await sql`insert into users (username, email, password_hash) select 'user_' || g, 'user_' || g || '@x', 'x' from generate_series(1, ${users}::int) g`.execute(bench.plain)
    await sql`insert into posts (author_id, title, slug, content) select 1 + (g % ${users}::int), 'title ' || g, 'slug-' || g, 'content' from generate_series(1, ${users * postsPerUser}::int) g`.execute(bench.plain)
    await sql`insert into comments (post_id, author_id, body) select 1 + (g % ${users * postsPerUser}::int), 1 + (g % ${users}::int), 'c' from generate_series(1, ${users * postsPerUser * 3}::int) g`.execute(bench.plain)
    // Three posts in ten deleted with their comments (the database refuses a deleted post that keeps active ones).
    await bench.plain.transaction().execute(async (trx) => {
      await sql`update posts set deleted_at = now(), deletion_id = gen_random_uuid(), purge_at = now() + interval '30 days' where id % 10 < 3`.execute(trx)
      await sql`update comments c set deleted_at = now(), deletion_id = p.deletion_id from posts p where p.id = c.post_id and p.id % 10 < 3`.execute(trx)
    })
    await sql`vacuum analyze`.execute(bench.plain)

    // Compile is synchronous CPU work: timed in CPU time (robust to a shared machine), in many
    // short samples, Kysely alone and with the plugin alternating in rotating order.
    const compiles = options.quick ? 2_000 : 5_000
    const compileRounds = Math.max(options.repetitions, options.quick ? 15 : 31)
    const perCompile = (build: () => { compile(): unknown }) => async () => {
      const started = process.cpuUsage()
      for (let i = 0; i < compiles; i++) build().compile()
      const used = process.cpuUsage(started)
      return (used.user + used.system) / compiles
    }
    // Warm up the JIT on both paths.
    for (let i = 0; i < 3; i++) {
      await perCompile(() => simple(bench.db, 1))()
      await perCompile(() => complex(bench.plain, 1))()
    }
    const compileSimple = await interleaved(compileRounds, {
      plain: perCompile(() => simple(bench.plain, 42)),
      plugin: perCompile(() => simple(bench.db, 42)),
    })
    const compileComplex = await interleaved(compileRounds, {
      plain: perCompile(() => complex(bench.plain, 42)),
      plugin: perCompile(() => complex(bench.db, 42)),
    })

    // End to end: the same statement by hand (with the filter) through pg, through Kysely alone,
    // and through Kysely with the plugin. Sequential queries, so latency, not throughput, counts.
    const queries = options.quick ? 1_000 : 4_000
    const simpleSql = simple(bench.db, 1).compile().sql
    const complexSql = complex(bench.db, 1).compile().sql
    const id = (i: number) => 1 + ((i * 7919) % (users * postsPerUser))
    const author = (i: number) => 1 + ((i * 7919) % users)
    // The same queries compiled once (QueryShapes of @tombstone/kysely, as the service's hot reads):
    // builder, plugin and compiler paid on the first call only, the values bound on every call.
    const simpleOnce = new QueryShapes<Database, { id: number }>()
    const complexOnce = new QueryShapes<Database, { author: number }>()
    const endToEndSimple = await paired(options.repetitions, queries, {
      handWritten: (i) => bench.pool.query(simpleSql, [id(i)]),
      kysely: (i) => bench.plain.selectFrom('posts').selectAll().where('id', '=', id(i)).where('deleted_at', 'is', null).execute(),
      plugin: (i) => simple(bench.db, id(i)).execute(),
      once: (i) => simpleOnce.execute(bench.db, 'simple', { id: id(i) }, (db, $) => simple(db, $.id)),
    })
    // Hand-written SQL has its parameters ready: computed once per author, outside the timing.
    const complexParameters = Array.from({ length: users + 1 }, (_, a) => complex(bench.db, a).compile().parameters as unknown[])
    const endToEndComplex = await paired(options.repetitions, Math.max(200, queries / 4), {
      handWritten: (i) => bench.pool.query(complexSql, complexParameters[author(i)]),
      plugin: (i) => complex(bench.db, author(i)).execute(),
      once: (i) => complexOnce.execute(bench.db, 'complex', { author: author(i) }, (db, $) => complex(db, $.author)),
    })

    const ratio = (a: number[], b: number[]) => median(a) / median(b)
    // The plugin's share: per round, plugin minus Kysely alone (measured side by side), then the median.
    const overhead = (samples: { plain: number[]; plugin: number[] }) => samples.plugin.map((value, round) => value - (samples.plain[round] as number))
    const overheadSimple = overhead(compileSimple)
    const overheadComplex = overhead(compileComplex)
    const e2eSimpleRatio = ratio(endToEndSimple.plugin, endToEndSimple.handWritten)
    const e2eComplexRatio = ratio(endToEndComplex.plugin, endToEndComplex.handWritten)
    return {
      scenario: 'plugin-overhead',
      description: 'read-filter plugin: compile time, and end to end against hand-written SQL with the same filter',
      sizes: { users, posts: users * postsPerUser, comments: users * postsPerUser * 3, compiles_per_sample: compiles, queries_per_sample: queries },
      measurements: [
        measurement('compile simple, Kysely', compileSimple.plain, 'µs'),
        measurement('compile simple, Kysely + plugin', compileSimple.plugin, 'µs'),
        measurement('compile complex, Kysely', compileComplex.plain, 'µs'),
        measurement('compile complex, Kysely + plugin', compileComplex.plugin, 'µs'),
        measurement('compile simple, plugin overhead', overheadSimple, 'µs'),
        measurement('compile complex, plugin overhead', overheadComplex, 'µs'),
        measurement('e2e simple, hand-written SQL (pg)', endToEndSimple.handWritten, 'µs/query'),
        measurement('e2e simple, Kysely (filter by hand)', endToEndSimple.kysely, 'µs/query'),
        measurement('e2e simple, Kysely + plugin', endToEndSimple.plugin, 'µs/query'),
        measurement('e2e complex, hand-written SQL (pg)', endToEndComplex.handWritten, 'µs/query'),
        measurement('e2e complex, Kysely + plugin', endToEndComplex.plugin, 'µs/query'),
        measurement('e2e simple, Kysely + plugin, compiled once', endToEndSimple.once, 'µs/query'),
        measurement('e2e complex, Kysely + plugin, compiled once', endToEndComplex.once, 'µs/query'),
      ],
      ratios: [
        { name: 'compile simple, plugin / plain', value: ratio(compileSimple.plugin, compileSimple.plain), baseline: 'Kysely without the plugin' },
        { name: 'compile complex, plugin / plain', value: ratio(compileComplex.plugin, compileComplex.plain), baseline: 'Kysely without the plugin' },
        { name: 'e2e simple, plugin / hand-written', value: e2eSimpleRatio, baseline: 'hand-written SQL through pg' },
        { name: 'e2e simple, Kysely alone / hand-written', value: ratio(endToEndSimple.kysely, endToEndSimple.handWritten), baseline: 'hand-written SQL through pg' },
        { name: 'e2e complex, plugin / hand-written', value: e2eComplexRatio, baseline: 'hand-written SQL through pg' },
        { name: 'e2e simple, plugin compiled once / hand-written', value: ratio(endToEndSimple.once, endToEndSimple.handWritten), baseline: 'hand-written SQL through pg' },
        { name: 'e2e complex, plugin compiled once / hand-written', value: ratio(endToEndComplex.once, endToEndComplex.handWritten), baseline: 'hand-written SQL through pg' },
      ],
      targets: [
        {
          description: `compile overhead at most +${COMPILE_OVERHEAD_TARGETS.simple} µs over Kysely alone (simple: +${median(overheadSimple).toFixed(2)} µs)`,
          met: median(overheadSimple) <= COMPILE_OVERHEAD_TARGETS.simple,
        },
        {
          description: `compile overhead at most +${COMPILE_OVERHEAD_TARGETS.complex} µs over Kysely alone (complex: +${median(overheadComplex).toFixed(2)} µs)`,
          met: median(overheadComplex) <= COMPILE_OVERHEAD_TARGETS.complex,
        },
        { description: `end to end at most 1.03x hand-written SQL (simple: ${e2eSimpleRatio.toFixed(3)}x)`, met: e2eSimpleRatio <= 1.03 },
        { description: `end to end at most 1.03x hand-written SQL (complex: ${e2eComplexRatio.toFixed(3)}x)`, met: e2eComplexRatio <= 1.03 },
      ],
      notes: [
        `the generated simple statement: ${simpleSql}`,
        `compile = build + plugin transform + SQL generation, per query, CPU time, ${compileRounds} samples of ${compiles} per variant; overhead = median of the per-sample differences; e2e = sequential round trips, the variants paired call by call in rotating order, PostgreSQL on 127.0.0.1`,
        'compiled once: QueryShapes of @tombstone/kysely, the same SQL built and compiled on the first call, the values bound on every call; the targets above stay on the per-call compile',
      ],
    }
  } finally {
    await bench.close()
  }
}
