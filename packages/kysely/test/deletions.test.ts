/**
 * Deletions as objects: previews of the three operations (the same row selection, nothing changed,
 * no row lock left), the list and the receipt of a deletion read from the audit, the restore of a
 * whole deletion, restore without cascade and ids as any iterable.
 */
import { sql, type Kysely } from 'kysely'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { databaseKinds, dialectKinds } from '@tombstone/testing'
import {
  forceDelete,
  InvalidArgumentError,
  listDeletions,
  NotFoundError,
  placeHold,
  type PreviewResult,
  previewForceDelete,
  previewRestore,
  previewRestoreDeletion,
  previewSoftDelete,
  readDeletion,
  releaseHold,
  restore,
  restoreDeletion,
  type TableResult,
  softDelete,
} from '../src/index.ts'
import { createFixture, type Database, type Fixture } from './support/fixture.ts'
import { insertComment, insertPost, insertUser, numbers, stateOf, unique } from './support/data.ts'

const error = (promise: Promise<unknown>) => promise.then(() => undefined, (caught: unknown) => caught)

/** Every row of the soft-deletable tables and the audit, as the database has them (no plugin). */
async function snapshot(raw: Kysely<any>): Promise<string> {
  const tables: Record<string, unknown[]> = {}
  for (const name of ['users', 'posts', 'comments', 'tombstone_audit']) tables[name] = await raw.selectFrom(name).selectAll().orderBy('id').execute()
  return JSON.stringify(tables)
}

/** Per table, what an operation did (count and keys in key order), as a preview reports it. */
function did(tables: Readonly<Record<string, TableResult>>): Record<string, { count: number; sample: string[] }> {
  const out: Record<string, { count: number; sample: string[] }> = {}
  for (const [name, entry] of Object.entries(tables)) {
    if (entry.count > 0) out[name] = { count: entry.count, sample: numbers(entry.ids).map(String) }
  }
  return out
}

function previewed(preview: PreviewResult): Record<string, { count: number; sample: string[] }> {
  const out: Record<string, { count: number; sample: string[] }> = {}
  for (const [name, entry] of Object.entries(preview.tables)) if (entry.count > 0) out[name] = { count: entry.count, sample: [...entry.sample] }
  return out
}

describe.each(dialectKinds())('previews on %s', (kind) => {
  let fixture: Fixture
  let db: Kysely<Database>
  let raw: Kysely<Database>
  beforeAll(async () => {
    fixture = await createFixture(kind)
    db = fixture.db
    raw = fixture.raw
  })
  afterAll(async () => {
    await fixture?.close()
  })
  const postgres = kind === 'pglite' || kind === 'postgres'

  test('previewSoftDelete counts what softDelete then stamps, per table, and changes nothing', async () => {
    const user = await insertUser(db)
    const posts = [await insertPost(db, user), await insertPost(db, user)]
    const comments = [await insertComment(db, posts[0] as number, user), await insertComment(db, posts[1] as number, user)]
    const alreadyGone = await insertComment(db, posts[0] as number, user)
    await softDelete(db, 'comments', { id: alreadyGone })
    const before = await snapshot(raw)
    const preview = await previewSoftDelete(db, 'users', { id: user }, { sampleSize: 1 })
    const full = await previewSoftDelete(db, 'users', { id: user }, { sampleSize: 1000 })
    expect(await snapshot(raw)).toBe(before)
    expect(preview.tables.users).toEqual({ count: 1, sample: [String(user)], held: 0 })
    expect(preview.tables.posts).toMatchObject({ count: 2, sample: [String(posts[0])] })
    expect(preview.tables.comments?.count).toBe(2)
    const done = await softDelete(db, 'users', { id: user })
    expect(previewed(full)).toEqual(did(done.tables))
    expect(full.count).toBe(done.count)
    expect(numbers(done.tables.comments?.ids ?? [])).toEqual(numbers(comments))
    expect((await previewSoftDelete(db, 'users', { ids: [user, 999_999] })).alreadyDeleted.map(Number)).toEqual([user])
    expect((await previewSoftDelete(db, 'users', { ids: [999_999] })).notFound).toEqual([999_999])
    expect((await previewSoftDelete(db, 'posts', { id: posts[0] as number }, { cascade: false })).tables).not.toHaveProperty('comments')
  })

  test('previewForceDelete counts every descendant whatever its state, and the held ones', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    const [active, deleted] = [await insertComment(db, post, user), await insertComment(db, post, user)]
    await softDelete(db, 'comments', { id: deleted })
    const before = await snapshot(raw)
    const preview = await previewForceDelete(db, 'posts', { id: post })
    expect(await snapshot(raw)).toBe(before)
    expect(preview).toMatchObject({ operation: 'forceDelete', count: 3, held: 0, wouldRefuse: false })
    expect(preview.tables.comments?.sample.map(Number).sort((a, b) => a - b)).toEqual([active, deleted].sort((a, b) => a - b))
    const { hold } = await placeHold(db, { table: 'comments', id: deleted }, { by: 'legal', reason: 'case' })
    const held = await previewForceDelete(db, 'posts', { id: post })
    expect(held).toMatchObject({ held: 1, wouldRefuse: true })
    expect(held.tables.comments?.held).toBe(1)
    expect(held.tables.posts?.held).toBe(0)
    await releaseHold(db, hold.id)
    const done = await forceDelete(db, 'posts', { id: post })
    expect(previewed(preview)).toEqual(did(done.tables))
    expect(done.count).toBe(preview.count)
  })

  test('previewRestore names what would come back and what refuses: conflicts with their holder, deleted parents', async () => {
    const user = await insertUser(db)
    const slug = unique('slug')
    const post = await insertPost(db, user, slug)
    const comment = await insertComment(db, post, user)
    await softDelete(db, 'posts', { id: post })
    const before = await snapshot(raw)
    const clean = await previewRestore(db, 'posts', { id: post })
    expect(await snapshot(raw)).toBe(before)
    expect(clean).toMatchObject({ count: 2, wouldRefuse: false, conflicts: [], parentDeleted: [] })
    expect(clean.tables.comments?.sample).toEqual([String(comment)])
    const alone = await previewRestore(db, 'posts', { id: post }, { cascade: false })
    expect(alone).toMatchObject({ count: 1, wouldRefuse: false })
    expect(alone.tables).not.toHaveProperty('comments')

    const holder = await insertPost(db, user, slug)
    const conflictedBefore = await snapshot(raw)
    const conflicted = await previewRestore(db, 'posts', { id: post })
    expect(await snapshot(raw)).toBe(conflictedBefore)
    expect(conflicted.wouldRefuse).toBe(true)
    expect(conflicted.conflicts).toEqual([
      { table: 'posts', id: String(post), constraint: 'posts_slug_active_key', columns: ['slug'], conflictingId: String(holder) },
    ])
    expect(await error(restore(db, 'posts', { id: post }))).toMatchObject({ code: 'CONFLICT', constraint: 'posts_slug_active_key' })

    const other = await insertPost(db, user)
    const orphan = await insertComment(db, other, user)
    await softDelete(db, 'comments', { id: orphan })
    await softDelete(db, 'posts', { id: other })
    const blocked = await previewRestore(db, 'comments', { ids: [orphan, comment + 10_000] })
    expect(blocked.parentDeleted.map((entry) => [Number(entry.id), entry.parentTable, Number(entry.parentId)])).toEqual([[orphan, 'posts', other]])
    expect(blocked.notFound).toEqual([comment + 10_000])
    expect(blocked.wouldRefuse).toBe(true)
    expect(await error(restore(db, 'comments', { id: orphan }))).toMatchObject({ code: 'PARENT_DELETED' })

    // What the preview said is what the restore then does: the tree of `other`, orphan included.
    const tree = await previewRestore(db, 'posts', { id: other }, { sampleSize: 1000 })
    expect(tree).toMatchObject({ wouldRefuse: false, count: 1 })
    const done = await restore(db, 'posts', { id: other })
    expect(previewed(tree)).toEqual(did(done.tables))
  })

  test('a preview takes no row lock and no write lock: another connection locks or writes the previewed rows meanwhile', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    await softDelete(db, 'comments', { id: await insertComment(db, post, user) })
    if (kind === 'sqlite') {
      // One writer: with another connection's write transaction open, a preview that asked for the write lock would wait.
      await raw.transaction().execute(async (other) => {
        await other.updateTable('posts').set({ title: 'held by the writer' }).where('id', '=', post).execute()
        expect((await previewSoftDelete(db, 'users', { id: user })).count).toBe(2)
        expect((await previewRestore(db, 'comments', { where: (eb) => eb('post_id', '=', post) })).count).toBe(1)
        expect((await previewForceDelete(db, 'users', { id: user })).count).toBe(3)
      })
      return
    }
    await db.transaction().execute(async (trx) => {
      await previewSoftDelete(trx, 'users', { id: user })
      await previewForceDelete(trx, 'users', { id: user })
      await previewRestore(trx, 'comments', { where: (eb) => eb('post_id', '=', post) })
      // PGlite is one connection: there, a second one cannot exist to ask.
      if (kind === 'postgres' || kind === 'mysql') {
        const locked = await raw.transaction().execute(async (other) => {
          const rows = await sql<{ id: number }>`select id from posts where author_id = ${user} for update nowait`.execute(other)
          await sql`select id from users where id = ${user} for update nowait`.execute(other)
          await sql`select id from comments where post_id = ${post} for update nowait`.execute(other)
          return rows.rows.length
        })
        expect(locked).toBe(1)
      }
    })
  })
})

describe.each(dialectKinds())('deletions on %s', (kind) => {
  let fixture: Fixture
  let db: Kysely<Database>
  let raw: Kysely<Database>
  beforeAll(async () => {
    fixture = await createFixture(kind)
    db = fixture.db
    raw = fixture.raw
  })
  afterAll(async () => {
    await fixture?.close()
  })

  test('listDeletions: newest first, per-table counts, filters, pages; readDeletion: what is left of it', async () => {
    const user = await insertUser(db)
    const posts = [await insertPost(db, user), await insertPost(db, user)]
    const comments = [await insertComment(db, posts[0] as number, user), await insertComment(db, posts[1] as number, user)]
    const actor = unique('actor')
    const first = await softDelete(db, 'posts', { id: posts[0] as number }, { by: actor, reason: 'spam' })
    const second = await softDelete(db, 'users', { id: user }, { by: actor, reason: 'account closed' })
    const page = await listDeletions(db, { by: actor })
    expect(page.deletions.map((entry) => entry.id)).toEqual([second.deletionId, first.deletionId])
    expect(page.deletions[0]).toMatchObject({ table: 'users', by: actor, reason: 'account closed', count: 3, tables: { users: 1, posts: 1, comments: 1 } })
    expect((await listDeletions(db, { by: actor, table: 'posts' })).deletions.map((entry) => entry.id)).toEqual([first.deletionId])
    const one = await listDeletions(db, { by: actor, limit: 1 })
    expect(one.deletions.map((entry) => entry.id)).toEqual([second.deletionId])
    const next = await listDeletions(db, { by: actor, limit: 1, cursor: one.nextCursor as string })
    expect(next).toEqual({ deletions: [expect.objectContaining({ id: first.deletionId })], nextCursor: null })
    expect((await listDeletions(db, { by: actor, since: new Date(Date.now() + 3_600_000) })).deletions).toEqual([])

    await restore(db, 'comments', { id: comments[1] as number }).catch(() => undefined) // its post is deleted: refused
    const receipt = await readDeletion(db, second.deletionId as string)
    expect(receipt).toMatchObject({
      id: second.deletionId,
      by: actor,
      reason: 'account closed',
      table: 'users',
      keys: [String(user)],
      rootCount: 1,
      count: 3,
      stillDeleted: 3,
      tables: { users: { taken: 1, stillDeleted: 1, restored: 0, removed: 0 }, posts: { taken: 1 }, comments: { taken: 1 } },
    })
    expect(receipt?.purgeAt).toBeInstanceOf(Date)
    expect(await readDeletion(db, '00000000-0000-4000-8000-000000000000')).toBeUndefined()
    expect(await error(readDeletion(db, 'not-a-uuid'))).toBeInstanceOf(InvalidArgumentError)
    expect(await error(listDeletions(db, { cursor: 'abc' }))).toBeInstanceOf(InvalidArgumentError)
  })

  test('restoreDeletion brings back exactly that deletion; its preview said so first', async () => {
    const user = await insertUser(db)
    const posts = [await insertPost(db, user), await insertPost(db, user), await insertPost(db, user)]
    const deletedBefore = await insertComment(db, posts[0] as number, user)
    const kept = await insertComment(db, posts[0] as number, user)
    await softDelete(db, 'comments', { id: deletedBefore })
    const bulk = await softDelete(db, 'posts', { ids: new Set(posts) }, { by: 'mod' })
    await restore(db, 'posts', { id: posts[2] as number })
    const preview = await previewRestoreDeletion(db, bulk.deletionId as string)
    expect(preview.tables.posts?.count).toBe(2)
    expect(preview.tables.comments?.sample).toEqual([String(kept)])
    const result = await restoreDeletion(db, bulk.deletionId as string, { by: 'admin' })
    expect(numbers(result.tables.posts?.ids ?? [])).toEqual(numbers(posts.slice(0, 2)))
    expect(result.tables.comments?.ids.map(Number)).toEqual([kept])
    expect((await stateOf(raw, 'comments', deletedBefore))?.deleted_at).not.toBeNull()
    const receipt = await readDeletion(db, bulk.deletionId as string)
    expect(receipt).toMatchObject({ stillDeleted: 0, tables: { posts: { taken: 3, stillDeleted: 0, restored: 3 } } })
    expect(await error(restoreDeletion(db, '00000000-0000-4000-8000-000000000000'))).toBeInstanceOf(NotFoundError)
  })

  test('restoreDeletion also brings back what is left below a root restored on its own (cascade: false)', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    const comment = await insertComment(db, post, user)
    const deletion = await softDelete(db, 'users', { id: user })
    await restore(db, 'users', { id: user }, { cascade: false })
    const preview = await previewRestoreDeletion(db, deletion.deletionId as string)
    expect(preview).toMatchObject({ count: 2, wouldRefuse: false, tables: { posts: { count: 1 }, comments: { count: 1 } } })
    const result = await restoreDeletion(db, deletion.deletionId as string)
    expect(result.count).toBe(2)
    expect((await stateOf(raw, 'comments', comment))?.deleted_at).toBeNull()
    expect((await stateOf(raw, 'posts', post))?.deleted_at).toBeNull()
  })

  test('restore with cascade: false brings back the target only; ids may be any iterable', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    const comment = await insertComment(db, post, user)
    function* ids() {
      yield post
    }
    await softDelete(db, 'posts', { ids: ids() })
    const preview = await previewRestore(db, 'posts', { ids: new Set([post]) }, { cascade: false })
    const result = await restore(db, 'posts', { ids: new Set([post]) }, { cascade: false })
    expect(result.count).toBe(1)
    expect(previewed(preview)).toEqual(did(result.tables))
    expect((await stateOf(raw, 'comments', comment))?.deleted_at).not.toBeNull()
    expect(await error(softDelete(db, 'posts', { ids: 'abc' as never }))).toBeInstanceOf(InvalidArgumentError)
  })
})
