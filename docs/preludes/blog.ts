// docs-test prelude "blog": the "database" prelude, plus a `db` on an in-memory PGlite with the schema
// installed, `softDeletes`, and users 1-3 (user 3 wrote posts 7, 8 and 9, each with a comment).
import { PGlite } from '@electric-sql/pglite'
import { Kysely, sql, type Generated } from 'kysely'
import { PGliteDialect } from '@tombstone/kysely/pglite'
import {
  addSoftDeleteColumns,
  allowHardDelete,
  classifyDatabaseError,
  createActiveIndex,
  createActiveUniqueIndex,
  defineSoftDeletes,
  forceDelete,
  HardDeleteRefusedError,
  installHardDeleteGuard,
  installSoftDeletes,
  isTombstoneError,
  previewRestore,
  purge,
  readAudit,
  restore,
  restoreOrCreate,
  softDelete,
  softDeleteColumns,
  SoftDeletePlugin,
  withDeleted,
} from '@tombstone/kysely'

/** The five soft-delete columns, as Kysely sees them. */
interface Deletable {
  deleted_at: Date | null
  deleted_by: string | null
  delete_reason: string | null
  deletion_id: string | null
  purge_at: Date | null
}
interface Database {
  users: { id: Generated<number>; username: string; email: string } & Deletable
  posts: { id: Generated<number>; author_id: number; title: string; slug: string; created_at: Generated<Date> } & Deletable
  comments: { id: Generated<number>; post_id: number; author_id: number; body: string } & Deletable
}

const softDeletes = defineSoftDeletes<Database>()({
  tables: { users: { retention: { days: 30 } }, posts: { retention: { days: 30 } }, comments: { retention: { days: 30 } } },
  relations: [
    { parent: 'users', child: 'posts', foreignKey: 'author_id' },
    { parent: 'users', child: 'comments', foreignKey: 'author_id' },
    { parent: 'posts', child: 'comments', foreignKey: 'post_id' },
  ],
  audit: true,
})
const db = new Kysely<Database>({ dialect: new PGliteDialect({ pglite: new PGlite() }), plugins: [new SoftDeletePlugin(softDeletes)] })
await db.schema.createTable('users').addColumn('id', 'integer', (c) => c.primaryKey().generatedByDefaultAsIdentity())
  .addColumn('username', 'text', (c) => c.notNull()).addColumn('email', 'text', (c) => c.notNull()).$call(softDeleteColumns()).execute()
await db.schema.createTable('posts').addColumn('id', 'integer', (c) => c.primaryKey().generatedByDefaultAsIdentity())
  .addColumn('author_id', 'integer', (c) => c.notNull().references('users.id'))
  .addColumn('title', 'text', (c) => c.notNull()).addColumn('slug', 'text', (c) => c.notNull())
  .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`)).$call(softDeleteColumns()).execute()
await db.schema.createTable('comments').addColumn('id', 'integer', (c) => c.primaryKey().generatedByDefaultAsIdentity())
  .addColumn('post_id', 'integer', (c) => c.notNull().references('posts.id'))
  .addColumn('author_id', 'integer', (c) => c.notNull().references('users.id'))
  .addColumn('body', 'text', (c) => c.notNull()).$call(softDeleteColumns()).execute()
await installSoftDeletes(db, softDeletes)
await db.insertInto('users').values([1, 2, 3].map((id) => ({ id, username: `user${id}`, email: `user${id}@example.com` }))).execute()
await db.insertInto('posts').values([7, 8, 9].map((id) => ({ id, author_id: 3, title: `Post ${id}`, slug: `post-${id}` }))).execute()
await db.insertInto('comments').values([7, 8, 9].map((id) => ({ id: id * 10, post_id: id, author_id: 1, body: 'Nice' }))).execute()
const userId = 1
