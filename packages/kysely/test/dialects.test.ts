/**
 * The read filter on every dialect the harness can create: PGlite, PostgreSQL, SQLite (node:sqlite)
 * and MariaDB/MySQL (when TEST_MYSQL_URL is set). The plugin rewrites Kysely's operation tree, so
 * the same rewrite must hold whatever compiler turns it into SQL: each shape runs against data with
 * deleted rows and must return exactly the active rows, with each dialect's SQL in a snapshot.
 * Shapes a dialect lacks are skipped by name (see `unsupported`), never silently.
 */
import { Kysely, sql, type SelectQueryBuilder } from 'kysely'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { dialectKinds, freshDatabase, type DatabaseKind, type FreshDatabase } from '@tombstone/testing'
import { defineSoftDeletes, SoftDeletePlugin, withDeleted } from '../src/index.ts'

interface Db {
  authors: { id: number; name: string; deleted_at: string | null }
  notes: { id: number; author_id: number; title: string; deleted_at: string | null }
  tags: { id: number; note_id: number; label: string }
}

const softDeletes = defineSoftDeletes<Db>()({ tables: { authors: {}, notes: {} } })

type Shape = {
  readonly name: string
  readonly query: (db: Kysely<Db>) => SelectQueryBuilder<any, any, any>
  /** The rows, as sorted JSON lines, the query must return. */
  readonly expected: readonly unknown[]
}

// Authors 1 (active), 2 (deleted); notes 10 (author 1), 11 (author 1, deleted), 12 (author 2), 13 (author 2, deleted).
const shapes: readonly Shape[] = [
  { name: 'from', query: (db) => db.selectFrom('notes').select('id').orderBy('id'), expected: [{ id: 10 }, { id: 12 }] },
  {
    name: 'where kept beside the filter (OR cannot escape it)',
    query: (db) => db.selectFrom('notes').select('id').where((eb) => eb.or([eb('id', '=', 11), eb('id', '=', 12)])).orderBy('id'),
    expected: [{ id: 12 }],
  },
  {
    name: 'inner join',
    query: (db) => db.selectFrom('notes').innerJoin('authors', 'authors.id', 'notes.author_id').select(['notes.id', 'authors.name']).orderBy('notes.id'),
    expected: [{ id: 10, name: 'ada' }],
  },
  {
    name: 'left join keeps the outer row, without the deleted match',
    query: (db) =>
      db.selectFrom('authors').leftJoin('notes', 'notes.author_id', 'authors.id').select(['authors.id', 'notes.id as note_id']).orderBy('authors.id').orderBy('notes.id'),
    expected: [{ id: 1, note_id: 10 }],
  },
  {
    name: 'subquery in where',
    query: (db) =>
      db.selectFrom('authors').select('id').where('id', 'in', db.selectFrom('notes').select('author_id')).orderBy('id'),
    expected: [{ id: 1 }],
  },
  {
    name: 'exists',
    query: (db) =>
      db
        .selectFrom('authors')
        .select('authors.id')
        .where(({ exists, selectFrom }) => exists(selectFrom('notes').select('notes.id').whereRef('notes.author_id', '=', 'authors.id')))
        .orderBy('authors.id'),
    expected: [{ id: 1 }],
  },
  {
    name: 'common table expression',
    query: (db) => db.with('n', (qb) => qb.selectFrom('notes').select(['id', 'author_id'])).selectFrom('n').select('id').orderBy('id'),
    expected: [{ id: 10 }, { id: 12 }],
  },
  {
    name: 'union',
    query: (db) => db.selectFrom('notes').select('id').union(db.selectFrom('authors').select('id')).orderBy('id'),
    expected: [{ id: 1 }, { id: 10 }, { id: 12 }],
  },
  {
    name: 'self-join by alias',
    query: (db) =>
      db
        .selectFrom('notes as a')
        .innerJoin('notes as b', 'b.author_id', 'a.author_id')
        .select(['a.id as a', 'b.id as b'])
        .orderBy('a.id')
        .orderBy('b.id'),
    expected: [{ a: 10, b: 10 }, { a: 12, b: 12 }],
  },
  {
    name: 'aggregate over a plain table joined to a soft-deletable one',
    query: (db) =>
      db.selectFrom('tags').innerJoin('notes', 'notes.id', 'tags.note_id').select((eb) => eb.fn.countAll<number>().as('n')),
    expected: [{ n: 1 }],
  },
  {
    name: 'withDeleted only: the trash',
    query: (db) => db.selectFrom('notes').select('id').orderBy('id').$call(withDeleted({ notes: 'only' })),
    expected: [{ id: 11 }, { id: 13 }],
  },
  {
    name: 'right join (pre-filtered derived table)',
    query: (db) =>
      db.selectFrom('notes').rightJoin('authors', 'authors.id', 'notes.author_id').select(['authors.id', 'notes.id as note_id']).orderBy('authors.id').orderBy('notes.id'),
    expected: [{ id: 1, note_id: 10 }],
  },
  {
    name: 'full join (pre-filtered derived tables)',
    query: (db) =>
      db.selectFrom('notes').fullJoin('authors', 'authors.id', 'notes.author_id').select(['authors.id', 'notes.id as note_id']).orderBy('notes.id'),
    expected: [{ id: 1, note_id: 10 }, { id: null, note_id: 12 }],
  },
]

/** Shapes a dialect cannot run, with the reason. */
const unsupported: Partial<Record<DatabaseKind, Readonly<Record<string, string>>>> = {
  mysql: { 'full join (pre-filtered derived tables)': 'MariaDB and MySQL have no FULL JOIN' },
}

/** Rows as plain objects with numbers (drivers differ: bigint counts, null-prototype rows). */
function plain(rows: readonly Record<string, unknown>[]): unknown[] {
  return rows.map((row) => Object.fromEntries(Object.entries(row).map(([key, value]) => [key, typeof value === 'bigint' || typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value])))
}

describe.each(dialectKinds())('the read filter on %s', (kind) => {
  let database: FreshDatabase
  let db: Kysely<Db>
  beforeAll(async () => {
    database = await freshDatabase(kind)
    db = new Kysely<Db>({ dialect: database.dialect(), plugins: [new SoftDeletePlugin(softDeletes)] })
    const text = kind === 'mysql' ? 'varchar(100)' : 'text'
    await sql`create table authors (id integer primary key, name ${sql.raw(text)} not null, deleted_at ${sql.raw(text)})`.execute(db)
    await sql`create table notes (id integer primary key, author_id integer not null references authors(id), title ${sql.raw(text)} not null, deleted_at ${sql.raw(text)})`.execute(db)
    await sql`create table tags (id integer primary key, note_id integer not null references notes(id), label ${sql.raw(text)} not null)`.execute(db)
    await sql`insert into authors (id, name, deleted_at) values (1, 'ada', null), (2, 'bob', '2026-01-01')`.execute(db)
    await sql`insert into notes (id, author_id, title, deleted_at) values (10, 1, 'a', null), (11, 1, 'b', '2026-01-01'), (12, 2, 'c', null), (13, 2, 'd', '2026-01-01')`.execute(db)
    await sql`insert into tags (id, note_id, label) values (100, 10, 'x'), (101, 11, 'y')`.execute(db)
  })
  afterAll(async () => {
    await db?.destroy()
    await database?.drop()
  })

  for (const shape of shapes) {
    const reason = unsupported[kind]?.[shape.name]
    test.skipIf(reason !== undefined)(`${shape.name}${reason === undefined ? '' : ` (skipped: ${reason})`}`, async () => {
      const query = shape.query(db)
      const rows = await query.execute()
      expect(plain(rows as Record<string, unknown>[])).toEqual(shape.expected)
      // The SQL per dialect family (PGlite and PostgreSQL compile alike).
      const family = kind === 'pglite' || kind === 'postgres' ? 'postgres' : kind
      expect(query.compile().sql).toMatchSnapshot(family)
    })
  }
})
