import { Type, type Static } from 'typebox'

/**
 * The problem types this integration answers with, by slug: the last segment of each problem's
 * `type` URI (`…/problems/<slug>`), each with its default status and a description served at
 * `GET /problems/<slug>`.
 */
export const PROBLEM_TYPES = {
  'not-found': { status: 404, title: 'Not Found', description: 'The resource does not exist, or is deleted and the caller may not see deleted resources.' },
  unauthorized: {
    status: 401,
    title: 'Unauthorized',
    description: 'The request needs a valid bearer token (missing, malformed, expired or revoked), or the credentials are wrong. The response carries WWW-Authenticate: Bearer.',
  },
  forbidden: { status: 403, title: 'Forbidden', description: 'The caller is authenticated but may not do this.' },
  'method-not-allowed': {
    status: 405,
    title: 'Method Not Allowed',
    description: 'The path exists but not with this method; the Allow header lists the methods it has.',
  },
  'validation-failed': {
    status: 422,
    title: 'Validation Failed',
    description:
      'The request is not acceptable as sent. 422 when it is well-formed but invalid, with `errors: [{pointer, detail}]` where `pointer` is a JSON Pointer into the request (`/body/title`, `/query/limit`, `/params/id`); 400 when the body is not parsable, 413 when it is too large, 415 when its media type is not supported.',
  },
  'not-deleted': { status: 400, title: 'Not Deleted', description: 'A restore targeted a resource that is not deleted.' },
  conflict: {
    status: 409,
    title: 'Conflict',
    description: 'The change would make two active resources collide on a unique value (a slug, a username, an email), named in the detail.',
  },
  'parent-deleted': {
    status: 409,
    title: 'Parent Deleted',
    description: 'The resource cannot be restored while the resource it belongs to (its post, its author) is deleted; restore that first.',
  },
  'legal-hold': {
    status: 409,
    title: 'Legal Hold',
    description: 'The resource (or a resource that would go with it) is under a legal hold: it cannot be removed for good until the hold is released. `hold_id` names the hold.',
  },
  'undo-window-closed': {
    status: 409,
    title: 'Undo Window Closed',
    description: 'The deletion can no longer be undone by the one who made it: the undo window has passed (or nothing of it is left to restore). An administrator can still restore it.',
  },
  'precondition-failed': {
    status: 412,
    title: 'Precondition Failed',
    description: 'If-Match did not match the current ETag of the resource: it changed since it was read.',
  },
  'too-many-requests': {
    status: 429,
    title: 'Too Many Requests',
    description: 'Too many failed attempts; retry after the number of seconds in Retry-After.',
  },
  internal: { status: 500, title: 'Internal Server Error', description: 'The server failed. Nothing about the failure is disclosed; it is logged with the request id.' },
  'payload-too-large': { status: 413, title: 'Payload Too Large', description: 'The request body is larger than the server accepts (1 MiB in the reference service).' },
  'unsupported-media-type': {
    status: 415,
    title: 'Unsupported Media Type',
    description: 'The request body is in a media type this endpoint does not read; send application/json.',
  },
  'uri-too-long': { status: 414, title: 'URI Too Long', description: 'The request URI, or one of its path segments, is longer than the server accepts.' },
  'headers-too-large': { status: 431, title: 'Request Header Fields Too Large', description: 'The request headers are larger than the server accepts.' },
  'not-implemented': {
    status: 501,
    title: 'Not Implemented',
    description: 'This deployment cannot do this: its database lacks the feature (e.g. legal holds on SQLite). Nothing was changed; retrying does not help.',
  },
  'service-unavailable': {
    status: 503,
    title: 'Service Unavailable',
    description:
      'The database is unreachable, restarting, out of connections, or the transaction lost a deadlock or serialization conflict. Nothing was changed; retry after the number of seconds in Retry-After.',
  },
} as const satisfies Record<string, { status: number; title: string; description: string }>

/** A problem type slug. */
export type ProblemSlug = keyof typeof PROBLEM_TYPES

/** One entry of a `validation-failed` problem's `errors`. */
export const ValidationErrorSchema = Type.Object({
  pointer: Type.String({ description: 'JSON Pointer into the request: /body/…, /query/…, /params/…, /headers/…' }),
  detail: Type.String(),
})

/**
 * RFC 9457 problem details, as every error response of the service carries them
 * (`Content-Type: application/problem+json`). Registered as the shared schema `Problem`.
 */
export const ProblemSchema = Type.Object(
  {
    type: Type.String({ description: 'URI ending with /problems/<slug>; GET it for a description' }),
    title: Type.String(),
    status: Type.Integer({ description: 'Equal to the HTTP status' }),
    detail: Type.String(),
    instance: Type.String({ description: 'The request path' }),
    errors: Type.Optional(Type.Array(ValidationErrorSchema)),
  },
  {
    $id: 'Problem',
    additionalProperties: true,
    description: 'RFC 9457 problem details',
    examples: [
      { type: '/problems/not-found', title: 'Not Found', status: 404, detail: 'Post 42 does not exist', instance: '/posts/42' },
      {
        type: '/problems/validation-failed',
        title: 'Validation Failed',
        status: 422,
        detail: 'The request is not valid',
        instance: '/posts/abc',
        errors: [{ pointer: '/params/id', detail: 'must be integer' }],
      },
    ],
  },
)

/** A problem details body. */
export type Problem = Static<typeof ProblemSchema>

/**
 * An HTTP problem to throw from a route; the error handler of {@link problemDetails} answers with
 * it. Extra members (`extensions`) are added to the body; `headers` to the response.
 *
 * @example
 * ```ts
 * throw new HttpProblem('forbidden', 'Only the author or an admin may edit this post')
 * throw new HttpProblem('too-many-requests', 'Too many failed logins', { headers: { 'retry-after': '60' } })
 * ```
 */
export class HttpProblem extends Error {
  readonly slug: ProblemSlug
  readonly status: number
  readonly detail: string
  readonly extensions: Readonly<Record<string, unknown>>
  readonly headers: Readonly<Record<string, string>>

  constructor(
    slug: ProblemSlug,
    detail: string,
    options: {
      status?: number
      extensions?: Record<string, unknown>
      headers?: Record<string, string>
      cause?: unknown
    } = {},
  ) {
    super(detail, { cause: options.cause })
    this.name = 'HttpProblem'
    this.slug = slug
    this.status = options.status ?? PROBLEM_TYPES[slug].status
    this.detail = detail
    this.extensions = options.extensions ?? {}
    this.headers = options.headers ?? {}
  }
}

/**
 * The 401 problem, with `WWW-Authenticate: Bearer` (and `error="invalid_token"` when a token was
 * sent but is not valid, as RFC 6750 asks).
 *
 * @example
 * ```ts
 * if (!request.actor) throw unauthorized('This endpoint needs a bearer token')
 * ```
 */
export function unauthorized(detail: string, options: { invalidToken?: boolean } = {}): HttpProblem {
  const challenge = options.invalidToken
    ? `Bearer realm="api", error="invalid_token", error_description="${detail.replaceAll('"', "'")}"`
    : 'Bearer realm="api"'
  return new HttpProblem('unauthorized', detail, { headers: { 'www-authenticate': challenge } })
}
