/**
 * The toolkit's coded errors.
 *
 * Every expected failure is one of these classes, with a stable `code` that callers map (the
 * Fastify integration maps them to problem+json), the table concerned, and the database error as
 * `cause` where there is one. Database failures are classified by SQLSTATE, never by message text.
 *
 * @example
 * ```ts
 * import { isTombstoneError } from '@tombstone/kysely'
 *
 * try {
 *   await restore(db, 'posts', { id: 7 })
 * } catch (error) {
 *   if (isTombstoneError(error) && error.code === 'CONFLICT') {
 *     console.log(error.constraint, error.columns, error.conflictingId)
 *   } else throw error
 * }
 * ```
 *
 * @module
 */
import { foreignDetail, foreignSqlState } from './dialects/error-codes.ts'

/** Every code a {@link TombstoneError} can carry. A new code must be added here to compile. */
export const ERROR_CODES = [
  'NOT_FOUND',
  'NOT_DELETED',
  'CONFLICT',
  'PARENT_DELETED',
  'REFERENCED',
  'HARD_DELETE_REFUSED',
  'AUDIT_APPEND_ONLY',
  'DELETION_STAMPED',
  'LEGAL_HOLD',
  'DELETE_POLICY',
  'INVALID_ARGUMENT',
  'INVALID_CONFIGURATION',
] as const

/** The stable code of a {@link TombstoneError}. */
export type TombstoneErrorCode = (typeof ERROR_CODES)[number]

/**
 * A key value of a row. In results and errors, what the driver returns for the key column (a number
 * for `integer`, a string for `uuid` and `text`; `bigint`: a string from `pg`, a number from PGlite),
 * the same type in every operation. The one exception: a {@link ParentDeletedError} the database
 * raised (SQLSTATE `TB003`, from an insert or update of yours) carries its keys as text. As an argument, any of these; the database casts it to the
 * column's type. Keys are one column: composite keys are refused by `defineSoftDeletes`.
 */
export type RowKey = string | number | bigint

/**
 * Base class of every error the toolkit throws on purpose.
 *
 * @example
 * ```ts
 * if (error instanceof TombstoneError) reply.code(statusFor(error.code))
 * ```
 */
export abstract class TombstoneError extends Error {
  /** The stable code; switch on it rather than on the class or the message. */
  abstract readonly code: TombstoneErrorCode
  /** The table concerned, when there is one. */
  readonly table: string | undefined

  constructor(message: string, table: string | undefined, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
    this.table = table
  }
}

/**
 * True when `error` is one of the toolkit's coded errors (optionally with the given code).
 *
 * @example
 * ```ts
 * if (isTombstoneError(error, 'NOT_FOUND')) return reply.code(404).send()
 * ```
 */
export function isTombstoneError<C extends TombstoneErrorCode>(
  error: unknown,
  code?: C,
): error is Extract<AnyTombstoneError, { code: C }> {
  return error instanceof TombstoneError && (code === undefined || error.code === code)
}

/**
 * No row with the given key exists (deleted or not).
 *
 * @example
 * ```ts
 * await restore(db, 'posts', { id: 999 }) // throws NotFoundError { table: 'posts', ids: [999] }
 * ```
 */
export class NotFoundError extends TombstoneError {
  readonly code = 'NOT_FOUND' as const
  /** The keys that were not found. */
  readonly ids: readonly RowKey[]
  constructor(table: string, ids: readonly RowKey[]) {
    super(`No row of "${table}" with key ${ids.join(', ')}`, table)
    this.ids = ids
  }
}

/**
 * A restore targeted a row that is not deleted.
 *
 * @example
 * ```ts
 * await restore(db, 'posts', { id: activePostId }) // throws NotDeletedError
 * ```
 */
export class NotDeletedError extends TombstoneError {
  readonly code = 'NOT_DELETED' as const
  /** The keys of the rows that are active. */
  readonly ids: readonly RowKey[]
  constructor(table: string, ids: readonly RowKey[]) {
    super(`Row ${ids.join(', ')} of "${table}" is not deleted`, table)
    this.ids = ids
  }
}

/**
 * A restore would make two active rows collide on a unique index (SQLSTATE 23505). Nothing changed.
 *
 * @example
 * ```ts
 * // post 3 was deleted, post 12 took its slug since: restoring 3 fails.
 * await restore(db, 'posts', { id: 3 })
 * // ConflictError { table: 'posts', id: 3, constraint: 'posts_slug_active_key', columns: ['slug'], conflictingId: 12 }
 * ```
 */
export class ConflictError extends TombstoneError {
  readonly code = 'CONFLICT' as const
  /** The key of the row that could not be restored, when it could be told. */
  readonly id: RowKey | undefined
  /** The unique index (or constraint) that refused the row. */
  readonly constraint: string | undefined
  /** The index's columns, in index order (empty for an expression index). */
  readonly columns: readonly string[]
  /** The key of the active row already holding those values, when there is one. */
  readonly conflictingId: RowKey | undefined
  constructor(args: {
    table: string
    id?: RowKey | undefined
    constraint?: string | undefined
    columns?: readonly string[]
    conflictingId?: RowKey | undefined
    cause?: unknown
  }) {
    const columns = args.columns ?? []
    const what = columns.length > 0 ? ` (${columns.join(', ')})` : ''
    const holder = args.conflictingId === undefined ? '' : ` held by row ${String(args.conflictingId)}`
    super(
      `Restoring ${args.id === undefined ? 'rows' : `row ${String(args.id)}`} of "${args.table}" ` +
        `would violate ${args.constraint ?? 'a unique index'}${what}${holder}`,
      args.table,
      { cause: args.cause },
    )
    this.id = args.id
    this.constraint = args.constraint
    this.columns = columns
    this.conflictingId = args.conflictingId
  }
}

/**
 * A restore targeted a row whose parent (along a declared relation) is still deleted.
 *
 * @example
 * ```ts
 * await restore(db, 'comments', { id: 5 }) // its post is deleted: ParentDeletedError
 * ```
 */
export class ParentDeletedError extends TombstoneError {
  readonly code = 'PARENT_DELETED' as const
  readonly id: RowKey
  readonly parentTable: string
  readonly parentId: RowKey
  constructor(table: string, id: RowKey, parentTable: string, parentId: RowKey, cause?: unknown) {
    super(
      `Row ${String(id)} of "${table}" cannot be active: its parent ${String(parentId)} of "${parentTable}" is deleted`,
      table,
      cause === undefined ? undefined : { cause },
    )
    this.id = id
    this.parentTable = parentTable
    this.parentId = parentId
  }
}

/**
 * A hard delete was refused because rows of another table still reference the rows (SQLSTATE 23503,
 * or 23001 for a `RESTRICT` foreign key on PostgreSQL 18).
 *
 * @example
 * ```ts
 * await forceDelete(db, 'users', { id: 1 }) // a table the toolkit does not know references user 1
 * ```
 */
export class ReferencedError extends TombstoneError {
  readonly code = 'REFERENCED' as const
  readonly constraint: string | undefined
  constructor(table: string | undefined, constraint: string | undefined, cause: unknown, message?: string) {
    super(
      message ??
        `Rows of "${table ?? '?'}" are still referenced (${constraint ?? 'foreign key'}); declare the relation so that force delete removes the children first`,
      table,
      { cause },
    )
    this.constraint = constraint
  }
}

/**
 * A plain `DELETE` reached a soft-deletable table. Thrown by the plugin before the query runs
 * (`source: 'query'`), or classified from the database guard's SQLSTATE `TB001` (`source: 'database'`).
 * Use {@link forceDelete} to remove rows for good.
 *
 * @example
 * ```ts
 * await db.deleteFrom('posts').where('id', '=', 1).execute() // HardDeleteRefusedError
 * await forceDelete(db, 'posts', { id: 1 }) // the explicit way
 * ```
 */
export class HardDeleteRefusedError extends TombstoneError {
  readonly code = 'HARD_DELETE_REFUSED' as const
  readonly source: 'query' | 'database'
  constructor(table: string | undefined, source: 'query' | 'database', cause?: unknown) {
    super(
      `Hard DELETE on soft-deletable table "${table ?? '?'}" refused: use softDelete() to delete, or forceDelete() to remove rows for good`,
      table,
      { cause },
    )
    this.source = source
  }
}

/**
 * A table's delete policy refuses the deletion: `softDelete` or `forceDelete` of a table declared
 * with `policy: 'never'` (`source: 'operation'`), or the database's policy trigger (SQLSTATE `TB007`,
 * `source: 'database'`, after {@link classifyDatabaseError}) refusing any client's soft or hard delete.
 *
 * @example
 * ```ts
 * await softDelete(db, 'countries', { id: 1 }) // DeletePolicyError { code: 'DELETE_POLICY', policy: 'never' }
 * ```
 */
export class DeletePolicyError extends TombstoneError {
  readonly code = 'DELETE_POLICY' as const
  readonly policy: 'never'
  readonly source: 'operation' | 'database'
  constructor(table: string | undefined, source: 'operation' | 'database', cause?: unknown) {
    super(`Rows of "${table ?? '?'}" are never deleted (policy 'never'): neither soft nor hard deletes are allowed`, table, cause === undefined ? undefined : { cause })
    this.policy = 'never'
    this.source = source
  }
}

/**
 * An UPDATE, DELETE or TRUNCATE reached the append-only audit table (SQLSTATE `TB002`).
 *
 * @example
 * ```ts
 * await sql`delete from tombstone_audit`.execute(db) // AuditAppendOnlyError (after classifyDatabaseError)
 * ```
 */
export class AuditAppendOnlyError extends TombstoneError {
  readonly code = 'AUDIT_APPEND_ONLY' as const
  constructor(table: string | undefined, cause?: unknown) {
    super(`The audit table "${table ?? '?'}" is append-only`, table, { cause })
  }
}

/**
 * A change to the deletion stamps of a deleted row (`deleted_at`, `deletion_id`, `deleted_by`,
 * `delete_reason`, or `purge_at` moved earlier) was refused by the database (SQLSTATE `TB005`):
 * they change only by a restore.
 *
 * @example
 * ```ts
 * await sql`update posts set purge_at = now() where id = 7`.execute(db) // DeletionStampedError (after classifyDatabaseError)
 * ```
 */
export class DeletionStampedError extends TombstoneError {
  readonly code = 'DELETION_STAMPED' as const
  constructor(table: string | undefined, cause?: unknown) {
    super(`The deletion stamps of a deleted row of "${table ?? '?'}" change only by a restore (purge_at may only move later)`, table, { cause })
  }
}

/**
 * A row under a legal hold would be removed for good (SQLSTATE `TB006`, raised by the database for
 * every client on every dialect: {@link forceDelete}, a plain `DELETE` with the hard-delete opt-in, a `TRUNCATE` (PostgreSQL), a
 * foreign-key cascade). Nothing changed. Release the hold ({@link releaseHold}) first.
 *
 * @example
 * ```ts
 * const { hold } = await placeHold(db, { table: 'posts', id: 7 }, { by: 'legal', reason: 'case 42' })
 * await forceDelete(db, 'posts', { id: 7 }) // LegalHoldError { table: 'posts', id: '7', holdId: hold.id }
 * ```
 */
export class LegalHoldError extends TombstoneError {
  readonly code = 'LEGAL_HOLD' as const
  /** The key (as text) of a held row the statement would have removed, when the database told it. */
  readonly id: string | undefined
  /** The id of a hold covering it. */
  readonly holdId: string | undefined
  constructor(table: string | undefined, id: string | undefined, holdId: string | undefined, cause?: unknown) {
    super(
      `Row ${id ?? '?'} of "${table ?? '?'}" is under legal hold${holdId === undefined ? '' : ` ${holdId}`}: it cannot be removed for good until the hold is released`,
      table,
      cause === undefined ? undefined : { cause },
    )
    this.id = id
    this.holdId = holdId
  }
}

/**
 * An argument of a toolkit function is not acceptable (an empty key, a bad retention, an unknown
 * table in `withDeleted`, ...).
 *
 * @example
 * ```ts
 * await softDelete(db, 'posts', { ids: [] as number[] }) // fine: nothing to do
 * withDeleted({ 'posts;--': 'include' }) // InvalidArgumentError
 * ```
 */
export class InvalidArgumentError extends TombstoneError {
  readonly code = 'INVALID_ARGUMENT' as const
  constructor(message: string, table?: string, cause?: unknown) {
    super(message, table, cause === undefined ? undefined : { cause })
  }
}

/**
 * The soft-delete definition or the Kysely instance is not usable: an undeclared table, a relation
 * to an unknown table, a cycle, or a Kysely instance without the {@link SoftDeletePlugin}.
 *
 * @example
 * ```ts
 * await softDelete(new Kysely({ dialect }), 'posts', { id: 1 }) // InvalidConfigurationError
 * ```
 */
export class InvalidConfigurationError extends TombstoneError {
  readonly code = 'INVALID_CONFIGURATION' as const
  constructor(message: string, table?: string, cause?: unknown) {
    super(message, table, cause === undefined ? undefined : { cause })
  }
}

/** Every concrete coded error; `code` discriminates. */
export type AnyTombstoneError =
  | NotFoundError
  | NotDeletedError
  | ConflictError
  | DeletionStampedError
  | ParentDeletedError
  | ReferencedError
  | HardDeleteRefusedError
  | AuditAppendOnlyError
  | LegalHoldError
  | DeletePolicyError
  | InvalidArgumentError
  | InvalidConfigurationError

// A code without a class (or the reverse) breaks the build here.
type _EveryCodeHasAClass = [TombstoneErrorCode] extends [AnyTombstoneError['code']]
  ? [AnyTombstoneError['code']] extends [TombstoneErrorCode]
    ? true
    : never
  : never
const _everyCodeHasAClass: _EveryCodeHasAClass = true
void _everyCodeHasAClass

/** SQLSTATE codes the toolkit's database objects raise. */
export const SQLSTATE = {
  uniqueViolation: '23505',
  foreignKeyViolation: '23503',
  /** A `RESTRICT` foreign key (PostgreSQL 18 reports it apart from 23503; PGlite is PostgreSQL 18). */
  restrictViolation: '23001',
  hardDeleteRefused: 'TB001',
  auditAppendOnly: 'TB002',
  /** An active row would reference a deleted parent (the database's parent check). */
  parentDeleted: 'TB003',
  /** A deleted row's deletion stamps would change. */
  deletionStamped: 'TB005',
  /** A row under a legal hold would be removed for good. */
  legalHold: 'TB006',
  /** A table with policy 'never' would have a row deleted, soft or hard. */
  deletePolicy: 'TB007',
} as const

/**
 * The SQLSTATE of a database error from `pg` or PGlite, or undefined.
 *
 * @example
 * ```ts
 * if (sqlStateOf(error) === '23505') ...
 * ```
 */
export function sqlStateOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined
  const code = (error as { code?: unknown }).code
  // SQLite's and MySQL's own codes, as the SQLSTATE they stand for (see dialects/error-codes.ts).
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : foreignSqlState(error)
}

/** The structured detail the toolkit's triggers attach (JSON), or an empty object. */
function parseDetail(error: unknown): Record<string, string | undefined> {
  if (foreignSqlState(error) !== undefined) return foreignDetail(error)
  const detail = (error as Record<string, unknown>).detail
  if (typeof detail !== 'string') return {}
  try {
    const parsed: unknown = JSON.parse(detail)
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, string>) : {}
  } catch {
    return {}
  }
}

function field(error: unknown, name: 'table' | 'constraint' | 'schema'): string | undefined {
  const value = (error as Record<string, unknown>)[name]
  if (typeof value === 'string' && value !== '') return value
  const foreign = foreignSqlState(error) === undefined ? undefined : foreignDetail(error)[name]
  return foreign === '' ? undefined : foreign
}

/**
 * Turns a database error raised by the toolkit's database objects or by a constraint into the
 * matching coded error (by SQLSTATE), or returns it unchanged.
 *
 * @example
 * ```ts
 * try {
 *   await sql`delete from posts`.execute(db)
 * } catch (error) {
 *   throw classifyDatabaseError(error) // HardDeleteRefusedError { source: 'database' }
 * }
 * ```
 */
export function classifyDatabaseError(error: unknown): unknown {
  if (error instanceof TombstoneError) return error
  switch (sqlStateOf(error)) {
    case SQLSTATE.hardDeleteRefused:
      return new HardDeleteRefusedError(field(error, 'table'), 'database', error)
    case SQLSTATE.auditAppendOnly:
      return new AuditAppendOnlyError(field(error, 'table'), error)
    case SQLSTATE.deletionStamped:
      return new DeletionStampedError(field(error, 'table'), error)
    case SQLSTATE.deletePolicy:
      return new DeletePolicyError(field(error, 'table'), 'database', error)
    case SQLSTATE.legalHold: {
      const detail = parseDetail(error)
      return new LegalHoldError(field(error, 'table'), detail.id, detail.hold_id, error)
    }
    case SQLSTATE.parentDeleted: {
      const detail = parseDetail(error)
      return new ParentDeletedError(field(error, 'table') ?? '?', detail.id ?? '?', detail.parent_table ?? '?', detail.parent_id ?? '?', error)
    }
    case SQLSTATE.foreignKeyViolation:
    case SQLSTATE.restrictViolation:
      return new ReferencedError(field(error, 'table'), field(error, 'constraint'), error)
    default:
      return error
  }
}
