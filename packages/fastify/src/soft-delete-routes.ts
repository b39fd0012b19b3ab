import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { sql, type Kysely } from 'kysely'
import { Type, type Static, type TSchema } from 'typebox'
import {
  dialectKindOf,
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
  type RestoreSet,
  type RowKey,
} from '@tombstone/kysely'
import { checkIfMatch, decodeCursor, encodeCursor, etagOf, hasUnstorableText, ListSchema, PageQuery, problemResponses } from './http.ts'
import { HttpProblem, unauthorized } from './problems.ts'

/** A row key as the routes hand it around: a number for integer keys, a string for uuid and text keys. */
export type SoftDeleteKeyValue = number | string

/**
 * The table's key as the routes address rows by it: the column (the same as the table's declared
 * `key` in the toolkit) and its type, which gives the path and bulk-body schemas.
 *
 * - `'integer'`: a positive 32-bit integer (`/posts/42`); values are numbers;
 * - `'uuid'`: an RFC 4122 UUID in its hyphenated form, either case (`/notes/0b6e…`), lower-cased
 *   before it reaches the database; values are strings;
 * - `'string'`: 1 to `maxLength` characters of text, NUL and lone surrogates refused; values are strings.
 *
 * A path or body id that does not fit is a `422 validation-failed` pointing at it, never a 5xx.
 */
export interface SoftDeleteKey {
  /** The key column. Defaults to `'id'`. */
  readonly column?: string
  /** Its type. Defaults to `'integer'`. */
  readonly type?: 'integer' | 'uuid' | 'string'
  /** The longest `'string'` key accepted. Defaults to 200. */
  readonly maxLength?: number
}

/** The trash query's extra column: the deletion stamp as cursor text. */
const CURSOR_AT = 'tombstone_cursor_at'

const UUID = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
const UUID_PATTERN = new RegExp(UUID)

/** The key's JSON schema, for the path, bulk bodies and answers. */
function keySchema(key: Required<SoftDeleteKey>, description: string) {
  switch (key.type) {
    case 'integer':
      return Type.Integer({ minimum: 1, maximum: 2_147_483_647, description: `${description}: a positive integer`, examples: [42] })
    case 'uuid':
      return Type.String({ format: 'uuid', pattern: UUID, description: `${description}: a UUID`, examples: ['0b6e9c5e-6a4f-4d3b-9a57-2f1e8d7c6b5a'] })
    case 'string':
      return Type.String({ minLength: 1, maxLength: key.maxLength, description: `${description}: text`, examples: ['welcome'] })
    default:
      return key.type satisfies never
  }
}

/** The key's answer schema (ids reported back), without the input limits. */
function keyOutSchema(key: Required<SoftDeleteKey>) {
  return key.type === 'integer' ? Type.Integer() : Type.String()
}

/** A singular noun from a table name: `posts` → `post`, `categories` → `category`, `blog_posts` → `blog post`. */
function nounOf(table: string): string {
  const base = table.slice(table.lastIndexOf('.') + 1).replaceAll('_', ' ')
  if (/ies$/.test(base)) return base.replace(/ies$/, 'y')
  if (/(ss|us)$/.test(base)) return base
  return base.replace(/s$/, '')
}

/** `'blog post'` → `'BlogPost'`, for operation ids. */
function pascal(words: string): string {
  return words
    .split(/[^A-Za-z0-9]+/)
    .filter((word) => word !== '')
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
    .join('')
}

/**
 * The default ETag of {@link softDeleteRoutes}: a hash of the table and every column of the row
 * (dates as ISO text), so that any change to the row changes it. Send it from your own `GET`
 * route, so that clients hold the ETag the delete and restore routes check `If-Match` against.
 *
 * @example
 * ```ts
 * reply.header('etag', rowHashEtag('notes', note))
 * ```
 */
export function rowHashEtag(table: string, row: Record<string, unknown>): string {
  const entries = Object.entries(row).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return etagOf([table, ...entries.map(([name, value]) => [name, typeof value === 'bigint' ? value.toString() : value])])
}

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

/** Options of {@link softDeleteRoutes}. Only `table`, `prefix` and `actor` are required. */
export interface SoftDeleteRoutesOptions<Row extends Record<string, unknown>> {
  /** The declared soft-deletable table. */
  readonly table: string
  /** The route prefix, e.g. `'/posts'`. */
  readonly prefix: string
  /** The caller, or undefined when anonymous (then the routes answer 401). */
  readonly actor: (request: FastifyRequest) => SoftDeleteActor | undefined
  /**
   * The plugin-equipped Kysely instance: the instance itself, or a function of the request (a
   * per-tenant database, a request-scoped transaction). Defaults to the app's `db` decorator
   * (`app.decorate('db', db)`); without one, `softDeleteRoutes` throws when called.
   */
  readonly db?: Kysely<any> | ((request: FastifyRequest) => Kysely<any>)
  /** The key the routes address rows by. Defaults to `{ column: 'id', type: 'integer' }`. */
  readonly key?: SoftDeleteKey
  /** The resource's name in messages and operation ids, e.g. `'post'`. Defaults to the table's name made singular (`posts` → `post`). */
  readonly noun?: string
  /** OpenAPI tags. Defaults to `[table]`. */
  readonly tags?: readonly string[]
  /**
   * The OpenAPI security requirement of every route (they all need a caller). Defaults to
   * `[{ bearer: [] }]`: declare a `bearer` scheme in the document's `components.securitySchemes`.
   */
  readonly security?: readonly Readonly<Record<string, readonly string[]>>[]
  /**
   * The column holding the owner's id, compared with `actor.id` (as text, so `7` and `'7'` match)
   * by the default `isOwner` and `canDelete`. Defaults to none: only admins may delete.
   */
  readonly ownerColumn?: string
  /**
   * May this (non-admin) caller soft-delete this active row? Admins always may. Defaults to
   * `isOwner`: the owner (`ownerColumn`) may, nobody else; without `ownerColumn`, admins only.
   */
  readonly canDelete?: (actor: SoftDeleteActor, row: Row) => boolean | Promise<boolean>
  /**
   * Is the caller the row's owner? Deleting an already deleted row answers 204 to its owner or an
   * admin, 404 to others. Defaults to `row[ownerColumn]` equal to `actor.id`; without
   * `ownerColumn`, nobody is.
   */
  readonly isOwner?: (actor: SoftDeleteActor, row: Row) => boolean
  /**
   * Whether the actor may know the active row exists (a draft is its author's). One who may not
   * gets the same `404` as for a missing row, never a `403` that would reveal it. Defaults to always.
   */
  readonly canSee?: (actor: SoftDeleteActor, row: Row) => boolean
  /**
   * The admin view (what restore and the trash answer with, deletion fields included): its schema
   * and how a row maps to it. Defaults to the row as it is, every column, with a schema naming the
   * key and `deleted_at` and allowing the rest.
   */
  readonly adminView?: { readonly schema: TSchema; readonly map: (row: Row) => unknown }
  /**
   * The row's ETag; `If-Match` is checked against it. Defaults to a hash of the table and every
   * column of the row. Give your own (key, `updated_at`, `deleted_at`) when restore bumps
   * `updated_at`, so that an ETag taken before a delete no longer matches after the restore.
   */
  readonly etag?: (row: Row) => string
  /** Which routes to add. Defaults to delete, restore and permanent delete. */
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
   * Columns the restore writes on every row it brings back, in its own statement (`RestoreOptions.set`
   * of `@tombstone/kysely`), given the database the request uses: cheaper than an `onRestored` hook
   * that updates them after, and the restore then needs no transaction around it.
   *
   * @example
   * ```ts
   * restoreSet: () => ({ posts: { updated_at: sql`now()` }, comments: { updated_at: sql`now()` } })
   * ```
   */
  readonly restoreSet?: (db: Kysely<any>) => RestoreSet
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
  readonly beforeDelete?: (trx: Kysely<any>, ids: readonly SoftDeleteKeyValue[], kind: 'soft' | 'permanent') => Promise<void>
}

const DeleteQuery = Type.Object({
  reason: Type.Optional(
    Type.String({ maxLength: 500, description: 'Why; kept with the deleted row and in the audit trail', examples: ['spam'] }),
  ),
})

const Deleted = Type.Null({ description: 'Done; no body. A soft delete names its deletion in the Tombstone-Deletion header (and a Link with rel="deletion")' })

/** What a `?dry_run=true` of a permanent or bulk delete answers: what would go with it, changing nothing. */
function dryRunSchema(id: TSchema) {
  return Type.Object(
    {
      dry_run: Type.Literal(true),
      count: Type.Integer({ description: 'Rows that would be deleted, all tables' }),
      tables: Type.Record(
        Type.String(),
        Type.Object({ count: Type.Integer(), sample: Type.Array(id, { maxItems: 20 }), held: Type.Integer() }),
        { description: 'Per table: how many, the first ids, how many a legal hold covers' },
      ),
      held: Type.Integer({ description: 'Rows under a legal hold among them: a permanent delete would be refused (409 legal-hold)' }),
      would_refuse: Type.Boolean(),
      not_found: Type.Array(id),
      already_deleted: Type.Array(id, { description: 'Soft delete only: left as they are' }),
    },
    { description: 'Nothing changed: what the delete would take' },
  )
}

const DryRunQuery = Type.Object({ dry_run: Type.Optional(Type.Boolean({ description: 'Say what would go, change nothing. Defaults to false' })) })

function dryRunView(preview: PreviewResult, sortedIds: (keys: readonly RowKey[]) => SoftDeleteKeyValue[]) {
  return {
    dry_run: true as const,
    count: preview.count,
    tables: Object.fromEntries(
      Object.entries(preview.tables).map(([name, entry]) => [name, { count: entry.count, sample: sortedIds(entry.sample), held: entry.held }]),
    ),
    held: preview.held,
    would_refuse: preview.wouldRefuse,
    not_found: sortedIds(preview.notFound),
    already_deleted: sortedIds(preview.alreadyDeleted),
  }
}

/** The key of a row elsewhere (a parent), as JSON: a number when it is a plain integer, else text. */
function keyForJson(value: RowKey): SoftDeleteKeyValue {
  const text = String(value)
  return /^-?[1-9][0-9]{0,15}$/.test(text) && Number.isSafeInteger(Number(text)) ? Number(text) : text
}

/** How the routes get their Kysely instance: the option, else the app's `db` decorator. */
function databaseOf(app: FastifyInstance, db: SoftDeleteRoutesOptions<never>['db']): (request: FastifyRequest) => Kysely<any> {
  if (typeof db === 'function') return db
  if (db !== undefined) return () => db
  if (!app.hasDecorator('db')) {
    throw new TypeError("softDeleteRoutes needs a database: pass `db`, or decorate the app with it first (app.decorate('db', db))")
  }
  return () => (app as unknown as { db: Kysely<any> }).db
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
 * Only `table`, `prefix` and `actor` are required; docs/fastify.md has every option and default.
 * It throws a `TypeError` when neither `db` is given nor the app has a `db` decorator.
 *
 * @example
 * ```ts
 * // The minimum: the database from the app's `db` decorator, admins alone may delete.
 * softDeleteRoutes(app, { table: 'notes', prefix: '/notes', actor: (request) => request.actor })
 *
 * // A uuid key; owners delete their own rows; the trash and bulk routes.
 * softDeleteRoutes(app, {
 *   table: 'documents', prefix: '/documents', actor: (request) => request.actor,
 *   key: { type: 'uuid' }, ownerColumn: 'owner_id', routes: { trash: true, bulk: true },
 * })
 *
 * // Everything explicit, as the reference blog does for its posts.
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
export function softDeleteRoutes<Row extends Record<string, unknown>>(instance: FastifyInstance, options: SoftDeleteRoutesOptions<Row>): void {
  // Handlers typed from their schemas.
  const app = instance.withTypeProvider<TypeBoxTypeProvider>()
  const { table, prefix } = options
  const noun = options.noun ?? nounOf(table)
  const key: Required<SoftDeleteKey> = { column: 'id', type: 'integer', maxLength: 200, ...options.key }
  const column = key.column
  const routes = { softAlias: false, restore: true, permanent: true, trash: false, bulk: false, ...options.routes }
  const tags = [...(options.tags ?? [table])]
  const security = (options.security ?? [{ bearer: [] }]).map((requirement) =>
    Object.fromEntries(Object.entries(requirement).map(([name, scopes]) => [name, [...scopes]])),
  )
  const idsField = options.bulkIdsField ?? `${noun.replaceAll(' ', '_')}_ids`
  const maxBulk = options.maxBulk ?? 1000
  const Noun = noun.charAt(0).toUpperCase() + noun.slice(1)
  const Operation = pascal(noun)
  const dbOf = databaseOf(app, options.db)
  const ownerColumn = options.ownerColumn
  const isOwner =
    options.isOwner ??
    ((actor: SoftDeleteActor, row: Row) => ownerColumn !== undefined && row[ownerColumn] != null && String(row[ownerColumn]) === String(actor.id))
  const canDelete = options.canDelete ?? isOwner
  const etag = options.etag ?? ((row: Row) => rowHashEtag(table, row))
  const adminView = options.adminView ?? {
    schema: Type.Object(
      {
        [column]: keyOutSchema(key),
        deleted_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'When it was deleted; null while active' }),
      },
      { additionalProperties: true, description: `The ${noun} as stored, every column` },
    ),
    map: (row: Row) => row,
  }
  const IdParams = Type.Object({ id: keySchema(key, `The ${noun}'s ${column}`) })
  // A response without a description is "Default Response" in the OpenAPI document.
  const describedAdminView =
    'description' in adminView.schema ? adminView.schema : Type.Unsafe({ ...adminView.schema, description: `The ${noun}, deletion fields included` })

  /** A key as the routes report it: a number for integer keys, text otherwise. */
  const keyOut = (value: RowKey): SoftDeleteKeyValue => (key.type === 'integer' ? Number(value) : String(value))
  /** What a `?dry_run=true` answers, with this table's ids. */
  const DryRunView = dryRunSchema(keyOutSchema(key))
  /** Keys sorted, for stable answers. */
  const sortedIds = (keys: readonly RowKey[]): SoftDeleteKeyValue[] => {
    const values = keys.map(keyOut)
    return key.type === 'integer' ? (values as number[]).sort((a, b) => a - b) : (values as string[]).sort()
  }
  /**
   * A validated key in the one form the database gets: UUIDs lower-cased (`A…` and `a…` are one
   * row), text refused when the database cannot store it (a 422 pointing at it, not a 5xx).
   */
  const keyIn = (value: SoftDeleteKeyValue, pointer: string): SoftDeleteKeyValue => {
    if (typeof value !== 'string') return value
    if (key.type === 'uuid') return value.toLowerCase()
    if (hasUnstorableText(value)) {
      throw new HttpProblem('validation-failed', 'The id holds text that cannot be stored (a NUL character or a lone surrogate)', {
        extensions: { errors: [{ pointer, detail: 'must not contain NUL characters or lone surrogates' }] },
      })
    }
    return value
  }
  const idOf = (request: { params: { id: SoftDeleteKeyValue } }) => keyIn(request.params.id, '/params/id')
  const schemaBase = (operationId: string) => ({ tags, operationId, security })

  async function load(db: Kysely<any>, id: SoftDeleteKeyValue): Promise<Row | undefined> {
    return (await db
      .selectFrom(table)
      .selectAll()
      .where(column, '=', id)
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

  async function loadOrFail(db: Kysely<any>, id: SoftDeleteKeyValue): Promise<Row> {
    const row = await load(db, id)
    if (row === undefined) throw new HttpProblem('not-found', `${Noun} ${id} does not exist`)
    return row
  }

  const deleteHandler = async (request: FastifyRequest & { params: { id: SoftDeleteKeyValue }; query: Static<typeof DeleteQuery> }) => {
    const actor = requireActor(options.actor(request))
    const id = idOf(request)
    const { reason } = request.query
    const db = dbOf(request)
    const row = await loadOrFail(db, id)
    const deleted = row.deleted_at !== null && row.deleted_at !== undefined
    if (deleted) {
      // Rules 4 and 5: nothing is re-stamped; strangers cannot tell a deleted row from a missing one.
      if (!(actor.isAdmin || isOwner(actor, row))) throw new HttpProblem('not-found', `${Noun} ${id} does not exist`)
      checkIfMatch(request, etag(row))
      return (row as { deletion_id?: string | null }).deletion_id ?? null
    }
    if (!actor.isAdmin && options.canSee !== undefined && !options.canSee(actor, row)) {
      throw new HttpProblem('not-found', `${Noun} ${id} does not exist`)
    }
    if (!(actor.isAdmin || (await canDelete(actor, row)))) {
      throw new HttpProblem('forbidden', `You may not delete ${noun} ${id}`)
    }
    checkIfMatch(request, etag(row))
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

  const deleteDescription =
    `Soft-deletes the ${noun} and what belongs to it: hidden from every read, restorable by an admin until purged. ` +
    `The owner or an admin may delete it (else 403). Deleting an already deleted ${noun} answers 204 to its owner or an admin ` +
    `and stamps nothing again; to anyone else it is 404, like a missing one. \`If-Match\` is checked against its ETag (412).`
  const deleteSchema = (operationId: string, summary: string) => ({
    ...schemaBase(operationId),
    summary,
    description: deleteDescription,
    params: IdParams,
    querystring: DeleteQuery,
    response: { 204: Deleted, ...problemResponses(401, 403, 404, 412, 422) },
  })

  app.delete(`${prefix}/:id`, { schema: deleteSchema(`delete${Operation}`, `Delete a ${noun} (soft; restorable by an admin)`) }, async (request, reply) =>
    deleted(reply, await deleteHandler(request)),
  )
  if (routes.softAlias) {
    app.delete(
      `${prefix}/:id/soft`,
      { schema: deleteSchema(`softDelete${Operation}`, `Delete a ${noun} (alias of DELETE ${prefix}/{id})`) },
      async (request, reply) => deleted(reply, await deleteHandler(request)),
    )
  }

  if (routes.restore) {
    app.post(
      `${prefix}/:id/restore`,
      {
        schema: {
          ...schemaBase(`restore${Operation}`),
          summary: `Restore a deleted ${noun} and what was deleted with it (admin)`,
          description:
            `Brings the ${noun} back with every row its deletion took along, in one transaction. Refused with 409 when an active row ` +
            `now holds one of its unique values (\`conflict\`) or a parent is deleted (\`parent-deleted\`), with 400 when it is not deleted. Admin only.`,
          params: IdParams,
          response: { 200: describedAdminView, ...problemResponses(400, 401, 403, 404, 409, 412, 422) },
        },
      },
      async (request) => {
        const actor = requireAdmin(options.actor(request))
        const id = idOf(request)
        const db = dbOf(request)
        const row = await loadOrFail(db, id)
        checkIfMatch(request, etag(row))
        if (row.deleted_at === null) throw new HttpProblem('not-deleted', `${Noun} ${id} is not deleted`)
        try {
          await restoreWithHook(db, (scope) => restore(scope, table, { id }, { by: actor.id, set: options.restoreSet?.(db) }))
        } catch (error) {
          throw restoreProblem(error)
        }
        return adminView.map(await loadOrFail(db, id))
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
          ...(conflict.conflictingId === undefined ? {} : { conflicting_id: keyOut(conflict.conflictingId) }),
        },
      })
    }
    if (coded.code === 'PARENT_DELETED' && options.describeParentDeleted !== undefined) {
      const parent = error as ParentDeletedError
      return new HttpProblem('parent-deleted', options.describeParentDeleted(parent), {
        cause: error,
        extensions: { parent_table: parent.parentTable, parent_id: keyForJson(parent.parentId) },
      })
    }
    return error
  }

  if (routes.permanent) {
    app.delete(
      `${prefix}/:id/permanent`,
      {
        schema: {
          ...schemaBase(`permanentlyDelete${Operation}`),
          summary: `Delete a ${noun} for good, with everything that belongs to it, active or deleted (admin); ?dry_run=true says what would go`,
          description: `Removes the ${noun} and the rows that belong to it from the database, whether active or deleted; the audit trail keeps a record. Cannot be undone. Admin only.`,
          params: IdParams,
          querystring: DryRunQuery,
          response: { 200: DryRunView, 204: Deleted, ...problemResponses(401, 403, 404, 409, 412, 422) },
        },
      },
      async (request, reply) => {
        const actor = requireAdmin(options.actor(request))
        const id = idOf(request)
        const db = dbOf(request)
        const row = await loadOrFail(db, id)
        checkIfMatch(request, etag(row))
        if (request.query.dry_run === true) return reply.code(200).send(dryRunView(await previewForceDelete(db, table, { id }), sortedIds))
        const result = await db.transaction().execute(async (trx) => {
          await options.beforeDelete?.(trx, [id], 'permanent')
          return forceDelete(trx, table, { id }, { by: actor.id })
        })
        if (result.deleted.length === 0) throw new HttpProblem('not-found', `${Noun} ${id} does not exist`)
        return deleted(reply, null)
      },
    )
  }

  if (routes.trash) {
    app.get(
      `${prefix}/deleted`,
      {
        schema: {
          ...schemaBase(`listDeleted${Operation}s`),
          summary: `The ${noun} trash: deleted ${noun}s, most recently deleted first (admin)`,
          description: `Deleted ${noun}s, newest deletion first, a page at a time (pass \`next_cursor\` back as \`cursor\`). Admin only.`,
          querystring: Type.Object(PageQuery),
          response: { 200: ListSchema(adminView.schema, `A page of deleted ${noun}s`), ...problemResponses(401, 403, 422) },
        },
      },
      async (request) => {
        requireAdmin(options.actor(request))
        const { limit = 20, cursor } = request.query
        const db = dbOf(request)
        const sqlite = dialectKindOf(db) === 'sqlite'
        let query = db
          .selectFrom(table)
          .selectAll()
          // The cursor needs the stamp at the database's precision (microseconds): a Date keeps
          // milliseconds, and rows one bulk delete stamped alike would be skipped past.
          // SQLite stores the stamp as that text already (ISO 8601, UTC, milliseconds).
          .select(sqlite ? sql<string>`deleted_at`.as(CURSOR_AT) : sql<string>`to_char(deleted_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`.as(CURSOR_AT))
          .$call(withDeleted({ [table]: 'only' }))
          .orderBy('deleted_at', 'desc')
          .orderBy(column, 'desc')
          .limit(limit + 1)
        if (cursor !== undefined) {
          const [deletedAt, id] = decodeCursor(cursor, ['timestamp', key.type === 'integer' ? 'number' : 'string'])
          if (key.type === 'uuid' && !UUID_PATTERN.test(String(id))) {
            throw new HttpProblem('validation-failed', 'The cursor is not one this API gave out', {
              extensions: { errors: [{ pointer: '/query/cursor', detail: 'is not a valid cursor' }] },
            })
          }
          query = query.where(
            sqlite
              ? sql<boolean>`(deleted_at, ${sql.ref(column)}) < (${deletedAt}, ${id})`
              : sql<boolean>`(deleted_at, ${sql.ref(column)}) < (${deletedAt}::timestamptz, ${id})`,
          )
        }
        const rows = (await query.execute()) as (Row & { [CURSOR_AT]: string })[]
        const page = rows.slice(0, limit)
        const last = page.at(-1)
        return {
          items: page.map(({ [CURSOR_AT]: _, ...row }) => adminView.map(row as unknown as Row)),
          next_cursor: rows.length > limit && last !== undefined ? encodeCursor([last[CURSOR_AT], keyOut(last[column] as RowKey)]) : null,
        }
      },
    )
  }

  if (routes.bulk) {
    const Ids = Type.Array(keySchema(key, `A ${noun}'s ${column}`), {
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
    // The ids field is named by an option, so TypeScript cannot type the bulk bodies: the schema has checked them.
    const idsOf = (body: unknown) => [
      ...new Set(((body as Record<string, SoftDeleteKeyValue[]>)[idsField] ?? []).map((id, index) => keyIn(id, `/body/${idsField}/${index}`))),
    ]

    async function bulkDelete(request: FastifyRequest & { body: unknown; query: Static<typeof DryRunQuery> }) {
      const actor = requireAdmin(options.actor(request))
      const body = request.body as { hard_delete?: boolean; reason?: string }
      const ids = idsOf(body)
      const db = dbOf(request)
      if (request.query.dry_run === true) {
        return dryRunView(body.hard_delete === true ? await previewForceDelete(db, table, { ids }) : await previewSoftDelete(db, table, { ids }), sortedIds)
      }
      if (body.hard_delete === true) {
        const result = await db.transaction().execute(async (trx) => {
          await options.beforeDelete?.(trx, ids, 'permanent')
          return forceDelete(trx, table, { ids }, { by: actor.id, reason: body.reason ?? null })
        })
        return { deleted: sortedIds(result.deleted), already_deleted: [] as SoftDeleteKeyValue[], not_found: sortedIds(result.notFound) }
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
          ...schemaBase(`bulkDelete${Operation}s`),
          summary: `Delete many ${noun}s in one transaction (admin); ?dry_run=true says what would go`,
          description: `Soft-deletes (or with \`hard_delete\`, deletes for good) every listed ${noun} in one transaction; unknown and already deleted ids are ignored. Admin only.`,
          body: BulkDelete,
          querystring: DryRunQuery,
          response: { 200: DryRunView, 204: Deleted, ...problemResponses(400, 401, 403, 409, 413, 415, 422) },
        },
      },
      async (request, reply) => {
        const result = await bulkDelete(request)
        if ('dry_run' in result) return reply.code(200).send(result)
        return deleted(reply, null)
      },
    )

    const IdList = Type.Array(keyOutSchema(key))
    app.post(
      `${prefix}/bulk-delete`,
      {
        schema: {
          ...schemaBase(`bulkDelete${Operation}sWithReport`),
          summary: `Delete many ${noun}s in one transaction and say what happened to each (admin); ?dry_run=true says what would go`,
          description: `As DELETE ${prefix}/bulk, answering which ids were deleted, already deleted, or not found. Admin only.`,
          body: BulkDelete,
          querystring: DryRunQuery,
          response: {
            200: Type.Union(
              [
                Type.Object(
                  { deleted: IdList, already_deleted: IdList, not_found: IdList },
                  { examples: [key.type === 'integer' ? { deleted: [1, 2], already_deleted: [3], not_found: [] } : { deleted: ['a'], already_deleted: [], not_found: ['b'] }] },
                ),
                DryRunView,
              ],
              { description: 'What happened to each id; with ?dry_run=true, what would go' },
            ),
            ...problemResponses(400, 401, 403, 409, 413, 415, 422),
          },
        },
      },
      async (request) => bulkDelete(request),
    )

    const ConflictDetail = Type.Object({
      id: keyOutSchema(key),
      reason: Type.Union([Type.Literal('conflict'), Type.Literal('parent-deleted')]),
      detail: Type.String(),
      conflicting_id: Type.Optional(keyOutSchema(key)),
    })
    app.post(
      `${prefix}/bulk-restore`,
      {
        schema: {
          ...schemaBase(`bulkRestore${Operation}s`),
          summary: `Restore many ${noun}s; one that collides or whose parent is deleted is skipped (admin)`,
          description: `Restores every listed deleted ${noun} that can be; one whose unique values an active row now holds, or whose parent is deleted, is skipped and reported in \`conflict_details\`. Admin only.`,
          body: Type.Object({ [idsField]: Ids }, { additionalProperties: false }),
          response: {
            200: Type.Object(
              {
                restored: IdList,
                not_deleted: IdList,
                not_found: IdList,
                conflicts: IdList,
                conflict_details: Type.Array(ConflictDetail),
              },
              { description: 'What happened to each id' },
            ),
            ...problemResponses(400, 401, 403, 413, 415, 422),
          },
        },
      },
      async (request) => {
        const actor = requireAdmin(options.actor(request))
        const ids = idsOf(request.body)
        const result: RestoreResult = await restoreWithHook(dbOf(request), (scope) =>
          restore(scope, table, { ids }, { by: actor.id, onFailure: 'skip', set: options.restoreSet?.(dbOf(request)) }),
        )
        const details = [
          ...result.conflicts.map((conflict) => ({
            id: keyOut(conflict.id ?? ''),
            reason: 'conflict' as const,
            detail: options.describeConflict?.(conflict) ?? conflict.message,
            ...(conflict.conflictingId === undefined ? {} : { conflicting_id: keyOut(conflict.conflictingId) }),
          })),
          ...result.parentDeleted.map((entry) => ({
            id: keyOut(entry.id),
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
