import { sql, type Kysely } from 'kysely'
import { createActiveIndex, createActiveUniqueIndex, installSoftDeletes, softDeleteColumns } from '@tombstone/kysely'
import { blogSoftDeletes } from '../soft-deletes.ts'

/** Users, posts and comments (soft-deletable), tokens, login failures, the audit trail and the guard. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('users')
    .addColumn('id', 'integer', (col) => col.generatedAlwaysAsIdentity().primaryKey())
    .addColumn('username', 'text', (col) => col.notNull().check(sql`username ~ '^[a-z0-9_]{3,32}$'`))
    .addColumn('email', 'text', (col) => col.notNull())
    .addColumn('password_hash', 'text', (col) => col.notNull())
    .addColumn('role', 'text', (col) => col.notNull().defaultTo('user').check(sql`role in ('user', 'admin')`))
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .$call(softDeleteColumns())
    .execute()
  await db.schema
    .createTable('posts')
    .addColumn('id', 'integer', (col) => col.generatedAlwaysAsIdentity().primaryKey())
    .addColumn('author_id', 'integer', (col) => col.notNull().references('users.id'))
    .addColumn('title', 'text', (col) => col.notNull())
    .addColumn('slug', 'text', (col) => col.notNull())
    .addColumn('content', 'text', (col) => col.notNull())
    .addColumn('published', 'boolean', (col) => col.notNull().defaultTo(true))
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .$call(softDeleteColumns())
    .execute()
  await db.schema
    .createTable('comments')
    .addColumn('id', 'integer', (col) => col.generatedAlwaysAsIdentity().primaryKey())
    .addColumn('post_id', 'integer', (col) => col.notNull().references('posts.id'))
    .addColumn('author_id', 'integer', (col) => col.notNull().references('users.id'))
    .addColumn('body', 'text', (col) => col.notNull())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .$call(softDeleteColumns())
    .execute()
  await db.schema
    .createTable('tokens')
    .addColumn('id', 'integer', (col) => col.generatedAlwaysAsIdentity().primaryKey())
    .addColumn('user_id', 'integer', (col) => col.notNull().references('users.id').onDelete('cascade'))
    .addColumn('token_hash', 'text', (col) => col.notNull().unique())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (col) => col.notNull())
    .addColumn('revoked_at', 'timestamptz')
    .execute()
  await db.schema.createIndex('tokens_user_idx').on('tokens').column('user_id').execute()
  await db.schema
    .createTable('login_failures')
    .addColumn('id', 'integer', (col) => col.generatedAlwaysAsIdentity().primaryKey())
    .addColumn('username', 'text', (col) => col.notNull())
    .addColumn('address', 'text', (col) => col.notNull())
    .addColumn('at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .execute()
  await db.schema.createIndex('login_failures_lookup_idx').on('login_failures').columns(['username', 'address', 'at']).execute()

  // Uniqueness among active rows only: a deleted user's name and email, a deleted post's slug, are free again.
  await createActiveUniqueIndex(db, 'users', ['username'])
  await createActiveUniqueIndex(db, 'users', ['email'])
  await createActiveUniqueIndex(db, 'posts', ['slug'])
  // Active-row lookups of the API. (Foreign keys get plain indexes from installSoftDeletes below: they
  // serve the active lookups by author too, so no partial duplicate is kept for those.)
  await createActiveIndex(db, 'posts', ['created_at', 'id'])
  await createActiveIndex(db, 'posts', ['author_id', 'created_at', 'id'])
  await createActiveIndex(db, 'comments', ['post_id', 'created_at', 'id'])
  // The trash, most recently deleted first.
  for (const table of ['users', 'posts', 'comments']) {
    await sql`create index ${sql.id(`${table}_trash_idx`)} on ${sql.table(table)} (deleted_at desc, id desc) where deleted_at is not null`.execute(db)
  }
  // Purge and deletion-id indexes, the hard-delete guard on the three tables, the audit table.
  await installSoftDeletes(db, blogSoftDeletes(30))
}
