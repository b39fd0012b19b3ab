import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { sql, type Expression, type Kysely, type RawBuilder, type SelectQueryBuilder, type SqlBool } from 'kysely'
import { Type, type TSchema } from 'typebox'
import { decodeCursor, encodeCursor, HttpProblem, ListSchema, PageQuery, problemResponses, requireAdmin } from '@tombstone/fastify'
import { AUDIT_ACTIONS, purge, readAudit, withDeleted, type AuditAction, type RowKey } from '@tombstone/kysely'
import type { Database } from '../db/schema.ts'
import { decodePlan, encodePlan, type PurgePlan } from '../services/purge-plan.ts'
import { iso, userIdOf } from '../views.ts'
import { likePattern } from './shared.ts'
import { bySql, countAll, isSqlite } from '../db/sql-dialect.ts'

export const ENTITY_TYPES = ['post', 'comment', 'user'] as const
/** An entity type, as a schema (a tuple of literals, so that handlers are typed by it). */
export function entityTypeSchema(options?: { description?: string }) {
  return Type.Union([Type.Literal('post'), Type.Literal('comment'), Type.Literal('user')], options) satisfies TSchema
}
export type EntityType = (typeof ENTITY_TYPES)[number]
/** The table of each entity type. */
export const TABLE_OF = { post: 'posts', comment: 'comments', user: 'users' } as const satisfies Record<EntityType, string>

const Timestamp = Type.String({ format: 'date-time' })
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()])

export const TrashItem = Type.Object(
  {
    type: entityTypeSchema(),
    id: Type.Integer(),
    label: Type.String({ description: 'Post title, comment excerpt, or username' }),
    deleted_at: Timestamp,
    deleted_by: Nullable(Type.Integer()),
    deleted_by_username: Nullable(Type.String({ description: 'Who deleted it, by name (even if since deleted)' })),
    delete_reason: Nullable(Type.String()),
    deletion_id: Nullable(Type.String({ format: 'uuid' })),
    purge_at: Nullable(Timestamp),
    parent: Nullable(Type.Object({ type: Type.String(), id: Type.Integer(), deleted: Type.Boolean() }, { description: "A comment's post" })),
    dependents: Type.Object(
      { posts: Type.Integer(), comments: Type.Integer() },
      { description: 'What a permanent delete removes with it (active or deleted)' },
    ),
    held: Type.Boolean({ description: 'True while a legal hold stands on the row: it is never purged or permanently deleted' }),
  },
  { $id: 'TrashItem' },
)

/** One row of the union the trash reads. */
interface TrashRow {
  type: EntityType
  id: number
  label: string
  deleted_at: Date | null
  deleted_by: string | null
  delete_reason: string | null
  deletion_id: string | null
  purge_at: Date | null
  parent_id: number | null
  parent_deleted: boolean | null
  dependent_posts: number | null
  dependent_comments: number | null
}

const SORTS = { deleted_desc: ['deleted_at', 'desc'], deleted_asc: ['deleted_at', 'asc'], purge_asc: ['purge_at', 'asc'], purge_desc: ['purge_at', 'desc'] } as const

/** The entity type of a table, for the audit's answers. */
const TYPE_OF: Readonly<Record<string, EntityType>> = { posts: 'post', comments: 'comment', users: 'user' }

const AuditItem = Type.Object(
  {
    id: Type.Integer(),
    at: Timestamp,
    action: Type.Union(AUDIT_ACTIONS.map((action) => Type.Literal(action))),
    entity: entityTypeSchema(),
    entity_id: Type.Integer(),
    actor_id: Nullable(Type.Integer({ description: 'The user who acted; null for the service itself (the periodic purge)' })),
    deletion_id: Nullable(Type.String({ format: 'uuid' })),
    reason: Nullable(Type.String()),
    actor_username: Nullable(Type.String({ description: 'The actor by name (even if since deleted); null for the service itself, or an actor since erased' })),
    entity_label: Nullable(Type.String({ description: 'The row as the trash names it today (post title, comment excerpt, username); null once erased' })),
    entity_state: Type.Union(['active', 'deleted', 'gone'].map((state) => Type.Literal(state)), {
      description: 'Where the row is now: active, deleted (in the trash), or gone (purged or deleted for good)',
    }),
  },
  { $id: 'AuditItem' },
)

/** Today's label and state of the rows an audit page names, and its actors' usernames: one query per table. */
/** SQLite's stand-in for PostgreSQL's `'infinity'` timestamp: later than every ISO 8601 stamp. */
const NEVER = '9999-12-31T23:59:59.999Z'

/** The first 80 characters of a column: `left(col, 80)` on PostgreSQL, `substr(col, 1, 80)` on SQLite. */
function excerpt(db: Kysely<any>, column: string): RawBuilder<string> {
  return bySql(db, () => sql<string>`left(${sql.raw(column)}, 80)`, () => sql<string>`substr(${sql.raw(column)}, 1, 80)`)
}

async function auditContext(db: Kysely<Database>, entries: readonly { entity: string; entityId: string; actor: string | null }[]) {
  const rows = new Map<string, { label: string; deleted: boolean }>()
  const load = async (table: 'posts' | 'comments' | 'users', label: RawBuilder<string>, ids: number[]) => {
    if (ids.length === 0) return
    const found = await db
      .selectFrom(table)
      .select(['id', label.as('label'), sql<boolean>`deleted_at is not null`.as('deleted')])
      .where('id', 'in', [...new Set(ids)])
      .$call(withDeleted({ [table]: 'include' }))
      .execute()
    for (const row of found) rows.set(`${table}:${row.id}`, { label: String(row.label), deleted: Boolean(row.deleted) })
  }
  const idsOf = (table: string) => entries.filter((entry) => entry.entity === table).map((entry) => Number(entry.entityId)).filter(Number.isSafeInteger)
  const actors = entries.map((entry) => userIdOf(entry.actor)).filter((id): id is number => id !== null)
  await load('posts', sql<string>`title`, idsOf('posts'))
  await load('comments', excerpt(db, 'body'), idsOf('comments'))
  await load('users', sql<string>`username`, [...idsOf('users'), ...actors])
  return {
    row: (table: string, id: string) => rows.get(`${table}:${Number(id)}`),
    username: (actor: string | null) => {
      const id = userIdOf(actor)
      return id === null ? null : (rows.get(`users:${id}`)?.label ?? null)
    },
  }
}

/**
 * Which of these rows a standing legal hold covers, as `table:id`: one query for a page.
 *
 * @example
 * const held = await heldRows(db, [{ table: 'posts', id: 7 }])
 * held.has('posts:7') // true while a hold stands on post 7
 */
export async function heldRows(db: Kysely<Database>, rows: readonly { table: string; id: number }[]): Promise<Set<string>> {
  if (rows.length === 0) return new Set()
  const pairs = sql.join(rows.map((row) => sql`(${row.table}, ${String(row.id)})`))
  // A list of row values on the right of IN is PostgreSQL's; SQLite takes them as a VALUES subquery.
  const found = await sql<{ entity: string; entity_id: string }>`
    select distinct entity, entity_id from tombstone_held_rows where not released and (entity, entity_id) in (${
      isSqlite(db) ? sql`values ${pairs}` : pairs
    })`.execute(db)
  return new Set(found.rows.map((row) => `${row.entity}:${Number(row.entity_id)}`))
}

/** The sample of a dry run with each row's label (post title, comment excerpt, username). */
async function labelled(db: Kysely<Database>, sample: readonly { table: string; id: RowKey }[]): Promise<{ type: string; id: number; label: string }[]> {
  const ids = (table: string) => sample.filter((entry) => entry.table === table).map((entry) => Number(entry.id))
  const labels = new Map<string, string>()
  const load = async (table: 'posts' | 'comments' | 'users', label: RawBuilder<string>) => {
    const wanted = ids(table)
    if (wanted.length === 0) return
    const rows = await db.selectFrom(table).select(['id', label.as('label')]).where('id', 'in', wanted).$call(withDeleted({ [table]: 'include' })).execute()
    for (const row of rows) labels.set(`${table}:${row.id}`, String(row.label))
  }
  await load('posts', sql<string>`title`)
  await load('comments', excerpt(db, 'body'))
  await load('users', sql<string>`username`)
  return sample.map((entry) => ({ type: TYPE_OF[entry.table] ?? entry.table, id: Number(entry.id), label: labels.get(`${entry.table}:${String(entry.id)}`) ?? '' }))
}

export async function adminRoutes(instance: FastifyInstance, options: { retentionDays: number }): Promise<void> {
  // Handlers are typed from their schemas (params, querystring, body).
  const app = instance.withTypeProvider<TypeBoxTypeProvider>()
  app.addSchema(TrashItem)
  app.addSchema(AuditItem)

  app.post(
    '/admin/purge',
    {
      schema: {
        tags: ['admin'],
        summary: 'Purge deleted rows older than a cutoff: a dry run (with a plan) unless force is true (admin)',
        operationId: 'purge',
        description:
          'Without `force`, nothing changes: the answer says what would go (count, a labelled sample) and carries a `plan`. ' +
          'With `force: true` and that `plan`, exactly the rows the dry run counted are removed, or fewer (rows restored since stay; rows deleted since are not in the plan). ' +
          'With `force: true` and no plan, the cutoff is computed now (the contract\'s original behaviour).',
        security: [{ bearer: [] }],
        body: Type.Object(
          {
            older_than_days: Type.Optional(Type.Integer({ minimum: 0, maximum: 36_500, description: 'Defaults to RETENTION_DAYS' })),
            type: Type.Optional(entityTypeSchema()),
            force: Type.Optional(Type.Boolean({ description: 'Without it, nothing changes: the answer says what would go' })),
            plan: Type.Optional(Type.String({ maxLength: 500, description: 'The plan of a dry run: with force, purge exactly what it counted, or less' })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Union(
            [
              Type.Object({
                purge_count: Type.Integer(),
                purge_sample: Type.Array(Type.Object({ type: Type.String(), id: Type.Integer(), label: Type.String() }), { maxItems: 100 }),
                cutoff: Timestamp,
                as_of: Timestamp,
                plan: Type.String({ description: 'Send it back with force: true to purge exactly this' }),
                held_count: Type.Integer({ description: 'Rows past the cutoff that a legal hold keeps (not counted in purge_count)' }),
              }),
              Type.Object({ purged_count: Type.Integer(), cutoff: Timestamp }),
            ],
            { description: 'A dry run: what would go, and its plan; or, with force, how many rows went' },
          ),
          ...problemResponses(400, 401, 403, 413, 415, 422),
        },
      },
    },
    async (request) => {
      const actor = requireAdmin(request.actor)
      const body = (request.body ?? {}) as { older_than_days?: number; type?: EntityType; force?: boolean; plan?: string }
      let plan: PurgePlan | undefined
      try {
        plan = body.plan === undefined ? undefined : decodePlan(body.plan)
      } catch (error) {
        throw new HttpProblem('validation-failed', (error as Error).message, { extensions: { errors: [{ pointer: '/body/plan', detail: 'is not a valid plan' }] } })
      }
      if (plan !== undefined && (body.older_than_days !== undefined || (body.type !== undefined && body.type !== plan.type))) {
        throw new HttpProblem('validation-failed', 'A plan carries its own cutoff and type; send it alone with force', {
          extensions: { errors: [{ pointer: '/body/plan', detail: 'comes without older_than_days or another type' }] },
        })
      }
      const days = body.older_than_days ?? options.retentionDays
      const cutoff = plan === undefined ? new Date(Date.now() - days * 86_400_000) : (plan.cutoff ?? new Date(Date.now() - days * 86_400_000))
      const type = plan === undefined ? body.type : plan.type
      const tables = type === undefined ? undefined : [TABLE_OF[type]]
      const common = { before: cutoff, by: actor.id, ...(tables === undefined ? {} : { tables }), ...(plan === undefined ? {} : { asOf: plan.asOf }) }
      if (body.force !== true) {
        const preview = await purge(app.db, { ...common, dryRun: true, sampleSize: 100 })
        return {
          purge_count: preview.count,
          purge_sample: await labelled(app.db as Kysely<Database>, preview.sample),
          cutoff: cutoff.toISOString(),
          as_of: preview.asOf.toISOString(),
          plan: encodePlan({ cutoff, asOf: preview.asOf, type }),
          held_count: preview.held,
        }
      }
      const result = await purge(app.db, { ...common, reason: `admin purge of rows deleted before ${cutoff.toISOString()}${plan === undefined ? '' : ' (planned)'}` })
      request.log.info({ purged: result.count, tables: result.tables }, 'admin purge')
      return { purged_count: result.count, cutoff: cutoff.toISOString() }
    },
  )

  app.get(
    '/admin/audit',
    {
      schema: {
        tags: ['admin'],
        summary: 'The audit trail, newest first: every delete, restore, hard delete and purge, row by row (admin)',
        operationId: 'listAudit',
        description: 'Filter by entity, entity id, action or actor. Admin only.',
        security: [{ bearer: [] }],
        querystring: Type.Object({
          entity: Type.Optional(entityTypeSchema()),
          entity_id: Type.Optional(Type.Integer({ minimum: 1, maximum: 2_147_483_647 })),
          action: Type.Optional(Type.Union(AUDIT_ACTIONS.map((action) => Type.Literal(action)))),
          actor_id: Type.Optional(Type.Integer({ minimum: 1, maximum: 2_147_483_647 })),
          ...PageQuery,
        }),
        response: { 200: ListSchema(Type.Ref('AuditItem'), 'A page of audit events'), ...problemResponses(401, 403, 422) },
      },
    },
    async (request) => {
      requireAdmin(request.actor)
      const query = request.query
      const limit = query.limit ?? 20
      const beforeId = query.cursor === undefined ? undefined : decodeCursor(query.cursor, ['number'])[0]
      const entries = await readAudit(app.db, {
        ...(query.entity === undefined ? {} : { entity: TABLE_OF[query.entity] }),
        ...(query.entity_id === undefined ? {} : { entityId: query.entity_id }),
        ...(query.action === undefined ? {} : { action: query.action }),
        ...(query.actor_id === undefined ? {} : { actor: query.actor_id }),
        ...(beforeId === undefined ? {} : { beforeId }),
        limit: limit + 1,
      })
      const page = entries.slice(0, limit)
      const last = page.at(-1)
      const context = await auditContext(app.db as Kysely<Database>, page)
      return {
        items: page.map((entry) => ({
          id: entry.id,
          at: entry.at.toISOString(),
          action: entry.action,
          entity: TYPE_OF[entry.entity] ?? entry.entity,
          entity_id: Number(entry.entityId),
          actor_id: userIdOf(entry.actor),
          deletion_id: entry.deletionId,
          reason: entry.reason,
          actor_username: context.username(entry.actor),
          entity_label: context.row(entry.entity, entry.entityId)?.label ?? null,
          entity_state: ((row) => (row === undefined ? 'gone' : row.deleted ? 'deleted' : 'active'))(context.row(entry.entity, entry.entityId)),
        })),
        next_cursor: entries.length > limit && last !== undefined ? encodeCursor([last.id]) : null,
      }
    },
  )


  app.get(
    '/admin/audit/daily',
    {
      schema: {
        tags: ['admin'],
        summary: 'Rows deleted, restored and purged per day (UTC) over the last `days` days, today included, oldest first (admin)',
        operationId: 'auditDaily',
        description: 'Counts audit entries (one per row): `soft_delete`, `restore` and `purge`. Every day of the range is there, with zeros. Admin only.',
        security: [{ bearer: [] }],
        querystring: Type.Object({ days: Type.Optional(Type.Integer({ minimum: 1, maximum: 366, default: 30, description: 'How many days, today included' })) }),
        response: {
          200: Type.Object({
            days: Type.Array(
              Type.Object({
                date: Type.String({ format: 'date', description: 'The day (UTC), YYYY-MM-DD' }),
                soft_delete: Type.Integer({ minimum: 0 }),
                restore: Type.Integer({ minimum: 0 }),
                purge: Type.Integer({ minimum: 0 }),
              }),
              { maxItems: 366 },
            ),
          }, { description: 'One entry per day of the range, zeros included' }),
          ...problemResponses(401, 403, 422),
        },
      },
    },
    async (request) => {
      requireAdmin(request.actor)
      const days = request.query.days ?? 30
      type Day = { date: string; soft_delete: number; restore: number; purge: number }
      // SQLite keeps timestamps as ISO text (UTC): the day is its first ten characters.
      const rows = isSqlite(app.db)
        ? await sql<Day>`
        with recursive d(day) as (
          select date('now', ${`-${days - 1} days`}) union all select date(day, '+1 day') from d where day < date('now'))
        select d.day as date,
          count(a.id) filter (where a.action = 'soft_delete') as soft_delete,
          count(a.id) filter (where a.action = 'restore') as restore,
          count(a.id) filter (where a.action = 'purge') as purge
        from d left join tombstone_audit a on substr(a.at, 1, 10) = d.day and a.action in ('soft_delete', 'restore', 'purge')
        group by d.day
        order by d.day`.execute(app.db)
        : await sql<Day>`
        select to_char(d.day, 'YYYY-MM-DD') as date,
          count(*) filter (where a.action = 'soft_delete')::int as soft_delete,
          count(*) filter (where a.action = 'restore')::int as restore,
          count(*) filter (where a.action = 'purge')::int as purge
        from generate_series((now() at time zone 'UTC')::date - ${days - 1}::int, (now() at time zone 'UTC')::date, interval '1 day') as d(day)
        left join tombstone_audit a
          on a.at >= d.day at time zone 'UTC' and a.at < (d.day + interval '1 day') at time zone 'UTC' and a.action in ('soft_delete', 'restore', 'purge')
        group by d.day
        order by d.day`.execute(app.db)
      return { days: rows.rows.map((row) => ({ date: row.date, soft_delete: Number(row.soft_delete), restore: Number(row.restore), purge: Number(row.purge) })) }
    },
  )

  app.get(
    '/admin/trash',
    {
      schema: {
        tags: ['admin'],
        summary: 'Every deleted post, comment and user, most recently deleted first (admin)',
        operationId: 'listTrash',
        description: 'Filter by type, search the label, sort. Admin only.',
        security: [{ bearer: [] }],
        querystring: Type.Object({
          type: Type.Optional(entityTypeSchema()),
          q: Type.Optional(Type.String({ maxLength: 200, description: 'Case-insensitive match on the label' })),
          deletion_id: Type.Optional(Type.String({ format: 'uuid', description: 'Only the rows of this deletion still deleted' })),
          sort: Type.Optional(
            Type.Union([Type.Literal('deleted_desc'), Type.Literal('deleted_asc'), Type.Literal('purge_asc'), Type.Literal('purge_desc')], { default: 'deleted_desc' }) satisfies TSchema,
          ),
          ...PageQuery,
        }),
        response: { 200: ListSchema(Type.Ref('TrashItem'), 'A page of deleted rows'), ...problemResponses(401, 403, 422) },
      },
    },
    async (request) => {
      requireAdmin(request.actor)
      const query = request.query
      const limit = query.limit ?? 20
      const [column, direction] = SORTS[query.sort ?? 'deleted_desc']
      const db = app.db
      const types = query.type === undefined ? ENTITY_TYPES : [query.type]
      const parts = types.map((type): SelectQueryBuilder<any, any, TrashRow> => {
        switch (type) {
          case 'post':
            return db
              .selectFrom('posts')
              .select((eb) => [
                sql<EntityType>`'post'`.as('type'),
                'posts.id',
                'posts.title as label',
                'posts.deleted_at',
                'posts.deleted_by',
                'posts.delete_reason',
                'posts.deletion_id',
                'posts.purge_at',
                bySql(db, () => sql<null>`null::int`, () => sql<null>`null`).as('parent_id'),
                bySql(db, () => sql<null>`null::boolean`, () => sql<null>`null`).as('parent_deleted'),
                sql<number>`0`.as('dependent_posts'),
                eb.selectFrom('comments as c').select(countAll(db).as('n')).whereRef('c.post_id', '=', 'posts.id').as('dependent_comments'),
              ])
              .$call(withDeleted({ posts: 'only', c: 'include' }))
          case 'comment':
            return db
              .selectFrom('comments')
              .select((eb) => [
                sql<EntityType>`'comment'`.as('type'),
                'comments.id',
                excerpt(db, 'comments.body').as('label'),
                'comments.deleted_at',
                'comments.deleted_by',
                'comments.delete_reason',
                'comments.deletion_id',
                'comments.purge_at',
                'comments.post_id as parent_id',
                eb
                  .selectFrom('posts as p')
                  .select(sql<boolean>`p.deleted_at is not null`.as('d'))
                  .whereRef('p.id', '=', 'comments.post_id')
                  .as('parent_deleted'),
                sql<number>`0`.as('dependent_posts'),
                sql<number>`0`.as('dependent_comments'),
              ])
              .$call(withDeleted({ comments: 'only', p: 'include' }))
          case 'user':
            return db
              .selectFrom('users')
              .select((eb) => [
                sql<EntityType>`'user'`.as('type'),
                'users.id',
                'users.username as label',
                'users.deleted_at',
                'users.deleted_by',
                'users.delete_reason',
                'users.deletion_id',
                'users.purge_at',
                bySql(db, () => sql<null>`null::int`, () => sql<null>`null`).as('parent_id'),
                bySql(db, () => sql<null>`null::boolean`, () => sql<null>`null`).as('parent_deleted'),
                eb.selectFrom('posts as up').select(countAll(db).as('n')).whereRef('up.author_id', '=', 'users.id').as('dependent_posts'),
                eb
                  .selectFrom('comments as uc')
                  .select(countAll(db).as('n'))
                  .where((inner) =>
                    inner.or([
                      inner('uc.author_id', '=', inner.ref('users.id')),
                      inner('uc.post_id', 'in', inner.selectFrom('posts as ucp').select('ucp.id').whereRef('ucp.author_id', '=', 'users.id')),
                    ]),
                  )
                  .as('dependent_comments'),
              ])
              .$call(withDeleted({ users: 'only', up: 'include', uc: 'include', ucp: 'include' }))
          default:
            return type satisfies never
        }
      })
      const union = parts.slice(1).reduce((all, part) => all.unionAll(part), parts[0] as SelectQueryBuilder<any, any, TrashRow>)
      const sqlite = isSqlite(db)
      // SQLite: timestamps are ISO text, and no row is purged after the year 9999.
      const sortValue =
        column === 'purge_at' ? (sqlite ? sql`coalesce(trash.purge_at, ${NEVER})` : sql`coalesce(trash.purge_at, 'infinity'::timestamptz)`) : sql`trash.deleted_at`
      let select = db
        .selectFrom(union.as('trash'))
        .leftJoin('users as actor', (join) => join.on(sqlite ? sql<boolean>`cast(actor.id as text) = trash.deleted_by` : sql<boolean>`actor.id::text = trash.deleted_by`))
        .selectAll('trash')
        .select('actor.username as deleted_by_username')
        .$call(withDeleted({ actor: 'include' }))
        .orderBy(sortValue, direction)
        .orderBy('trash.type', direction)
        .orderBy('trash.id', direction)
        .limit(limit + 1)
      if (query.q !== undefined && query.q !== '') select = select.where(sqlite ? sql<boolean>`trash.label like ${likePattern(query.q)} escape '\\'` : sql<boolean>`trash.label ilike ${likePattern(query.q)} escape '\\'`)
      if (query.deletion_id !== undefined) select = select.where(sql<boolean>`trash.deletion_id = ${query.deletion_id}`)
      if (query.cursor !== undefined) {
        const [at, type, id] = decodeCursor(query.cursor, ['timestamp', 'string', 'number'])
        const comparison: Expression<SqlBool> = sqlite
          ? direction === 'desc'
            ? sql<boolean>`(${sortValue}, trash.type, trash.id) < (${at === 'infinity' ? NEVER : at}, ${type}, ${id})`
            : sql<boolean>`(${sortValue}, trash.type, trash.id) > (${at === 'infinity' ? NEVER : at}, ${type}, ${id})`
          : direction === 'desc'
            ? sql<boolean>`(${sortValue}, trash.type, trash.id) < (${at}::timestamptz, ${type}, ${id})`
            : sql<boolean>`(${sortValue}, trash.type, trash.id) > (${at}::timestamptz, ${type}, ${id})`
        select = select.where(comparison)
      }
      const rows = await select.execute()
      const page = rows.slice(0, limit)
      const last = page.at(-1)
      const held = await heldRows(db as Kysely<Database>, page.map((row) => ({ table: TABLE_OF[row.type], id: Number(row.id) })))
      return {
        items: page.map((row) => ({
          type: row.type,
          id: Number(row.id),
          label: row.label,
          deleted_at: iso(row.deleted_at as Date),
          deleted_by: userIdOf(row.deleted_by),
          deleted_by_username: row.deleted_by_username ?? null,
          delete_reason: row.delete_reason,
          deletion_id: row.deletion_id,
          purge_at: row.purge_at === null ? null : iso(row.purge_at),
          parent: row.parent_id === null ? null : { type: 'post', id: Number(row.parent_id), deleted: Boolean(row.parent_deleted) },
          dependents: { posts: Number(row.dependent_posts), comments: Number(row.dependent_comments) },
          held: held.has(`${TABLE_OF[row.type]}:${Number(row.id)}`),
        })),
        next_cursor:
          rows.length > limit && last !== undefined
            ? encodeCursor([
                column === 'purge_at' ? (last.purge_at === null ? 'infinity' : iso(last.purge_at)) : iso(last.deleted_at as Date),
                last.type,
                Number(last.id),
              ])
            : null,
      }
    },
  )
}
