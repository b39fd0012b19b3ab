import { createHash } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { Type, type TSchema } from 'typebox'
import { HttpProblem } from './problems.ts'

/**
 * A strong ETag for a version of a resource, from the values that change when it changes
 * (key, `updated_at`, `deleted_at`, ...). The same whatever view of the resource is sent.
 *
 * @example
 * ```ts
 * reply.header('etag', etagOf(['posts', post.id, post.updated_at, post.deleted_at]))
 * ```
 */
export function etagOf(parts: readonly unknown[]): string {
  const text = JSON.stringify(parts.map((part) => (part instanceof Date ? part.toISOString() : part)))
  return `"${createHash('sha256').update(text).digest('base64url').slice(0, 27)}"`
}

/**
 * Enforces `If-Match` against the resource's current ETag: absent passes, `*` passes (the resource
 * exists), otherwise one of the listed tags must equal it (strong comparison), else `412`.
 * Call it after authentication, authorization and existence are settled.
 *
 * @example
 * ```ts
 * checkIfMatch(request, etagOf([...]))
 * ```
 */
export function checkIfMatch(request: FastifyRequest, current: string): void {
  const header = request.headers['if-match']
  if (header === undefined) return
  const value = Array.isArray(header) ? header.join(',') : header
  if (value.trim() === '*') return
  const tags = value.split(',').map((tag) => tag.trim())
  if (!tags.includes(current)) {
    throw new HttpProblem('precondition-failed', `If-Match ${value} does not match the current ETag ${current}`)
  }
}

/** Encodes a keyset position as an opaque cursor. */
export function encodeCursor(values: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(values)).toString('base64url')
}

/**
 * An ISO 8601 timestamp as this API writes them (and PostgreSQL reads them): what `Date.parse` also
 * accepts (`"12"`, `"2020 (x)"`, six-digit years) is not one.
 */
function isTimestamp(value: string): boolean {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$/.exec(value)
  if (match === null || match[1] === '0000' || Number(match[4]) > 23) return false
  // The calendar date must exist (Date rolls 2020-02-30 over to March; PostgreSQL refuses it).
  const day = new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])))
  return day.getUTCMonth() === Number(match[2]) - 1 && day.getUTCDate() === Number(match[3]) && !Number.isNaN(Date.parse(value))
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/**
 * Text a database cannot store: a NUL character (PostgreSQL's text refuses it) or a lone UTF-16
 * surrogate (not encodable as UTF-8).
 *
 * @example
 * ```ts
 * hasUnstorableText('a\u0000b') // true
 * ```
 */
export function hasUnstorableText(value: string): boolean {
  return value.includes('\u0000') || LONE_SURROGATE.test(value)
}

/**
 * Decodes a cursor made by {@link encodeCursor}, checking the shape (`'timestamp'`: an ISO 8601
 * date or `infinity`); a bad cursor is a `validation-failed` problem pointing at `/query/cursor`,
 * never a 5xx.
 *
 * @example
 * ```ts
 * const [createdAt, id] = decodeCursor(query.cursor, ['timestamp', 'number'])
 * ```
 */
export function decodeCursor<const T extends readonly ('string' | 'number' | 'timestamp')[]>(
  cursor: string,
  shape: T,
): { [K in keyof T]: T[K] extends 'number' ? number : string } {
  const invalid = () =>
    new HttpProblem('validation-failed', 'The cursor is not one this API gave out', {
      extensions: { errors: [{ pointer: '/query/cursor', detail: 'is not a valid cursor' }] },
    })
  let values: unknown
  try {
    values = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    throw invalid()
  }
  if (!Array.isArray(values) || values.length !== shape.length) throw invalid()
  shape.forEach((kind, index) => {
    const value = values[index]
    const ok =
      kind === 'number'
        ? // Keys are PostgreSQL integers: a number past int4 would fail in the database, not here.
          Number.isSafeInteger(value) && (value as number) >= -2_147_483_648 && (value as number) <= 2_147_483_647
        : typeof value === 'string' &&
          value.length <= 200 &&
          !hasUnstorableText(value) &&
          (kind === 'string' || value === 'infinity' || isTimestamp(value))
    if (!ok) throw invalid()
  })
  return values as never
}

/** `{ items, next_cursor }`: the shape of every list. */
export function ListSchema<T extends TSchema>(item: T, description?: string) {
  return Type.Object(
    {
      items: Type.Array(item),
      next_cursor: Type.Union([Type.String(), Type.Null()], { description: 'Pass as `cursor` for the next page; null on the last one' }),
    },
    description === undefined ? {} : { description },
  )
}

/** `limit` (1–100, default 20) and `cursor`: the query of every list. */
export const PageQuery = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'Page size, 1–100' })),
  cursor: Type.Optional(Type.String({ maxLength: 512, description: 'From `next_cursor` of the previous page' })),
}

/** A positive 32-bit integer id, as in every `/{id}` path. */
export const IdParams = Type.Object({
  id: Type.Integer({ minimum: 1, maximum: 2_147_483_647, description: 'A positive integer id' }),
})

/** Reusable reference to the shared problem schema, for response maps. */
export const ProblemRef = Type.Ref('Problem')

/**
 * Response schemas for the given error statuses, all the shared problem schema.
 *
 * @example
 * ```ts
 * response: { 200: PostView, ...problemResponses(401, 403, 404, 422) }
 * ```
 */
export function problemResponses<const S extends readonly number[]>(...statuses: S): { [K in S[number]]: typeof ProblemRef } {
  return Object.fromEntries(statuses.map((status) => [status, ProblemRef])) as never
}

/** The first string in `value` (walked as JSON) a database cannot store, as a JSON pointer. */
function unstorablePointer(value: unknown, pointer: string, depth = 0): string | undefined {
  if (typeof value === 'string') return hasUnstorableText(value) ? pointer : undefined
  if (depth > 32 || value === null || typeof value !== 'object') return undefined
  for (const [key, inner] of Object.entries(value)) {
    const escaped = key.replaceAll('~', '~0').replaceAll('/', '~1')
    if (hasUnstorableText(key)) return `${pointer}/${escaped}`
    const found = unstorablePointer(inner, `${pointer}/${escaped}`, depth + 1)
    if (found !== undefined) return found
  }
  return undefined
}

/**
 * A `preValidation` hook refusing, with a `validation-failed` problem (422) that points at the
 * field, any text in the body, query or path parameters that the database cannot store: a NUL
 * character or a lone UTF-16 surrogate. Without it they reach PostgreSQL (or PGlite's encoder) and
 * come back as a 5xx.
 *
 * @example
 * ```ts
 * app.addHook('preValidation', rejectUnstorableInput)
 * ```
 */
export async function rejectUnstorableInput(request: { body?: unknown; query?: unknown; params?: unknown }): Promise<void> {
  for (const [part, value] of [
    ['body', request.body],
    ['query', request.query],
    ['params', request.params],
  ] as const) {
    const pointer = unstorablePointer(value, `/${part}`)
    if (pointer !== undefined) {
      throw new HttpProblem('validation-failed', 'The request holds text that cannot be stored (a NUL character or a lone surrogate)', {
        extensions: { errors: [{ pointer, detail: 'must not contain NUL characters or lone surrogates' }] },
      })
    }
  }
}
