import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { sql, type Kysely } from 'kysely'
import { Type, type TSchema } from 'typebox'
import {
  forceDelete,
  previewForceDelete,
  previewSoftDelete,
  restore,
  softDelete,
  withDeleted,
  type ConflictError,
  type ParentDeletedError,
  type PreviewResult,
  type RestoreResult,
  type RowKey,
} from '@tombstone/kysely'
import { checkIfMatch, decodeCursor, encodeCursor, IdParams, ListSchema, PageQuery, problemResponses } from './http.ts'
import { HttpProblem, unauthorized } from './problems.ts'

/** Who is calling, as the soft-delete routes need to know. */
export interface SoftDeleteActor {
  readonly id: string | number
  readonly isAdmin: boolean
}

/** Which routes {@link softDeleteRoutes} adds. */
export interface SoftDeleteRouteSet {
  /** `DELETE <prefix>/:id/soft`, an alias of `DELETE <prefix>/:id`. Defaults to `false`. */
  readonly softAlias?: boolean
  /** `POST <prefix>/:id/restore` (admin). Defaults to `true`. */
  readonly restore?: boolean
  /** `DELETE <prefix>/:id/permanent` (admin). Defaults to `true`. */
  readonly permanent?: boolean
  /** `GET <prefix>/deleted`, the table's trash (admin). Defaults to `false`. */
  readonly trash?: boolean
  /** `DELETE <prefix>/bulk`, `POST <prefix>/bulk-delete`, `POST <prefix>/bulk-restore` (admin). Defaults to `false`. */
  readonly bulk?: boolean
}

/** Options of {@link softDeleteRoutes}. */
export interface SoftDeleteRoutesOptions<Row extends Record<string, unknown>> {
  /** The declared soft-deletable table. */
  readonly table: string
  /** The route prefix, e.g. `'/posts'`. */
  readonly prefix: string
  /** The resource's name in messages, e.g. `'post'`. */
  readonly noun: string
  /** OpenAPI tags. */
  readonly tags?: readonly string[]
  /** The plugin-equipped Kysely instance for a request. */
  readonly db: (request: FastifyRequest) => Kysely<any>
  /** The caller, or undefined when anonymous (then the routes answer 401). */
  readonly actor: (request: FastifyRequest) => SoftDeleteActor | undefined
  /** May this (non-admin) caller soft-delete this active row? Admins always may. */
  readonly canDelete: (actor: SoftDeleteActor, row: Row) => boolean | Promise<boolean>
  /** Is the caller the row's owner? Deleting an already deleted row answers 204 to its owner or an admin, 404 to others. */
  readonly isOwner: (actor: SoftDeleteActor, row: Row) => boolean
  /**
   * Whether the actor may know the active row exists (a draft is its author's). One who may not
   * gets the same `404` as for a missing row, never a `403` that would reveal it. Defaults to always.
   */
  readonly canSee?: (actor: SoftDeleteActor, row: Row) => boolean
  /** The admin view (all five deletion fields): its schema and how a row maps to it. */
  readonly adminView: { readonly schema: TSchema; readonly map: (row: Row) => unknown }
  /** The row's ETag; `If-Match` is checked against it. */
  readonly etag: (row: Row) => string
  readonly routes?: SoftDeleteRouteSet
  /** The field of bulk bodies holding the ids. Defaults to `<noun>_ids`. */
  readonly bulkIdsField?: string
  /** The most ids a bulk body may hold. Defaults to 1,000. */
  readonly maxBulk?: number
  /** Words for a restore conflict, e.g. "the slug is now used by post #12". */
  readonly describeConflict?: (error: ConflictError) => string
  /** Words for a restore refused because a parent is deleted. */
  readonly describeParentDeleted?: (error: ParentDeletedError) => string
  /** Runs in the soft delete's transaction, with the keys of every row it stamped per table. */
  readonly onSoftDeleted?: (trx: Kysely<any>, tables: Readonly<Record<string, readonly RowKey[]>>) => Promise<void>
  /**
   * Runs in the restore's transaction with the keys it brought back per table (the blog bumps their
   * `updated_at`, so that a row's ETag after delete + restore differs from the one before). Defaults to none.
   */
  readonly onRestored?: (trx: Kysely<any>, tables: Readonly<Record<string, readonly RowKey[]>>) => Promise<void>
  /**
   * Runs in the delete's transaction, before any row is soft- or hard-deleted by these routes, with
   * the target ids; throw an {@link HttpProblem} to refuse (the blog refuses to delete the last
   * active admin, locking the admins so two concurrent deletes cannot both pass). Defaults to none.
   */
  /**
   * Where a deletion can be read (`/admin/deletions/<id>`): a `DELETE` then answers with a
   * `Link: <…>; rel="deletion"` beside its `Tombstone-Deletion: <id>` header. Defaults to no `Link`.
   */
  readonly deletionLink?: (deletionId: string) => string
  readonly beforeDelete?: (trx: Kysely<any>, ids: readonly number[], kind: 'soft' | 'permanent') => Promise<void>
}

const DeleteQuery = Type.Object({
  reason: Type.Optional(Type.String({ maxLength: 500, description: 'Why; kept with the deleted row and in the audit trail' })),
})

const Deleted = Type.Null({ description: 'Done; no body. A soft delete names its deletion in the Tombstone-Deletion header (and a Link with rel="deletion")' })

/** What a `?dry_run=true` of a permanent or bulk delete answers: what would go with it, changing nothing. */
const DryRunView = Type.Object(
  {
    dry_run: Type.Literal(true),
    count: Type.Integer({ description: 'Rows that would be deleted, all tables' }),
    tables: Type.Record(
      Type.String(),
      Type.Object({ count: Type.Integer(), sample: Type.Array(Type.Integer(), { maxItems: 20 }), held: Type.Integer() }),
      { description: 'Per table: how many, the first ids, how many a legal hold covers' },
    ),
    held: Type.Integer({ description: 'Rows under a legal hold among them: a permanent delete would be refused (409 legal-hold)' }),
    would_refuse: Type.Boolean(),
    not_found: Type.Array(Type.Integer()),
    already_deleted: Type.Array(Type.Integer(), { description: 'Soft delete only: left as they are' }),
  },
  { description: 'Nothing changed: what the delete would take' },
)
const DryRunQuery = Type.Object({ dry_run: Type.Optional(Type.Boolean({ description: 'Say what would go, change nothing. Defaults to false' })) })

function dryRunView(preview: PreviewResult) {
  return {
    dry_run: true as const,
    count: preview.count,
    tables: Object.fromEntries(
      Object.entries(preview.tables).map(([name, entry]) => [name, { count: entry.count, sample: entry.sample.map(Number), held: entry.held }]),
    ),
    held: preview.held,
    would_refuse: preview.wouldRefuse,
    not_found: sortedIds(preview.notFound),
    already_deleted: sortedIds(preview.alreadyDeleted),
  }
}

/** Keys as sorted numbers, for stable answers. */
function sortedIds(keys: readonly RowKey[]): number[] {
  return keys.map(Number).sort((a, b) => a - b)
}

/**
 * The caller, or a 401 problem (with `WWW-Authenticate: Bearer`).
 *
 * @example
 * ```ts
 * const actor = requireActor(request.actor)
 * ```
 */
export function requireActor<A extends SoftDeleteActor>(actor: A | undefined): A {
  if (actor === undefined) throw unauthorized('This endpoint needs a bearer token')
  return actor
}

/**
 * The caller if an admin; 401 when anonymous, 403 otherwise — whatever the target, so that the
 * answer tells a non-admin nothing about it.
 *
 * @example
 * ```ts
 * const admin = requireAdmin(request.actor)
 * ```
 */
export function requireAdmin<A extends SoftDeleteActor>(actor: A | undefined): A {
  const caller = requireActor(actor)
  if (!caller.isAdmin) throw new HttpProblem('forbidden', 'Only an admin may do this')
  return caller
}

/**
 * Adds the soft-delete endpoints of one declared table to a Fastify app, with the deleting rules of
 * the reference contract, so that every table gets the same behaviour from one piece:
 *
 * 1. missing id: 404; 2. active and the caller may delete it: soft delete, 204; 3. active and the
 * caller may not: 403; 4. already deleted and the caller is its owner or an admin: 204, nothing
 * re-stamped; 5. already deleted, any other caller: 404; 6. concurrent deletes: both 204, one stamp.
 *
 * Restore, permanent delete, the trash and the bulk routes are admin-only: 401 without a token, 403
 * for a non-admin whether or not the target exists. `If-Match` is checked after authentication,
 * authorization and existence.
 *
 * @example
 * ```ts
 * await app.register(async (scope) => softDeleteRoutes(scope, {
 *   table: 'posts', prefix: '/posts', noun: 'post',
 *   db: () => app.db,
 *   actor: (request) => request.actor,
 *   canDelete: (actor, post) => post.author_id === actor.id,
 *   isOwner: (actor, post) => post.author_id === actor.id,
 *   adminView: { schema: PostAdminView, map: toPostAdminView },
 *   etag: (post) => etagOf(['posts', post.id, post.updated_at, post.deleted_at]),
 *   routes: { softAlias: true, trash: true, bulk: true },
 * }))
 * ```
 */
export function softDeleteRoutes<Row extends Record<string, unknown>>(app: FastifyInstance, options: SoftDeleteRoutesOptions<Row>): void {
  const { table, prefix, noun } = options
  const routes = { softAlias: false, restore: true, permanent: true, trash: false, bulk: false, ...options.routes }
  const tags = options.tags === undefined ? undefined : [...options.tags]
  const idsField = options.bulkIdsField ?? `${noun}_ids`
  const maxBulk = options.maxBulk ?? 1000
  const Noun = noun.charAt(0).toUpperCase() + noun.slice(1)

  async function load(db: Kysely<any>, id: number): Promise<Row | undefined> {
    return (await db
      .selectFrom(table)
      .selectAll()
      .where('id', '=', id)
      .$call(withDeleted({ [table]: 'include' }))
      .executeTakeFirst()) as Row | undefined
  }

  /** Runs a restore, in one transaction with `onRestored` when there is one. */
  async function restoreWithHook(db: Kysely<any>, work: (scope: Kysely<any>) => Promise<RestoreResult>): Promise<RestoreResult> {
    const hook = options.onRestored
    if (hook === undefined) return work(db)
    return db.transaction().execute(async (trx) => {
      const result = await work(trx)
      if (result.count > 0) await hook(trx, Object.fromEntries(Object.entries(result.tables).map(([name, entry]) => [name, entry.ids])))
      return result
    })
  }

  async function loadOrFail(db: Kysely<any>, id: number): Promise<Row> {
    const row = await load(db, id)
    if (row === undefined) throw new HttpProblem('not-found', `${Noun} ${id} does not exist`)
    return row
  }

  const deleteHandler = async (request: FastifyRequest) => {
    const actor = requireActor(options.actor(request))
    const { id } = request.params as { id: number }
    const { reason } = request.query as { reason?: string }
    const db = options.db(request)
    const row = await loadOrFail(db, id)
    const deleted = row.deleted_at !== null && row.deleted_at !== undefined
    if (deleted) {
      // Rules 4 and 5: nothing is re-stamped; strangers cannot tell a deleted row from a missing one.
      if (!(actor.isAdmin || options.isOwner(actor, row))) throw new HttpProblem('not-found', `${Noun} ${id} does not exist`)
      checkIfMatch(request, options.etag(row))
      return (row as { deletion_id?: string | null }).deletion_id ?? null
    }
    if (!actor.isAdmin && options.canSee !== undefined && !options.canSee(actor, row)) {
      throw new HttpProblem('not-found', `${Noun} ${id} does not exist`)
    }
    if (!(actor.isAdmin || (await options.canDelete(actor, row)))) {
      throw new HttpProblem('forbidden', `You may not delete ${noun} ${id}`)
    }
    checkIfMatch(request, options.etag(row))
    return db.transaction().execute(async (trx) => {
      await options.beforeDelete?.(trx, [id], 'soft')
      const result = await softDelete(trx, table, { id }, { by: actor.id, reason: reason ?? null })
      if (options.onSoftDeleted !== undefined && result.count > 0) {
        await options.onSoftDeleted(trx, Object.fromEntries(Object.entries(result.tables).map(([name, entry]) => [name, entry.ids])))
      }
      return result.deletionId
    })
  }

  /** 204, naming the deletion (the new one, or the one that took the row before). */
  const deleted = (reply: FastifyReply, deletionId: string | null) => {
    if (deletionId !== null) {
      reply.header('tombstone-deletion', deletionId)
      if (options.deletionLink !== undefined) reply.header('link', `<${options.deletionLink(deletionId)}>; rel="deletion"`)
    }
    return reply.code(204).send()
  }

  const deleteSchema = (summary: string) => ({
    tags,
    summary,
    params: IdParams,
    querystring: DeleteQuery,
    response: { 204: Deleted, ...problemResponses(401, 403, 404, 412, 422) },
  })

  app.delete(`${prefix}/:id`, { schema: deleteSchema(`Delete a ${noun} (soft; restorable by an admin)`) }, async (request, reply) =>
    deleted(reply, await deleteHandler(request)),
  )
  if (routes.softAlias) {
    app.delete(`${prefix}/:id/soft`, { schema: deleteSchema(`Delete a ${noun} (alias of DELETE ${prefix}/{id})`) }, async (request, reply) =>
      deleted(reply, await deleteHandler(request)),
    )
  }

  if (routes.restore) {
    app.post(
      `${prefix}/:id/restore`,
      {
        schema: {
          tags,
          summary: `Restore a deleted ${noun} and what was deleted with it (admin)`,
          params: IdParams,
          response: { 200: options.adminView.schema, ...problemResponses(400, 401, 403, 404, 409, 412, 422) },
        },
      },
      async (request) => {
        const actor = requireAdmin(options.actor(request))
        const { id } = request.params as { id: number }
        const db = options.db(request)
        const row = await loadOrFail(db, id)
        checkIfMatch(request, options.etag(row))
        if (row.deleted_at === null) throw new HttpProblem('not-deleted', `${Noun} ${id} is not deleted`)
        try {
          await restoreWithHook(db, (scope) => restore(scope, table, { id }, { by: actor.id }))
        } catch (error) {
          throw restoreProblem(error)
        }
        return options.adminView.map(await loadOrFail(db, id))
      },
    )
  }

  function restoreProblem(error: unknown): unknown {
    const coded = error as { code?: string }
    if (coded.code === 'CONFLICT' && options.describeConflict !== undefined) {
      const conflict = error as ConflictError
      return new HttpProblem('conflict', options.describeConflict(conflict), {
        cause: error,
        extensions: {
          constraint: conflict.constraint ?? null,
          fields: conflict.columns,
          ...(conflict.conflictingId === undefined ? {} : { conflicting_id: Number(conflict.conflictingId) }),
        },
      })
    }
    if (coded.code === 'PARENT_DELETED' && options.describeParentDeleted !== undefined) {
      const parent = error as ParentDeletedError
      return new HttpProblem('parent-deleted', options.describeParentDeleted(parent), {
        cause: error,
        extensions: { parent_table: parent.parentTable, parent_id: Number(parent.parentId) },
      })
    }
    return error
  }

  if (routes.permanent) {
    app.delete(
      `${prefix}/:id/permanent`,
      {
        schema: {
          tags,
          summary: `Delete a ${noun} for good, with everything that belongs to it, active or deleted (admin); ?dry_run=true says what would go`,
          params: IdParams,
          querystring: DryRunQuery,
          response: { 200: DryRunView, 204: Deleted, ...problemResponses(401, 403, 404, 409, 412, 422) },
        },
      },
      async (request, reply) => {
        const actor = requireAdmin(options.actor(request))
        const { id } = request.params as { id: number }
        const db = options.db(request)
        const row = await loadOrFail(db, id)
        checkIfMatch(request, options.etag(row))
        if ((request.query as { dry_run?: boolean }).dry_run === true) return reply.code(200).send(dryRunView(await previewForceDelete(db, table, { id })))
        const result = await db.transaction().execute(async (trx) => {
          await options.beforeDelete?.(trx, [id], 'permanent')
          return forceDelete(trx, table, { id }, { by: actor.id })
        })
        if (result.deleted.length === 0) throw new HttpProblem('not-found', `${Noun} ${id} does not exist`)
        return reply.code(204).send()
      },
    )
  }

  if (routes.trash) {
    app.get(
      `${prefix}/deleted`,
      {
        schema: {
          tags,
          summary: `The ${noun} trash: deleted ${noun}s, most recently deleted first (admin)`,
          querystring: Type.Object(PageQuery),
          response: { 200: ListSchema(options.adminView.schema), ...problemResponses(401, 403, 422) },
        },
      },
      async (request) => {
        requireAdmin(options.actor(request))
        const { limit = 20, cursor } = request.query as { limit?: number; cursor?: string }
        const db = options.db(request)
        let query = db
          .selectFrom(table)
          .selectAll()
          .$call(withDeleted({ [table]: 'only' }))
          .orderBy('deleted_at', 'desc')
          .orderBy('id', 'desc')
          .limit(limit + 1)
        if (cursor !== undefined) {
          const [deletedAt, id] = decodeCursor(cursor, ['timestamp', 'number'])
          query = query.where(sql<boolean>`(deleted_at, id) < (${deletedAt}::timestamptz, ${id})`)
        }
        const rows = (await query.execute()) as Row[]
        const page = rows.slice(0, limit)
        const last = page.at(-1)
        return {
          items: page.map(options.adminView.map),
          next_cursor:
            rows.length > limit && last !== undefined
              ? encodeCursor([new Date(last.deleted_at as Date).toISOString(), Number(last.id)])
              : null,
        }
      },
    )
  }

  if (routes.bulk) {
    const Ids = Type.Array(Type.Integer({ minimum: 1, maximum: 2_147_483_647 }), {
      minItems: 1,
      maxItems: maxBulk,
      description: `1–${maxBulk} ids; unknown ids are ignored`,
    })
    const BulkDelete = Type.Object(
      {
        [idsField]: Ids,
        hard_delete: Type.Optional(Type.Boolean({ description: 'Delete for good instead of soft-deleting' })),
        reason: Type.Optional(Type.String({ maxLength: 500 })),
      },
      { additionalProperties: false },
    )
    const idsOf = (request: FastifyRequest) => [...new Set((request.body as Record<string, number[]>)[idsField] ?? [])]

    async function bulkDelete(request: FastifyRequest) {
      const actor = requireAdmin(options.actor(request))
      const body = request.body as { hard_delete?: boolean; reason?: string }
      const ids = idsOf(request)
      const db = options.db(request)
      if ((request.query as { dry_run?: boolean }).dry_run === true) {
        return dryRunView(body.hard_delete === true ? await previewForceDelete(db, table, { ids }) : await previewSoftDelete(db, table, { ids }))
      }
      if (body.hard_delete === true) {
        const result = await db.transaction().execute(async (trx) => {
          await options.beforeDelete?.(trx, ids, 'permanent')
          return forceDelete(trx, table, { ids }, { by: actor.id, reason: body.reason ?? null })
        })
        return { deleted: sortedIds(result.deleted), already_deleted: [] as number[], not_found: sortedIds(result.notFound) }
      }
      return db.transaction().execute(async (trx) => {
        await options.beforeDelete?.(trx, ids, 'soft')
        const result = await softDelete(trx, table, { ids }, { by: actor.id, reason: body.reason ?? null })
        if (options.onSoftDeleted !== undefined && result.count > 0) {
          await options.onSoftDeleted(trx, Object.fromEntries(Object.entries(result.tables).map(([name, entry]) => [name, entry.ids])))
        }
        return {
          deleted: sortedIds(result.deleted),
          already_deleted: sortedIds(result.alreadyDeleted),
          not_found: sortedIds(result.notFound),
        }
      })
    }

    app.delete(
      `${prefix}/bulk`,
      {
        schema: {
          tags,
          summary: `Delete many ${noun}s in one transaction (admin); ?dry_run=true says what would go`,
          body: BulkDelete,
          querystring: DryRunQuery,
          response: { 200: DryRunView, 204: Deleted, ...problemResponses(400, 401, 403, 409, 413, 415, 422) },
        },
      },
      async (request, reply) => {
        const result = await bulkDelete(request)
        if ('dry_run' in result) return reply.code(200).send(result)
        return reply.code(204).send()
      },
    )

    const IdList = Type.Array(Type.Integer())
    app.post(
      `${prefix}/bulk-delete`,
      {
        schema: {
          tags,
          summary: `Delete many ${noun}s in one transaction and say what happened to each (admin); ?dry_run=true says what would go`,
          body: BulkDelete,
          querystring: DryRunQuery,
          response: {
            200: Type.Union([Type.Object({ deleted: IdList, already_deleted: IdList, not_found: IdList }), DryRunView]),
            ...problemResponses(400, 401, 403, 409, 413, 415, 422),
          },
        },
      },
      async (request) => bulkDelete(request),
    )

    const ConflictDetail = Type.Object({
      id: Type.Integer(),
      reason: Type.Union([Type.Literal('conflict'), Type.Literal('parent-deleted')]),
      detail: Type.String(),
      conflicting_id: Type.Optional(Type.Integer()),
    })
    app.post(
      `${prefix}/bulk-restore`,
      {
        schema: {
          tags,
          summary: `Restore many ${noun}s; one that collides or whose parent is deleted is skipped (admin)`,
          body: Type.Object({ [idsField]: Ids }, { additionalProperties: false }),
          response: {
            200: Type.Object({
              restored: IdList,
              not_deleted: IdList,
              not_found: IdList,
              conflicts: IdList,
              conflict_details: Type.Array(ConflictDetail),
            }),
            ...problemResponses(400, 401, 403, 413, 415, 422),
          },
        },
      },
      async (request) => {
        const actor = requireAdmin(options.actor(request))
        const ids = idsOf(request)
        const result: RestoreResult = await restoreWithHook(options.db(request), (scope) =>
          restore(scope, table, { ids }, { by: actor.id, onFailure: 'skip' }),
        )
        const details = [
          ...result.conflicts.map((conflict) => ({
            id: Number(conflict.id),
            reason: 'conflict' as const,
            detail: options.describeConflict?.(conflict) ?? conflict.message,
            ...(conflict.conflictingId === undefined ? {} : { conflicting_id: Number(conflict.conflictingId) }),
          })),
          ...result.parentDeleted.map((entry) => ({
            id: Number(entry.id),
            reason: 'parent-deleted' as const,
            detail: `Its ${entry.parentTable.replace(/s$/, '')} ${String(entry.parentId)} is deleted`,
          })),
        ]
        return {
          restored: sortedIds(result.restored),
          not_deleted: sortedIds(result.notDeleted),
          not_found: sortedIds(result.notFound),
          conflicts: sortedIds(details.map((detail) => detail.id)),
          conflict_details: details,
        }
      },
    )
  }
}
