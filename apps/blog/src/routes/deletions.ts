/**
 * Deletions as objects: the one who deleted may undo their own deletion within the undo window;
 * admins list and read deletions (what each took, what is left of it), restore a whole deletion
 * (or preview it with `?dry_run=true`), and place, list and release legal holds.
 */
import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { sql, type Kysely } from 'kysely'
import { Type, type TSchema } from 'typebox'
import { decodeCursor, encodeCursor, HttpProblem, ListSchema, PageQuery, problemResponses, requireActor, requireAdmin } from '@tombstone/fastify'
import {
  listDeletions,
  listHolds,
  placeHold,
  previewRestoreDeletion,
  readDeletion,
  releaseHold,
  restoreDeletion,
  withDeleted,
  type Deletion,
  type DeletionSummary,
  type Hold,
  type PreviewResult,
  type RestoreResult,
} from '@tombstone/kysely'
import type { Database } from '../db/schema.ts'
import { userIdOf } from '../views.ts'
import { ENTITY_TYPES, entityTypeSchema, TABLE_OF, type EntityType } from './admin.ts'
import { bySql, isSqlite } from '../db/sql-dialect.ts'
import { touchRestored } from './shared.ts'

const TYPE_OF: Readonly<Record<string, EntityType>> = { posts: 'post', comments: 'comment', users: 'user' }
const typeOf = (table: string): EntityType => TYPE_OF[table] ?? (table as EntityType)

const Timestamp = Type.String({ format: 'date-time' })
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()])
const EntityTypeSchema = entityTypeSchema()
const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
/** A response schema with the description the OpenAPI document shows for it. */
function described<S extends TSchema>(schema: S, description: string): S {
  return { ...schema, description }
}

const DeletionParams = Type.Object({
  deletion_id: Type.String({ pattern: UUID_PATTERN, description: 'A deletion id (UUID)', examples: ['4f0c2a1e-8d3b-4c5e-9a7f-1b2c3d4e5f60'] }),
})
const PerType = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) =>
  Type.Object({ post: Type.Optional(schema), comment: Type.Optional(schema), user: Type.Optional(schema) }, { additionalProperties: false })

const DeletionPart = Type.Object({
  taken: Type.Integer({ description: 'Rows the deletion took' }),
  still_deleted: Type.Integer({ description: 'Of those, still deleted now' }),
  restored: Type.Integer({ description: 'Restored since' }),
  removed: Type.Integer({ description: 'Removed for good since (purged or permanently deleted)' }),
})

export const DeletionView = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    at: Timestamp,
    actor_id: Nullable(Type.Integer({ description: 'Who deleted' })),
    reason: Nullable(Type.String()),
    type: EntityTypeSchema,
    ids: Type.Array(Type.Integer(), { maxItems: 100, description: 'The target rows (up to 100; root_count has them all)' }),
    root_count: Type.Integer(),
    count: Type.Integer({ description: 'Rows it took, all types' }),
    still_deleted: Type.Integer(),
    tables: PerType(DeletionPart),
    purge_at: Nullable(Type.String({ format: 'date-time', description: 'When the purge may start taking what is left of it' })),
  },
  { $id: 'Deletion' },
)

export const DeletionSummaryView = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    at: Timestamp,
    actor_id: Nullable(Type.Integer()),
    reason: Nullable(Type.String()),
    type: EntityTypeSchema,
    count: Type.Integer(),
    counts: PerType(Type.Integer()),
    actor_username: Nullable(Type.String({ description: 'Who deleted, by name (even if since deleted)' })),
    root_id: Nullable(Type.Integer({ description: 'The first target row (the lowest id); root_count says how many there were' })),
    root_count: Type.Integer({ description: 'Target rows' }),
    label: Nullable(Type.String({ description: 'The first target row as the trash names it (title, comment excerpt, username); null once erased' })),
    held: Type.Boolean({ description: 'True while a legal hold placed on this deletion stands' }),
  },
  { $id: 'DeletionSummary' },
)

export const HoldView = Type.Object(
  {
    id: Type.Integer(),
    type: EntityTypeSchema,
    deletion_id: Nullable(Type.String({ format: 'uuid' })),
    placed_at: Timestamp,
    placed_by: Nullable(Type.Integer()),
    reason: Type.String(),
    released_at: Nullable(Timestamp),
    released_by: Nullable(Type.Integer()),
    release_reason: Nullable(Type.String()),
    rows: Type.Integer({ description: 'Rows it covers, all types' }),
  },
  { $id: 'Hold' },
)

const PreviewView = Type.Object({
  dry_run: Type.Literal(true),
  count: Type.Integer({ description: 'Rows that would come back' }),
  tables: PerType(Type.Object({ count: Type.Integer(), sample: Type.Array(Type.Integer(), { maxItems: 20 }) })),
  would_refuse: Type.Boolean({ description: 'True when the restore would be refused (409) for one of the reasons listed' }),
  parent_deleted: Type.Array(Type.Object({ type: EntityTypeSchema, id: Type.Integer(), parent_type: EntityTypeSchema, parent_id: Type.Integer() })),
  conflicts: Type.Array(
    Type.Object({ type: EntityTypeSchema, id: Type.Integer(), constraint: Type.String(), fields: Type.Array(Type.String()), conflicting_id: Type.Integer() }),
  ),
})

const RestoredView = Type.Object({
  deletion_id: Type.String({ format: 'uuid' }),
  count: Type.Integer({ description: 'Rows restored' }),
  restored: PerType(Type.Integer()),
})

function deletionView(deletion: Deletion) {
  return {
    id: deletion.id,
    at: deletion.at.toISOString(),
    actor_id: userIdOf(deletion.by),
    reason: deletion.reason,
    type: typeOf(deletion.table),
    ids: deletion.keys.map(Number),
    root_count: deletion.rootCount,
    count: deletion.count,
    still_deleted: deletion.stillDeleted,
    tables: Object.fromEntries(
      Object.entries(deletion.tables).map(([table, part]) => [
        typeOf(table),
        { taken: part.taken, still_deleted: part.stillDeleted, restored: part.restored, removed: part.removed },
      ]),
    ),
    purge_at: deletion.purgeAt === null ? null : deletion.purgeAt.toISOString(),
  }
}

export function holdView(hold: Hold) {
  return {
    id: hold.id,
    type: typeOf(hold.table),
    deletion_id: hold.deletionId,
    placed_at: hold.placedAt.toISOString(),
    placed_by: userIdOf(hold.placedBy),
    reason: hold.reason,
    released_at: hold.releasedAt === null ? null : hold.releasedAt.toISOString(),
    released_by: userIdOf(hold.releasedBy),
    release_reason: hold.releaseReason,
    rows: hold.rows,
  }
}

/** A preview as the API shows it. */
export function previewView(preview: PreviewResult, table: string) {
  return {
    dry_run: true as const,
    count: preview.count,
    tables: Object.fromEntries(
      Object.entries(preview.tables).map(([table, part]) => [typeOf(table), { count: part.count, sample: part.sample.map(Number) }]),
    ),
    would_refuse: preview.wouldRefuse,
    parent_deleted: preview.parentDeleted.map((entry) => ({
      type: typeOf(table),
      id: Number(entry.id),
      parent_type: typeOf(entry.parentTable),
      parent_id: Number(entry.parentId),
    })),
    conflicts: preview.conflicts.map((conflict) => ({
      type: typeOf(conflict.table),
      id: Number(conflict.id),
      constraint: conflict.constraint,
      fields: [...conflict.columns],
      conflicting_id: Number(conflict.conflictingId),
    })),
  }
}

function restoredView(deletionId: string, result: RestoreResult) {
  return {
    deletion_id: deletionId,
    count: result.count,
    restored: Object.fromEntries(Object.entries(result.tables).map(([table, part]) => [typeOf(table), part.count])),
  }
}

/**
 * What the admin page names a page of deletions by: who (by name), the first target row and its
 * label, how many targets, whether a hold stands on it. A few queries for the page, not per item.
 *
 * @example
 * const context = await summaryContext(db, page.deletions)
 * context(page.deletions[0]) // { actor_username: 'carol', root_id: 3, root_count: 1, label: 'carol', held: false }
 */
async function summaryContext(db: Kysely<Database>, deletions: readonly DeletionSummary[]) {
  const ids = deletions.map((deletion) => deletion.id)
  const roots = new Map<string, { first: number; n: number }>()
  const held = new Set<string>()
  if (ids.length > 0) {
    const sqlite = isSqlite(db)
    const list = sql.join(ids.map((id) => (sqlite ? sql`${id}` : sql`${id}::uuid`)))
    const found = await bySql(
      db,
      () => sql<{ deletion_id: string; entity: string; first: string; n: number }>`
        select deletion_id::text as deletion_id, entity, min(entity_id::bigint)::text as first, count(distinct entity_id)::int as n
        from tombstone_audit where action = 'soft_delete' and deletion_id in (${list}) group by deletion_id, entity`,
      () => sql<{ deletion_id: string; entity: string; first: string; n: number }>`
        select deletion_id, entity, min(cast(entity_id as integer)) as first, count(distinct entity_id) as n
        from tombstone_audit where action = 'soft_delete' and deletion_id in (${list}) group by deletion_id, entity`,
    ).execute(db)
    for (const row of found.rows) roots.set(`${row.deletion_id}:${row.entity}`, { first: Number(row.first), n: Number(row.n) })
    const holds = await bySql(
      db,
      () => sql<{ deletion_id: string }>`
        select distinct deletion_id::text as deletion_id from tombstone_holds where released_at is null and deletion_id in (${list})`,
      () => sql<{ deletion_id: string }>`
        select distinct deletion_id from tombstone_holds where released_at is null and deletion_id in (${list})`,
    ).execute(db)
    for (const row of holds.rows) held.add(row.deletion_id)
  }
  const wanted = (table: string) => deletions.filter((d) => d.table === table).map((d) => roots.get(`${d.id}:${d.table}`)?.first).filter((id): id is number => id !== undefined)
  const labels = new Map<string, string>()
  const load = async (table: 'posts' | 'comments' | 'users', label: ReturnType<typeof sql<string>>, keys: number[]) => {
    if (keys.length === 0) return
    const rows = await db.selectFrom(table).select(['id', label.as('label')]).where('id', 'in', [...new Set(keys)]).$call(withDeleted({ [table]: 'include' })).execute()
    for (const row of rows) labels.set(`${table}:${row.id}`, String(row.label))
  }
  const actors = deletions.map((d) => userIdOf(d.by)).filter((id): id is number => id !== null)
  await load('posts', sql<string>`title`, wanted('posts'))
  await load('comments', sql<string>`substr(body, 1, 80)`, wanted('comments'))
  await load('users', sql<string>`username`, [...wanted('users'), ...actors])
  return (deletion: DeletionSummary) => {
    const root = roots.get(`${deletion.id}:${deletion.table}`)
    const actor = userIdOf(deletion.by)
    return {
      actor_username: actor === null ? null : (labels.get(`users:${actor}`) ?? null),
      root_id: root?.first ?? null,
      root_count: root?.n ?? 0,
      label: root === undefined ? null : (labels.get(`${deletion.table}:${root.first}`) ?? null),
      held: held.has(deletion.id),
    }
  }
}

async function deletionOrFail(app: FastifyInstance, id: string): Promise<Deletion> {
  const deletion = await readDeletion(app.db, id)
  if (deletion === undefined) throw new HttpProblem('not-found', `Deletion ${id} does not exist`)
  return deletion
}

export async function deletionRoutes(instance: FastifyInstance, options: { undoWindowSeconds: number }): Promise<void> {
  // Handlers are typed from their schemas (params, querystring, body).
  const app = instance.withTypeProvider<TypeBoxTypeProvider>()
  app.addSchema(DeletionView)
  app.addSchema(DeletionSummaryView)
  app.addSchema(HoldView)

  app.post(
    '/deletions/:deletion_id/undo',
    {
      schema: {
        tags: ['deletions'],
        operationId: 'undoDeletion',
        summary: 'Undo your own deletion, within the undo window: restores exactly what it took',
        description:
          `The one who made a deletion (the \`Tombstone-Deletion\` header of the DELETE) may undo it for UNDO_WINDOW_SECONDS (${options.undoWindowSeconds} s here) ` +
          'after it, without being an admin. After the window: 409 `undo-window-closed` (an admin can still restore it). Someone else\'s deletion: 404.',
        security: [{ bearer: [] }],
        params: DeletionParams,
        response: { 200: described(RestoredView, 'Restored: what came back, per type'), ...problemResponses(401, 404, 409, 422) },
      },
    },
    async (request) => {
      const actor = requireActor(request.actor)
      const { deletion_id: id } = request.params
      const deletion = await readDeletion(app.db, id)
      // Someone else's deletion, or none: the same answer, so that it tells a stranger nothing.
      if (deletion === undefined || deletion.by !== String(actor.id)) throw new HttpProblem('not-found', `Deletion ${id} does not exist`)
      // The database's clock, not this process's: the stamp is the database's too.
      const clock = isSqlite(app.db)
        ? await sql<{ age: number }>`select (julianday('now') - julianday(${deletion.at.toISOString()})) * 86400.0 as age`.execute(app.db)
        : await sql<{ age: number }>`select extract(epoch from now() - ${deletion.at}::timestamptz)::float8 as age`.execute(app.db)
      const age = Number(clock.rows[0]?.age)
      if (!(age <= options.undoWindowSeconds)) {
        throw new HttpProblem('undo-window-closed', `The undo window of deletion ${id} (${options.undoWindowSeconds} s) has passed; an admin can restore it`)
      }
      if (deletion.stillDeleted === 0) throw new HttpProblem('undo-window-closed', `Nothing of deletion ${id} is left to restore`)
      const result = await restoreDeletion(app.db, deletion.id, { by: actor.id, reason: 'undo', set: touchRestored(app.db) })
      return restoredView(deletion.id, result)
    },
  )

  app.get(
    '/admin/deletions',
    {
      schema: {
        tags: ['admin'],
        operationId: 'listDeletions',
        summary: 'Deletions, newest first: one entry per delete operation, with what it took per type (admin)',
        description: 'Admin only. Filters combine; pages follow `next_cursor`.',
        security: [{ bearer: [] }],
        querystring: Type.Object({
          actor_id: Type.Optional(Type.Integer({ minimum: 1, maximum: 2_147_483_647, description: 'Who deleted' })),
          type: Type.Optional(entityTypeSchema({ description: 'What was deleted (the target, not the cascade)' })),
          since: Type.Optional(Type.String({ format: 'date-time', description: 'Deleted at or after' })),
          until: Type.Optional(Type.String({ format: 'date-time', description: 'Deleted before' })),
          ...PageQuery,
        }),
        response: { 200: described(ListSchema(Type.Ref('DeletionSummary')), 'A page of deletions'), ...problemResponses(401, 403, 422) },
      },
    },
    async (request) => {
      requireAdmin(request.actor)
      const query = request.query
      // The client's input is checked first: a bad cursor is a 422 on every database.
      const [cursor] = query.cursor === undefined ? [undefined] : decodeCursor(query.cursor, ['number'])
      const page = await listDeletions(app.db, {
        limit: query.limit ?? 20,
        ...(query.actor_id === undefined ? {} : { by: query.actor_id }),
        ...(query.type === undefined ? {} : { table: TABLE_OF[query.type] }),
        ...(query.since === undefined ? {} : { since: new Date(query.since) }),
        ...(query.until === undefined ? {} : { until: new Date(query.until) }),
        ...(cursor === undefined ? {} : { cursor: String(cursor) }),
      })
      const context = await summaryContext(app.db as never, page.deletions)
      return {
        items: page.deletions.map((deletion) => ({
          id: deletion.id,
          at: deletion.at.toISOString(),
          actor_id: userIdOf(deletion.by),
          reason: deletion.reason,
          type: typeOf(deletion.table),
          count: deletion.count,
          counts: Object.fromEntries(Object.entries(deletion.tables).map(([table, n]) => [typeOf(table), n])),
          ...context(deletion),
        })),
        next_cursor: page.nextCursor === null ? null : encodeCursor([Number(page.nextCursor)]),
      }
    },
  )

  app.get(
    '/admin/deletions/:deletion_id',
    {
      schema: {
        tags: ['admin'],
        operationId: 'readDeletion',
        summary: 'One deletion: who, when, why, what it took per type, what is still deleted, restored or removed since (admin)',
        description: 'Admin only. Counts are of now: rows restored or removed since the deletion are counted as such.',
        security: [{ bearer: [] }],
        params: DeletionParams,
        response: { 200: described(Type.Ref('Deletion'), 'The deletion'), ...problemResponses(401, 403, 404, 422) },
      },
    },
    async (request) => {
      requireAdmin(request.actor)
      const { deletion_id: id } = request.params
      return deletionView(await deletionOrFail(app, id))
    },
  )

  app.post(
    '/admin/deletions/:deletion_id/restore',
    {
      schema: {
        tags: ['admin'],
        operationId: 'restoreDeletion',
        summary: 'Restore a whole deletion: exactly the rows it took that are still deleted (admin); ?dry_run=true previews it',
        description:
          'With `dry_run=true` nothing changes: the answer lists what would come back per type and what would refuse the restore ' +
          '(a parent deleted since, a unique value taken since, with the row holding it). Without it, the restore runs; a refusal is a 409 problem and changes nothing.',
        security: [{ bearer: [] }],
        params: DeletionParams,
        querystring: Type.Object({ dry_run: Type.Optional(Type.Boolean({ description: 'Preview only; defaults to false' })) }),
        response: { 200: Type.Union([RestoredView, PreviewView], { description: 'Restored (what came back), or with dry_run what would come back and what would refuse' }), ...problemResponses(401, 403, 404, 409, 422) },
      },
    },
    async (request) => {
      const actor = requireAdmin(request.actor)
      const { deletion_id: id } = request.params
      const { dry_run: dryRun } = request.query
      const deletion = await deletionOrFail(app, id)
      if (dryRun === true) return previewView(await previewRestoreDeletion(app.db, deletion.id), deletion.table)
      return restoredView(deletion.id, await restoreDeletion(app.db, deletion.id, { by: actor.id, reason: 'admin restore of a deletion', set: touchRestored(app.db) }))
    },
  )

  app.post(
    '/admin/holds',
    {
      schema: {
        tags: ['admin'],
        operationId: 'placeHold',
        summary: 'Place a legal hold on rows (by type and ids) or on a whole deletion: they are never purged or permanently deleted until released (admin)',
        description: 'Admin only. The database refuses to remove a held row, whoever asks; the purge skips it and says so. Placing is audited.',
        security: [{ bearer: [] }],
        body: Type.Union([
          Type.Object(
            {
              type: EntityTypeSchema,
              ids: Type.Array(Type.Integer({ minimum: 1, maximum: 2_147_483_647 }), { minItems: 1, maxItems: 1000 }),
              reason: Type.String({ minLength: 1, maxLength: 500, pattern: '\\S' }),
            },
            { additionalProperties: false },
          ),
          Type.Object(
            { deletion_id: Type.String({ pattern: UUID_PATTERN }), reason: Type.String({ minLength: 1, maxLength: 500, pattern: '\\S' }) },
            { additionalProperties: false },
          ),
        ]),
        response: {
          201: Type.Object({ hold: Type.Ref('Hold'), not_found: Type.Array(Type.Integer()) }, { description: 'The hold placed, and the ids that matched no row' }),
          ...problemResponses(400, 401, 403, 404, 413, 415, 422),
        },
      },
    },
    async (request, reply) => {
      const actor = requireAdmin(request.actor)
      const body = request.body
      const result =
        'deletion_id' in body
          ? await placeHold(app.db, { deletionId: body.deletion_id }, { by: actor.id, reason: body.reason })
          : await placeHold(app.db, { table: TABLE_OF[body.type], ids: body.ids }, { by: actor.id, reason: body.reason })
      reply.code(201).header('location', `/admin/holds/${result.hold.id}`)
      return { hold: holdView(result.hold), not_found: result.notFound.map(Number) }
    },
  )

  app.get(
    '/admin/holds',
    {
      schema: {
        tags: ['admin'],
        operationId: 'listHolds',
        summary: 'Legal holds, newest first (admin)',
        description: 'Admin only. Released holds stay on record.',
        security: [{ bearer: [] }],
        querystring: Type.Object({
          active: Type.Optional(Type.Boolean({ description: 'Only standing (true) or released (false) holds' })),
          type: Type.Optional(EntityTypeSchema),
          id: Type.Optional(Type.Integer({ minimum: 1, maximum: 2_147_483_647, description: 'Holds covering this row of `type`' })),
          deletion_id: Type.Optional(Type.String({ pattern: UUID_PATTERN })),
          ...PageQuery,
        }),
        response: { 200: described(ListSchema(Type.Ref('Hold')), 'A page of holds'), ...problemResponses(401, 403, 422) },
      },
    },
    async (request) => {
      requireAdmin(request.actor)
      const query = request.query
      if (query.id !== undefined && query.type === undefined) {
        throw new HttpProblem('validation-failed', 'id needs type', { extensions: { errors: [{ pointer: '/query/type', detail: 'is required with id' }] } })
      }
      const limit = query.limit ?? 20
      // The client's input is checked first: a bad cursor is a 422 on every database.
      const [beforeId] = query.cursor === undefined ? [undefined] : decodeCursor(query.cursor, ['number'])
      const holds = await listHolds(app.db, {
        limit: limit + 1,
        ...(query.active === undefined ? {} : { active: query.active }),
        ...(query.type === undefined ? {} : { table: TABLE_OF[query.type] }),
        ...(query.id === undefined ? {} : { key: query.id }),
        ...(query.deletion_id === undefined ? {} : { deletionId: query.deletion_id }),
        ...(beforeId === undefined ? {} : { beforeId }),
      })
      const page = holds.slice(0, limit)
      const last = page.at(-1)
      return { items: page.map(holdView), next_cursor: holds.length > limit && last !== undefined ? encodeCursor([last.id]) : null }
    },
  )

  app.delete(
    '/admin/holds/:id',
    {
      schema: {
        tags: ['admin'],
        operationId: 'releaseHold',
        summary: 'Release a legal hold; it stays on record with who released it and why (admin)',
        description: 'Admin only. The rows become purgeable again when due. Releasing is audited.',
        security: [{ bearer: [] }],
        params: Type.Object({ id: Type.Integer({ minimum: 1, maximum: 9_007_199_254_740_991, description: 'The hold', examples: [7] }) }),
        querystring: Type.Object({ reason: Type.Optional(Type.String({ maxLength: 500 })) }),
        response: { 200: described(Type.Ref('Hold'), 'The released hold'), ...problemResponses(401, 403, 404, 422) },
      },
    },
    async (request) => {
      const actor = requireAdmin(request.actor)
      const { id } = request.params
      const { reason } = request.query
      const result = await releaseHold(app.db, id, { by: actor.id, reason: reason ?? null })
      return holdView(result.hold)
    },
  )
}
