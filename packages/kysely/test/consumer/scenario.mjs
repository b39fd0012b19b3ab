// The consumer's app, shared by app.mjs (ESM) and app.cjs (require): installs the schema, soft-deletes
// a post with its comment, reads, restores, and checks the guard. Prints one JSON line per database.
import { Kysely, PostgresDialect, sql } from 'kysely'
import {
  defineSoftDeletes,
  HardDeleteRefusedError,
  installSoftDeletes,
  restore,
  softDelete,
  softDeleteColumns,
  SoftDeletePlugin,
  withDeleted,
} from '@tombstone/kysely'
import { PGliteDialect } from '@tombstone/kysely/pglite'

const softDeletes = defineSoftDeletes()({
  tables: { posts: { retention: { days: 30 } }, comments: {} },
  relations: [{ parent: 'posts', child: 'comments', foreignKey: 'post_id' }],
  audit: true,
})

async function scenario(dialect) {
  const db = new Kysely({ dialect, plugins: [new SoftDeletePlugin(softDeletes)] })
  try {
    await db.schema.createTable('posts').addColumn('id', 'serial', (c) => c.primaryKey())
      .addColumn('title', 'text', (c) => c.notNull()).$call(softDeleteColumns()).execute()
    await db.schema.createTable('comments').addColumn('id', 'serial', (c) => c.primaryKey())
      .addColumn('post_id', 'integer', (c) => c.notNull().references('posts.id'))
      .addColumn('body', 'text', (c) => c.notNull()).$call(softDeleteColumns()).execute()
    await installSoftDeletes(db, softDeletes)
    const { id } = await db.insertInto('posts').values({ title: 'hello' }).returning('id').executeTakeFirstOrThrow()
    await db.insertInto('comments').values({ post_id: id, body: 'first' }).execute()

    const deleted = await softDelete(db, 'posts', { id }, { by: 'alice', reason: 'test' })
    const visible = await db.selectFrom('posts').select('id').execute()
    const trash = await db.selectFrom('posts').select('id').$call(withDeleted({ posts: 'only' })).execute()
    const restored = await restore(db, 'posts', { id })
    const comments = await db.selectFrom('comments').select('body').execute()
    let guard = 'none'
    try {
      await db.deleteFrom('posts').execute()
    } catch (error) {
      guard = error instanceof HardDeleteRefusedError ? error.code : String(error)
    }
    const { rows } = await sql`select count(*)::int as n from posts`.execute(db)
    return { deleted: deleted.count, visible: visible.length, trash: trash.length, restored: restored.count, comments: comments.length, guard, posts: rows[0].n }
  } finally {
    await db.destroy()
  }
}

/** Runs the scenario on PGlite, and on PostgreSQL in a database of its own when TEST_POSTGRES_URL is set. */
export async function main(label) {
  const { PGlite } = await import('@electric-sql/pglite')
  console.log(JSON.stringify({ app: label, database: 'pglite', ...(await scenario(new PGliteDialect({ pglite: new PGlite() }))) }))
  const url = process.env.TEST_POSTGRES_URL
  if (!url) return
  const { default: pg } = await import('pg')
  const name = `tombstone_consumer_${label}_${process.pid}`
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  try {
    await admin.query(`create database ${name}`)
    try {
      const target = new URL(url)
      target.pathname = `/${name}`
      const pool = new pg.Pool({ connectionString: target.toString(), max: 2 })
      console.log(JSON.stringify({ app: label, database: 'postgres', ...(await scenario(new PostgresDialect({ pool }))) }))
    } finally {
      await admin.query(`drop database if exists ${name}`)
    }
  } finally {
    await admin.end()
  }
}
