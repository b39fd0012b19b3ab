/**
 * Many-to-many through a junction table: the junction is a child of both sides (two relations), so
 * deleting either side takes its links, and a restore brings back exactly the links its deletion
 * took, never one whose other side is deleted (the database refuses an active link under a deleted
 * parent, and the restore leaves such a link deleted).
 */
import { Kysely, type Generated } from 'kysely'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { databaseKinds, freshDatabase, type FreshDatabase } from '@tombstone/testing'
import { defineSoftDeletes, installSoftDeletes, restore, softDelete, softDeleteColumns, SoftDeletePlugin, withDeleted } from '../src/index.ts'

interface Stamps {
  deleted_at: Date | null
  deleted_by: string | null
  delete_reason: string | null
  deletion_id: string | null
  purge_at: Date | null
}
interface Database {
  articles: { id: number; title: string } & Stamps
  tags: { id: number; name: string } & Stamps
  article_tags: { id: Generated<number>; article_id: number; tag_id: number } & Stamps
}

const definition = defineSoftDeletes<Database>()({
  tables: { articles: {}, tags: {}, article_tags: {} },
  relations: [
    { parent: 'articles', child: 'article_tags', foreignKey: 'article_id' },
    { parent: 'tags', child: 'article_tags', foreignKey: 'tag_id' },
  ],
  audit: true,
})

describe.each(databaseKinds())('many-to-many through a junction table on %s', (kind) => {
  let database: FreshDatabase
  let raw: Kysely<Database>
  let db: Kysely<Database>
  beforeAll(async () => {
    database = await freshDatabase(kind)
    raw = new Kysely<Database>({ dialect: database.dialect() })
    for (const table of ['articles', 'tags'] as const) {
      await raw.schema.createTable(table).addColumn('id', 'integer', (c) => c.primaryKey()).addColumn(table === 'tags' ? 'name' : 'title', 'text', (c) => c.notNull()).$call(softDeleteColumns()).execute()
    }
    await raw.schema
      .createTable('article_tags')
      .addColumn('id', 'integer', (c) => c.primaryKey().generatedAlwaysAsIdentity())
      .addColumn('article_id', 'integer', (c) => c.notNull().references('articles.id'))
      .addColumn('tag_id', 'integer', (c) => c.notNull().references('tags.id'))
      .$call(softDeleteColumns())
      .execute()
    await installSoftDeletes(raw, definition, { onWarning: () => {} })
    db = new Kysely<Database>({ dialect: database.dialect(), plugins: [new SoftDeletePlugin(definition)] })
  })
  afterAll(async () => {
    await db?.destroy()
    await raw?.destroy()
    await database?.drop()
  })

  let next = 1
  /** Two articles and two tags, every article linked to every tag. */
  async function seed() {
    const [a1, a2, t1, t2] = [next++, next++, next++, next++]
    await raw.insertInto('articles').values([{ id: a1, title: 'one' }, { id: a2, title: 'two' }]).execute()
    await raw.insertInto('tags').values([{ id: t1, name: 'red' }, { id: t2, name: 'blue' }]).execute()
    await raw
      .insertInto('article_tags')
      .values([a1, a2].flatMap((article_id) => [t1, t2].map((tag_id) => ({ article_id, tag_id }))))
      .execute()
    return { a1, a2, t1, t2 }
  }

  /** The active links, as `article:tag`, read through the plugin (both sides filtered too). */
  async function links(articles: readonly number[]) {
    const rows = await db
      .selectFrom('article_tags')
      .innerJoin('articles', 'articles.id', 'article_tags.article_id')
      .innerJoin('tags', 'tags.id', 'article_tags.tag_id')
      .select(['article_tags.article_id', 'article_tags.tag_id'])
      .where('article_tags.article_id', 'in', articles)
      .execute()
    return rows.map((row) => `${row.article_id}:${row.tag_id}`).sort()
  }

  test('deleting either side takes its links, and only its links', async () => {
    const { a1, a2, t1, t2 } = await seed()
    const deleted = await softDelete(db, 'articles', { id: a1 })
    expect(deleted.tables.article_tags?.ids).toHaveLength(2)
    expect(await links([a1, a2])).toEqual([`${a2}:${t1}`, `${a2}:${t2}`])
    await softDelete(db, 'tags', { id: t2 })
    expect(await links([a1, a2])).toEqual([`${a2}:${t1}`])
    // The link a1:t2 was taken by the article's deletion, not the tag's.
    const taken = await db.selectFrom('article_tags').select(['article_id', 'tag_id', 'deletion_id']).where('tag_id', '=', t2).$call(withDeleted({ article_tags: 'only' })).orderBy('article_id').execute()
    expect(taken.map((row) => row.article_id)).toEqual([a1, a2])
    expect(taken[0]?.deletion_id).toBe(deleted.deletionId)
  })

  test("a restore brings back exactly its deletion's links, never one to a side deleted since", async () => {
    const { a1, a2, t1, t2 } = await seed()
    const article = await softDelete(db, 'articles', { id: a1 })
    const tag = await softDelete(db, 'tags', { id: t2 })
    // a1:t2 was the article's; its tag is deleted now, so it stays deleted with the article restored.
    const restored = await restore(db, 'articles', { id: a1 })
    expect(restored.tables.article_tags?.ids).toHaveLength(1)
    expect(await links([a1, a2])).toEqual([`${a1}:${t1}`, `${a2}:${t1}`])
    // The tag's restore brings back a2:t2 (its own deletion's), not a1:t2 (the article's).
    await restore(db, 'tags', { id: t2 })
    expect(await links([a1, a2])).toEqual([`${a1}:${t1}`, `${a2}:${t1}`, `${a2}:${t2}`])
    const left = await db.selectFrom('article_tags').select(['article_id', 'deletion_id']).where('tag_id', '=', t2).$call(withDeleted({ article_tags: 'only' })).execute()
    expect(left).toEqual([{ article_id: a1, deletion_id: article.deletionId }])
    expect(tag.deletionId).not.toBe(article.deletionId)
  })
})
