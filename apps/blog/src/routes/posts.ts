import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { sql, type Kysely } from 'kysely'
import { Type } from 'typebox'
import {
  checkIfMatch,
  decodeCursor,
  encodeCursor,
  HttpProblem,
  IdParams,
  ListSchema,
  PageQuery,
  problemResponses,
  softDeleteRoutes,
  requireActor,
} from '@tombstone/fastify'
import { inTransaction, QueryShapes, SQLSTATE, sqlStateOf, withDeleted } from '@tombstone/kysely'
import type { Database, Post } from '../db/schema.ts'
import type { Actor } from '../services/tokens.ts'
import { commentView, iso, postView, publicPostColumns, rowEtag } from '../views.ts'
import { conflictOnUniqueViolation, likePattern, parentGone, visibilityFor, touchRestored } from './shared.ts'
import { bySql, now, transactionLock } from '../db/sql-dialect.ts'

const PostRef = Type.Ref('Post')
const CommentRef = Type.Ref('Comment')

const SLUG = '^[a-z0-9]+(?:-[a-z0-9]+)*$'
const Title = Type.String({ minLength: 1, maxLength: 200 })
const Content = Type.String({ maxLength: 100_000 })
const Slug = Type.String({ pattern: SLUG, maxLength: 200, description: 'Lowercase words joined by hyphens; unique among active posts' })

const NewPost = Type.Object(
  { title: Title, content: Content, slug: Type.Optional(Slug), published: Type.Optional(Type.Boolean({ default: true })) },
  { additionalProperties: false },
)
const PostChanges = Type.Object(
  { title: Type.Optional(Title), content: Type.Optional(Content), slug: Type.Optional(Slug), published: Type.Optional(Type.Boolean()) },
  { additionalProperties: false, minProperties: 1 },
)
const NewComment = Type.Object({ body: Type.String({ minLength: 1, maxLength: 10_000 }) }, { additionalProperties: false })

const ListQuery = Type.Object({
  author_id: Type.Optional(Type.Integer({ minimum: 1, maximum: 2_147_483_647 })),
  published: Type.Optional(Type.Boolean()),
  q: Type.Optional(Type.String({ maxLength: 200, description: 'Case-insensitive match on title or content; % _ \\ are literal' })),
  include_deleted: Type.Optional(Type.Boolean({ description: 'Admins: deleted posts too' })),
  only_deleted: Type.Optional(Type.Boolean({ description: 'Admins: deleted posts only (wins over include_deleted)' })),
  ...PageQuery,
})

/** A slug from a title: ASCII words joined by hyphens. */
export function slugify(title: string): string {
  const slug = title
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 80)
    .replace(/-+$/, '')
  return slug === '' ? 'post' : slug
}

const postById = new QueryShapes<Database, { id: number }>()

/** Drafts are visible to their author and admins only. */
function canSee(actor: Actor | undefined, post: Post): boolean {
  return post.published || (actor !== undefined && (actor.isAdmin || actor.id === post.author_id))
}

/** An active post the caller may see, or 404. */
export async function visiblePost(db: Kysely<Database>, actor: Actor | undefined, id: number): Promise<Post> {
  const [post] = await postById.execute(db, 'active', { id }, (db, $) => db.selectFrom('posts').selectAll().where('id', '=', $.id))
  if (post === undefined || !canSee(actor, post)) throw new HttpProblem('not-found', `Post ${id} does not exist`)
  return post
}

// The list's query takes one of a few shapes (which filters are present): each is compiled once.
const listShapes = new QueryShapes<Database, ListValues>()

/** The values a list of posts binds (a shape uses those its filters name). */
interface ListValues extends Record<string, unknown> {
  limit: number
  author: number | undefined
  published: boolean | undefined
  pattern: string | undefined
  actor: number | undefined
  cursorAt: string | undefined
  cursorId: number | undefined
}

export async function postRoutes(instance: FastifyInstance): Promise<void> {
  // Handlers are typed from their schemas (params, querystring, body).
  const app = instance.withTypeProvider<TypeBoxTypeProvider>()
  app.get(
    '/posts',
    {
      schema: {
        tags: ['posts'],
        summary: 'Posts, newest first',
        operationId: 'listPosts',
        description: 'Published posts to anyone; a token adds your drafts (and for an admin, `include_deleted` / `only_deleted`).',
        security: [{}, { bearer: [] }],
        querystring: ListQuery,
        response: { 200: ListSchema(PostRef, 'A page of posts'), ...problemResponses(401, 403, 422) },
      },
    },
    async (request) => {
      const query = request.query
      const actor = request.actor
      const visibility = visibilityFor(actor?.isAdmin === true, query)
      const limit = query.limit ?? 20
      const pattern = query.q !== undefined && query.q !== '' ? likePattern(query.q) : undefined
      const cursor = query.cursor === undefined ? undefined : decodeCursor(query.cursor, ['timestamp', 'number'])
      const viewer = actor === undefined ? 'anonymous' : actor.isAdmin ? 'admin' : 'user'
      const shape = [visibility, viewer, query.author_id !== undefined, query.published !== undefined, pattern !== undefined, cursor !== undefined].join()
      const values = { limit: limit + 1, author: query.author_id, published: query.published, pattern, actor: actor?.id, cursorAt: cursor?.[0], cursorId: cursor?.[1] }
      const rows = await app.read(request, (db) =>
        listShapes.execute(db, shape, values, (db, $) => {
          let select = db
            .selectFrom('posts')
            .select(publicPostColumns)
            // An admin's view of the trash shows the deletion fields; active posts have none to show.
            .$if(visibility !== 'exclude', (qb) => qb.select(['deleted_at', 'deleted_by', 'delete_reason', 'deletion_id', 'purge_at']))
            .$call(withDeleted({ posts: visibility }))
            .orderBy('created_at', 'desc')
            .orderBy('id', 'desc')
            .limit($.limit)
          if (query.author_id !== undefined) select = select.where('author_id', '=', $.author)
          if (query.published !== undefined) select = select.where('published', '=', $.published)
          if (pattern !== undefined) {
            select = select.where(
              bySql(
                db,
                () => sql<boolean>`(title ilike ${$.pattern} escape '\\' or content ilike ${$.pattern} escape '\\')`,
                // SQLite's like ignores case (ASCII letters only), and has no escape character unless named.
                () => sql<boolean>`(title like ${$.pattern} escape '\\' or content like ${$.pattern} escape '\\')`,
              ),
            )
          }
          if (viewer === 'anonymous') select = select.where('published', '=', true)
          else if (viewer === 'user') select = select.where((eb) => eb.or([eb('published', '=', true), eb('author_id', '=', $.actor)]))
          if (cursor !== undefined) {
            select = select.where(
              bySql(
                db,
                () => sql<boolean>`(created_at, id) < (${$.cursorAt}::timestamptz, ${$.cursorId})`,
                () => sql<boolean>`(created_at, id) < (${$.cursorAt}, ${$.cursorId})`,
              ),
            )
          }
          return select
        }),
      )
      const page = rows.slice(0, limit)
      const last = page.at(-1)
      return {
        items: page.map((post) => (visibility === 'exclude' ? postView(post) : postView(post as Post, true))),
        next_cursor: rows.length > limit && last !== undefined ? encodeCursor([iso(last.created_at), last.id]) : null,
      }
    },
  )

  app.get(
    '/posts/:id',
    {
      schema: {
        tags: ['posts'],
        summary: 'A post (missing or deleted: 404; admins see deleted ones with include_deleted=true)',
        operationId: 'getPost',
        description: 'Published posts to anyone, drafts to their author and admins (a token is optional). Sends an ETag for If-Match.',
        security: [{}, { bearer: [] }],
        params: IdParams,
        querystring: Type.Object({ include_deleted: Type.Optional(Type.Boolean()) }),
        response: { 200: PostRef, ...problemResponses(401, 403, 404, 422) },
      },
    },
    async (request, reply) => {
      const { id } = request.params
      const visibility = visibilityFor(request.actor?.isAdmin === true, request.query)
      const post = await app.read(request, (db) =>
        visibility === 'exclude'
          ? visiblePost(db, request.actor, id)
          : db.selectFrom('posts').selectAll().where('id', '=', id).$call(withDeleted({ posts: visibility })).executeTakeFirst(),
      )
      if (post === undefined) throw new HttpProblem('not-found', `Post ${id} does not exist`)
      reply.header('etag', rowEtag('posts', post))
      return postView(post, visibility !== 'exclude')
    },
  )

  app.post(
    '/posts',
    {
      schema: {
        tags: ['posts'],
        summary: 'Write a post (slug derived from the title when not given)',
        operationId: 'createPost',
        description: '409 when an active post has the slug.',
        security: [{ bearer: [] }],
        body: NewPost,
        response: { 201: PostRef, ...problemResponses(400, 401, 409, 413, 415, 422) },
      },
    },
    async (request, reply) => {
      const actor = requireActor(request.actor)
      const body = request.body
      const values = { author_id: actor.id, title: body.title, content: body.content, published: body.published ?? true }
      let post: Post
      if (body.slug !== undefined) {
        post = await app.db
          .insertInto('posts')
          .values({ ...values, slug: body.slug })
          .returningAll()
          .executeTakeFirstOrThrow()
          .catch((error: unknown) =>
            sqlStateOf(error) === SQLSTATE.parentDeleted
              ? parentGone(error)
              : conflictOnUniqueViolation(error, () => `The slug "${body.slug}" is used by an active post`),
          )
      } else {
        post = await insertWithDerivedSlug(app.db, values, slugify(body.title)).catch(parentGone)
      }
      reply.code(201).header('location', `/posts/${post.id}`).header('etag', rowEtag('posts', post))
      return postView(post)
    },
  )

  app.patch(
    '/posts/:id',
    {
      schema: {
        tags: ['posts'],
        summary: 'Edit a post (author or admin; honours If-Match)',
        operationId: 'updatePost',
        description: 'Changes only the fields sent. With If-Match, refused (412) if the post changed since it was read.',
        security: [{ bearer: [] }],
        params: IdParams,
        body: PostChanges,
        response: { 200: PostRef, ...problemResponses(400, 401, 403, 404, 409, 412, 413, 415, 422) },
      },
    },
    async (request, reply) => {
      const actor = requireActor(request.actor)
      const { id } = request.params
      const changes = request.body
      const updated = await inTransaction(app.db, async (trx) => {
        // Locked from the check to the write: a concurrent edit or delete waits, then sees this one.
        const post = await trx.selectFrom('posts').selectAll().where('id', '=', id).forUpdate().executeTakeFirst()
        if (post === undefined || !canSee(actor, post)) throw new HttpProblem('not-found', `Post ${id} does not exist`)
        if (!(actor.isAdmin || actor.id === post.author_id)) throw new HttpProblem('forbidden', `You may not edit post ${id}`)
        checkIfMatch(request, rowEtag('posts', post))
        return trx
          .updateTable('posts')
          // At least a millisecond later, so that the ETag changes with every edit.
          .set({
            ...changes,
            updated_at: bySql(
              trx,
              () => sql<Date>`greatest(now(), updated_at + interval '1 millisecond')`,
              () => sql<Date>`max(${now(trx)}, strftime('%Y-%m-%dT%H:%M:%fZ', updated_at, '+0.001 seconds'))`,
            ),
          })
          .where('id', '=', id)
          .returningAll()
          .executeTakeFirstOrThrow()
          .catch((error: unknown) => conflictOnUniqueViolation(error, () => `The slug "${changes.slug}" is used by an active post`))
      })
      reply.header('etag', rowEtag('posts', updated))
      return postView(updated)
    },
  )

  softDeleteRoutes<Post>(app, {
    table: 'posts',
    prefix: '/posts',
    deletionLink: (id) => `/admin/deletions/${id}`,
    noun: 'post',
    tags: ['posts'],
    db: () => app.db,
    actor: (request) => request.actor,
    canDelete: (actor, post) => actor.id === post.author_id,
    isOwner: (actor, post) => actor.id === post.author_id,
    // Another user's draft is not there for you: 404, like a missing post, never 403.
    canSee: (actor, post) => canSee(actor as Actor, post),
    adminView: { schema: PostRef, map: (post) => postView(post, true) },
    etag: (post) => rowEtag('posts', post),
    restoreSet: touchRestored,
    routes: { softAlias: true, trash: true, bulk: true },
    bulkIdsField: 'post_ids',
    describeConflict: (error) =>
      `The slug of post ${String(error.id ?? '')} is now used by post #${String(error.conflictingId ?? '?')}; rename one of them first`,
    describeParentDeleted: (error) => `Its author (user #${String(error.parentId)}) is deleted; restore the user first`,
  })

  app.get(
    '/posts/:id/comments',
    {
      schema: {
        tags: ['comments'],
        summary: "A post's comments, newest first (post missing or deleted: 404)",
        operationId: 'listPostComments',
        description: 'Visible when the post is (a token is optional).',
        security: [{}, { bearer: [] }],
        params: IdParams,
        querystring: Type.Object(PageQuery),
        response: { 200: ListSchema(CommentRef, 'A page of comments'), ...problemResponses(401, 404, 422) },
      },
    },
    async (request) => {
      const { id } = request.params
      const { limit = 20, cursor } = request.query
      const rows = await app.read(request, async (db) => {
        await visiblePost(db, request.actor, id)
        let select = db
          .selectFrom('comments')
          .selectAll()
          .where('post_id', '=', id)
          .orderBy('created_at', 'desc')
          .orderBy('id', 'desc')
          .limit(limit + 1)
        if (cursor !== undefined) {
          const [createdAt, last] = decodeCursor(cursor, ['timestamp', 'number'])
          select = select.where(bySql(db, () => sql<boolean>`(created_at, id) < (${createdAt}::timestamptz, ${last})`, () => sql<boolean>`(created_at, id) < (${createdAt}, ${last})`))
        }
        return select.execute()
      })
      const page = rows.slice(0, limit)
      const last = page.at(-1)
      return {
        items: page.map((comment) => commentView(comment)),
        next_cursor: rows.length > limit && last !== undefined ? encodeCursor([iso(last.created_at), last.id]) : null,
      }
    },
  )

  app.post(
    '/posts/:id/comments',
    {
      schema: {
        tags: ['comments'],
        summary: 'Comment on a post (post missing or deleted: 404)',
        operationId: 'createComment',
        description: 'Any signed-in user, on a post they can see.',
        security: [{ bearer: [] }],
        params: IdParams,
        body: NewComment,
        response: { 201: CommentRef, ...problemResponses(400, 401, 404, 413, 415, 422) },
      },
    },
    async (request, reply) => {
      const actor = requireActor(request.actor)
      const { id } = request.params
      const { body } = request.body
      const comment = await inTransaction(app.db, async (trx) => {
          const post = await trx.selectFrom('posts').selectAll().where('id', '=', id).executeTakeFirst()
          if (post === undefined || !canSee(actor, post)) throw new HttpProblem('not-found', `Post ${id} does not exist`)
          // If the post or the author is deleted between the check and the insert, the database's
          // parent check refuses the comment (it locks both, users first, as a cascade does).
          return trx.insertInto('comments').values({ post_id: id, author_id: actor.id, body }).returningAll().executeTakeFirstOrThrow()
        })
        .catch(parentGone)
      reply.code(201).header('location', `/comments/${comment.id}`).header('etag', rowEtag('comments', comment))
      return commentView(comment)
    },
  )
}

/**
 * Inserts a post whose slug is derived: `slug`, else `slug-2`, `slug-3`, … among active posts.
 * Requests deriving from the same base take turns (a transaction-level advisory lock on it), so
 * concurrent posts with one title all find a free slug; a slug given explicitly by another request
 * meanwhile makes it look again.
 */
async function insertWithDerivedSlug(
  db: Kysely<Database>,
  values: { author_id: number; title: string; content: string; published: boolean },
  base: string,
): Promise<Post> {
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      return await inTransaction(db, async (trx) => {
        await transactionLock(trx, `tombstone:slug:${base}`)
        const taken = await trx
          .selectFrom('posts')
          .select('slug')
          .where((eb) => eb.or([eb('slug', '=', base), eb('slug', 'like', `${base.replace(/[\\%_]/g, (char) => `\\${char}`)}-%`)]))
          .execute()
        const used = new Set(taken.map((row) => row.slug))
        let slug = base
        for (let n = 2; used.has(slug); n++) slug = `${base}-${n}`
        return trx.insertInto('posts').values({ ...values, slug }).returningAll().executeTakeFirstOrThrow()
      })
    } catch (error) {
      if (sqlStateOf(error) !== SQLSTATE.uniqueViolation) throw error
    }
  }
  throw new HttpProblem('conflict', 'Could not find a free slug; give one explicitly')
}
