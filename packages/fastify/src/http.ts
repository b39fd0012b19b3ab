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
  id: Type.Integer({ minimum: 1, maximum: 2_147_483_647, description: 'A positive integer id', examples: [42] }),
})

/** Reusable reference to the shared problem schema, for response maps. */
export const ProblemRef = Type.Ref('Problem')

/** What each error status means in this integration's answers: the OpenAPI response descriptions. */
const PROBLEM_STATUS_DESCRIPTIONS: Readonly<Record<number, string>> = {
  400: 'The body does not parse (`validation-failed`), or a restore targets a row that is not deleted (`not-deleted`)',
  401: 'No valid bearer token (`unauthorized`); the response carries `WWW-Authenticate: Bearer`',
  403: 'The caller is authenticated but may not do this (`forbidden`)',
  404: 'No such resource, or it is deleted and the caller may not see it (`not-found`)',
  405: 'The path exists but not with this method (`method-not-allowed`); see `Allow`',
  409: 'An active row already holds a unique value (`conflict`), or a parent is deleted (`parent-deleted`)',
  412: '`If-Match` does not match the current ETag (`precondition-failed`)',
  413: 'The body is too large (`payload-too-large`)',
  414: 'The URI or a path segment is too long (`uri-too-long`)',
  415: 'The body is not `application/json` (`unsupported-media-type`)',
  422: 'The request is well-formed but invalid (`validation-failed`); `errors[]` points at each field',
  429: 'Too many attempts (`too-many-requests`); retry after `Retry-After` seconds',
  431: 'The request headers are too large (`headers-too-large`)',
  500: 'The server failed (`internal`); nothing about it is disclosed',
  503: 'The database is not available right now (`service-unavailable`); nothing was changed, retry after `Retry-After` seconds',
}

/** One error response: the shared problem schema as `application/problem+json`, with a description. */
export interface ProblemResponse {
  readonly description: string
  readonly content: { readonly 'application/problem+json': { readonly schema: typeof ProblemRef } }
}

/**
 * Response schemas for the given error statuses: each the shared `Problem` schema (registered by
 * {@link problemDetails}) as `application/problem+json`, described, so that the OpenAPI document
 * declares what the error handler sends. Fastify picks the serializer by the reply's media type.
 *
 * @example
 * ```ts
 * response: { 200: PostView, ...problemResponses(401, 403, 404, 422) }
 * ```
 */
export function problemResponses<const S extends readonly number[]>(...statuses: S): { [K in S[number]]: ProblemResponse } {
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      {
        description: PROBLEM_STATUS_DESCRIPTIONS[status] ?? 'An error, as RFC 9457 problem details',
        content: { 'application/problem+json': { schema: ProblemRef } },
      } satisfies ProblemResponse,
    ]),
  ) as never
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
