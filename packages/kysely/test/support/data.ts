import type { Kysely } from 'kysely'
import type { Database } from './fixture.ts'

let sequence = 0

/** A unique suffix, so that tests sharing one database never collide. */
export function unique(prefix: string): string {
  sequence += 1
  return `${prefix}_${process.pid}_${sequence}`
}

/** Inserts an active user. */
export async function insertUser(db: Kysely<Database>, name = unique('user')): Promise<number> {
  const row = await db
    .insertInto('users')
    .values({ username: name, email: `${name}@example.com` })
    .returning('id')
    .executeTakeFirstOrThrow()
  return row.id
}

/** Inserts an active post. */
export async function insertPost(db: Kysely<Database>, authorId: number, slug = unique('post')): Promise<number> {
  const row = await db
    .insertInto('posts')
    .values({ author_id: authorId, title: slug, slug })
    .returning('id')
    .executeTakeFirstOrThrow()
  return row.id
}

/** Inserts an active comment. */
export async function insertComment(db: Kysely<Database>, postId: number, authorId: number): Promise<number> {
  const row = await db
    .insertInto('comments')
    .values({ post_id: postId, author_id: authorId, body: 'hello' })
    .returning('id')
    .executeTakeFirstOrThrow()
  return row.id
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
