/**
 * A self-referencing relation: threaded comments, whose replies name the comment they answer. A
 * delete takes the whole subtree below a comment (to any depth, and the rows of other tables below
 * each reply), a restore brings back exactly the subtree its deletion took (a reply deleted on its
 * own before stays deleted), a force delete and a purge remove a reply with the comment it
 * answers, a preview (and a purge's dry run) reports what the operation then does, and the
 * database refuses an active reply under a deleted comment. On all four databases.
 */
import { Kysely, sql, type Generated } from 'kysely'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import pg from 'pg'
import { databaseKinds, dialectKinds, freshDatabase, type FreshDatabase } from '@tombstone/testing'
import {
  classifyDatabaseError,
  ConflictError,
  createActiveUniqueIndex,
  defineSoftDeletes,
  forceDelete,
  installSoftDeletes,
  InvalidConfigurationError,
  ParentDeletedError,
  placeHold,
  previewForceDelete,
  previewRestore,
  previewRestoreDeletion,
  previewSoftDelete,
  type PreviewResult,
  type PurgePredicate,
  purge,
  readDeletion,
  restore,
  restoreDeletion,
  softDelete,
  softDeleteColumns,
  SoftDeletePlugin,
  withDeleted,
} from '../src/index.ts'

interface Stamps {
  deleted_at: Date | null
  deleted_by: string | null
  delete_reason: string | null
  deletion_id: string | null
  purge_at: Date | null
}
interface Database {
  threads: { id: number; title: string } & Stamps
  comments: { id: number; thread_id: number; parent_id: number | null; body: string } & Stamps
  reactions: { id: Generated<number>; comment_id: number; emoji: string } & Stamps
}

const definition = defineSoftDeletes<Database>()({
  tables: { threads: {}, comments: {}, reactions: {} },
  relations: [
    { parent: 'threads', child: 'comments', foreignKey: 'thread_id' },
    { parent: 'comments', child: 'comments', foreignKey: 'parent_id' },
    { parent: 'comments', child: 'reactions', foreignKey: 'comment_id' },
  ],
  audit: true,
})

describe('a self-referencing relation in a definition', () => {
  test('is accepted, kept apart from the edges between tables', () => {
    expect(definition.selfRelationOf('comments')).toMatchObject({ parent: 'comments', child: 'comments', foreignKey: 'parent_id', parentKey: 'id' })
    expect(definition.descendantsOf('threads')).toEqual(['comments', 'reactions'])
    expect(definition.descendantsOf('comments')).toEqual(['reactions'])
    expect(definition.parentsOf('comments').map((relation) => relation.parent)).toEqual(['threads'])
  })

  test('two of them on one table, and a cycle between tables, are refused with a coded error', () => {
    const two = () =>
      defineSoftDeletes<Database>()({
        tables: { comments: {} },
        relations: [
          { parent: 'comments', child: 'comments', foreignKey: 'parent_id' },
          { parent: 'comments', child: 'comments', foreignKey: 'thread_id' },
        ],
      })
    expect(two).toThrow(InvalidConfigurationError)
    const cycle = () =>
      defineSoftDeletes<Database>()({
        tables: { threads: {}, comments: {} },
        relations: [
          { parent: 'threads', child: 'comments', foreignKey: 'thread_id' },
          { parent: 'comments', child: 'threads', foreignKey: 'id' },
        ],
      })
    expect(cycle).toThrow(/cycle/)
  })
})

describe.each(dialectKinds())('threaded comments on %s', (kind) => {
  let database: FreshDatabase
  let raw: Kysely<Database>
  let db: Kysely<Database>
  beforeAll(async () => {
    database = await freshDatabase(kind)
    raw = new Kysely<Database>({ dialect: database.dialect() })
    const columns = () => softDeleteColumns({ dialect: kind === 'pglite' ? 'postgres' : kind })
    const text = (kind === 'mysql' ? sql`varchar(255)` : 'text') as 'text'
    await raw.schema.createTable('threads').addColumn('id', 'integer', (c) => c.primaryKey()).addColumn('title', text, (c) => c.notNull()).$call(columns()).execute()
    await raw.schema
      .createTable('comments')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('thread_id', 'integer', (c) => c.notNull().references('threads.id'))
      .addColumn('parent_id', 'integer', (c) => c.references('comments.id'))
      .addColumn('body', text, (c) => c.notNull())
      .$call(columns())
      .execute()
    await raw.schema
      .createTable('reactions')
      .addColumn('id', 'integer', (c) => (kind === 'mysql' ? c.primaryKey().autoIncrement() : kind === 'sqlite' ? c.primaryKey() : c.primaryKey().generatedAlwaysAsIdentity()))
      .addColumn('comment_id', 'integer', (c) => c.notNull().references('comments.id'))
      .addColumn('emoji', text, (c) => c.notNull())
      .$call(columns())
      .execute()
    // A comment's body is unique among active comments (every seeded body is `c<id>`).
    await createActiveUniqueIndex(raw, 'comments', ['body'])
    await installSoftDeletes(raw, definition, { onWarning: () => {} })
    db = new Kysely<Database>({ dialect: database.dialect(), plugins: [new SoftDeletePlugin(definition)] })
  })
  afterAll(async () => {
    await db?.destroy()
    await raw?.destroy()
    await database?.drop()
  })

  let next = 1
  /**
   * A thread and a tree of comments:
   *   root ─┬─ a ── a1 ── a11
   *         └─ b
   *   other (a sibling of root, not below it)
   * each comment with one reaction.
   */
  async function seed() {
    const thread = next++
    const [root, a, a1, a11, b, other] = [next++, next++, next++, next++, next++, next++]
    await raw.insertInto('threads').values({ id: thread, title: 't' }).execute()
    const rows: [number, number | null][] = [[root, null], [a, root], [a1, a], [a11, a1], [b, root], [other, null]]
    for (const [id, parent_id] of rows) await raw.insertInto('comments').values({ id, thread_id: thread, parent_id, body: `c${id}` }).execute()
    await raw.insertInto('reactions').values(rows.map(([comment_id]) => ({ comment_id, emoji: '+1' }))).execute()
    return { thread, root, a, a1, a11, b, other }
  }

  const activeComments = async (thread: number) =>
    (await db.selectFrom('comments').select('id').where('thread_id', '=', thread).orderBy('id').execute()).map((row) => row.id)
  const activeReactions = async (ids: readonly number[]) =>
    (await db.selectFrom('reactions').select('comment_id').where('comment_id', 'in', ids).orderBy('comment_id').execute()).map((row) => row.comment_id)
  const sorted = (ids: readonly unknown[]) => [...ids].map(Number).sort((x, y) => x - y)
  /** Per table, what an operation did (count and keys in key order), as a preview reports it. */
  const did = (tables: Readonly<Record<string, { readonly ids: readonly unknown[]; readonly count: number }>>) =>
    Object.fromEntries(Object.entries(tables).flatMap(([name, entry]) => (entry.count > 0 ? [[name, { count: entry.count, sample: sorted(entry.ids).map(String) }]] : [])))
  const previewed = (preview: PreviewResult) =>
    Object.fromEntries(Object.entries(preview.tables).flatMap(([name, entry]) => (entry.count > 0 ? [[name, { count: entry.count, sample: [...entry.sample] }]] : [])))

  test('a delete takes the whole subtree, to any depth, and the reactions below each reply, under one deletion id', async () => {
    const t = await seed()
    const preview = await previewSoftDelete(db, 'comments', { id: t.root })
    const result = await softDelete(db, 'comments', { id: t.root }, { by: 'mod', reason: 'thread derailed' })
    expect(result.deleted).toEqual([t.root])
    expect(sorted(result.tables.comments?.ids ?? [])).toEqual([t.root, t.a, t.a1, t.a11, t.b])
    expect(result.tables.reactions?.count).toBe(5)
    expect(previewed(preview)).toEqual(did(result.tables))
    expect(preview.count).toBe(result.count)
    expect(await activeComments(t.thread)).toEqual([t.other])
    const ids = await raw.selectFrom('comments').select('deletion_id').where('id', 'in', [t.root, t.a, t.a1, t.a11, t.b]).execute()
    expect(new Set(ids.map((row) => row.deletion_id))).toEqual(new Set([result.deletionId]))
    // Back the same way: the replies come level by level (b before a1), the preview's sample in key order.
    const back = await previewRestore(db, 'comments', { id: t.root }, { sampleSize: 4 })
    const restored = await restore(db, 'comments', { id: t.root })
    expect(back.tables.comments).toEqual({ count: 5, sample: [t.root, t.a, t.a1, t.a11].map(String), held: 0 })
    expect(previewed(await previewRestore(db, 'comments', { id: t.root }))).toEqual({})
    expect(sorted(restored.tables.comments?.ids ?? [])).toEqual([t.root, t.a, t.a1, t.a11, t.b])
  })

  test('a restore brings back exactly the subtree its deletion took: a reply deleted on its own before stays deleted', async () => {
    const t = await seed()
    const ownPreview = await previewSoftDelete(db, 'comments', { id: t.a1 })
    const own = await softDelete(db, 'comments', { id: t.a1 }, { reason: 'off topic' })
    expect(sorted(own.tables.comments?.ids ?? [])).toEqual([t.a1, t.a11])
    expect(previewed(ownPreview)).toEqual(did(own.tables))
    // Not the replies deleted before: they are not active.
    const rootPreview = await previewSoftDelete(db, 'comments', { id: t.root })
    const root = await softDelete(db, 'comments', { id: t.root })
    expect(previewed(rootPreview)).toEqual(did(root.tables))
    const preview = await previewRestore(db, 'comments', { id: t.root })
    const result = await restore(db, 'comments', { id: t.root })
    expect(sorted(result.tables.comments?.ids ?? [])).toEqual([t.root, t.a, t.b])
    expect(previewed(preview)).toEqual(did(result.tables))
    expect(preview).toMatchObject({ count: result.count, wouldRefuse: false })
    expect(await activeComments(t.thread)).toEqual([t.root, t.a, t.b, t.other])
    expect(await activeReactions([t.root, t.a, t.a1, t.a11, t.b])).toEqual([t.root, t.a, t.b])
    // The reply's own deletion still restores its own subtree.
    const ownBack = await previewRestore(db, 'comments', { id: t.a1 })
    expect(previewed(ownBack)).toEqual(did((await restore(db, 'comments', { id: t.a1 })).tables))
    expect(await activeComments(t.thread)).toEqual([t.root, t.a, t.a1, t.a11, t.b, t.other])
  })

  test('a reply under a deleted comment is not restored alone: ParentDeletedError; with the comment it answers, it is', async () => {
    const t = await seed()
    await softDelete(db, 'comments', { id: t.a })
    const preview = await previewRestore(db, 'comments', { id: t.a1 })
    expect(preview.parentDeleted.map((entry) => [Number(entry.id), entry.parentTable, Number(entry.parentId)])).toEqual([[t.a1, 'comments', t.a]])
    expect(preview.wouldRefuse).toBe(true)
    await expect(restore(db, 'comments', { id: t.a1 })).rejects.toBeInstanceOf(ParentDeletedError)
    // The reply is a target and a reply of a target at once: counted once.
    const bothPreview = await previewRestore(db, 'comments', { ids: [t.a1, t.a] })
    expect(bothPreview).toMatchObject({ parentDeleted: [], wouldRefuse: false })
    const both = await restore(db, 'comments', { ids: [t.a1, t.a] })
    expect(sorted(both.tables.comments?.ids ?? [])).toEqual([t.a, t.a1, t.a11])
    expect(previewed(bothPreview)).toEqual(did(both.tables))
  })

  test('a reply in another thread, deleted with the comment it answers, stays deleted while its own thread is; the preview agrees', async () => {
    const t = await seed()
    const elsewhere = await seed()
    const stray = next++
    await raw.insertInto('comments').values({ id: stray, thread_id: elsewhere.thread, parent_id: t.a, body: 'cross-posted' }).execute()
    await raw.insertInto('comments').values({ id: next++, thread_id: t.thread, parent_id: stray, body: 'below it' }).execute()
    await softDelete(db, 'comments', { id: t.a })
    await softDelete(db, 'threads', { id: elsewhere.thread })
    const preview = await previewRestore(db, 'comments', { id: t.a })
    const result = await restore(db, 'comments', { id: t.a })
    expect(sorted(result.tables.comments?.ids ?? [])).toEqual([t.a, t.a1, t.a11])
    expect(previewed(preview)).toEqual(did(result.tables))
  })

  test('a reply that would collide on an active-unique index when its subtree comes back: the preview names it, the restore refuses', async () => {
    const t = await seed()
    await softDelete(db, 'comments', { id: t.a })
    const holder = next++
    await raw.insertInto('comments').values({ id: holder, thread_id: t.thread, parent_id: t.b, body: `c${t.a11}` }).execute()
    const preview = await previewRestore(db, 'comments', { id: t.a })
    expect(preview.wouldRefuse).toBe(true)
    expect(preview.conflicts).toEqual([{ table: 'comments', id: String(t.a11), constraint: 'comments_body_active_key', columns: ['body'], conflictingId: String(holder) }])
    const refused = await restore(db, 'comments', { id: t.a }).then(() => undefined, (error: unknown) => error)
    // The restore's own diagnosis names its target only (it does not follow the tree); the preview names the reply.
    expect(refused).toBeInstanceOf(ConflictError)
    expect(refused).toMatchObject({ table: 'comments' })
    expect(await activeComments(t.thread)).toEqual([t.root, t.b, t.other, holder])
  })

  test('a restore without cascade brings back the targets alone, and its preview says so', async () => {
    const t = await seed()
    await softDelete(db, 'comments', { id: t.a })
    const preview = await previewRestore(db, 'comments', { id: t.a }, { cascade: false })
    const result = await restore(db, 'comments', { id: t.a }, { cascade: false })
    expect(result.tables.comments?.ids.map(Number)).toEqual([t.a])
    expect(previewed(preview)).toEqual(did(result.tables))
    expect(preview.count).toBe(1)
    // The rest of that deletion comes back with a1, whose parent is active again.
    const rest = await restore(db, 'comments', { id: t.a1 })
    expect(sorted(rest.tables.comments?.ids ?? [])).toEqual([t.a1, t.a11])
  })

  test('a deletion of a subtree is read and restored whole by its id, as its preview says', async () => {
    const t = await seed()
    const { deletionId } = await softDelete(db, 'comments', { id: t.a }, { by: 'mod' })
    const deletion = await readDeletion(db, deletionId as string)
    expect(deletion?.tables.comments).toMatchObject({ taken: 3, stillDeleted: 3 })
    const preview = await previewRestoreDeletion(db, deletionId as string)
    const result = await restoreDeletion(db, deletionId as string)
    expect(previewed(preview)).toEqual(did(result.tables))
    expect(preview).toMatchObject({ count: result.count, wouldRefuse: false })
    expect(sorted(result.tables.comments?.ids ?? [])).toEqual([t.a, t.a1, t.a11])
    expect(result.tables.reactions?.count).toBe(3)
    expect(await activeComments(t.thread)).toEqual([t.root, t.a, t.a1, t.a11, t.b, t.other])
  })

  test('a thread delete and restore take every comment of the tree', async () => {
    const t = await seed()
    await softDelete(db, 'comments', { id: t.a1 })
    const deletePreview = await previewSoftDelete(db, 'threads', { id: t.thread })
    const deleted = await softDelete(db, 'threads', { id: t.thread })
    expect(deleted.tables.comments?.count).toBe(4)
    expect(deleted.tables.reactions?.count).toBe(4)
    expect(previewed(deletePreview)).toEqual(did(deleted.tables))
    const restorePreview = await previewRestore(db, 'threads', { id: t.thread })
    const restored = await restore(db, 'threads', { id: t.thread })
    expect(restored.tables.comments?.count).toBe(4)
    expect(previewed(restorePreview)).toEqual(did(restored.tables))
    await restore(db, 'comments', { id: t.a1 })
    expect(await activeComments(t.thread)).toHaveLength(6)
  })

  test('the database refuses an active reply under a deleted comment, from any client', async () => {
    const t = await seed()
    await softDelete(db, 'comments', { id: t.b })
    const insert = raw.insertInto('comments').values({ id: next++, thread_id: t.thread, parent_id: t.b, body: 'late reply' }).execute()
    await expect(insert.catch((error: unknown) => Promise.reject(classifyDatabaseError(error)))).rejects.toBeInstanceOf(ParentDeletedError)
    const revive = raw.updateTable('comments').set({ deleted_at: null, deletion_id: null }).where('id', '=', t.a).execute()
    await expect(revive).resolves.toBeDefined()
    await softDelete(db, 'comments', { id: t.root })
    const underDeleted = raw.updateTable('comments').set({ deleted_at: null, deletion_id: null, deleted_by: null, delete_reason: null, purge_at: null }).where('id', '=', t.a1).execute()
    await expect(underDeleted.catch((error: unknown) => Promise.reject(classifyDatabaseError(error)))).rejects.toBeInstanceOf(ParentDeletedError)
  })

  test('a force delete removes the subtree and its reactions; its preview says so', async () => {
    const t = await seed()
    // Whatever their state: a deleted reply goes too.
    await softDelete(db, 'comments', { id: t.a11 })
    const preview = await previewForceDelete(db, 'comments', { id: t.a })
    const result = await forceDelete(db, 'comments', { id: t.a })
    expect(result.deleted).toEqual([t.a])
    expect(sorted(result.tables.comments?.ids ?? [])).toEqual([t.a, t.a1, t.a11])
    expect(result.tables.reactions?.count).toBe(3)
    expect(previewed(preview)).toEqual(did(result.tables))
    expect(preview.count).toBe(result.count)
    const left = await db.selectFrom('comments').select('id').where('thread_id', '=', t.thread).$call(withDeleted({ comments: 'include' })).orderBy('id').execute()
    expect(left.map((row) => row.id)).toEqual([t.root, t.b, t.other])
  })

  test('a purge removes deleted trees, replies with the comments they answer', async () => {
    const t = await seed()
    await softDelete(db, 'comments', { id: t.root })
    await softDelete(db, 'comments', { id: t.other })
    await purge(db, { before: new Date(Date.now() + 60_000), tables: ['comments', 'reactions'] })
    expect(await raw.selectFrom('comments').select('id').where('thread_id', '=', t.thread).execute()).toEqual([])
    expect(await raw.selectFrom('reactions').select('id').where('comment_id', 'in', [t.root, t.a, t.a1, t.a11, t.b, t.other]).execute()).toEqual([])
  })

  test("a purge's dry run counts the replies that go with a due comment though they are not due themselves, and what is below them", async () => {
    const t = await seed()
    const spam = `spam ${t.thread}`
    // Deleted on their own before, for another reason: not due by the predicate, but below a due comment.
    await softDelete(db, 'comments', { id: t.a1 }, { reason: 'off topic' })
    await softDelete(db, 'comments', { id: t.root }, { reason: spam })
    const options = {
      before: new Date(Date.now() + 60_000),
      tables: ['comments', 'reactions'],
      where: {
        comments: ((eb, column) => eb(column('delete_reason'), '=', spam)) satisfies PurgePredicate,
        // No reaction is due itself: those that go, go below a comment.
        reactions: ((eb, column) => eb(column('emoji'), '=', 'never')) satisfies PurgePredicate,
      },
    }
    const dry = await purge(db, { ...options, dryRun: true })
    const tree = [t.root, t.a, t.a1, t.a11, t.b]
    const reactionIds = (await raw.selectFrom('reactions').select('id').where('comment_id', 'in', tree).execute()).map((row) => Number(row.id))
    expect(dry).toMatchObject({ dryRun: true, count: 10, tables: { comments: { count: 5 }, reactions: { count: 5 } } })
    expect(dry.sample.map((entry) => `${entry.table} ${Number(entry.id)}`).sort()).toEqual(
      [...tree.map((id) => `comments ${id}`), ...reactionIds.map((id) => `reactions ${id}`)].sort(),
    )
    const done = await purge(db, { ...options, asOf: dry.asOf })
    expect(done.count).toBe(dry.count)
    expect(await raw.selectFrom('comments').select('id').where('thread_id', '=', t.thread).execute()).toEqual([{ id: t.other }])
    expect(await raw.selectFrom('reactions').select('id').where('comment_id', 'in', tree).execute()).toEqual([])
  })

  test('a purge skips a tree with a held reply, above the hold, and takes the rest', async () => {
    const t = await seed()
    const u = await seed()
    await softDelete(db, 'comments', { ids: [t.root, u.root] })
    await placeHold(db, { table: 'comments', id: u.a11 }, { by: 'legal', reason: 'case 7' })
    const result = await purge(db, { before: new Date(Date.now() + 60_000), tables: ['comments', 'reactions'] })
    expect(result.held).toBeGreaterThan(0)
    const left = await raw.selectFrom('comments').select('id').where('thread_id', 'in', [t.thread, u.thread]).orderBy('id').execute()
    // u.b has nothing held below it: it goes; u.root, u.a and u.a1 stay above the held u.a11.
    expect(left.map((row) => row.id)).toEqual([t.other, u.root, u.a, u.a1, u.a11, u.other])
  })
})

/** Resolves once the backend `pid` waits on a lock (polling pg_stat_activity; fails after 10 s). */
async function blocked(admin: pg.Client, pid: number): Promise<void> {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const result = await admin.query<{ wait: string | null }>('select wait_event_type as wait from pg_stat_activity where pid = $1', [pid])
    if (result.rows[0]?.wait === 'Lock') return
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  throw new Error(`backend ${pid} never waited on a lock`)
}

describe.skipIf(!databaseKinds().includes('postgres'))('threaded comments under forced interleavings on postgres (two connections)', () => {
  let database: FreshDatabase
  let raw: Kysely<Database>
  let db: Kysely<Database>
  let admin: pg.Client
  let other: pg.Client
  let otherPid: number
  beforeAll(async () => {
    database = await freshDatabase('postgres')
    raw = new Kysely<Database>({ dialect: database.dialect() })
    await sql`create table threads (id integer primary key, title text not null)`.execute(raw)
    await sql`create table comments (id integer primary key, thread_id integer not null references threads (id),
      parent_id integer references comments (id), body text not null)`.execute(raw)
    await sql`create table reactions (id integer generated always as identity primary key, comment_id integer not null references comments (id), emoji text not null)`.execute(raw)
    for (const table of ['threads', 'comments', 'reactions']) {
      await sql`alter table ${sql.table(table)} add column deleted_at timestamptz, add column deleted_by text, add column delete_reason text,
        add column deletion_id uuid, add column purge_at timestamptz`.execute(raw)
    }
    await installSoftDeletes(raw, definition, { onWarning: () => {} })
    db = new Kysely<Database>({ dialect: database.dialect(), plugins: [new SoftDeletePlugin(definition)] })
    admin = new pg.Client({ connectionString: database.url as string })
    other = new pg.Client({ connectionString: database.url as string })
    await admin.connect()
    await other.connect()
    otherPid = (await other.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]?.pid as number
    await raw.insertInto('threads').values({ id: 1, title: 't' }).execute()
  })
  afterAll(async () => {
    await other?.end()
    await admin?.end()
    await db?.destroy()
    await raw?.destroy()
    await database?.drop()
  })

  let next = 1
  async function chain() {
    const ids = [next++, next++, next++]
    for (const [index, id] of ids.entries()) {
      await raw.insertInto('comments').values({ id, thread_id: 1, parent_id: index === 0 ? null : (ids[index - 1] as number), body: 'c' }).execute()
    }
    return ids as [number, number, number]
  }
  const activeUnderDeleted = async () =>
    (
      await sql<{ id: number }>`select c.id from comments c join comments p on p.id = c.parent_id
        where c.deleted_at is null and p.deleted_at is not null`.execute(raw)
    ).rows

  test('a reply inserted deep in the tree while the top is being deleted: the delete waits, then takes it too', async () => {
    const [top, middle] = await chain()
    const late = 1000 + next++
    // The reply's insert locks the comment it answers (the parent check, FOR SHARE), and stays open.
    await other.query('begin')
    await other.query('insert into comments (id, thread_id, parent_id, body) values ($1, 1, $2, $3)', [late, middle, 'late'])
    const trx = await db.startTransaction().execute()
    const pid = (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx)).rows[0]?.pid as number
    const deleting = softDelete(trx, 'comments', { id: top })
    await blocked(admin, pid)
    await other.query('commit')
    const result = await deleting
    await trx.commit().execute()
    expect(result.tables.comments?.ids.map(Number)).toContain(late)
    expect(await activeUnderDeleted()).toEqual([])
  })

  test('a reply inserted under a comment that is being deleted: the insert waits, then is refused', async () => {
    const [top, , bottom] = await chain()
    const trx = await db.startTransaction().execute()
    await softDelete(trx, 'comments', { id: top })
    const insert = other.query('insert into comments (id, thread_id, parent_id, body) values ($1, 1, $2, $3)', [2000 + next++, bottom, 'late']).then(
      () => undefined,
      (error: unknown) => error,
    )
    await blocked(admin, otherPid)
    await trx.commit().execute()
    expect(await insert).toMatchObject({ code: 'TB003' })
    expect(await activeUnderDeleted()).toEqual([])
  })

  test('a reply inserted deep in the tree while the top is being force-deleted: the delete waits, then removes it too', async () => {
    const [top, middle] = await chain()
    const late = 3000 + next++
    await other.query('begin')
    await other.query('insert into comments (id, thread_id, parent_id, body) values ($1, 1, $2, $3)', [late, middle, 'late'])
    const trx = await db.startTransaction().execute()
    const pid = (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx)).rows[0]?.pid as number
    const removing = forceDelete(trx, 'comments', { id: top })
    await blocked(admin, pid)
    await other.query('commit')
    const result = await removing
    await trx.commit().execute()
    expect(result.tables.comments?.ids.map(Number)).toContain(late)
    expect(await raw.selectFrom('comments').select('id').where('id', '=', late).execute()).toEqual([])
  })
})

describe.each(dialectKinds().filter((kind) => kind === 'sqlite' || kind === 'mysql'))('a self-referencing relation on %s', (kind) => {
  test('to another column than the key is refused with a coded error by installSoftDeletes', async () => {
    const database = await freshDatabase(kind)
    const raw = new Kysely<Database>({ dialect: database.dialect() })
    const byTitle = defineSoftDeletes<Database>()({
      tables: { threads: {} },
      relations: [{ parent: 'threads', child: 'threads', foreignKey: 'id', parentKey: 'title' }],
    })
    try {
      await sql`create table threads (id integer primary key, title varchar(100))`.execute(raw)
      await expect(installSoftDeletes(raw, byTitle, { onWarning: () => {} })).rejects.toBeInstanceOf(InvalidConfigurationError)
    } finally {
      await raw.destroy()
      await database.drop()
    }
  })
})
