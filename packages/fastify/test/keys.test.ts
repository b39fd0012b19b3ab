/**
 * softDeleteRoutes outside the blog: a plain Fastify app with a UUID-keyed and a text-keyed
 * soft-deletable table, set up with the required options only (table, prefix, actor) plus the key
 * and owner column, over PGlite and PostgreSQL. Every route, and every malformed id answered 422.
 */
import Fastify, { type FastifyInstance, type FastifyRequest, type LightMyRequestResponse } from 'fastify'
import { Kysely, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { databaseKinds, freshDatabase, type FreshDatabase } from '@tombstone/testing'
import { createActiveUniqueIndex, defineSoftDeletes, installSoftDeletes, softDeleteColumns, SoftDeletePlugin } from '@tombstone/kysely'
import { problemDetails, rowHashEtag, softDeleteRoutes, type SoftDeleteActor } from '../src/index.ts'

const softDeletes = defineSoftDeletes<any>()({
  tables: { notes: { retention: { days: 30 } }, pages: { key: 'slug' } },
  audit: true,
})

/** The caller from `x-user` (`admin` is the admin); none without it. */
function actorOf(request: FastifyRequest): SoftDeleteActor | undefined {
  const user = request.headers['x-user']
  return typeof user === 'string' ? { id: user, isAdmin: user === 'admin' } : undefined
}

const ALICE = { 'x-user': 'alice' }
const BOB = { 'x-user': 'bob' }
const ADMIN = { 'x-user': 'admin' }

describe.each(databaseKinds())('softDeleteRoutes with uuid and text keys on %s', (kind) => {
  let database: FreshDatabase
  let db: Kysely<any>
  let app: FastifyInstance

  beforeAll(async () => {
    database = await freshDatabase(kind)
    const raw = new Kysely<any>({ dialect: database.dialect() })
    await raw.schema
      .createTable('notes')
      .addColumn('id', 'uuid', (col) => col.primaryKey().defaultTo(sql`gen_random_uuid()`))
      .addColumn('owner', 'text', (col) => col.notNull())
      .addColumn('title', 'text', (col) => col.notNull())
      .$call(softDeleteColumns())
      .execute()
    await raw.schema
      .createTable('pages')
      .addColumn('slug', 'text', (col) => col.primaryKey())
      .addColumn('owner', 'text', (col) => col.notNull())
      .addColumn('title', 'text', (col) => col.notNull())
      .$call(softDeleteColumns())
      .execute()
    await createActiveUniqueIndex(raw, 'notes', ['title'])
    await installSoftDeletes(raw, softDeletes)
    await raw.destroy()
    db = new Kysely<any>({ dialect: database.dialect(), plugins: [new SoftDeletePlugin(softDeletes)] })

    app = Fastify()
    await app.register(problemDetails)
    app.decorate('db', db)
    softDeleteRoutes(app, {
      table: 'notes',
      prefix: '/notes',
      actor: actorOf,
      key: { type: 'uuid' },
      ownerColumn: 'owner',
      routes: { trash: true, bulk: true },
    })
    softDeleteRoutes(app, { table: 'pages', prefix: '/pages', actor: actorOf, key: { column: 'slug', type: 'string', maxLength: 64 }, ownerColumn: 'owner' })
    await app.ready()
  })
  afterAll(async () => {
    await app?.close()
    await db?.destroy()
    await database?.drop()
  })

  async function note(owner = 'alice', title = `note ${Math.random()}`): Promise<string> {
    const row = await db.insertInto('notes').values({ owner, title }).returning('id').executeTakeFirstOrThrow()
    return row.id as string
  }

  function expectProblem(response: LightMyRequestResponse, status: number, slug: string): Record<string, unknown> {
    expect({ status: response.statusCode, body: response.body }).toMatchObject({ status })
    expect(String(response.headers['content-type'])).toMatch(/^application\/problem\+json/)
    const body = response.json<Record<string, unknown>>()
    expect(body.type).toBe(`/problems/${slug}`)
    return body
  }

  test('delete: the owner 204 (then again 204, nothing re-stamped), a stranger 403, anonymous 401, a missing uuid 404', async () => {
    const id = await note('alice')
    expectProblem(await app.inject({ method: 'DELETE', url: `/notes/${id}` }), 401, 'unauthorized')
    expectProblem(await app.inject({ method: 'DELETE', url: `/notes/${id}`, headers: BOB }), 403, 'forbidden')
    expect((await app.inject({ method: 'DELETE', url: `/notes/${id}?reason=done`, headers: ALICE })).statusCode).toBe(204)
    expect(await db.selectFrom('notes').select('id').where('id', '=', id).executeTakeFirst()).toBeUndefined() // the read filter hides it
    const raw = await sql<{ deleted_at: Date; deleted_by: string; delete_reason: string }>`select deleted_at, deleted_by, delete_reason from notes where id = ${id}`.execute(db)
    expect(raw.rows[0]).toMatchObject({ deleted_by: 'alice', delete_reason: 'done' })
    expect((await app.inject({ method: 'DELETE', url: `/notes/${id}`, headers: ALICE })).statusCode).toBe(204)
    const again = await sql<{ deleted_at: Date }>`select deleted_at from notes where id = ${id}`.execute(db)
    expect(again.rows[0]?.deleted_at).toEqual(raw.rows[0]?.deleted_at)
    expectProblem(await app.inject({ method: 'DELETE', url: `/notes/${id}`, headers: BOB }), 404, 'not-found')
    expectProblem(await app.inject({ method: 'DELETE', url: '/notes/00000000-0000-4000-8000-000000000000', headers: ADMIN }), 404, 'not-found')
  })

  test('a malformed id is a 422 pointing at /params/id, never a 5xx; an upper-case uuid is the same row', async () => {
    for (const bad of ['1', 'not-a-uuid', '0b6e9c5e6a4f4d3b9a572f1e8d7c6b5a', '0b6e9c5e-6a4f-4d3b-9a57-2f1e8d7c6b5az', '%00']) {
      const body = expectProblem(await app.inject({ method: 'DELETE', url: `/notes/${bad}`, headers: ADMIN }), 422, 'validation-failed')
      expect(body.errors).toEqual([expect.objectContaining({ pointer: '/params/id' })])
      expectProblem(await app.inject({ method: 'POST', url: `/notes/${bad}/restore`, headers: ADMIN }), 422, 'validation-failed')
    }
    const tooLong = 'x'.repeat(65)
    expectProblem(await app.inject({ method: 'DELETE', url: `/pages/${tooLong}`, headers: ADMIN }), 422, 'validation-failed')
    const nul = expectProblem(await app.inject({ method: 'DELETE', url: '/pages/a%00b', headers: ADMIN }), 422, 'validation-failed')
    expect(nul.errors).toEqual([expect.objectContaining({ pointer: '/params/id' })])
    const id = await note('alice')
    expect((await app.inject({ method: 'DELETE', url: `/notes/${id.toUpperCase()}`, headers: ALICE })).statusCode).toBe(204)
    expect((await app.inject({ method: 'POST', url: `/notes/${id.toUpperCase()}/restore`, headers: ADMIN })).json()).toMatchObject({ id, deleted_at: null })
  })

  test('restore (admin): the row as it is, deletion fields cleared; 400 when not deleted; 409 on a taken unique value; ETag checked', async () => {
    const id = await note('alice', 'restorable')
    expectProblem(await app.inject({ method: 'POST', url: `/notes/${id}/restore`, headers: ALICE }), 403, 'forbidden')
    expectProblem(await app.inject({ method: 'POST', url: `/notes/${id}/restore`, headers: ADMIN }), 400, 'not-deleted')
    expect((await app.inject({ method: 'DELETE', url: `/notes/${id}`, headers: ALICE })).statusCode).toBe(204)
    expectProblem(await app.inject({ method: 'POST', url: `/notes/${id}/restore`, headers: { ...ADMIN, 'if-match': '"stale"' } }), 412, 'precondition-failed')
    // The default ETag is rowHashEtag of the row as stored: a client holding it passes.
    const stored = (await sql<Record<string, unknown>>`select * from notes where id = ${id}`.execute(db)).rows[0]!
    const current = rowHashEtag('notes', stored)
    expectProblem(await app.inject({ method: 'DELETE', url: `/notes/${id}/permanent`, headers: { ...ADMIN, 'if-match': rowHashEtag('notes', { ...stored, title: 'x' }) } }), 412, 'precondition-failed')
    const restored = await app.inject({ method: 'POST', url: `/notes/${id}/restore`, headers: { ...ADMIN, 'if-match': current } })
    expect(restored.statusCode).toBe(200)
    expect(restored.json()).toMatchObject({ id, owner: 'alice', title: 'restorable', deleted_at: null, deleted_by: null })
    // Delete it, take its title, and the restore collides.
    expect((await app.inject({ method: 'DELETE', url: `/notes/${id}`, headers: ALICE })).statusCode).toBe(204)
    const other = await note('bob', 'restorable')
    const conflict = expectProblem(await app.inject({ method: 'POST', url: `/notes/${id}/restore`, headers: ADMIN }), 409, 'conflict')
    expect(conflict.conflicting_id).toBe(other)
  })

  test('permanent delete (admin) removes the row; trash pages by cursor; bulk delete and restore report uuids', async () => {
    const a = await note('carol')
    const b = await note('carol')
    const c = await note('carol')
    expectProblem(await app.inject({ method: 'DELETE', url: `/notes/${a}/permanent`, headers: ALICE }), 403, 'forbidden')
    expect((await app.inject({ method: 'DELETE', url: `/notes/${a}/permanent`, headers: ADMIN })).statusCode).toBe(204)
    expect((await sql`select 1 from notes where id = ${a}`.execute(db)).rows).toEqual([])
    expectProblem(await app.inject({ method: 'DELETE', url: `/notes/${a}/permanent`, headers: ADMIN }), 404, 'not-found')

    const missing = '00000000-0000-4000-8000-00000000dead'
    const report = await app.inject({ method: 'POST', url: '/notes/bulk-delete', headers: ADMIN, payload: { note_ids: [b, c.toUpperCase(), missing] } })
    expect(report.statusCode).toBe(200)
    expect(report.json()).toEqual({ deleted: [b, c].sort(), already_deleted: [], not_found: [missing] })
    const again = await app.inject({ method: 'POST', url: '/notes/bulk-delete', headers: ADMIN, payload: { note_ids: [b] } })
    expect(again.json()).toEqual({ deleted: [], already_deleted: [b], not_found: [] })
    const badBody = expectProblem(await app.inject({ method: 'POST', url: '/notes/bulk-delete', headers: ADMIN, payload: { note_ids: [b, 7] } }), 422, 'validation-failed')
    expect(badBody.errors).toEqual(expect.arrayContaining([expect.objectContaining({ pointer: '/body/note_ids/1' })]))

    // The trash, one row a page, by cursor: every deleted note exactly once.
    const seen: string[] = []
    let cursor: string | null = null
    do {
      const page: LightMyRequestResponse = await app.inject({ method: 'GET', url: `/notes/deleted?limit=1${cursor === null ? '' : `&cursor=${cursor}`}`, headers: ADMIN })
      expect(page.statusCode).toBe(200)
      const body = page.json<{ items: { id: string; deleted_at: string }[]; next_cursor: string | null }>()
      seen.push(...body.items.map((item) => item.id))
      cursor = body.next_cursor
    } while (cursor !== null)
    const trash = await sql<{ id: string }>`select id from notes where deleted_at is not null`.execute(db)
    expect(seen.sort()).toEqual(trash.rows.map((row) => row.id).sort())
    const forged = Buffer.from(JSON.stringify(['2026-01-01T00:00:00Z', 'not-a-uuid'])).toString('base64url')
    expectProblem(await app.inject({ method: 'GET', url: `/notes/deleted?cursor=${forged}`, headers: ADMIN }), 422, 'validation-failed')

    const restored = await app.inject({ method: 'POST', url: '/notes/bulk-restore', headers: ADMIN, payload: { note_ids: [b, c, missing] } })
    expect(restored.statusCode).toBe(200)
    expect(restored.json()).toMatchObject({ restored: [b, c].sort(), not_deleted: [], not_found: [missing], conflicts: [] })

    expect((await app.inject({ method: 'DELETE', url: '/notes/bulk', headers: ADMIN, payload: { note_ids: [b], hard_delete: true } })).statusCode).toBe(204)
    expect((await sql`select 1 from notes where id = ${b}`.execute(db)).rows).toEqual([])
  })

  test('text keys: delete by the owner, restore and permanent delete by an admin', async () => {
    await db.insertInto('pages').values({ slug: 'welcome', owner: 'alice', title: 'Welcome' }).execute()
    expectProblem(await app.inject({ method: 'DELETE', url: '/pages/welcome', headers: BOB }), 403, 'forbidden')
    expect((await app.inject({ method: 'DELETE', url: '/pages/welcome', headers: ALICE })).statusCode).toBe(204)
    expect((await app.inject({ method: 'POST', url: '/pages/welcome/restore', headers: ADMIN })).json()).toMatchObject({ slug: 'welcome', deleted_at: null })
    expect((await app.inject({ method: 'DELETE', url: '/pages/welcome/permanent', headers: ADMIN })).statusCode).toBe(204)
    expectProblem(await app.inject({ method: 'DELETE', url: '/pages/welcome', headers: ADMIN }), 404, 'not-found')
  })

  test('without a db option or a db decorator, softDeleteRoutes says what to do', () => {
    const bare = Fastify()
    expect(() => softDeleteRoutes(bare, { table: 'notes', prefix: '/notes', actor: actorOf })).toThrow(/decorate the app/)
  })
})
