/**
 * Scenario: the toolkit on SQLite and MariaDB/MySQL, each against hand-written SQL on the same
 * database, in the same run: (1) cascade soft delete + restore of N posts with 10 comments each,
 * against the same UPDATEs on twin tables without the toolkit's triggers; (2) a list of active
 * posts by author with 90% of rows deleted, through the plugin against hand-written SQL with the
 * filter (same table, same index); (3) purge of due rows against a hand-written DELETE of the same
 * rows on the twins. Ratios are within one database only, never across databases.
 *
 * MariaDB runs when `BENCH_MYSQL_URL` or `TEST_MYSQL_URL` names a server (an admin URL such as
 * `mysql://root@127.0.0.1:3306/mysql`); otherwise it is skipped by name, with a note.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { Kysely, MysqlDialect, sql, type Dialect } from 'kysely'
import { createConnection, createPool } from 'mysql2'
import { defineSoftDeletes, installSoftDeletes, purge, restore, softDelete, softDeleteColumns, SoftDeletePlugin } from '@tombstone/kysely'
import { NodeSqliteDialect } from '@tombstone/kysely/sqlite'
import type { Server } from '../postgres.ts'
import type { Ratio, ScenarioResult, Target } from '../report.ts'
import { measurement, median, paired, time, type Measurement } from '../stats.ts'

type Kind = 'sqlite' | 'mysql'

const definition = defineSoftDeletes<any>()({
  tables: { users: { retention: { days: 30 } }, posts: { retention: { days: 30 } }, comments: { retention: { days: 30 } } },
  relations: [
    { parent: 'users', child: 'posts', foreignKey: 'author_id' },
    { parent: 'users', child: 'comments', foreignKey: 'author_id' },
    { parent: 'posts', child: 'comments', foreignKey: 'post_id' },
  ],
  audit: true,
})

interface DialectTarget {
  readonly kind: Kind
  readonly label: string
  readonly dialect: () => Dialect
  drop(): Promise<void>
}

async function sqliteTarget(): Promise<DialectTarget> {
  const folder = await mkdtemp(join(tmpdir(), 'tombstone-bench-sqlite-'))
  const file = join(folder, 'bench.db')
  return { kind: 'sqlite', label: 'SQLite', dialect: () => new NodeSqliteDialect({ database: file }), drop: () => rm(folder, { recursive: true, force: true }) }
}

async function mysqlTarget(adminUrl: string): Promise<DialectTarget> {
  const name = `tombstone_bench_dialects_${process.pid}`
  const admin = createConnection({ uri: adminUrl }).promise()
  try {
    await admin.query(`drop database if exists \`${name}\``)
    await admin.query(`create database \`${name}\` character set utf8mb4 collate utf8mb4_bin`)
  } finally {
    await admin.end()
  }
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return {
    kind: 'mysql',
    label: 'MariaDB',
    dialect: () => new MysqlDialect({ pool: createPool({ uri: url.toString(), connectionLimit: 4, supportBigNumbers: true }) }),
    drop: async () => {
      const client = createConnection({ uri: adminUrl }).promise()
      try {
        await client.query(`drop database if exists \`${name}\``)
      } finally {
        await client.end()
      }
    },
  }
}

/** Creates the toolkit's tables (installSoftDeletes) and their twins (`*_plain`: same columns and indexes, no triggers). */
async function createSchema(db: Kysely<any>, kind: Kind): Promise<void> {
  const text = kind === 'mysql' ? sql`varchar(255)` : sql`text`
  for (const suffix of ['', '_plain']) {
    const users = `users${suffix}`
    const posts = `posts${suffix}`
    await db.schema.createTable(users).addColumn('id', 'integer', (c) => c.primaryKey()).addColumn('username', text as never, (c) => c.notNull()).$call(softDeleteColumns({ dialect: kind })).execute()
    await db.schema
      .createTable(posts)
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('author_id', 'integer', (c) => c.notNull().references(`${users}.id`))
      .addColumn('title', text as never, (c) => c.notNull())
      .$call(softDeleteColumns({ dialect: kind }))
      .execute()
    await db.schema
      .createTable(`comments${suffix}`)
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('post_id', 'integer', (c) => c.notNull().references(`${posts}.id`))
      .addColumn('author_id', 'integer', (c) => c.notNull().references(`${users}.id`))
      .addColumn('body', text as never, (c) => c.notNull())
      .$call(softDeleteColumns({ dialect: kind }))
      .execute()
  }
  await installSoftDeletes(db, definition)
  // The twins get plain indexes on what the toolkit indexes: foreign keys, deletion id, purge_at.
  for (const [table, column] of [
    ['posts_plain', 'author_id'],
    ['comments_plain', 'post_id'],
    ['comments_plain', 'author_id'],
    ['users_plain', 'deletion_id'],
    ['posts_plain', 'deletion_id'],
    ['comments_plain', 'deletion_id'],
    ['users_plain', 'purge_at'],
    ['posts_plain', 'purge_at'],
    ['comments_plain', 'purge_at'],
  ] as const) {
    await sql`create index ${sql.id(`${table}_${column}_bench_idx`)} on ${sql.table(table)} (${sql.id(column)})`.execute(db)
  }
}

/** A stamp as the dialect stores it: ISO text on SQLite, a Date (datetime(3)) on MariaDB. */
const stamp = (kind: Kind, date: Date): unknown => (kind === 'sqlite' ? date.toISOString() : date)

async function insertRows(db: Kysely<any>, table: string, rows: readonly Record<string, unknown>[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 500) await db.insertInto(table).values(rows.slice(i, i + 500)).execute()
}

async function count(db: Kysely<any>, query: ReturnType<typeof sql<{ n: number | string }>>): Promise<number> {
  return Number((await query.execute(db)).rows[0]?.n)
}

interface DialectFigures {
  readonly measurements: Measurement[]
  readonly ratios: Ratio[]
  readonly targets: Target[]
  readonly notes: string[]
}

async function runDialect(target: DialectTarget, sizes: { posts: number; readRows: number; purgePosts: number }, options: { quick: boolean; repetitions: number }): Promise<DialectFigures> {
  const { kind, label } = target
  const plain = new Kysely<any>({ dialect: target.dialect() })
  const db = plain.withPlugin(new SoftDeletePlugin(definition))
  const notes: string[] = []
  const commentsPerPost = 10
  const others = 50
  try {
    await createSchema(plain, kind)
    const now = Date.now()
    const past = (days: number) => stamp(kind, new Date(now - days * 86_400_000))
    // Users 1..others+1 in both sets; user 1 is the author whose posts the cascade deletes.
    for (const suffix of ['', '_plain']) {
      await insertRows(plain, `users${suffix}`, Array.from({ length: others + 1 }, (_, i) => ({ id: i + 1, username: `user_${i + 1}` })))
      await insertRows(plain, `posts${suffix}`, Array.from({ length: sizes.posts }, (_, i) => ({ id: i + 1, author_id: 1, title: `post ${i + 1}` })))
      await insertRows(
        plain,
        `comments${suffix}`,
        Array.from({ length: sizes.posts * commentsPerPost }, (_, i) => ({ id: i + 1, post_id: 1 + Math.floor(i / commentsPerPost), author_id: 2 + (i % others), body: 'c' })),
      )
    }
    const reach = sizes.posts * (1 + commentsPerPost)

    // (1) Cascade soft delete + restore: toolkit vs the same UPDATEs by hand on the twins.
    const byHand = async (deleting: boolean) => {
      await plain.transaction().execute(async (trx) => {
        if (deleting) {
          const at = stamp(kind, new Date())
          const purgeAt = stamp(kind, new Date(Date.now() + 30 * 86_400_000))
          const id = randomUUID()
          await sql`update posts_plain set deleted_at = ${at}, deleted_by = 'bench', deletion_id = ${id}, purge_at = ${purgeAt} where author_id = 1 and deleted_at is null`.execute(trx)
          await sql`update comments_plain set deleted_at = ${at}, deleted_by = 'bench', deletion_id = ${id}, purge_at = ${purgeAt}
            where post_id in (select id from posts_plain where author_id = 1) and deleted_at is null`.execute(trx)
        } else {
          const id = (await sql<{ id: string }>`select deletion_id as id from posts_plain where author_id = 1 and deleted_at is not null limit 1`.execute(trx)).rows[0]?.id
          await sql`update posts_plain set deleted_at = null, deleted_by = null, delete_reason = null, deletion_id = null, purge_at = null where deletion_id = ${id}`.execute(trx)
          await sql`update comments_plain set deleted_at = null, deleted_by = null, delete_reason = null, deletion_id = null, purge_at = null where deletion_id = ${id}`.execute(trx)
        }
      })
    }
    const deleted = (suffix: string) =>
      count(plain, sql<{ n: number }>`select (select count(*) from ${sql.table(`posts${suffix}`)} where deleted_at is not null) + (select count(*) from ${sql.table(`comments${suffix}`)} where deleted_at is not null) as n`)
    const byAuthor = (eb: any) => eb('author_id', '=', 1)
    const cascade = { 'toolkit delete': [] as number[], 'toolkit restore': [] as number[], 'hand delete': [] as number[], 'hand restore': [] as number[] }
    for (let round = 0; round < options.repetitions; round++) {
      const toolkitFirst = round % 2 === 0
      const runToolkit = async () => {
        cascade['toolkit delete'].push(await time(() => softDelete(db, 'posts', { where: byAuthor }, { by: 'bench' })))
        if ((await deleted('')) !== reach) notes.push(`${label}: toolkit delete stamped ${await deleted('')} rows, expected ${reach}`)
        cascade['toolkit restore'].push(await time(() => restore(db, 'posts', { where: byAuthor })))
        if ((await deleted('')) !== 0) notes.push(`${label}: toolkit restore left rows deleted`)
      }
      const runHand = async () => {
        cascade['hand delete'].push(await time(() => byHand(true)))
        if ((await deleted('_plain')) !== reach) notes.push(`${label}: hand-written delete stamped ${await deleted('_plain')} rows, expected ${reach}`)
        cascade['hand restore'].push(await time(() => byHand(false)))
        if ((await deleted('_plain')) !== 0) notes.push(`${label}: hand-written restore left rows deleted`)
      }
      if (toolkitFirst) {
        await runToolkit()
        await runHand()
      } else {
        await runHand()
        await runToolkit()
      }
    }

    // (2) Reads with 90% deleted: readRows posts spread over the 50 authors 2..51, in runs of 10
    // consecutive ids per author of which 1 is active (so every author has 10% active posts,
    // interleaved with the deleted ones); the deleted ones are not due (purge_at ahead).
    const firstReadId = sizes.posts + 1
    const future = stamp(kind, new Date(now + 29 * 86_400_000))
    await insertRows(
      plain,
      'posts',
      Array.from({ length: sizes.readRows }, (_, i) => {
        const id = firstReadId + i
        const gone = i % 10 !== 0
        return { id, author_id: 2 + (Math.floor(i / 10) % others), title: `read ${id}`, ...(gone ? { deleted_at: past(1), deleted_by: 'seed', deletion_id: randomUUID(), purge_at: future } : {}) }
      }),
    )
    if (kind === 'sqlite') await sql`analyze`.execute(plain)
    else await sql`analyze table posts, comments, users`.execute(plain)
    const authorOf = (i: number) => 2 + ((i * 7919) % others)
    const iterations = options.quick ? 300 : 1000
    const readSamples = await paired(options.repetitions, iterations, {
      plugin: (i) => db.selectFrom('posts').select(['id', 'author_id', 'title']).where('author_id', '=', authorOf(i)).orderBy('id', 'desc').limit(20).execute(),
      hand: (i) => sql`select id, author_id, title from posts where author_id = ${authorOf(i)} and deleted_at is null order by id desc limit 20`.execute(plain),
      builder: (i) => plain.selectFrom('posts').select(['id', 'author_id', 'title']).where('author_id', '=', authorOf(i)).where('deleted_at', 'is', null).orderBy('id', 'desc').limit(20).execute(),
    })
    const viaPlugin = await db.selectFrom('posts').select('id').where('author_id', '=', 2).orderBy('id', 'desc').limit(20).execute()
    const viaHand = (await sql<{ id: number }>`select id from posts where author_id = 2 and deleted_at is null order by id desc limit 20`.execute(plain)).rows
    if (JSON.stringify(viaPlugin.map((r: any) => Number(r.id))) !== JSON.stringify(viaHand.map((r) => Number(r.id)))) notes.push(`${label}: plugin and hand-written reads disagree`)
    const activeCount = await count(db, sql<{ n: number }>`select count(*) as n from posts where author_id = 2 and deleted_at is null`)

    // (3) Purge of due rows: toolkit purge (batches of 1,000, audit rows) vs one hand-written DELETE per table on the twins.
    const purgeUser = others + 2
    const firstPurgePost = firstReadId + sizes.readRows
    const firstPurgeComment = sizes.posts * commentsPerPost + 1
    const seedDue = async (suffix: string) => {
      const id = randomUUID()
      const due = { deleted_at: past(60), deleted_by: 'seed', deletion_id: id, purge_at: past(30) }
      await insertRows(plain, `posts${suffix}`, Array.from({ length: sizes.purgePosts }, (_, i) => ({ id: firstPurgePost + i, author_id: purgeUser, title: 'due', ...due })))
      await insertRows(
        plain,
        `comments${suffix}`,
        Array.from({ length: sizes.purgePosts * commentsPerPost }, (_, i) => ({ id: firstPurgeComment + i, post_id: firstPurgePost + Math.floor(i / commentsPerPost), author_id: 2 + (i % others), body: 'c', ...due })),
      )
    }
    for (const suffix of ['', '_plain']) await insertRows(plain, `users${suffix}`, [{ id: purgeUser, username: 'purged' }])
    const dueRows = sizes.purgePosts * (1 + commentsPerPost)
    const purgeSamples = { toolkit: [] as number[], hand: [] as number[] }
    for (let round = 0; round < options.repetitions; round++) {
      await seedDue('')
      await seedDue('_plain')
      const runToolkit = async () => {
        const started = performance.now()
        const result = await purge(db, { batchSize: 1000, by: 'bench' })
        purgeSamples.toolkit.push(performance.now() - started)
        if (result.count !== dueRows) notes.push(`${label}: purge removed ${result.count} rows, expected ${dueRows}`)
      }
      const runHand = async () => {
        const before = await count(plain, sql<{ n: number }>`select (select count(*) from posts_plain) + (select count(*) from comments_plain) as n`)
        purgeSamples.hand.push(
          await time(() =>
            plain.transaction().execute(async (trx) => {
              const cutoff = stamp(kind, new Date())
              await sql`delete from comments_plain where purge_at <= ${cutoff}`.execute(trx)
              await sql`delete from posts_plain where purge_at <= ${cutoff}`.execute(trx)
            }),
          ),
        )
        const after = await count(plain, sql<{ n: number }>`select (select count(*) from posts_plain) + (select count(*) from comments_plain) as n`)
        if (before - after !== dueRows) notes.push(`${label}: hand-written delete removed ${before - after} rows, expected ${dueRows}`)
      }
      if (round % 2 === 0) {
        await runToolkit()
        await runHand()
      } else {
        await runHand()
        await runToolkit()
      }
    }

    const m = (name: string, samples: number[], unit: string) => measurement(`${label}: ${name}`, samples, unit)
    const ratio = (name: string, toolkit: number[], hand: number[]): Ratio => ({ name: `${label}: ${name}`, value: median(toolkit) / median(hand), baseline: `hand-written SQL on ${label} (>1: toolkit slower)` })
    const readRatio = median(readSamples.plugin) / median(readSamples.hand)
    return {
      measurements: [
        m(`cascade delete, toolkit (${reach} rows)`, cascade['toolkit delete'], 'ms'),
        m('cascade delete, hand-written UPDATEs (twin tables)', cascade['hand delete'], 'ms'),
        m('cascade restore, toolkit', cascade['toolkit restore'], 'ms'),
        m('cascade restore, hand-written UPDATEs (twin tables)', cascade['hand restore'], 'ms'),
        m('list by author (90% deleted), plugin', readSamples.plugin, 'µs/query'),
        m('list by author (90% deleted), hand-written SQL', readSamples.hand, 'µs/query'),
        m('list by author (90% deleted), Kysely builder, no plugin, filter by hand', readSamples.builder, 'µs/query'),
        m(`purge of ${dueRows} due rows, toolkit`, purgeSamples.toolkit, 'ms'),
        m('purge, hand-written DELETE (twin tables)', purgeSamples.hand, 'ms'),
      ],
      ratios: [
        ratio('cascade delete toolkit / hand', cascade['toolkit delete'], cascade['hand delete']),
        ratio('cascade restore toolkit / hand', cascade['toolkit restore'], cascade['hand restore']),
        ratio('list by author plugin / hand', readSamples.plugin, readSamples.hand),
        { name: `${label}: list by author plugin / builder without plugin`, value: median(readSamples.plugin) / median(readSamples.builder), baseline: `the same Kysely query with the filter written by hand, on ${label} (the plugin's own cost)` },
        ratio('purge toolkit / hand', purgeSamples.toolkit, purgeSamples.hand),
      ],
      targets: [{ description: `${label}: list by author through the plugin within 1.2x of hand-written SQL (${readRatio.toFixed(3)}x)`, met: readRatio <= 1.2 }],
      notes: [...new Set(notes), `${label}: reads return the same ids both ways; ${activeCount} active posts for author 2`],
    }
  } finally {
    await plain.destroy()
  }
}

export async function dialects(_server: Server, options: { quick: boolean; repetitions: number }): Promise<ScenarioResult> {
  const sizes = options.quick ? { posts: 200, readRows: 20_000, purgePosts: 200 } : { posts: 2_000, readRows: 200_000, purgePosts: 2_000 }
  const measurements: Measurement[] = []
  const ratios: Ratio[] = []
  const targets: Target[] = []
  const notes: string[] = []
  const mysqlUrl = process.env.BENCH_MYSQL_URL ?? process.env.TEST_MYSQL_URL
  const targetsToRun: (() => Promise<DialectTarget>)[] = [sqliteTarget]
  if (mysqlUrl === undefined || mysqlUrl === '') notes.push('MariaDB skipped: set BENCH_MYSQL_URL or TEST_MYSQL_URL (an admin URL, e.g. mysql://root@127.0.0.1:3306/mysql) to run it')
  else targetsToRun.push(() => mysqlTarget(mysqlUrl))
  for (const make of targetsToRun) {
    const target = await make()
    try {
      const figures = await runDialect(target, sizes, options)
      measurements.push(...figures.measurements)
      ratios.push(...figures.ratios)
      targets.push(...figures.targets)
      notes.push(...figures.notes)
    } finally {
      await target.drop()
    }
  }
  notes.push(
    'toolkit side: installSoftDeletes (guard, stamping, parent-check and audit triggers; one audit row per changed row); hand-written side: the same UPDATEs/DELETEs on twin tables with the same columns and plain indexes, no triggers, no audit',
    'reads: the same toolkit table and index every way: Kysely + the plugin, a hand-written statement with deleted_at is null (through Kysely\'s sql template, same driver), and the Kysely builder without the plugin with the filter written by hand (isolates the plugin from the builder)',
    'ratios compare within one database only; figures of different databases are not comparable (different engines, drivers, durability settings)',
  )
  return {
    scenario: 'dialects',
    description: `SQLite and MariaDB: cascade of ${sizes.posts} posts with 10 comments each, reads with 90% deleted, purge of ${sizes.purgePosts * 11} due rows, each against hand-written SQL on the same database`,
    sizes: { posts: sizes.posts, comments_per_post: 10, read_rows: sizes.readRows, read_authors: 50, purge_rows: sizes.purgePosts * 11 },
    measurements,
    ratios,
    targets,
    notes,
  }
}
