/**
 * Scenario 4: purging many due rows: rows/s, the longest batch (how long row locks are held), and
 * the p99 latency of concurrent API-like reads during the purge against the same reads without it.
 */
import { sql } from 'kysely'
import { purge } from '@tombstone/kysely'
import type { Server } from '../postgres.ts'
import type { ScenarioResult } from '../report.ts'
import { blogDatabase, type BenchDatabase } from '../setup.ts'
import { measurement, median, percentile } from '../stats.ts'

async function seed(bench: BenchDatabase, purgeable: number, active: number): Promise<void> {
  await sql`truncate users, posts, comments restart identity cascade`.execute(bench.plain).catch(async () => {
    // The guard refuses TRUNCATE unless the transaction opts in.
    await bench.plain.transaction().execute(async (trx) => {
      await sql`select tombstone_allow_hard_delete('purge')`.execute(trx)
      await sql`truncate users, posts, comments restart identity cascade`.execute(trx)
    })
  })
  await sql`insert into users (username, email, password_hash) select 'user_' || g, 'u' || g || '@x', 'x' from generate_series(1, 100) g`.execute(bench.plain)
  await sql`insert into posts (author_id, title, slug, content, deleted_at, deletion_id, purge_at)
    select 1 + g % 100, 'gone ' || g, 'gone-' || g, 'x', now() - interval '60 days', gen_random_uuid(), now() - interval '30 days'
    from generate_series(1, ${purgeable}::int) g`.execute(bench.plain)
  await sql`insert into posts (author_id, title, slug, content) select 1 + g % 100, 'kept ' || g, 'kept-' || g, 'x' from generate_series(1, ${active}::int) g`.execute(bench.plain)
  await sql`vacuum analyze`.execute(bench.plain)
}

/** GET /posts/{id}-like reads in a loop until stopped; returns their latencies in ms. */
function readLoop(bench: BenchDatabase, ids: number[], concurrency: number): { stop: () => Promise<number[]> } {
  let running = true
  const latencies: number[] = []
  const workers = Array.from({ length: concurrency }, async (_, worker) => {
    let i = worker
    while (running) {
      const id = ids[(i += concurrency) % ids.length] as number
      const started = performance.now()
      await bench.db.selectFrom('posts').selectAll().where('id', '=', id).executeTakeFirst()
      latencies.push(performance.now() - started)
    }
  })
  return {
    stop: async () => {
      running = false
      await Promise.all(workers)
      return latencies
    },
  }
}

/** The paced variants: duty cycles (the share of the time the purge may be busy), some with a batch time too. */
const PACED: readonly { readonly label: string; readonly pacing: { readonly dutyCycle: number; readonly targetBatchMs?: number } }[] = [
  { label: 'a duty cycle of 0.5', pacing: { dutyCycle: 0.5 } },
  { label: 'a duty cycle of 0.25', pacing: { dutyCycle: 0.25 } },
  { label: '10 ms batches and a duty cycle of 0.25', pacing: { dutyCycle: 0.25, targetBatchMs: 10 } },
  { label: '5 ms batches and a duty cycle of 0.1', pacing: { dutyCycle: 0.1, targetBatchMs: 5 } },
  { label: '5 ms batches and a duty cycle of 0.05', pacing: { dutyCycle: 0.05, targetBatchMs: 5 } },
]

export async function purgeScenario(server: Server, options: { quick: boolean; repetitions: number }): Promise<ScenarioResult> {
  const purgeable = options.quick ? 50_000 : 1_000_000
  const active = options.quick ? 5_000 : 100_000
  const pacedWindowMs = options.quick ? 4_000 : 20_000
  // Enough due rows that no paced variant runs out within its window (the quick run's did).
  const pacedSeed = Math.max(purgeable, 200_000)
  const bench = await blogDatabase(server, 'bench_purge', 12)
  const throughput: number[] = []
  const throughputWithReaders: number[] = []
  const paced = PACED.map((variant) => ({ ...variant, p99: [] as number[], rate: [] as number[], batch: [] as number[] }))
  const longest: number[] = []
  const p99During: number[] = []
  const p99Without: number[] = []
  /** The readers alone for a window among the paced variants: their side-by-side baseline. */
  const p99Beside: number[] = []
  const notes: string[] = []
  try {
    for (let round = 0; round < options.repetitions; round++) {
      // Alone: throughput and the longest batch.
      await seed(bench, purgeable, active)
      const alone = await purge(bench.db, { batchSize: 1000, by: 'bench' })
      if (alone.count !== purgeable) notes.push(`round ${round}: purged ${alone.count}, expected ${purgeable}`)
      throughput.push((alone.count * 1000) / alone.durationMs)
      longest.push(alone.longestBatchMs)
      // With readers: their p99 without a purge, then during one.
      await seed(bench, purgeable, active)
      const { rows } = await sql<{ id: number }>`select id from posts where deleted_at is null order by random() limit 5000`.execute(bench.plain)
      const ids = rows.map((row) => row.id)
      const baseline = readLoop(bench, ids, 4)
      await new Promise((resolve) => setTimeout(resolve, Math.max(1000, alone.durationMs)))
      p99Without.push(percentile(await baseline.stop(), 99))
      const during = readLoop(bench, ids, 4)
      const withReaders = await purge(bench.db, { batchSize: 1000, by: 'bench' })
      p99During.push(percentile(await during.stop(), 99))
      throughputWithReaders.push((withReaders.count * 1000) / withReaders.durationMs)
      // The same, with the purge pacing itself (what a purge beside live traffic can do): each paced
      // variant purges for a window (the full table at a quarter of the rate would take minutes), all
      // on one seed, their order rotating by round, with a window of the readers alone among them.
      await seed(bench, pacedSeed, active)
      const windows = [undefined, ...paced]
      for (const variant of [...windows.slice(round % windows.length), ...windows.slice(0, round % windows.length)]) {
        const readers = readLoop(bench, ids, 4)
        if (variant === undefined) {
          await new Promise((resolve) => setTimeout(resolve, pacedWindowMs))
          p99Beside.push(percentile(await readers.stop(), 99))
          continue
        }
        const run = await purge(bench.db, { batchSize: 1000, by: 'bench', ...variant.pacing, signal: AbortSignal.timeout(pacedWindowMs) })
        variant.p99.push(percentile(await readers.stop(), 99))
        variant.rate.push((run.count * 1000) / run.durationMs)
        variant.batch.push(run.pacing.lastBatchSize)
        if (!run.aborted) notes.push(`round ${round}: a paced purge (${JSON.stringify(variant.pacing)}) ended before its window`)
      }
    }
    const rate = median(throughput)
    const batch = median(longest)
    const p99Ratio = median(p99During) / median(p99Without)
    const pacedRatios = paced.map((variant) => median(variant.p99) / median(p99Beside))
    // The fastest pacing that keeps the readers' p99 within 1.5x of theirs alone.
    const within = paced
      .map((variant, index) => ({ variant, ratio: pacedRatios[index] as number, rate: median(variant.rate) }))
      .filter((entry) => entry.ratio <= 1.5)
      .sort((a, b) => b.rate - a.rate)[0]
    return {
      scenario: 'purge',
      description: `purge ${purgeable} due rows in batches of 1,000 while 4 readers read active rows`,
      sizes: { purgeable, active, batch_size: 1000, readers: 4 },
      measurements: [
        measurement('purge throughput, alone', throughput, 'rows/s'),
        measurement('purge throughput, with 4 readers', throughputWithReaders, 'rows/s'),
        measurement('longest batch', longest, 'ms'),
        measurement('p99 read latency without purge', p99Without, 'ms'),
        measurement('p99 read latency during purge', p99During, 'ms'),
        measurement('p99 read latency without purge, beside the paced runs', p99Beside, 'ms'),
        ...paced.flatMap((variant) => [
          measurement(`purge throughput, paced to ${variant.label}, with readers`, variant.rate, 'rows/s'),
          measurement(`p99 read latency during the purge paced to ${variant.label}`, variant.p99, 'ms'),
          ...(variant.pacing.targetBatchMs === undefined ? [] : [measurement(`batch size the ${variant.pacing.targetBatchMs} ms target settled on (last batch)`, variant.batch, 'rows')]),
        ]),
      ],
      ratios: [
        { name: 'p99 during / without', value: p99Ratio, baseline: 'the same reads without a purge' },
        ...paced.map((variant, index) => ({
          name: `p99 during a purge paced to ${variant.label} / without`,
          value: pacedRatios[index] as number,
          baseline: 'the same reads without a purge, beside the paced runs',
        })),
      ],
      targets: [
        { description: `at least 50,000 rows/s (${rate.toFixed(0)})`, met: rate >= 50_000 },
        { description: `longest batch at most 100 ms (${batch.toFixed(1)} ms)`, met: batch <= 100 },
        { description: `p99 of concurrent reads at most 1.5x, unpaced (${p99Ratio.toFixed(2)}x)`, met: p99Ratio <= 1.5 },
        {
          description:
            within === undefined
              ? `p99 of concurrent reads at most 1.5x at the best throughput that allows: no pacing measured keeps it (${pacedRatios.map((ratio) => `${ratio.toFixed(2)}x`).join(', ')})`
              : `p99 of concurrent reads at most 1.5x at the best throughput that allows: ${within.rate.toFixed(0)} rows/s, paced to ${within.variant.label} (${within.ratio.toFixed(2)}x)`,
          met: within !== undefined,
        },
      ],
      notes: [
        ...notes,
        'each purged row is also written to the audit trail (one row per purged row), in the same batch transaction',
        `paced: each variant purges for ${pacedWindowMs / 1000} s of a fresh table of ${pacedSeed} due rows (one seed for all, their order rotating by round) while the readers read; the readers also read alone for a window among them, the baseline of the paced ratios`,
        'readers: 4 concurrent loops of a primary-key read through Kysely + plugin (what GET /posts/{id} runs); the machine has 2 cores, shared by PostgreSQL, the purge and the readers',
      ],
    }
  } finally {
    await bench.close()
  }
}
