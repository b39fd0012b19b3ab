import { sql, type Kysely } from 'kysely'
import { createActiveIndex, createActiveUniqueIndex, installSoftDeletes, softDeleteColumns } from '@tombstone/kysely'
import { blogSoftDeletes } from '../../soft-deletes.ts'

/** SQLite's clock in the toolkit's format (ISO 8601, UTC, milliseconds), as a column default. */
const NOW = sql`(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))`

/**
 * SQLite's form of ../001-initial.ts: the same tables, columns, indexes and guard. Differences:
 * identities are `integer primary key autoincrement` (ids never reused, as PostgreSQL's identity),
 * timestamps are ISO 8601 text, booleans 0/1, and the username check uses `glob` (no regex).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('users')
    .addColumn('id', 'integer', (col) => col.primaryKey().autoIncrement())
    .addColumn('username', 'text', (col) => col.notNull().check(sql`length(username) between 3 and 32 and username not glob '*[^a-z0-9_]*'`))
    .addColumn('email', 'text', (col) => col.notNull())
    .addColumn('password_hash', 'text', (col) => col.notNull())
    .addColumn('role', 'text', (col) => col.notNull().defaultTo('user').check(sql`role in ('user', 'admin')`))
    .addColumn('created_at', 'text', (col) => col.notNull().defaultTo(NOW))
    .addColumn('updated_at', 'text', (col) => col.notNull().defaultTo(NOW))
    .$call(softDeleteColumns())
    .execute()
  await db.schema
    .createTable('posts')
    .addColumn('id', 'integer', (col) => col.primaryKey().autoIncrement())
    .addColumn('author_id', 'integer', (col) => col.notNull().references('users.id'))
    .addColumn('title', 'text', (col) => col.notNull())
    .addColumn('slug', 'text', (col) => col.notNull())
    .addColumn('content', 'text', (col) => col.notNull())
    .addColumn('published', 'boolean', (col) => col.notNull().defaultTo(1).check(sql`published in (0, 1)`))
    .addColumn('created_at', 'text', (col) => col.notNull().defaultTo(NOW))
    .addColumn('updated_at', 'text', (col) => col.notNull().defaultTo(NOW))
    .$call(softDeleteColumns())
    .execute()
  await db.schema
    .createTable('comments')
    .addColumn('id', 'integer', (col) => col.primaryKey().autoIncrement())
    .addColumn('post_id', 'integer', (col) => col.notNull().references('posts.id'))
    .addColumn('author_id', 'integer', (col) => col.notNull().references('users.id'))
    .addColumn('body', 'text', (col) => col.notNull())
    .addColumn('created_at', 'text', (col) => col.notNull().defaultTo(NOW))
    .addColumn('updated_at', 'text', (col) => col.notNull().defaultTo(NOW))
    .$call(softDeleteColumns())
    .execute()
  await db.schema
    .createTable('tokens')
    .addColumn('id', 'integer', (col) => col.primaryKey().autoIncrement())
    .addColumn('user_id', 'integer', (col) => col.notNull().references('users.id').onDelete('cascade'))
    .addColumn('token_hash', 'text', (col) => col.notNull().unique())
    .addColumn('created_at', 'text', (col) => col.notNull().defaultTo(NOW))
    .addColumn('expires_at', 'text', (col) => col.notNull())
    .addColumn('revoked_at', 'text')
    .execute()
  await db.schema.createIndex('tokens_user_idx').on('tokens').column('user_id').execute()
  await db.schema
    .createTable('login_failures')
    .addColumn('id', 'integer', (col) => col.primaryKey().autoIncrement())
    .addColumn('username', 'text', (col) => col.notNull())
    .addColumn('address', 'text', (col) => col.notNull())
    .addColumn('at', 'text', (col) => col.notNull().defaultTo(NOW))
    .execute()
  await db.schema.createIndex('login_failures_lookup_idx').on('login_failures').columns(['username', 'address', 'at']).execute()

  await createActiveUniqueIndex(db, 'users', ['username'])
  await createActiveUniqueIndex(db, 'users', ['email'])
  await createActiveUniqueIndex(db, 'posts', ['slug'])
  await createActiveIndex(db, 'posts', ['created_at', 'id'])
  await createActiveIndex(db, 'posts', ['author_id', 'created_at', 'id'])
  await createActiveIndex(db, 'comments', ['post_id', 'created_at', 'id'])
  for (const table of ['users', 'posts', 'comments']) {
    await sql`create index ${sql.id(`${table}_trash_idx`)} on ${sql.table(table)} (deleted_at desc, id desc) where deleted_at is not null`.execute(db)
  }
  await installSoftDeletes(db, blogSoftDeletes(30))
}
