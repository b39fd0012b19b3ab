import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { touchRestored } from './shared.ts'
import { Type } from 'typebox'
import { HttpProblem, IdParams, problemResponses, softDeleteRoutes } from '@tombstone/fastify'
import { withDeleted } from '@tombstone/kysely'
import type { Comment } from '../db/schema.ts'
import { commentView, rowEtag } from '../views.ts'

const CommentRef = Type.Ref('Comment')

export async function commentRoutes(instance: FastifyInstance): Promise<void> {
  // Handlers are typed from their schemas (params, querystring, body).
  const app = instance.withTypeProvider<TypeBoxTypeProvider>()
  app.get(
    '/comments/:id',
    {
      schema: {
        tags: ['comments'],
        summary: 'A comment (it or its post deleted: 404)',
        operationId: 'getComment',
        description: 'Visible when its post is (a token is optional).',
        security: [{}, { bearer: [] }],
        params: IdParams,
        response: { 200: CommentRef, ...problemResponses(401, 404, 422) },
      },
    },
    async (request, reply) => {
      const { id } = request.params
      const actor = request.actor
      // Both tables are filtered: a comment of a deleted post is not found.
      const comment = await app.read(request, (db) =>
        db
          .selectFrom('comments')
          .innerJoin('posts', 'posts.id', 'comments.post_id')
          .selectAll('comments')
          .select(['posts.published', 'posts.author_id as post_author_id'])
          .where('comments.id', '=', id)
          .executeTakeFirst(),
      )
      const visible =
        comment !== undefined && (comment.published || (actor !== undefined && (actor.isAdmin || actor.id === comment.post_author_id)))
      if (!visible) throw new HttpProblem('not-found', `Comment ${id} does not exist`)
      reply.header('etag', rowEtag('comments', comment))
      return commentView(comment)
    },
  )

  softDeleteRoutes<Comment>(app, {
    table: 'comments',
    prefix: '/comments',
    deletionLink: (id) => `/admin/deletions/${id}`,
    noun: 'comment',
    tags: ['comments'],
    db: () => app.db,
    actor: (request) => request.actor,
    // The comment's author, or the author of the post it is on.
    canDelete: async (actor, comment) => {
      if (actor.id === comment.author_id) return true
      const post = await app.db
        .selectFrom('posts')
        .select('author_id')
        .where('id', '=', comment.post_id)
        .$call(withDeleted({ posts: 'include' }))
        .executeTakeFirst()
      return post?.author_id === actor.id
    },
    isOwner: (actor, comment) => actor.id === comment.author_id,
    adminView: { schema: CommentRef, map: (comment) => commentView(comment, true) },
    etag: (comment) => rowEtag('comments', comment),
    restoreSet: touchRestored,
    describeParentDeleted: (error) =>
      error.parentTable === 'posts'
        ? `Its post #${String(error.parentId)} is deleted; restore the post first`
        : `Its author (user #${String(error.parentId)}) is deleted; restore the user first`,
  })
}
