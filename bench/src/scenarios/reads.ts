/**
 * Scenario 2: reads on a tombstone-heavy table (90% deleted): list by author, get by slug, count
 * of active rows. The same data three ways: with the toolkit's partial indexes, with plain full
 * indexes (what most apps ship), and a table holding only the active rows (the ideal).
 */
import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import { createActiveIndex, createActiveUniqueIndex, createSoftDeleteIndexes, defineSoftDeletes, SoftDeletePlugin, softDeleteColumns } from '@tombstone/kysely'
import type { Server } from '../postgres.ts'
import type { ScenarioResult } from '../report.ts'
import { measurement, median, paired } from '../stats.ts'

interface PostRow {
  id: number
  author_id: number
  slug: string
  title: string
  created_at: Date
  deleted_at: Date | null
  deleted_by: string | null
  delete_reason: string | null
  deletion_id: string | null
  purge_at: Date | null
}
interface ReadsDatabase {
  posts_partial: PostRow
  posts_full: PostRow
  posts_active: PostRow
}

const TABLES = ['posts_partial', 'posts_full', 'posts_active'] as const
type Table = (typeof TABLES)[number]

export async function reads(server: Server, options: { quick: boolean; repetitions: number }): Promise<ScenarioResult> {
  const rows = options.quick ? 100_000 : 1_000_000
  const authors = rows / 100
  const url = await server.createDatabase('bench_reads')
  const pool = new pg.Pool({ connectionString: url, max: 4 })
  const definition = defineSoftDeletes<ReadsDatabase>()({ tables: { posts_partial: {}, posts_full: {} } })
  const db = new Kysely<ReadsDatabase>({ dialect: new PostgresDialect({ pool }), plugins: [new SoftDeletePlugin(definition)] })
  try {
    for (const table of TABLES) {
      await db.schema
        .createTable(table)
        .addColumn('id', 'integer', (col) => col.primaryKey())
        .addColumn('author_id', 'integer', (col) => col.notNull())
        .addColumn('slug', 'text', (col) => col.notNull())
        .addColumn('title', 'text', (col) => col.notNull())
        .addColumn('created_at', 'timestamptz', (col) => col.notNull())
        .$call(softDeleteColumns())
        .execute()
    }
    // 100 posts per author, 90 of them deleted; the same rows in the partial and full tables.
    await sql`insert into posts_partial (id, author_id, slug, title, created_at, deleted_at, deletion_id, purge_at)
      select g, 1 + (g % ${authors}::int), 'slug-' || g, 'Post ' || g, now() - (g || ' seconds')::interval,
             case when g % 10 <> 0 then now() - interval '1 day' end,
             case when g % 10 <> 0 then gen_random_uuid() end,
             case when g % 10 <> 0 then now() + interval '29 days' end
      from generate_series(1, ${rows}::int) g`.execute(db)
    await sql`insert into posts_full select * from posts_partial`.execute(db)
    await sql`insert into posts_active select * from posts_partial where deleted_at is null`.execute(db)
    // Toolkit: partial indexes over active rows (and its own purge/deletion indexes).
    await createActiveIndex(db, 'posts_partial', ['author_id', 'created_at'])
    await createActiveUniqueIndex(db, 'posts_partial', ['slug'])
    await createSoftDeleteIndexes(db, definition.table('posts_partial'))
    // What most apps ship: the same indexes, over every row.
    await sql`create index posts_full_author_idx on posts_full (author_id, created_at)`.execute(db)
    await sql`create index posts_full_slug_idx on posts_full (slug)`.execute(db)
    // The ideal: only active rows, plain indexes.
    await sql`create index posts_active_author_idx on posts_active (author_id, created_at)`.execute(db)
    await sql`create unique index posts_active_slug_idx on posts_active (slug)`.execute(db)
    await sql`vacuum analyze`.execute(db)

    const activeIds = Array.from({ length: 5000 }, (_, i) => 10 * (1 + ((i * 7919) % (rows / 10))))
    const list = (table: Table) => (i: number) =>
      db.selectFrom(table).selectAll().where('author_id', '=', 1 + ((i * 104_729) % authors)).orderBy('created_at', 'desc').limit(20).execute()
    const bySlug = (table: Table) => (i: number) =>
      db.selectFrom(table).selectAll().where('slug', '=', `slug-${activeIds[i % activeIds.length]}`).executeTakeFirst()
    const count = (table: Table) => () => db.selectFrom(table).select(sql<number>`count(*)::int`.as('n')).executeTakeFirstOrThrow()

    const iterations = options.quick ? 500 : 2000
    const listSamples = await paired(options.repetitions, iterations, { partial: list('posts_partial'), full: list('posts_full'), active: list('posts_active') })
    const slugSamples = await paired(options.repetitions, iterations, { partial: bySlug('posts_partial'), full: bySlug('posts_full'), active: bySlug('posts_active') })
    const countSamples = await paired(options.repetitions, options.quick ? 20 : 40, { partial: count('posts_partial'), full: count('posts_full'), active: count('posts_active') })

    // Correctness: the three give the same answers.
    const counts = await Promise.all(TABLES.map((table) => count(table)()))
    const same = new Set(counts.map((row) => row.n)).size === 1
    const plans = await sql<{ 'QUERY PLAN': string }>`explain select count(*) from posts_partial where deleted_at is null`.execute(db)

    const r = (samples: Record<'partial' | 'full' | 'active', number[]>, variant: 'partial' | 'full') => median(samples[variant]) / median(samples.active)
    const targets = [
      ['list by author', listSamples],
      ['get by slug', slugSamples],
      ['count of active posts', countSamples],
    ] as const
    return {
      scenario: 'reads',
      description: `reads on ${rows} posts, 90% deleted: toolkit partial indexes vs plain full indexes vs an active-only table`,
      sizes: { rows, active_rows: rows / 10, authors },
      measurements: targets.flatMap(([name, samples]) => [
        measurement(`${name}, partial indexes (toolkit)`, samples.partial, 'µs/query'),
        measurement(`${name}, plain full indexes`, samples.full, 'µs/query'),
        measurement(`${name}, active-only table`, samples.active, 'µs/query'),
      ]),
      ratios: targets.flatMap(([name, samples]) => [
        { name: `${name}: toolkit / active-only`, value: r(samples, 'partial'), baseline: 'active-only table' },
        { name: `${name}: plain full indexes / active-only`, value: r(samples, 'full'), baseline: 'active-only table' },
        { name: `${name}: gain of partial over plain indexes`, value: median(samples.full) / median(samples.partial), baseline: 'plain full indexes (x times faster)' },
      ]),
      targets: targets.map(([name, samples]) => ({
        description: `${name} within 1.2x of the active-only table (${r(samples, 'partial').toFixed(3)}x)`,
        met: r(samples, 'partial') <= 1.2,
      })),
      notes: [
        same ? 'the three tables return the same counts' : `the tables disagree: ${JSON.stringify(counts)}`,
        `count plan on the toolkit table: ${plans.rows.map((row) => row['QUERY PLAN'].trim()).join(' / ')}`,
        'queries go through Kysely (+ the plugin for the two soft-delete tables); the filter deleted_at is null is the plugin’s',
      ],
    }
  } finally {
    await db.destroy()
  }
}
