import { Kysely, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, test, test as vitestTest } from 'vitest'
import { databaseKinds, dialectKinds, freshDatabase, type DatabaseKind } from '@tombstone/testing'
import {
  allowHardDelete,
  classifyDatabaseError,
  ConflictError,
  forceDelete,
  HardDeleteRefusedError,
  InvalidArgumentError,
  InvalidConfigurationError,
  NotDeletedError,
  NotFoundError,
  ParentDeletedError,
  previewSoftDelete,
  readAudit,
  ReferencedError,
  restore,
  softDelete,
  SoftDeletePlugin,
  sqlStateOf,
  withDeleted,
  withHardDeletes,
} from '../src/index.ts'
import { createFixture, definition, type Database, type Fixture } from './support/fixture.ts'
import { insertComment, insertPost, insertUser, numbers, stateOf, unique } from './support/data.ts'

/** What a dialect cannot run of this table, by test name, with the reason. */
const lacks: Partial<Record<DatabaseKind, Readonly<Record<string, string>>>> = {
  sqlite: {
    "an operation in its own transaction that loses a serialization conflict is run again; in the caller's, it is not":
      'SQLite has one writer and no serialization failures (and no PL/pgSQL to fake one)',
  },
  mysql: {
    "an operation in its own transaction that loses a serialization conflict is run again; in the caller's, it is not":
      'the failure is faked by a PL/pgSQL trigger; MariaDB deadlocks (1213) are classified as 40P01 and retried by the same code',
  },
}

/** The database clock, in each dialect's words. */
async function databaseNow(raw: Kysely<any>, kind: DatabaseKind): Promise<Date> {
  if (kind === 'sqlite') return new Date((await sql<{ now: string }>`select strftime('%Y-%m-%dT%H:%M:%fZ', 'now') as now`.execute(raw)).rows[0]!.now)
  if (kind === 'mysql') return new Date((await sql<{ now: Date }>`select now(3) as now`.execute(raw)).rows[0]!.now)
  return new Date((await sql<{ now: Date }>`select now() as now`.execute(raw)).rows[0]!.now)
}

/**
 * The statements of a three-table soft delete: who and why, one UPDATE per table (SQLite: its clock, and
 * clearing the context row; MariaDB: also a locking SELECT per table, having no UPDATE … RETURNING).
 */
const SOFT_DELETE_STATEMENTS: Partial<Record<DatabaseKind, number>> = { pglite: 4, postgres: 4, sqlite: 6, mysql: 9 }

/** Two users, a post of each, and a comment of each on the other's post. */
async function crossedAuthors(db: Kysely<Database>) {
  const victim = await insertUser(db)
  const other = await insertUser(db)
  const ownPost = await insertPost(db, victim)
  const otherPost = await insertPost(db, other)
  const onOwnByOther = await insertComment(db, ownPost, other)
  const onOtherByVictim = await insertComment(db, otherPost, victim)
  return { victim, other, ownPost, otherPost, onOwnByOther, onOtherByVictim }
}

describe.each(dialectKinds())('operations on %s', (kind) => {
  const test = (name: string, fn: () => Promise<void>) => {
    const reason = lacks[kind]?.[name]
    return vitestTest.skipIf(reason !== undefined)(reason === undefined ? name : `${name} (skipped: ${reason})`, fn)
  }
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

  async function auditOf(entity: string, id: number) {
    return raw
      .selectFrom('tombstone_audit' as any)
      .select(['action', 'actor', 'reason', 'deletion_id'])
      .where('entity', '=', entity)
      .where('entity_id', '=', String(id))
      .orderBy('id')
      .execute()
  }

  test('soft delete stamps when (database clock), who, why, one deletion id and the purge date', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    const comment = await insertComment(db, post, user)
    const before = (await databaseNow(raw, kind)).getTime()

    const result = await softDelete(db, 'posts', { id: post }, { by: 'alice', reason: 'spam' })

    expect(result.deleted).toEqual([post])
    expect(result.tables.posts?.count).toBe(1)
    expect(numbers(result.tables.comments?.ids ?? [])).toEqual([comment])
    expect(result.count).toBe(2)
    const postState = await stateOf(raw, 'posts', post)
    const commentState = await stateOf(raw, 'comments', comment)
    expect(postState?.deleted_by).toBe('alice')
    expect(postState?.delete_reason).toBe('spam')
    expect(postState?.deletion_id).toBe(result.deletionId)
    expect(commentState?.deletion_id).toBe(result.deletionId)
    const deletedAt = new Date(postState!.deleted_at!).getTime()
    expect(deletedAt).toBeGreaterThanOrEqual(before)
    expect(new Date(commentState!.deleted_at!).getTime()).toBe(deletedAt)
    expect(new Date(postState!.purge_at!).getTime() - deletedAt).toBe(30 * 24 * 3600 * 1000)
    expect(result.deletedAt?.getTime()).toBe(deletedAt)
    expect(await db.selectFrom('posts').select('id').where('id', '=', post).execute()).toEqual([])
  })

  test('an already deleted row is never re-stamped', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    const first = await softDelete(db, 'posts', { id: post }, { by: 'first', reason: 'one' })
    const before = await stateOf(raw, 'posts', post)
    const second = await softDelete(db, 'posts', { id: post }, { by: 'second', reason: 'two' })
    expect(second.deleted).toEqual([])
    expect(second.alreadyDeleted).toEqual([post])
    expect(second.count).toBe(0)
    expect(second.deletionId).toBeNull()
    expect(await stateOf(raw, 'posts', post)).toEqual(before)
    expect(before?.deletion_id).toBe(first.deletionId)
    expect((await auditOf('posts', post)).filter((row) => row.action === 'soft_delete')).toHaveLength(1)
  })

  test('a list of ids reports deleted, already deleted and not found', async () => {
    const user = await insertUser(db)
    const [a, b] = [await insertPost(db, user), await insertPost(db, user)]
    await softDelete(db, 'posts', { id: b })
    const result = await softDelete(db, 'posts', { ids: [a, b, 999_999] })
    expect(result.deleted).toEqual([a])
    expect(result.alreadyDeleted).toEqual([b])
    expect(result.notFound).toEqual([999_999])
  })

  test('a where target deletes the matching active rows in one statement', async () => {
    const user = await insertUser(db)
    const posts = [await insertPost(db, user), await insertPost(db, user), await insertPost(db, user)]
    const result = await softDelete(db, 'posts', { where: (eb) => eb('author_id', '=', user) }, { cascade: false })
    expect(numbers(result.deleted)).toEqual(posts)
    // A condition naming the table, as a query of its own would.
    const more = [await insertPost(db, user), await insertPost(db, user)]
    expect(numbers((await softDelete(db, 'posts', { where: (eb) => eb('posts.author_id', '=', user) })).deleted)).toEqual(more)
  })

  test('cascade: false refuses to leave an active row under the rows it stamps, and changes nothing; over rows without active children it stamps them alone', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    const comment = await insertComment(db, post, user)
    // The preview says so first.
    const preview = await previewSoftDelete(db, 'posts', { id: post }, { cascade: false })
    expect(preview.wouldRefuse).toBe(true)
    expect(preview.activeChildren.map((entry) => [entry.table, Number(entry.id), Number(entry.parentId)])).toEqual([['comments', comment, post]])
    expect((await previewSoftDelete(db, 'posts', { id: post })).wouldRefuse).toBe(false)
    const refused = await softDelete(db, 'posts', { id: post }, { cascade: false }).catch((caught: unknown) => caught)
    expect(refused).toBeInstanceOf(ParentDeletedError)
    expect(refused).toMatchObject({ code: 'PARENT_DELETED', table: 'comments', parentTable: 'posts' })
    expect(Number((refused as ParentDeletedError).id)).toBe(comment)
    expect(Number((refused as ParentDeletedError).parentId)).toBe(post)
    expect((await stateOf(raw, 'posts', post))?.deleted_at).toBeNull()
    // A user's posts and comments are theirs too (two relations): refused by the first with an active row.
    expect(await softDelete(db, 'users', { id: user }, { cascade: false }).catch((caught: unknown) => caught)).toMatchObject({ parentTable: 'users' })
    // With the comment deleted on its own first, the post goes alone.
    await softDelete(db, 'comments', { id: comment })
    expect(await previewSoftDelete(db, 'posts', { id: post }, { cascade: false })).toMatchObject({ wouldRefuse: false, activeChildren: [] })
    const alone = await softDelete(db, 'posts', { id: post }, { cascade: false })
    expect(numbers(alone.deleted)).toEqual([post])
    expect(alone.tables).not.toHaveProperty('comments')
    expect((await stateOf(raw, 'comments', comment))?.deletion_id).not.toBe(alone.deletionId)
  })

  test('cascade follows every relation to any depth, set-based, and restore brings back exactly that deletion', async () => {
    const { victim, other, ownPost, otherPost, onOwnByOther, onOtherByVictim } = await crossedAuthors(db)
    const deletedEarlier = await insertComment(db, ownPost, other)
    const earlier = await softDelete(db, 'comments', { id: deletedEarlier }, { reason: 'on its own' })

    const result = await softDelete(db, 'users', { id: victim }, { by: 'admin' })
    expect(result.tables.users?.ids).toEqual([victim])
    expect(numbers(result.tables.posts?.ids ?? [])).toEqual([ownPost])
    expect(numbers(result.tables.comments?.ids ?? [])).toEqual(numbers([onOwnByOther, onOtherByVictim]))
    expect((await stateOf(raw, 'posts', otherPost))?.deleted_at).toBeNull()
    expect((await stateOf(raw, 'comments', deletedEarlier))?.deletion_id).toBe(earlier.deletionId)

    const restored = await restore(db, 'users', { id: victim }, { by: 'admin' })
    expect(restored.restored).toEqual([victim])
    expect(numbers(restored.tables.posts?.ids ?? [])).toEqual([ownPost])
    expect(numbers(restored.tables.comments?.ids ?? [])).toEqual(numbers([onOwnByOther, onOtherByVictim]))
    for (const [table, id] of [
      ['users', victim],
      ['posts', ownPost],
      ['comments', onOwnByOther],
      ['comments', onOtherByVictim],
    ] as const) {
      expect(await stateOf(raw, table, id)).toEqual({
        deleted_at: null,
        deleted_by: null,
        delete_reason: null,
        deletion_id: null,
        purge_at: null,
      })
    }
    const stillDeleted = await stateOf(raw, 'comments', deletedEarlier)
    expect(stillDeleted?.deletion_id).toBe(earlier.deletionId)
    expect(stillDeleted?.delete_reason).toBe('on its own')
  })

  test('a cascade from more parents than travel by value (1,001 posts) stamps exactly their children, and restore brings back exactly those', async () => {
    const victim = await insertUser(db)
    const other = await insertUser(db)
    const prefix = unique('many')
    await db
      .insertInto('posts')
      .values(Array.from({ length: 1_001 }, (_, i) => ({ author_id: victim, title: 't', slug: `${prefix}-${i}` })))
      .execute()
    const posts = numbers((await raw.selectFrom('posts').select('id').where('author_id', '=', victim).execute()).map((row) => row.id))
    expect(posts).toHaveLength(1_001)
    await db.insertInto('comments').values(posts.map((post) => ({ post_id: post, author_id: other, body: 'c' }))).execute()
    const otherPost = await insertPost(db, other)
    const untouched = await insertComment(db, otherPost, other)
    const deletedEarlier = await insertComment(db, posts[500] as number, other)
    const earlier = await softDelete(db, 'comments', { id: deletedEarlier })
    const comments = numbers((await raw.selectFrom('comments').select('id').where('post_id', 'in', posts).where('id', '<>', deletedEarlier).execute()).map((row) => row.id))

    const deleted = await softDelete(db, 'users', { id: victim })
    expect(numbers(deleted.tables.posts?.ids ?? [])).toEqual(posts)
    expect(numbers(deleted.tables.comments?.ids ?? [])).toEqual(comments)
    expect((await stateOf(raw, 'comments', untouched))?.deleted_at).toBeNull()
    expect((await stateOf(raw, 'comments', deletedEarlier))?.deletion_id).toBe(earlier.deletionId)

    const restored = await restore(db, 'users', { id: victim })
    expect(numbers(restored.tables.posts?.ids ?? [])).toEqual(posts)
    expect(numbers(restored.tables.comments?.ids ?? [])).toEqual(comments)
    expect(await raw.selectFrom('comments').select('id').where('post_id', 'in', posts).where('deleted_at', 'is not', null).execute()).toEqual([{ id: deletedEarlier }])
  })

  test("a restore reaching a child along both its relations leaves it deleted when its other parent was deleted on its own since, on either side", async () => {
    const { victim, other, ownPost, otherPost, onOwnByOther: byOtherOnOwn, onOtherByVictim: byVictimOnOther } = await crossedAuthors(db)
    const kept = await insertComment(db, ownPost, victim)
    const deletion = await softDelete(db, 'users', { id: victim })
    expect(numbers(deletion.tables.comments?.ids ?? [])).toEqual(numbers([byOtherOnOwn, byVictimOnOther, kept]))
    // Since then, on their own: the other author (whose comment the deletion took), the other post.
    await softDelete(db, 'users', { id: other })
    await softDelete(db, 'posts', { id: otherPost })

    const restored = await restore(db, 'users', { id: victim })
    expect(numbers(restored.tables.posts?.ids ?? [])).toEqual([ownPost])
    expect(numbers(restored.tables.comments?.ids ?? [])).toEqual([kept])
    for (const id of [byOtherOnOwn, byVictimOnOther]) expect((await stateOf(raw, 'comments', id))?.deletion_id).toBe(deletion.deletionId)
  })

  test('restoring one root of a bulk deletion restores only that root and its descendants', async () => {
    const user = await insertUser(db)
    const [a, b] = [await insertPost(db, user), await insertPost(db, user)]
    const [ca, cb] = [await insertComment(db, a, user), await insertComment(db, b, user)]
    const bulk = await softDelete(db, 'posts', { ids: [a, b] })
    expect(bulk.count).toBe(4)
    const result = await restore(db, 'posts', { id: a })
    expect(result.count).toBe(2)
    expect((await stateOf(raw, 'comments', ca))?.deleted_at).toBeNull()
    expect((await stateOf(raw, 'comments', cb))?.deletion_id).toBe(bulk.deletionId)
    expect((await stateOf(raw, 'posts', b))?.deletion_id).toBe(bulk.deletionId)
  })

  test('the number of statements does not grow with the number of rows', async () => {
    const count = async (posts: number) => {
      const user = await insertUser(db)
      for (let i = 0; i < posts; i++) {
        const post = await insertPost(db, user)
        await insertComment(db, post, user)
      }
      let statements = 0
      const logged = new Kysely<Database>({
        dialect: fixture.database.dialect(),
        plugins: [new SoftDeletePlugin(definition)],
        log: (event) => {
          // Transaction control (and the PGlite dialect's commit probe) aside.
          if (event.level === 'query' && !/^(begin|commit|select 1$|savepoint|release)/.test(event.query.sql)) statements += 1
        },
      })
      try {
        await softDelete(logged, 'users', { id: user })
        const deleting = statements
        statements = 0
        await restore(logged, 'users', { id: user })
        return { deleting, restoring: statements }
      } finally {
        await logged.destroy()
      }
    }
    const small = await count(1)
    const large = await count(12)
    expect(large).toEqual(small)
    // who and why for the database's triggers, then users, posts and comments: one statement each
    // (their audit rows written by the database in the same statements)
    expect(small.deleting).toBe(SOFT_DELETE_STATEMENTS[kind])
  })

  test('restore of a row whose parent is deleted fails with a typed error and changes nothing', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    const comment = await insertComment(db, post, user)
    await softDelete(db, 'posts', { id: post })
    const error = await restore(db, 'comments', { id: comment }).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(ParentDeletedError)
    expect(error).toMatchObject({ code: 'PARENT_DELETED', table: 'comments', parentTable: 'posts' })
    expect(Number((error as ParentDeletedError).parentId)).toBe(post)
    expect((await stateOf(raw, 'comments', comment))?.deleted_at).not.toBeNull()
  })

  test('restore of an active row, or a missing one, fails with a typed error', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    await expect(restore(db, 'posts', { id: post })).rejects.toBeInstanceOf(NotDeletedError)
    await expect(restore(db, 'posts', { id: 987_654 })).rejects.toBeInstanceOf(NotFoundError)
  })

  test('uniqueness holds among active rows only, and a colliding restore is a typed conflict that changes nothing', async () => {
    const user = await insertUser(db)
    const slug = unique('slug')
    const old = await insertPost(db, user, slug)
    const comment = await insertComment(db, old, user)
    await softDelete(db, 'posts', { id: old })
    const taken = await insertPost(db, user, slug)

    const error = await restore(db, 'posts', { id: old }).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(ConflictError)
    const conflict = error as ConflictError
    expect(conflict.code).toBe('CONFLICT')
    expect(conflict.table).toBe('posts')
    expect(conflict.constraint).toBe('posts_slug_active_key')
    expect(conflict.columns).toEqual(['slug'])
    expect(Number(conflict.id)).toBe(old)
    expect(Number(conflict.conflictingId)).toBe(taken)
    expect((await stateOf(raw, 'posts', old))?.deleted_at).not.toBeNull()
    expect((await stateOf(raw, 'comments', comment))?.deleted_at).not.toBeNull()
  })

  test('restore with onFailure skip restores what it can and reports the rest', async () => {
    const user = await insertUser(db)
    const slug = unique('slug')
    const clashing = await insertPost(db, user, slug)
    const fine = await insertPost(db, user)
    const active = await insertPost(db, user)
    await softDelete(db, 'posts', { ids: [clashing, fine] })
    await insertPost(db, user, slug)
    const result = await restore(db, 'posts', { ids: [clashing, fine, active, 876_543] }, { onFailure: 'skip' })
    expect(result.restored).toEqual([fine])
    expect(result.conflicts.map((conflict) => Number(conflict.id))).toEqual([clashing])
    expect(result.notDeleted).toEqual([active])
    expect(result.notFound).toEqual([876_543])
  })

  test('restore with onFailure skip leaves a target whose parent is deleted, reports the parent, and restores the others', async () => {
    const kept = await insertUser(db)
    const gone = await insertUser(db)
    const free = await insertPost(db, kept)
    const orphan = await insertPost(db, gone)
    await softDelete(db, 'posts', { ids: [free, orphan] })
    await softDelete(db, 'users', { id: gone })
    const result = await restore(db, 'posts', { ids: [free, orphan] }, { onFailure: 'skip' })
    expect(result.restored).toEqual([free])
    expect(result.parentDeleted.map((entry) => [entry.id, entry.parentTable, Number(entry.parentId)])).toEqual([[orphan, 'users', gone]])
    expect((await stateOf(raw, 'posts', orphan))?.deleted_at).not.toBeNull()
    expect((await stateOf(raw, 'posts', free))?.deleted_at).toBeNull()
  })

  test('restore writes the columns of set on every row it brings back, and refuses to set its own columns', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    const comments = [await insertComment(db, post, user), await insertComment(db, post, user)]
    await softDelete(db, 'posts', { id: post })
    const result = await restore(db, 'posts', { id: post }, { set: { posts: { title: 'back again' }, comments: { body: 'restored' } } })
    expect(result.count).toBe(3)
    expect((await raw.selectFrom('posts').select('title').where('id', '=', post).executeTakeFirstOrThrow()).title).toBe('back again')
    const bodies = await raw.selectFrom('comments').select('body').where('id', 'in', comments).execute()
    expect(bodies.map((row) => row.body)).toEqual(['restored', 'restored'])
    await softDelete(db, 'posts', { id: post })
    for (const set of [{ posts: { deleted_at: null } }, { posts: { id: 1 } }, { archive: { note: 'x' } }, { posts: 'x' }]) {
      await expect(restore(db, 'posts', { id: post }, { set } as never)).rejects.toBeInstanceOf(InvalidArgumentError)
    }
    expect((await stateOf(raw, 'posts', post))?.deleted_at).not.toBeNull()
  })

  test('a deleted user frees their email for a new account', async () => {
    const name = unique('reuse')
    const first = await insertUser(db, name)
    await softDelete(db, 'users', { id: first })
    const second = await insertUser(db, name)
    expect(second).not.toBe(first)
    await expect(restore(db, 'users', { id: first })).rejects.toMatchObject({ code: 'CONFLICT', constraint: expect.stringMatching(/^users_/) })
  })

  test('force delete removes descendants first, deleted or not, and is audited', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    const active = await insertComment(db, post, user)
    const deleted = await insertComment(db, post, user)
    await softDelete(db, 'comments', { id: deleted })
    const result = await forceDelete(db, 'posts', { id: post }, { by: 'admin', reason: 'gdpr' })
    expect(result.deleted).toEqual([post])
    expect(numbers(result.tables.comments?.ids ?? [])).toEqual(numbers([active, deleted]))
    expect(await raw.selectFrom('comments').select('id').where('post_id', '=', post).execute()).toEqual([])
    expect(await auditOf('comments', deleted)).toEqual([
      expect.objectContaining({ action: 'soft_delete' }),
      expect.objectContaining({ action: 'hard_delete', actor: 'admin', reason: 'gdpr' }),
    ])
    const missing = await forceDelete(db, 'posts', { ids: [765_432] })
    expect(missing.notFound).toEqual([765_432])
  })

  test("an operation's scope covers its target rows only: a subquery in the caller's where keeps default visibility", async () => {
    const keep = unique('keep')
    const gone = unique('gone')
    const active = await insertUser(db, gone)
    const deleted = await insertUser(db, keep)
    await softDelete(db, 'users', { id: deleted })
    // The subquery sees active users only, so the deleted one is not a target of the force delete.
    const removed = await forceDelete(db, 'users', {
      where: (eb) => eb('id', 'in', eb.selectFrom('users').select('users.id').where('users.username', 'in', [keep, gone])),
    })
    expect(removed.deleted).toEqual([active])
    expect(await raw.selectFrom('users').select('id').where('id', '=', deleted).execute()).toEqual([{ id: deleted }])

    const author = await insertUser(db)
    const slugs = [unique('s'), unique('s')]
    const posts = [await insertPost(db, author, slugs[0]), await insertPost(db, author, slugs[1])]
    await softDelete(db, 'posts', { ids: posts })
    // The aliased subquery on the same table sees active posts only: none of these, so nothing is restored.
    const restored = await restore(db, 'posts', {
      where: (eb) => eb('id', 'in', eb.selectFrom('posts as p').select('p.id').where('p.slug', 'in', slugs)),
    })
    expect(restored.count).toBe(0)
    for (const post of posts) expect((await stateOf(raw, 'posts', post))?.deleted_at).not.toBeNull()
    // Asking for deleted rows in the subquery is the caller's to say.
    const asked = await restore(db, 'posts', {
      where: (eb) =>
        eb('id', 'in', eb.selectFrom('posts as p').select('p.id').where('p.slug', 'in', slugs).$call(withDeleted({ p: 'only' }))),
    })
    expect(numbers(asked.restored)).toEqual(numbers(posts))
  })

  test('a RESTRICT foreign key from an undeclared table refuses a force delete with ReferencedError (23503 or 23001)', async () => {
    await sql`create table if not exists post_pins (post_id integer not null references posts(id) on delete restrict)`.execute(raw)
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    await sql`insert into post_pins (post_id) values (${post})`.execute(raw)
    const error = await forceDelete(db, 'posts', { id: post }).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(ReferencedError)
    const cause = (error as ReferencedError).cause
    // SQLite reports its RESTRICT action as SQLITE_CONSTRAINT_TRIGGER; the toolkit finds the reference in the catalog.
    if (kind === 'sqlite') expect((cause as { errcode?: number }).errcode).toBe(1811)
    else expect(['23503', '23001']).toContain(sqlStateOf(cause))
    expect(await raw.selectFrom('posts').select('id').where('id', '=', post).execute()).toEqual([{ id: post }])
  })

  test('an operation in its own transaction that loses a serialization conflict is run again; in the caller\'s, it is not', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    // A trigger that fails the first UPDATE of posts after it is armed with 40001, as a lost conflict would.
    await sql`create sequence if not exists fail_once`.execute(raw)
    await sql`select setval('fail_once', 1, false)`.execute(raw)
    await sql`create or replace function fail_once() returns trigger language plpgsql as $$
      begin
        if nextval('fail_once') = 1 then raise exception 'could not serialize access' using errcode = '40001'; end if;
        return null;
      end $$`.execute(raw)
    await sql`create trigger fail_once before update on posts for each statement execute function fail_once()`.execute(raw)
    try {
      const result = await softDelete(db, 'posts', { id: post })
      expect(result.deleted).toEqual([post])
      await sql`select setval('fail_once', 1, false)`.execute(raw)
      const inCaller = await db
        .transaction()
        .execute((trx) => restore(trx, 'posts', { id: post }))
        .catch((error: unknown) => error)
      expect((inCaller as { code?: string }).code).toBe('40001')
    } finally {
      await sql`drop trigger fail_once on posts`.execute(raw)
    }
  })

  test('the database guard refuses DELETE and TRUNCATE from any client unless the transaction opts in', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    const error = await sql`delete from posts where id = ${post}`.execute(raw).catch((caught: unknown) => caught)
    expect(sqlStateOf(error)).toBe('TB001')
    expect(classifyDatabaseError(error)).toBeInstanceOf(HardDeleteRefusedError)
    expect(classifyDatabaseError(error)).toMatchObject({ source: 'database', table: 'posts' })
    // SQLite has no TRUNCATE (its truncate optimisation of DELETE is off on a table with triggers);
    // MySQL's fires no trigger (it needs the DROP privilege: do not grant it to the application).
    if (kind !== 'sqlite' && kind !== 'mysql') await expect(sql`truncate comments`.execute(raw)).rejects.toMatchObject({ code: 'TB001' })
    await raw.transaction().execute(async (trx) => {
      if (kind === 'mysql') {
        // MariaDB cannot end a connection-keyed opt-in at the commit: allowHardDelete refuses, withHardDeletes ends it.
        await expect(allowHardDelete(trx)).rejects.toMatchObject({ code: 'INVALID_CONFIGURATION' })
        await withHardDeletes(trx, {}, () => sql`delete from posts where id = ${post}`.execute(trx))
        return
      }
      await allowHardDelete(trx)
      await sql`delete from posts where id = ${post}`.execute(trx)
    })
    expect(await raw.selectFrom('posts').where('id', '=', post).select('id').execute()).toEqual([])
    // The opt-in ended with its transaction.
    // (SQLite's and MySQL's guard is a row trigger: it needs a row to refuse.)
    const another = kind === 'sqlite' || kind === 'mysql' ? await insertPost(db, user) : -1
    expect(sqlStateOf(await sql`delete from posts where id = ${another}`.execute(raw).catch((caught: unknown) => caught))).toBe('TB001')
  })

  test('the audit trail is append-only', async () => {
    // (SQLite's refusal is a row trigger: the audit needs a row.)
    await softDelete(db, 'posts', { id: await insertPost(db, await insertUser(db)) })
    const state = (statement: Promise<unknown>) => statement.then(() => 'accepted', (error: unknown) => sqlStateOf(error))
    expect(await state(sql`update tombstone_audit set reason = 'x'`.execute(raw))).toBe('TB002')
    expect(await state(sql`delete from tombstone_audit`.execute(raw))).toBe('TB002')
    if (kind !== 'sqlite' && kind !== 'mysql') await expect(sql`truncate tombstone_audit`.execute(raw)).rejects.toMatchObject({ code: 'TB002' })
  })

  test('operations refuse a Kysely instance without the plugin, an undeclared table, and bad keys', async () => {
    await expect(softDelete(raw, 'posts', { id: 1 })).rejects.toBeInstanceOf(InvalidConfigurationError)
    await expect(softDelete(db, 'categories', { id: 1 })).rejects.toBeInstanceOf(InvalidConfigurationError)
    await expect(softDelete(db, 'posts', { id: Number.NaN })).rejects.toBeInstanceOf(InvalidArgumentError)
    await expect(softDelete(db, 'posts', {} as never)).rejects.toBeInstanceOf(InvalidArgumentError)
    await expect(softDelete(db, 'posts', { id: 1 }, { retention: { days: -1 } })).rejects.toBeInstanceOf(InvalidArgumentError)
    const empty = await softDelete(db, 'posts', { ids: [] })
    expect(empty.count).toBe(0)
  })

  test('operations join the caller’s transaction and roll back with it', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    await expect(
      db.transaction().execute(async (trx) => {
        await softDelete(trx, 'posts', { id: post })
        throw new Error('abort')
      }),
    ).rejects.toThrow('abort')
    expect((await stateOf(raw, 'posts', post))?.deleted_at).toBeNull()
  })

  test('two concurrent soft deletes of one row: exactly one stamps it', async () => {
    for (let round = 0; round < 5; round++) {
      const user = await insertUser(db)
      const post = await insertPost(db, user)
      const results = await Promise.all([
        softDelete(db, 'posts', { id: post }, { by: 'a' }),
        softDelete(db, 'posts', { id: post }, { by: 'b' }),
      ])
      expect(results.map((result) => result.deleted.length).sort()).toEqual([0, 1])
      expect(results.map((result) => result.alreadyDeleted.length).sort()).toEqual([0, 1])
      expect((await auditOf('posts', post)).filter((row) => row.action === 'soft_delete')).toHaveLength(1)
    }
  })
})

describe.each(databaseKinds())('before installSoftDeletes on %s', (kind) => {
  test('operations that need the toolkit\'s database objects say what to run, not a raw "does not exist"', async () => {
    const database = await freshDatabase(kind)
    const raw = new Kysely<Database>({ dialect: database.dialect() })
    const db = new Kysely<Database>({ dialect: database.dialect(), plugins: [new SoftDeletePlugin(definition)] })
    try {
      await sql`create table users (id serial primary key, username text not null, email text not null, deleted_at timestamptz, deleted_by text, delete_reason text, deletion_id uuid, purge_at timestamptz)`.execute(raw)
      await sql`insert into users (username, email) values ('a', 'a@example.com')`.execute(raw)
      for (const attempt of [() => forceDelete(db, 'users', { id: 1 }), () => readAudit(db, {})]) {
        const error = await attempt().catch((caught: unknown) => caught)
        expect(error).toBeInstanceOf(InvalidConfigurationError)
        expect((error as Error).message).toMatch(/run installSoftDeletes/)
      }
    } finally {
      await db.destroy()
      await raw.destroy()
      await database.drop()
    }
  })
})
