import type { InsertQueryBuilder, Kysely } from 'kysely'
import { dialectKindOf } from '../../src/index.ts'
import type { Database } from './fixture.ts'

let sequence = 0

/** A unique suffix, so that tests sharing one database never collide. */
export function unique(prefix: string): string {
  sequence += 1
  return `${prefix}_${process.pid}_${sequence}`
}

/** The new row's id: `RETURNING` where the dialect has it, MariaDB's insert id otherwise. */
async function insertedId(db: Kysely<Database>, query: InsertQueryBuilder<Database, any, any>): Promise<number> {
  if (dialectKindOf(db) === 'mysql') return Number((await query.executeTakeFirstOrThrow()).insertId)
  return (await query.returning('id').executeTakeFirstOrThrow()).id as number
}

/** Inserts an active user. */
export async function insertUser(db: Kysely<Database>, name = unique('user')): Promise<number> {
  return insertedId(
    db,
    db
      .insertInto('users')
      .values({ username: name, email: `${name}@example.com` }),
  )
}

/** Inserts an active post. */
export async function insertPost(db: Kysely<Database>, authorId: number, slug = unique('post')): Promise<number> {
  return insertedId(
    db,
    db
      .insertInto('posts')
      .values({ author_id: authorId, title: slug, slug }),
  )
}

/** Inserts an active comment. */
export async function insertComment(db: Kysely<Database>, postId: number, authorId: number): Promise<number> {
  return insertedId(
    db,
    db
      .insertInto('comments')
      .values({ post_id: postId, author_id: authorId, body: 'hello' }),
  )
}

/** The soft-delete columns of one row, read without any filter. */
export async function stateOf(raw: Kysely<Database>, table: 'users' | 'posts' | 'comments', id: number) {
  return raw
    .selectFrom(table)
    .select(['deleted_at', 'deleted_by', 'delete_reason', 'deletion_id', 'purge_at'])
    .where('id', '=', id)
    .executeTakeFirst()
}

/** Sorted numbers, whatever the driver returned (pg gives int8 as strings). */
export function numbers(values: readonly unknown[]): number[] {
  return values.map(Number).sort((a, b) => a - b)
}
