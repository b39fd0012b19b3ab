/**
 * What the API shows of each resource: TypeBox schemas (which also generate the OpenAPI document)
 * and the functions that map rows to them. Public views never carry a deletion field; admin views
 * carry all five (null on an active row).
 */
import { Type, type Static } from 'typebox'
import { etagOf } from '@tombstone/fastify'
import type { Comment, Post, User } from './db/schema.ts'

const Timestamp = Type.String({ format: 'date-time', description: 'ISO 8601, UTC' })
const NullableTimestamp = Type.Union([Timestamp, Type.Null()])

/** The five deletion fields of admin views. */
const DeletionFields = {
  deleted_at: Type.Optional(NullableTimestamp),
  deleted_by: Type.Optional(Type.Union([Type.Integer(), Type.Null()], { description: 'Id of the user who deleted it' })),
  delete_reason: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  deletion_id: Type.Optional(Type.Union([Type.String({ format: 'uuid' }), Type.Null()], { description: 'Shared by everything one deletion took' })),
  purge_at: Type.Optional(Type.Union([Timestamp, Type.Null()], { description: 'When it becomes eligible for purge' })),
}

export const UserView = Type.Object(
  {
    id: Type.Integer(),
    username: Type.String(),
    created_at: Timestamp,
    email: Type.Optional(Type.String({ description: 'Self and admin only' })),
    role: Type.Optional(Type.Union([Type.Literal('user'), Type.Literal('admin')], { description: 'Self and admin only' })),
    ...DeletionFields,
  },
  { $id: 'User', description: 'A user. email and role for self and admins; deletion fields in admin views only.' },
)

export const PostView = Type.Object(
  {
    id: Type.Integer(),
    title: Type.String(),
    slug: Type.String(),
    content: Type.String(),
    published: Type.Boolean(),
    author_id: Type.Integer(),
    created_at: Timestamp,
    updated_at: Timestamp,
    ...DeletionFields,
  },
  { $id: 'Post', description: 'A post. Deletion fields in admin views only.' },
)

export const CommentView = Type.Object(
  {
    id: Type.Integer(),
    post_id: Type.Integer(),
    author_id: Type.Integer(),
    body: Type.String(),
    created_at: Timestamp,
    updated_at: Timestamp,
    ...DeletionFields,
  },
  { $id: 'Comment', description: 'A comment. Deletion fields in admin views only.' },
)

export type UserViewT = Static<typeof UserView>
export type PostViewT = Static<typeof PostView>
export type CommentViewT = Static<typeof CommentView>

interface Deletable {
  deleted_at: Date | null
  deleted_by: string | null
  delete_reason: string | null
  deletion_id: string | null
  purge_at: Date | null
}

/** ISO 8601 with `Z`, whatever the driver returned. */
export function iso(value: Date | string): string {
  // A Date (what pg returns) formats itself: no copy.
  return value instanceof Date ? value.toISOString() : new Date(value).toISOString()
}

/** A user id stored as text (`deleted_by`, the audit's actor), or null when it is not one. */
export function userIdOf(value: string | null): number | null {
  const id = value === null ? Number.NaN : Number(value)
  return Number.isSafeInteger(id) ? id : null
}

function deletionFields(row: Deletable) {
  return {
    deleted_at: row.deleted_at === null ? null : iso(row.deleted_at),
    deleted_by: userIdOf(row.deleted_by),
    delete_reason: row.delete_reason,
    deletion_id: row.deletion_id,
    purge_at: row.purge_at === null ? null : iso(row.purge_at),
  }
}

/** A user as others see them, as they see themselves (`self`), or as an admin does. */
export function userView(user: User, view: 'public' | 'self' | 'admin'): UserViewT {
  const base = { id: user.id, username: user.username, created_at: iso(user.created_at) }
  if (view === 'public') return base
  const self = { ...base, email: user.email, role: user.role }
  return view === 'admin' ? { ...self, ...deletionFields(user) } : self
}

/**
 * The columns of a post's public view: what a read selects when it can see no deleted row and
 * shows no deletion field (a list of active posts), so five null columns neither travel nor parse.
 */
export const publicPostColumns = ['id', 'title', 'slug', 'content', 'published', 'author_id', 'created_at', 'updated_at'] as const

/** A post as its public view needs it. */
export type PublicPost = Pick<Post, (typeof publicPostColumns)[number]>

/** A post as others see it, or (`admin`, from a whole row) with its deletion fields. */
export function postView(post: PublicPost): PostViewT
export function postView(post: Post, admin: boolean): PostViewT
export function postView(post: PublicPost | Post, admin = false): PostViewT {
  const base = {
    id: post.id,
    title: post.title,
    slug: post.slug,
    content: post.content,
    published: post.published,
    author_id: post.author_id,
    created_at: iso(post.created_at),
    updated_at: iso(post.updated_at),
  }
  return admin ? { ...base, ...deletionFields(post as Post) } : base
}

export function commentView(comment: Comment, admin = false): CommentViewT {
  const base = {
    id: comment.id,
    post_id: comment.post_id,
    author_id: comment.author_id,
    body: comment.body,
    created_at: iso(comment.created_at),
    updated_at: iso(comment.updated_at),
  }
  return admin ? { ...base, ...deletionFields(comment) } : base
}

/** The ETag of a row: changes with every update, delete and restore, the same in every view. */
export function rowEtag(table: string, row: { id: number; updated_at: Date; deleted_at: Date | null }): string {
  return etagOf([table, row.id, iso(row.updated_at), row.deleted_at === null ? null : iso(row.deleted_at)])
}
