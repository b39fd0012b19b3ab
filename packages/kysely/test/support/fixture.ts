import { Kysely, sql, type Generated } from 'kysely'
import { freshDatabase, type DatabaseKind, type FreshDatabase } from '@tombstone/testing'
import {
  createActiveUniqueIndex,
  defineSoftDeletes,
  dialectKindOf,
  installSoftDeletes,
  softDeleteColumns,
  SoftDeletePlugin,
  type SoftDeleteDefinition,
} from '../../src/index.ts'

interface SoftDeleteFields {
  deleted_at: Date | null
  deleted_by: string | null
  delete_reason: string | null
  deletion_id: string | null
  purge_at: Date | null
}

export interface Database {
  users: { id: Generated<number>; username: string; email: string } & SoftDeleteFields
  posts: {
    id: Generated<number>
    author_id: number
    category_id: number | null
    title: string
    slug: string
  } & SoftDeleteFields
  comments: { id: Generated<number>; post_id: number; author_id: number; body: string } & SoftDeleteFields
  categories: { id: Generated<number>; name: string }
  archive: { id: number; note: string | null }
  sessions: { id: Generated<number>; user_id: number; revoked_at: Date | null }
  'public.posts': Database['posts']
}

export const definition: SoftDeleteDefinition<Database> = defineSoftDeletes<Database>()({
  tables: {
    users: { retention: { days: 30 } },
    posts: { retention: { days: 30 } },
    comments: { retention: { days: 30 } },
  },
  relations: [
    { parent: 'users', child: 'posts', foreignKey: 'author_id' },
    { parent: 'users', child: 'comments', foreignKey: 'author_id' },
    { parent: 'posts', child: 'comments', foreignKey: 'post_id' },
  ],
  dependents: [{ table: 'sessions', foreignKey: 'user_id', parent: 'users' }],
  audit: true,
})

/** Creates the schema (users, posts, comments soft-deletable; categories, archive plain). */
export async function createSchema(db: Kysely<any>): Promise<void> {
  // SQLite: only `integer primary key` is the rowid (auto-assigned); PostgreSQL: serial.
  const kind = dialectKindOf(db)
  const idType = kind === 'postgres' ? 'serial' : 'integer'
  // MariaDB/MySQL: auto_increment, and indexable text (its unique indexes take no unbounded text).
  const key = (col: any) => (kind === 'mysql' ? col.primaryKey().autoIncrement() : col.primaryKey())
  const text = kind === 'mysql' ? sql`varchar(255)` : 'text'
  const columns = () => softDeleteColumns({ dialect: kind })
  await db.schema
    .createTable('users')
    .addColumn('id', idType, key)
    .addColumn('username', text as 'text', (col) => col.notNull())
    .addColumn('email', text as 'text', (col) => col.notNull())
    .$call(columns())
    .execute()
  await db.schema.createTable('categories').addColumn('id', idType, key).addColumn('name', text as 'text', (col) => col.notNull()).execute()
  await db.schema
    .createTable('posts')
    .addColumn('id', idType, key)
    .addColumn('author_id', 'integer', (col) => col.notNull().references('users.id'))
    .addColumn('category_id', 'integer', (col) => col.references('categories.id'))
    .addColumn('title', text as 'text', (col) => col.notNull())
    .addColumn('slug', text as 'text', (col) => col.notNull())
    .$call(columns())
    .execute()
  await db.schema
    .createTable('comments')
    .addColumn('id', idType, key)
    .addColumn('post_id', 'integer', (col) => col.notNull().references('posts.id'))
    .addColumn('author_id', 'integer', (col) => col.notNull().references('users.id'))
    .addColumn('body', text as 'text', (col) => col.notNull())
    .$call(columns())
    .execute()
  await db.schema.createTable('archive').addColumn('id', 'integer').addColumn('note', text as 'text').execute()
  await db.schema
    .createTable('sessions')
    .addColumn('id', idType, key)
    .addColumn('user_id', 'integer', (col) => col.notNull().references('users.id'))
    .addColumn('revoked_at', kind === 'mysql' ? sql`datetime(3)` as never : 'timestamptz')
    .execute()
  await createActiveUniqueIndex(db, 'users', ['username'])
  await createActiveUniqueIndex(db, 'users', ['email'])
  await createActiveUniqueIndex(db, 'posts', ['slug'])
  await installSoftDeletes(db, definition)
}

const D = '2026-01-01T00:00:00Z'

/**
 * The read-filter data set. Active: users 1, 2, 4, 5; posts 10, 12, 15; comments 100, 103, 105.
 * Deleted: user 3 (carol) with her post 13 and comment 101; post 11 with comment 102; post 14 with
 * comment 106; post 16 (eve's only post); comment 104 on its own.
 */
export async function seedReadFixture(db: Kysely<any>): Promise<void> {
  const deleted = (id: string) => ({ deleted_at: D, deleted_by: 'seed', deletion_id: id, purge_at: D })
  const d = {
    carol: '00000000-0000-4000-8000-000000000003',
    p11: '00000000-0000-4000-8000-000000000011',
    p14: '00000000-0000-4000-8000-000000000014',
    p16: '00000000-0000-4000-8000-000000000016',
    c104: '00000000-0000-4000-8000-000000000104',
  }
  await db.insertInto('categories').values([{ id: 1, name: 'news' }, { id: 2, name: 'tech' }]).execute()
  await db
    .insertInto('users')
    .values([
      { id: 1, username: 'alice', email: 'alice@example.com' },
      { id: 2, username: 'bob', email: 'bob@example.com' },
      { id: 3, username: 'carol', email: 'carol@example.com', ...deleted(d.carol) },
      { id: 4, username: 'dave', email: 'dave@example.com' },
      { id: 5, username: 'eve', email: 'eve@example.com' },
    ])
    .execute()
  await db
    .insertInto('posts')
    .values([
      { id: 10, author_id: 1, category_id: 1, title: 'a1', slug: 'a1' },
      { id: 11, author_id: 1, category_id: 2, title: 'a2', slug: 'a2', ...deleted(d.p11) },
      { id: 12, author_id: 2, category_id: 1, title: 'b1', slug: 'b1' },
      { id: 13, author_id: 3, category_id: 2, title: 'c1', slug: 'c1', ...deleted(d.carol) },
      { id: 14, author_id: 2, category_id: 2, title: 'b2', slug: 'b2', ...deleted(d.p14) },
      { id: 15, author_id: 4, category_id: 1, title: 'd1', slug: 'd1' },
      { id: 16, author_id: 5, category_id: null, title: 'e1', slug: 'e1', ...deleted(d.p16) },
    ])
    .execute()
  await db
    .insertInto('comments')
    .values([
      { id: 100, post_id: 10, author_id: 2, body: 'x' },
      { id: 101, post_id: 10, author_id: 3, body: 'x', ...deleted(d.carol) },
      { id: 102, post_id: 11, author_id: 2, body: 'x', ...deleted(d.p11) },
      { id: 103, post_id: 12, author_id: 1, body: 'x' },
      { id: 104, post_id: 12, author_id: 1, body: 'x', ...deleted(d.c104) },
      { id: 105, post_id: 15, author_id: 1, body: 'x' },
      { id: 106, post_id: 14, author_id: 4, body: 'x', ...deleted(d.p14) },
    ])
    .execute()
  // SQLite's rowids continue from the largest key; PostgreSQL's sequences are moved past the seed.
  if (dialectKindOf(db) !== 'postgres') return
  for (const table of ['users', 'posts', 'comments', 'categories']) {
    await sql`select setval(pg_get_serial_sequence(${table}, 'id'), 1000)`.execute(db)
  }
}

/** A fresh database with the schema, and two Kysely instances on it: with and without the plugin. */
export interface Fixture {
  readonly kind: DatabaseKind
  readonly database: FreshDatabase
  /** With the plugin. */
  readonly db: Kysely<Database>
  /** Without any plugin: sees everything, as psql would. */
  readonly raw: Kysely<Database>
  close(): Promise<void>
}

export async function createFixture(kind: DatabaseKind, options: { poolSize?: number } = {}): Promise<Fixture> {
  const database = await freshDatabase(kind)
  const raw = new Kysely<Database>({ dialect: database.dialect(options) })
  await createSchema(raw)
  const db = new Kysely<Database>({ dialect: database.dialect(options), plugins: [new SoftDeletePlugin(definition)] })
  return {
    kind,
    database,
    db,
    raw,
    close: async () => {
      await db.destroy()
      await raw.destroy()
      await database.drop()
    },
  }
}
