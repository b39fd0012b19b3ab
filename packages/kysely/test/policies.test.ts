/**
 * Per-table delete policies: 'never' (refused by the operations and, for every client, by the
 * database) and 'hard-unless-referenced' (removed for good when nothing references the row, else
 * soft-deleted, per row).
 */
import { Kysely, sql, type Generated } from 'kysely'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import pg from 'pg'
import { dialectKinds, freshDatabase, postgresUrl, type DatabaseKind, type FreshDatabase } from '@tombstone/testing'
import {
  classifyDatabaseError,
  defineSoftDeletes,
  DeletePolicyError,
  forceDelete,
  installSoftDeletes,
  InvalidConfigurationError,
  previewForceDelete,
  previewSoftDelete,
  readAudit,
  ReferencedError,
  restore,
  softDelete,
  SoftDeletePlugin,
  withHardDeletes,
} from '../src/index.ts'

interface Stamps {
  deleted_at: Date | null
  deleted_by: string | null
  delete_reason: string | null
  deletion_id: string | null
  purge_at: Date | null
}
interface Database {
  countries: { id: Generated<number>; name: string } & Stamps
  tags: { id: Generated<number>; name: string } & Stamps
  notes: { id: Generated<number>; tag_id: number | null; body: string } & Stamps
  labels: { id: Generated<number>; tag_id: number }
  note_links: { id: Generated<number>; note_id: number | null }
  note_pins: { id: Generated<number>; note_id: Generated<number> }
  note_locks: { id: Generated<number>; note_id: number }
}

const definition = defineSoftDeletes<Database>()({
  tables: { countries: { policy: 'never' }, tags: { policy: 'hard-unless-referenced' }, notes: {} },
  relations: [{ parent: 'tags', child: 'notes', foreignKey: 'tag_id' }],
  dependents: [
    { table: 'labels', foreignKey: 'tag_id', parent: 'tags' },
    { table: 'note_links', foreignKey: 'note_id', parent: 'notes', onParentSoftDelete: 'set null' },
    { table: 'note_pins', foreignKey: 'note_id', parent: 'notes', onParentSoftDelete: 'set default' },
    { table: 'note_locks', foreignKey: 'note_id', parent: 'notes', onParentSoftDelete: 'restrict' },
  ],
  audit: true,
})

/** The tables of both suites, in each database's own DDL. */
function schema(kind: DatabaseKind): string[] {
  const id = kind === 'sqlite' ? 'integer primary key' : kind === 'mysql' ? 'integer auto_increment primary key' : 'serial primary key'
  const text = kind === 'mysql' ? 'varchar(255)' : 'text'
  const stamps =
    kind === 'sqlite'
      ? 'deleted_at text, deleted_by text, delete_reason text, deletion_id text, purge_at text'
      : kind === 'mysql'
        ? 'deleted_at datetime(3), deleted_by varchar(255), delete_reason text, deletion_id char(36), purge_at datetime(3)'
        : 'deleted_at timestamptz, deleted_by text, delete_reason text, deletion_id uuid, purge_at timestamptz'
  return [
    `create table countries (id ${id}, name ${text} not null, ${stamps})`,
    `create table tags (id ${id}, name ${text} not null, ${stamps})`,
    `create table notes (id ${id}, tag_id integer references tags (id), body ${text} not null, ${stamps})`,
    `create table labels (id ${id}, tag_id integer not null references tags (id))`,
    // The pins' default: note 1, the inbox, kept active.
    `insert into notes (id, body) values (1, 'inbox')`,
    ...(kind === 'mysql' ? ['alter table notes auto_increment = 1000'] : kind === 'sqlite' ? [] : [`select setval(pg_get_serial_sequence('notes', 'id'), 1000)`]),
    `create table note_links (id ${id}, note_id integer references notes (id))`,
    `create table note_pins (id ${id}, note_id integer not null default 1 references notes (id))`,
    `create table note_locks (id ${id}, note_id integer not null references notes (id))`,
  ]
}

/** Inserts one row and returns its generated key (MariaDB: the driver's insertId, having no RETURNING here). */
async function insertId(raw: Kysely<Database>, kind: DatabaseKind, table: 'countries' | 'tags' | 'notes' | 'note_links' | 'note_pins', values: Record<string, unknown>): Promise<number> {
  if (kind === 'mysql') return Number((await raw.insertInto(table).values(values as never).executeTakeFirstOrThrow()).insertId)
  return (await raw.insertInto(table).values(values as never).returning('id').executeTakeFirstOrThrow()).id
}

const error = (promise: Promise<unknown>) => promise.then(() => undefined, (caught: unknown) => caught)

describe('delete policies in a definition', () => {
  test("an unknown policy, and a 'never' table as a relation's child, are InvalidConfigurationErrors", () => {
    expect(() => defineSoftDeletes<Database>()({ tables: { tags: { policy: 'sometimes' as never } } })).toThrow(InvalidConfigurationError)
    expect(() =>
      defineSoftDeletes<Database>()({
        tables: { tags: {}, countries: { policy: 'never' } },
        relations: [{ parent: 'tags', child: 'countries', foreignKey: 'id' }],
      }),
    ).toThrow(/policy 'never'/)
    expect(definition.table('notes').policy).toBe('soft')
  })
})

describe.each(dialectKinds())('delete policies on %s', (kind) => {
  let database: FreshDatabase
  let db: Kysely<Database>
  let raw: Kysely<Database>
  beforeAll(async () => {
    database = await freshDatabase(kind)
    raw = new Kysely<Database>({ dialect: database.dialect() })
    for (const statement of schema(kind)) await sql.raw(statement).execute(raw)
    await installSoftDeletes(raw, definition)
    db = new Kysely<Database>({ dialect: database.dialect(), plugins: [new SoftDeletePlugin(definition)] })
  })
  afterAll(async () => {
    await db?.destroy()
    await raw?.destroy()
    await database?.drop()
  })

  const country = async (name: string) => insertId(raw, kind, 'countries', { name })
  const tag = async (name: string) => insertId(raw, kind, 'tags', { name })
  const exists = async (table: 'countries' | 'tags', id: number) =>
    (await raw.selectFrom(table).select(['id', 'deleted_at']).where('id', '=', id).executeTakeFirst()) ?? null

  test("'never': softDelete and forceDelete refuse with DeletePolicyError; nothing changes", async () => {
    const id = await country('atlantis')
    // One after the other (each is started only when the previous one has settled).
    for (const attempt of [
      () => softDelete(db, 'countries', { id }),
      () => forceDelete(db, 'countries', { id }),
      () => softDelete(db, 'countries', { ids: [] }),
      () => previewSoftDelete(db, 'countries', { id }),
      () => previewForceDelete(db, 'countries', { id }),
    ]) {
      expect(await error(attempt())).toMatchObject({ code: 'DELETE_POLICY', source: 'operation', table: 'countries', policy: 'never' })
    }
    expect(await exists('countries', id)).toMatchObject({ id, deleted_at: null })
  })

  test("'never': the database refuses any client's soft or hard delete (TB007), and still lets an old deletion be restored", async () => {
    const id = await country('lemuria')
    const stamp = await error(sql`update countries set deleted_at = current_timestamp where id = ${id}`.execute(raw))
    expect(classifyDatabaseError(stamp)).toBeInstanceOf(DeletePolicyError)
    expect(classifyDatabaseError(stamp)).toMatchObject({ source: 'database', table: 'countries' })
    // Even with the transaction's hard-delete opt-in.
    const removal = await error(
      raw.transaction().execute((trx) => withHardDeletes(trx, {}, () => sql`delete from countries where id = ${id}`.execute(trx))),
    )
    expect(classifyDatabaseError(removal)).toMatchObject({ code: 'DELETE_POLICY', source: 'database' })
    expect(await exists('countries', id)).toMatchObject({ id, deleted_at: null })
    // A row deleted before the policy was set (inserted deleted here) can come back.
    const deletedAt = kind === 'sqlite' ? ('2026-01-01T00:00:00.000Z' as never) : new Date('2026-01-01T00:00:00Z')
    const old = await insertId(raw, kind, 'countries', { name: 'mu', deleted_at: deletedAt, deletion_id: crypto.randomUUID() })
    expect((await restore(db, 'countries', { id: old })).restored).toEqual([old])
  })

  test("'hard-unless-referenced': per row, removed for good when nothing references it, else soft-deleted with its cascade", async () => {
    const [lonely, noted, deletedNote, labelled] = [await tag('lonely'), await tag('noted'), await tag('deleted-note'), await tag('labelled')]
    const note = await insertId(raw, kind, 'notes', { tag_id: noted, body: 'x' })
    const gone = await insertId(raw, kind, 'notes', { tag_id: deletedNote, body: 'y' })
    await softDelete(db, 'notes', { id: gone })
    await raw.insertInto('labels').values({ tag_id: labelled }).execute()

    const result = await softDelete(db, 'tags', { ids: [lonely, noted, deletedNote, labelled, 999_999] }, { by: 'admin', reason: 'cleanup' })
    expect(result.hardDeleted).toEqual([lonely])
    expect([...result.deleted].sort((x, y) => Number(x) - Number(y))).toEqual([noted, deletedNote, labelled])
    expect(result.notFound).toEqual([999_999])
    expect(result.tables.notes?.ids).toEqual([note])
    expect(await exists('tags', lonely)).toBeNull()
    for (const id of [noted, deletedNote, labelled]) expect((await exists('tags', id))?.deleted_at).not.toBeNull()
    expect((await readAudit(db, { entity: 'tags', entityId: lonely }))[0]).toMatchObject({ action: 'hard_delete', actor: 'admin', reason: 'cleanup' })
    // The soft-deleted ones restore as usual, with their cascade.
    expect((await restore(db, 'tags', { id: noted })).tables.notes?.ids).toEqual([note])
    // Already deleted: reported, not removed.
    const again = await softDelete(db, 'tags', { id: deletedNote })
    expect(again).toMatchObject({ hardDeleted: [], deleted: [], alreadyDeleted: [deletedNote] })
    expect(await exists('tags', deletedNote)).not.toBeNull()
  })

  test("'hard-unless-referenced' with a where target", async () => {
    const [a, b] = [await tag('where-a'), await tag('where-b')]
    await raw.insertInto('labels').values({ tag_id: b }).execute()
    const result = await softDelete(db, 'tags', { where: (eb) => eb('name', 'like', 'where-%') })
    expect(result.hardDeleted).toEqual([a])
    expect(result.deleted).toEqual([b])
    expect(await exists('tags', a)).toBeNull()
  })
})

describe.each(dialectKinds())('onParentSoftDelete of dependents on %s', (kind) => {
  let database: FreshDatabase
  let db: Kysely<Database>
  let raw: Kysely<Database>
  beforeAll(async () => {
    database = await freshDatabase(kind)
    raw = new Kysely<Database>({ dialect: database.dialect() })
    for (const statement of schema(kind)) await sql.raw(statement).execute(raw)
    await installSoftDeletes(raw, definition)
    db = new Kysely<Database>({ dialect: database.dialect(), plugins: [new SoftDeletePlugin(definition)] })
  })
  afterAll(async () => {
    await db?.destroy()
    await raw?.destroy()
    await database?.drop()
  })

  const tag = async () => insertId(raw, kind, 'tags', { name: 'kept' })
  const note = async (tagId: number | null = null) => insertId(raw, kind, 'notes', { tag_id: tagId, body: 'n' })

  test("'set null' and 'set default' rewrite the dependents of every row the delete took, cascade included, in its transaction", async () => {
    const parentTag = await tag()
    const [direct, cascaded, untouched] = [await note(), await note(parentTag), await note()]
    const links: { id: number }[] = []
    for (const note_id of [direct, cascaded, untouched]) links.push({ id: await insertId(raw, kind, 'note_links', { note_id }) })
    const pins: { id: number }[] = []
    for (const note_id of [direct, untouched]) pins.push({ id: await insertId(raw, kind, 'note_pins', { note_id }) })

    const first = await softDelete(db, 'notes', { id: direct })
    expect(first.dependents).toEqual({ note_links: { ids: [links[0]?.id], count: 1 }, note_pins: { ids: [pins[0]?.id], count: 1 } })
    // Through the cascade from a tag (a labelled tag is soft-deleted, its notes with it).
    await raw.insertInto('labels').values({ tag_id: parentTag }).execute()
    const second = await softDelete(db, 'tags', { id: parentTag })
    expect(second.tables.notes?.ids).toEqual([cascaded])
    expect(second.dependents).toEqual({ note_links: { ids: [links[1]?.id], count: 1 } })

    const linkRows = await raw.selectFrom('note_links').select(['id', 'note_id']).orderBy('id').execute()
    expect(linkRows.filter((row) => links.some((link) => link.id === row.id)).map((row) => row.note_id)).toEqual([null, null, untouched])
    const pinRows = await raw.selectFrom('note_pins').select(['id', 'note_id']).orderBy('id').execute()
    expect(pinRows.filter((row) => pins.some((pin) => pin.id === row.id)).map((row) => row.note_id)).toEqual([1, untouched])
    // Nothing to rewrite: no `dependents` in the result.
    expect((await softDelete(db, 'notes', { id: await note() })).dependents).toBeUndefined()
  })

  test("'set default' to a deleted parent is refused by the database's parent check: nothing changes", async () => {
    const pinned = await note()
    await raw.insertInto('note_pins').values({ note_id: pinned }).execute()
    await softDelete(db, 'notes', { id: 1 }) // the default's row: its own pins move to... itself, refused
      .then(
        () => expect.unreachable(),
        (caught: unknown) => expect(caught).toMatchObject({ code: 'PARENT_DELETED', table: 'note_pins' }),
      )
    expect((await raw.selectFrom('notes').select('deleted_at').where('id', '=', 1).executeTakeFirstOrThrow()).deleted_at).toBeNull()
    expect(await softDelete(db, 'notes', { id: pinned }).then(() => 'ok')).toBe('ok')
  })

  test("'restrict' refuses the soft delete with a ReferencedError, the cascade's rows too; nothing changes", async () => {
    const parentTag = await tag()
    const [direct, cascaded] = [await note(), await note(parentTag)]
    await raw.insertInto('note_locks').values([{ note_id: direct }, { note_id: cascaded }]).execute()
    for (const attempt of [() => softDelete(db, 'notes', { id: direct }), () => softDelete(db, 'tags', { id: parentTag })]) {
      const caught = await error(attempt())
      expect(caught).toBeInstanceOf(ReferencedError)
      expect((caught as Error).message).toMatch(/note_locks.*restrict/)
    }
    const states = await raw.selectFrom('notes').select('deleted_at').where('id', 'in', [direct, cascaded]).execute()
    expect(states.map((row) => row.deleted_at)).toEqual([null, null])
    expect((await raw.selectFrom('tags').select('deleted_at').where('id', '=', parentTag).executeTakeFirstOrThrow()).deleted_at).toBeNull()
    await raw.deleteFrom('note_locks').where('note_id', '=', direct).execute()
    expect((await softDelete(db, 'notes', { id: direct })).deleted).toEqual([direct])
  })

  test('an unknown action is an InvalidConfigurationError', () => {
    expect(() =>
      defineSoftDeletes<Database>()({
        tables: { notes: {} },
        dependents: [{ table: 'note_links', foreignKey: 'note_id', parent: 'notes', onParentSoftDelete: 'cascade' as never }],
      }),
    ).toThrow(InvalidConfigurationError)
  })
})

describe.skipIf(postgresUrl() === undefined)("'hard-unless-referenced' under forced interleavings on postgres (two connections)", () => {
  let database: FreshDatabase
  let db: Kysely<Database>
  let raw: Kysely<Database>
  let admin: pg.Client
  let other: pg.Client
  beforeAll(async () => {
    database = await freshDatabase('postgres')
    raw = new Kysely<Database>({ dialect: database.dialect() })
    for (const statement of schema('postgres')) await sql.raw(statement).execute(raw)
    await installSoftDeletes(raw, definition)
    db = new Kysely<Database>({ dialect: database.dialect(), plugins: [new SoftDeletePlugin(definition)] })
    admin = new pg.Client({ connectionString: database.url as string })
    other = new pg.Client({ connectionString: database.url as string })
    await admin.connect()
    await other.connect()
  })
  afterAll(async () => {
    await other?.end()
    await admin?.end()
    await db?.destroy()
    await raw?.destroy()
    await database?.drop()
  })

  const tag = async () => (await raw.insertInto('tags').values({ name: 'race' }).returning('id').executeTakeFirstOrThrow()).id
  const pidOf = async (client: pg.Client | Kysely<any>) =>
    client instanceof pg.Client
      ? ((await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]?.pid as number)
      : ((await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(client)).rows[0]?.pid as number)
  const blocked = async (pid: number) => {
    for (let attempt = 0; attempt < 1000; attempt++) {
      const result = await admin.query<{ wait: string | null }>('select wait_event_type as wait from pg_stat_activity where pid = $1', [pid])
      if (result.rows[0]?.wait === 'Lock') return
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    throw new Error(`backend ${pid} never waited on a lock`)
  }

  test('a reference inserted while the delete runs waits, then is refused by the foreign key: the row is gone', async () => {
    const id = await tag()
    const trx = await db.startTransaction().execute()
    expect((await softDelete(trx, 'tags', { id })).hardDeleted).toEqual([id])
    const otherPid = await pidOf(other)
    const inserting = error(other.query('insert into labels (tag_id) values ($1)', [id]))
    await blocked(otherPid)
    await trx.commit().execute()
    expect(await inserting).toMatchObject({ code: '23503' })
    expect(await raw.selectFrom('tags').select('id').where('id', '=', id).execute()).toEqual([])
  })

  test('a reference being inserted when the delete starts: the delete waits, sees it, and soft-deletes', async () => {
    const id = await tag()
    await other.query('begin')
    await other.query('insert into labels (tag_id) values ($1)', [id])
    const trx = await db.startTransaction().execute()
    const pid = await pidOf(trx)
    const deleting = softDelete(trx, 'tags', { id })
    await blocked(pid)
    await other.query('commit')
    const result = await deleting
    await trx.commit().execute()
    expect(result).toMatchObject({ hardDeleted: [], deleted: [id] })
  })
})
