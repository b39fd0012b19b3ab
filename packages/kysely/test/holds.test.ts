/**
 * Legal holds, on every dialect: enforced by the database for every client (the `raw` instance has
 * no plugin, as psql), skipped and counted by the purge, refused by force delete with a coded
 * error, audited. PostgreSQL-only checks (TRUNCATE) and MariaDB-only ones (foreign-key cascades,
 * which fire no trigger there) are named as such.
 */
import { Kysely, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { backdate, databaseKinds, dialectKinds, freshDatabase, type DatabaseKind } from '@tombstone/testing'
import {
  AuditAppendOnlyError,
  classifyDatabaseError,
  forceDelete,
  installSoftDeletes,
  InvalidArgumentError,
  LegalHoldError,
  listHolds,
  NotFoundError,
  placeHold,
  purge,
  readAudit,
  releaseHold,
  restore,
  defineSoftDeletes,
  softDelete,
  softDeleteColumns,
  SoftDeletePlugin,
  withHardDeletes,
} from '../src/index.ts'
import { createFixture, createSchema, definition, type Database, type Fixture } from './support/fixture.ts'
import { insertComment, insertPost, insertUser } from './support/data.ts'
import { daysFromNow, idIn } from './support/dialect-sql.ts'

const error = (promise: Promise<unknown>) => promise.then(() => undefined, (caught: unknown) => caught)

async function age(kind: DatabaseKind, raw: Kysely<Database>, table: 'users' | 'posts' | 'comments', ids: number[]): Promise<void> {
  await backdate(raw, sql`update ${sql.table(table)} set deleted_at = ${daysFromNow(kind, -60)}, purge_at = ${daysFromNow(kind, -30)}
    where ${idIn('id', ids)} and deleted_at is not null`)
}

/** A plain client's DELETE, opted in past the hard-delete guard (withHardDeletes: every dialect's opt-in). */
function optedInDelete(raw: Kysely<Database>, statement: ReturnType<typeof sql>) {
  return raw.transaction().execute((trx) => withHardDeletes(trx, { by: 'psql' }, () => statement.execute(trx)))
}

async function exists(raw: Kysely<Database>, table: 'users' | 'posts' | 'comments', id: number): Promise<boolean> {
  return (await raw.selectFrom(table).select('id').where('id', '=', id).executeTakeFirst()) !== undefined
}

describe.each(dialectKinds())('legal holds on %s', (kind) => {
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

  test('purge skips a held row and reports it; after release the purge takes it', async () => {
    const user = await insertUser(db)
    const [held, free] = [await insertPost(db, user), await insertPost(db, user)]
    await softDelete(db, 'posts', { ids: [held, free] })
    await age(kind, raw, 'posts', [held, free])
    const { hold } = await placeHold(db, { table: 'posts', id: held }, { by: 'legal', reason: 'case 1' })
    expect(hold).toMatchObject({ table: 'posts', placedBy: 'legal', reason: 'case 1', releasedAt: null, rows: 1 })

    const preview = await purge(db, { dryRun: true, tables: ['posts'] })
    expect(preview.sample.map((entry) => Number(entry.id))).not.toContain(held)
    expect(preview.tables.posts?.held).toBeGreaterThanOrEqual(1)
    const result = await purge(db, { tables: ['posts'] })
    expect(result.held).toBeGreaterThanOrEqual(1)
    expect(await exists(raw, 'posts', held)).toBe(true)
    expect(await exists(raw, 'posts', free)).toBe(false)

    const released = await releaseHold(db, hold.id, { by: 'legal', reason: 'case closed' })
    expect(released.released).toBe(true)
    expect(released.hold).toMatchObject({ releasedBy: 'legal', releaseReason: 'case closed' })
    expect((await releaseHold(db, hold.id, { by: 'legal' })).released).toBe(false)
    await purge(db, { tables: ['posts'] })
    expect(await exists(raw, 'posts', held)).toBe(false)
    expect((await readAudit(db, { entity: 'posts', entityId: held })).map((entry) => entry.action)).toEqual([
      'purge',
      'release',
      'hold',
      'soft_delete',
    ])
  })

  test('a due parent with a held child stays, with its child; its other children too', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    const [heldComment, otherComment] = [await insertComment(db, post, user), await insertComment(db, post, user)]
    await softDelete(db, 'posts', { id: post })
    await age(kind, raw, 'posts', [post])
    const { hold } = await placeHold(db, { table: 'comments', id: heldComment }, { by: 'legal', reason: 'case 2' })
    await purge(db, { tables: ['posts'] })
    expect(await exists(raw, 'posts', post)).toBe(true)
    expect(await exists(raw, 'comments', heldComment)).toBe(true)
    expect(await exists(raw, 'comments', otherComment)).toBe(true)
    await releaseHold(db, hold.id)
  })

  test('forceDelete of a held row (or of its parent) is refused with a coded error; nothing changes', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    const comment = await insertComment(db, post, user)
    const { hold } = await placeHold(db, { table: 'comments', ids: new Set([comment]) }, { by: 'legal', reason: 'case 3' })
    const direct = await error(forceDelete(db, 'comments', { id: comment }))
    expect(direct).toBeInstanceOf(LegalHoldError)
    expect(direct).toMatchObject({ code: 'LEGAL_HOLD', table: 'comments', id: String(comment), holdId: String(hold.id) })
    const viaParent = await error(forceDelete(db, 'users', { id: user }))
    expect(viaParent).toBeInstanceOf(LegalHoldError)
    expect(await exists(raw, 'users', user)).toBe(true)
    expect(await exists(raw, 'posts', post)).toBe(true)
    await releaseHold(db, hold.id)
    await forceDelete(db, 'users', { id: user })
    expect(await exists(raw, 'comments', comment)).toBe(false)
  })

  test('a plain DELETE with the hard-delete opt-in is refused by the database (TB006), whoever sends it', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    const { hold } = await placeHold(db, { table: 'posts', where: (eb) => eb('id', '=', post) }, { by: 'legal', reason: 'case 4' })
    const deleted = await error(optedInDelete(raw, sql`delete from posts where id = ${post}`))
    expect(deleted).toBeDefined()
    const classified = classifyDatabaseError(deleted)
    expect(classified).toBeInstanceOf(LegalHoldError)
    expect(classified).toMatchObject({ table: 'posts', id: String(post), holdId: String(hold.id) })
    expect(await exists(raw, 'posts', post)).toBe(true)
    // Hold rows survive a new connection, and are listed by the row they cover.
    expect((await listHolds(db, { table: 'posts', key: post, active: true })).map((h) => h.id)).toEqual([hold.id])
    await releaseHold(db, hold.id)
    await optedInDelete(raw, sql`delete from posts where id = ${post}`)
    expect(await exists(raw, 'posts', post)).toBe(false)
  })

  test('placing and releasing are audited, one entry per row, with who, why and the deletion', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    const comment = await insertComment(db, post, user)
    const deleted = await softDelete(db, 'posts', { id: post }, { by: 'admin' })
    const { hold } = await placeHold(db, { deletionId: deleted.deletionId as string }, { by: 'legal', reason: 'case 7' })
    expect(hold.rows).toBe(2)
    await releaseHold(db, hold.id, { by: 'counsel', reason: 'settled' })
    for (const [entity, id] of [['posts', post], ['comments', comment]] as const) {
      // By deletion: SQLite reuses a removed row's key, and earlier tests removed rows.
      const entries = await readAudit(db, { entity, entityId: id, deletionId: deleted.deletionId as string })
      expect(entries.map((entry) => [entry.action, entry.actor, entry.reason, entry.deletionId])).toEqual([
        ['release', 'counsel', 'settled', deleted.deletionId],
        ['hold', 'legal', 'case 7', deleted.deletionId],
        ['soft_delete', 'admin', null, deleted.deletionId],
      ])
    }
  })

  test('the holds tables keep their history: no client removes a hold, or lifts one without releasing it', async () => {
    const user = await insertUser(db)
    const { hold } = await placeHold(db, { table: 'users', id: user }, { by: 'legal', reason: 'case 8' })
    // PostgreSQL: nobody but the owner has a right on them (the fixture's raw connection is the owner);
    // SQLite and MariaDB: triggers refuse, whoever runs the statement.
    if (kind === 'sqlite' || kind === 'mysql') {
      for (const statement of [
        sql`delete from tombstone_held_rows where hold_id = ${hold.id}`,
        sql`delete from tombstone_holds where id = ${hold.id}`,
        sql`update tombstone_held_rows set released = ${kind === 'mysql' ? sql`true` : sql`1`} where hold_id = ${hold.id}`,
        sql`update tombstone_holds set reason = 'nothing' where id = ${hold.id}`,
      ]) {
        expect(classifyDatabaseError(await error(statement.execute(raw)))).toBeInstanceOf(AuditAppendOnlyError)
      }
    }
    expect(await error(forceDelete(db, 'users', { id: user }))).toBeInstanceOf(LegalHoldError)
    await releaseHold(db, hold.id)
    expect((await listHolds(db, { table: 'users', key: user }))[0]).toMatchObject({ id: hold.id, reason: 'case 8', rows: 1 })
  })

  test('a hold on a deletion covers all its rows, those restored since too', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    const comment = await insertComment(db, post, user)
    const deleted = await softDelete(db, 'users', { id: user }, { by: 'admin', reason: 'closed' })
    const { hold } = await placeHold(db, { deletionId: deleted.deletionId as string }, { by: 'legal', reason: 'case 5' })
    expect(hold).toMatchObject({ table: 'users', deletionId: deleted.deletionId, rows: 3 })
    await restore(db, 'users', { id: user })
    expect(await error(forceDelete(db, 'comments', { id: comment }))).toBeInstanceOf(LegalHoldError)
    expect(await error(forceDelete(db, 'users', { id: user }))).toBeInstanceOf(LegalHoldError)
    expect((await listHolds(db, { deletionId: deleted.deletionId as string }))[0]?.id).toBe(hold.id)
    await releaseHold(db, hold.id)
    await forceDelete(db, 'users', { id: user })
  })

  test('bad input is a coded error', async () => {
    const user = await insertUser(db)
    expect(await error(placeHold(db, { table: 'users', id: user }, { reason: ' ' }))).toBeInstanceOf(InvalidArgumentError)
    expect(await error(placeHold(db, { table: 'users', id: 999_999 }, { reason: 'x' }))).toBeInstanceOf(NotFoundError)
    expect(await error(placeHold(db, { deletionId: 'nope' }, { reason: 'x' }))).toBeInstanceOf(InvalidArgumentError)
    expect(await error(placeHold(db, { deletionId: '00000000-0000-4000-8000-000000000000' }, { reason: 'x' }))).toBeInstanceOf(NotFoundError)
    expect(await error(releaseHold(db, 987_654))).toBeInstanceOf(NotFoundError)
    expect(await error(releaseHold(db, -1))).toBeInstanceOf(InvalidArgumentError)
  })
})

describe.each(dialectKinds())('legal holds before installSoftDeletes on %s', (kind) => {
  test('listing, placing and releasing say what to run (InvalidConfigurationError), on every dialect', async () => {
    const database = await freshDatabase(kind)
    const db = new Kysely<Database>({ dialect: database.dialect(), plugins: [new SoftDeletePlugin(definition)] })
    try {
      const notInstalled = (promise: Promise<unknown>) => expect(promise).rejects.toMatchObject({ code: 'INVALID_CONFIGURATION', message: expect.stringContaining('installSoftDeletes') })
      await notInstalled(listHolds(db))
      await notInstalled(releaseHold(db, 1))
    } finally {
      await db.destroy()
      await database.drop()
    }
  })
})

describe.each(databaseKinds())('legal holds, PostgreSQL only, on %s', (kind) => {
  test('a TRUNCATE of a table with a held row is refused (TB006); SQLite has no TRUNCATE, MariaDB fires no trigger for it', async () => {
    const fixture = await createFixture(kind)
    try {
      const user = await insertUser(fixture.db)
      const post = await insertPost(fixture.db, user)
      const { hold } = await placeHold(fixture.db, { table: 'posts', id: post }, { by: 'legal', reason: 'case 4' })
      const truncated = await error(
        fixture.raw.transaction().execute((trx) => withHardDeletes(trx, { by: 'psql' }, () => sql`truncate posts cascade`.execute(trx))),
      )
      expect((truncated as { code?: string }).code).toBe('TB006')
      expect(await exists(fixture.raw, 'posts', post)).toBe(true)
      await releaseHold(fixture.db, hold.id)
    } finally {
      await fixture.close()
    }
  })
})

describe.each(dialectKinds().filter((kind) => kind === 'mysql'))('legal holds, MariaDB only, on %s', (kind) => {
  test('a held child below an ON DELETE CASCADE foreign key: the DELETE of its parent is refused (InnoDB fires no trigger for cascaded rows)', async () => {
    const fixture = await createFixture(kind)
    try {
      const { db, raw } = fixture
      const name = await sql<{ name: string }>`select constraint_name as name from information_schema.key_column_usage
        where table_schema = database() and table_name = 'comments' and column_name = 'post_id' and referenced_table_name = 'posts'`.execute(raw)
      await sql`alter table comments drop foreign key ${sql.id(name.rows[0]!.name)}`.execute(raw)
      await sql`alter table comments add constraint comments_post_cascade foreign key (post_id) references posts (id) on delete cascade`.execute(raw)
      await installSoftDeletes(raw, definition)
      const user = await insertUser(db)
      const post = await insertPost(db, user)
      const comment = await insertComment(db, post, user)
      const { hold } = await placeHold(db, { table: 'comments', id: comment }, { by: 'legal', reason: 'case 9' })
      const refused = classifyDatabaseError(await error(optedInDelete(raw, sql`delete from posts where id = ${post}`)))
      expect(refused).toMatchObject({ code: 'LEGAL_HOLD', table: 'comments', id: String(comment), holdId: String(hold.id) })
      expect(await exists(raw, 'comments', comment)).toBe(true)
      await releaseHold(db, hold.id)
      await optedInDelete(raw, sql`delete from posts where id = ${post}`)
      expect(await exists(raw, 'comments', comment)).toBe(false)
    } finally {
      await fixture.close()
    }
  })
})

describe.each(dialectKinds().filter((kind) => kind === 'sqlite' || kind === 'mysql'))('legal holds on an older database, on %s', (kind) => {
  test('an audit table made before legal holds (its check refuses hold) takes them after installSoftDeletes, its rows kept (SQLite: rebuilt)', async () => {
    const database = await freshDatabase(kind)
    const raw = new Kysely<Database>({ dialect: database.dialect() })
    try {
      await (kind === 'sqlite'
        ? sql`create table tombstone_audit (
            id integer primary key autoincrement,
            at text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
            action text not null check (action in ('soft_delete', 'restore', 'hard_delete', 'purge')),
            entity text not null, entity_id text not null, actor text, reason text, deletion_id text)`
        : sql`create table tombstone_audit (
            id bigint primary key auto_increment,
            at datetime(3) not null default current_timestamp(3),
            action varchar(16) not null check (action in ('soft_delete', 'restore', 'hard_delete', 'purge')),
            entity varchar(255) not null, entity_id varchar(255) not null, actor varchar(255), reason text, deletion_id char(36))`
      ).execute(raw)
      await sql`insert into tombstone_audit (action, entity, entity_id, actor) values ('restore', 'posts', '41', 'old')`.execute(raw)
      await createSchema(raw)
      const db = raw.withPlugin(new SoftDeletePlugin(definition))
      expect((await readAudit(db, { entity: 'posts', entityId: 41 })).map((entry) => [entry.id, entry.action, entry.actor])).toEqual([[1, 'restore', 'old']])
      const user = await insertUser(db)
      const { hold } = await placeHold(db, { table: 'users', id: user }, { by: 'legal', reason: 'case 10' })
      expect((await readAudit(db, { entity: 'users', entityId: user }))[0]).toMatchObject({ action: 'hold', actor: 'legal' })
      // Still append-only after the rebuild.
      expect(classifyDatabaseError(await error(sql`delete from tombstone_audit`.execute(raw)))).toBeInstanceOf(AuditAppendOnlyError)
      await releaseHold(db, hold.id)
    } finally {
      await raw.destroy()
      await database.drop()
    }
  })
})

describe.each(dialectKinds())('legal holds on a table that references itself, on %s', (kind) => {
  test('the purge keeps a held reply and the comments above it, and takes the rest', async () => {
    interface Notes {
      notes: { id: number; parent_id: number | null; deleted_at: Date | null; deleted_by: string | null; delete_reason: string | null; deletion_id: string | null; purge_at: Date | null }
    }
    const notes = defineSoftDeletes<Notes>()({ tables: { notes: {} }, relations: [{ parent: 'notes', child: 'notes', foreignKey: 'parent_id' }], audit: true })
    const database = await freshDatabase(kind)
    const raw = new Kysely<Notes>({ dialect: database.dialect() })
    const db = new Kysely<Notes>({ dialect: database.dialect(), plugins: [new SoftDeletePlugin(notes)] })
    try {
      await raw.schema
        .createTable('notes')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('parent_id', 'integer', (c) => c.references('notes.id'))
        .$call(softDeleteColumns({ dialect: kind === 'pglite' ? 'postgres' : kind }))
        .execute()
      await installSoftDeletes(raw, notes, { onWarning: () => {} })
      // 1 ── 2 ── 3 (held), and 4 ── 5: both trees deleted and due.
      for (const [id, parent_id] of [[1, null], [2, 1], [3, 2], [4, null], [5, 4]] as const) await raw.insertInto('notes').values({ id, parent_id }).execute()
      await softDelete(db, 'notes', { ids: [1, 4] })
      const { hold } = await placeHold(db, { table: 'notes', id: 3 }, { by: 'legal', reason: 'case 11' })
      const result = await purge(db, { before: new Date(Date.now() + 60_000) })
      expect(result.held).toBeGreaterThan(0)
      expect((await raw.selectFrom('notes').select('id').orderBy('id').execute()).map((row) => row.id)).toEqual([1, 2, 3])
      await releaseHold(db, hold.id)
      await purge(db, { before: new Date(Date.now() + 60_000) })
      expect(await raw.selectFrom('notes').select('id').execute()).toEqual([])
    } finally {
      await db.destroy()
      await raw.destroy()
      await database.drop()
    }
  })
})
