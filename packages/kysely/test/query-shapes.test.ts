/**
 * QueryShapes: a query compiled once per shape. The SQL is what a fresh compile gives, the read
 * filter's conditions included, and each call binds its own values; shapes are kept per Kysely
 * instance and never for a transaction; a placeholder without a value, or written into the SQL text
 * instead of bound, is refused with a coded error. On all four databases.
 */
import { Kysely, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { dialectKinds, freshDatabase, type FreshDatabase } from '@tombstone/testing'
import { defineSoftDeletes, InvalidArgumentError, QueryShapes, softDeleteColumns, SoftDeletePlugin, type Placeholders } from '../src/index.ts'

interface Database {
  posts: {
    id: number
    author_id: number
    title: string
    deleted_at: Date | null
    deleted_by: string | null
    delete_reason: string | null
    deletion_id: string | null
    purge_at: Date | null
  }
}

interface Values extends Record<string, unknown> {
  author: number
  limit: number
  title: string | undefined
}

const definition = defineSoftDeletes<Database>()({ tables: { posts: {} } })

const byAuthor = (db: Kysely<Database>, $: Placeholders<Values>, titled: boolean) => {
  let select = db.selectFrom('posts').select(['id', 'title']).where('author_id', '=', $.author).orderBy('id').limit($.limit)
  if (titled) select = select.where('title', '=', $.title)
  return select
}

describe.each(dialectKinds())('query shapes on %s', (kind) => {
  let database: FreshDatabase
  let db: Kysely<Database>
  let other: Kysely<Database>

  beforeAll(async () => {
    database = await freshDatabase(kind)
    const raw = new Kysely<Database>({ dialect: database.dialect() })
    const text = (kind === 'mysql' ? sql`varchar(255)` : 'text') as 'text'
    await raw.schema
      .createTable('posts')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('author_id', 'integer', (c) => c.notNull())
      .addColumn('title', text, (c) => c.notNull())
      .$call(softDeleteColumns({ dialect: kind === 'pglite' ? 'postgres' : kind }))
      .execute()
    await raw
      .insertInto('posts')
      .values([
        { id: 1, author_id: 1, title: 'a1' },
        { id: 2, author_id: 1, title: 'a2' },
        { id: 3, author_id: 1, title: 'a3' },
        { id: 4, author_id: 2, title: 'b1' },
      ])
      .execute()
    // Post 2 is deleted: every shape must leave it out.
    await raw.updateTable('posts').set({ deleted_at: new Date(), deletion_id: '00000000-0000-4000-8000-000000000002' }).where('id', '=', 2).execute()
    await raw.destroy()
    db = new Kysely<Database>({ dialect: database.dialect(), plugins: [new SoftDeletePlugin(definition)] })
    other = new Kysely<Database>({ dialect: database.dialect(), plugins: [new SoftDeletePlugin(definition)] })
  })
  afterAll(async () => {
    await db?.destroy()
    await other?.destroy()
    await database?.drop()
  })

  test('the SQL is a fresh compile\'s, read filter included, and each call binds its own values', async () => {
    const shapes = new QueryShapes<Database, Values>()
    const run = (values: Values, titled = false) => shapes.execute(db, titled ? 'titled' : 'plain', values, (db, $) => byAuthor(db, $, titled))
    expect(await run({ author: 1, limit: 10, title: undefined })).toEqual([
      { id: 1, title: 'a1' },
      { id: 3, title: 'a3' },
    ])
    expect(await run({ author: 2, limit: 10, title: undefined })).toEqual([{ id: 4, title: 'b1' }])
    expect(await run({ author: 1, limit: 1, title: undefined })).toEqual([{ id: 1, title: 'a1' }])
    expect(await run({ author: 1, limit: 10, title: 'a3' }, true)).toEqual([{ id: 3, title: 'a3' }])
    expect(await run({ author: 1, limit: 10, title: 'a2' }, true)).toEqual([])

    const fresh = (titled: boolean) => byAuthor(db, { author: 1, limit: 1, title: 'x' }, titled).compile().sql
    expect(shapes.sqlOf(db, 'plain')).toBe(fresh(false))
    expect(shapes.sqlOf(db, 'titled')).toBe(fresh(true))
    expect(fresh(true)).toMatch(/deleted_at.? is null/)
  })

  test('kept per Kysely instance, never for a transaction', async () => {
    const shapes = new QueryShapes<Database, Values>()
    const values = { author: 1, limit: 10, title: undefined }
    const inTransaction = await db.transaction().execute(async (trx) => {
      const rows = await shapes.execute(trx, 'plain', values, (db, $) => byAuthor(db, $, false))
      // A transaction's instance lives as long as the transaction: nothing is kept for it.
      expect(shapes.sqlOf(trx, 'plain')).toBeUndefined()
      return rows
    })
    expect(inTransaction.map((row) => row.id)).toEqual([1, 3])
    expect(shapes.sqlOf(db, 'plain')).toBeUndefined()
    await shapes.execute(db, 'plain', values, (db, $) => byAuthor(db, $, false))
    expect(shapes.sqlOf(db, 'plain')).toBeDefined()
    expect(shapes.sqlOf(other, 'plain')).toBeUndefined()
    expect((await shapes.execute(other, 'plain', { ...values, author: 2 }, (db, $) => byAuthor(db, $, false))).map((row) => row.id)).toEqual([4])
  })

  test('a placeholder without a value, or written into the SQL text, is refused with a coded error', async () => {
    const shapes = new QueryShapes<Database, Values>()
    const missing = shapes.execute(db, 'titled', { author: 1, limit: 10, title: undefined }, (db, $) => byAuthor(db, $, true))
    await expect(missing).rejects.toThrow(InvalidArgumentError)
    await expect(missing).rejects.toThrow(/binds title, which has no value/)
    const inlined = shapes.execute(db, 'inlined', { author: 1, limit: 10, title: 'a1' }, (db, $) =>
      db.selectFrom('posts').select('id').where('title', '=', sql.lit($.title)),
    )
    await expect(inlined).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
  })
})
