/**
 * Legal holds: enforced by the database for every client (the `raw` instance has no plugin, as
 * psql), skipped and counted by the purge, refused by force delete with a coded error, audited.
 */
import { sql, type Kysely } from 'kysely'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { backdate, databaseKinds, dialectKinds } from '@tombstone/testing'
import {
  allowHardDelete,
  classifyDatabaseError,
  forceDelete,
  InvalidArgumentError,
  InvalidConfigurationError,
  LegalHoldError,
  listHolds,
  NotFoundError,
  placeHold,
  purge,
  readAudit,
  releaseHold,
  restore,
  softDelete,
} from '../src/index.ts'
import { createFixture, type Database, type Fixture } from './support/fixture.ts'
import { insertComment, insertPost, insertUser } from './support/data.ts'

const error = (promise: Promise<unknown>) => promise.then(() => undefined, (caught: unknown) => caught)

async function age(raw: Kysely<Database>, table: 'users' | 'posts' | 'comments', ids: number[]): Promise<void> {
  await backdate(raw, sql`update ${sql.table(table)} set deleted_at = now() - interval '60 days', purge_at = now() - interval '30 days'
    where id = any(${ids}) and deleted_at is not null`)
}

async function exists(raw: Kysely<Database>, table: 'users' | 'posts' | 'comments', id: number): Promise<boolean> {
  return (await raw.selectFrom(table).select('id').where('id', '=', id).executeTakeFirst()) !== undefined
}

describe.each(databaseKinds())('legal holds on %s', (kind) => {
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
    await age(raw, 'posts', [held, free])
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
    await age(raw, 'posts', [post])
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

  test('a plain DELETE with the hard-delete opt-in, and a TRUNCATE, are refused by the database', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    const { hold } = await placeHold(db, { table: 'posts', where: (eb) => eb('id', '=', post) }, { by: 'legal', reason: 'case 4' })
    const deleted = await error(
      raw.transaction().execute(async (trx) => {
        await allowHardDelete(trx, { by: 'psql' })
        await sql`delete from posts where id = ${post}`.execute(trx)
      }),
    )
    expect((deleted as { code?: string }).code).toBe('TB006')
    expect(classifyDatabaseError(deleted)).toBeInstanceOf(LegalHoldError)
    const truncated = await error(
      raw.transaction().execute(async (trx) => {
        await allowHardDelete(trx, { by: 'psql' })
        await sql`truncate posts cascade`.execute(trx)
      }),
    )
    expect((truncated as { code?: string }).code).toBe('TB006')
    expect(await exists(raw, 'posts', post)).toBe(true)
    // The holds tables are written only through the functions; hold rows survive a new connection.
    expect((await listHolds(db, { table: 'posts', key: post, active: true })).map((h) => h.id)).toEqual([hold.id])
    await releaseHold(db, hold.id)
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

describe.each(dialectKinds().filter((kind) => kind === 'sqlite' || kind === 'mysql'))('legal holds on %s', (kind) => {
  test('are PostgreSQL-only so far: placing, releasing and listing are coded InvalidConfigurationErrors', async () => {
    const fixture = await createFixture(kind)
    try {
      const user = await insertUser(fixture.db)
      const refused = (promise: Promise<unknown>) => expect(promise).rejects.toBeInstanceOf(InvalidConfigurationError)
      await refused(placeHold(fixture.db, { table: 'users', id: user }, { by: 'legal', reason: 'case' }))
      await refused(releaseHold(fixture.db, 1))
      await refused(listHolds(fixture.db))
    } finally {
      await fixture.close()
    }
  })
})
