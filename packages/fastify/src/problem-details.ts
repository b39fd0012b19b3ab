import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import FindMyWay from 'find-my-way'
import { Type } from 'typebox'
import { classifyDatabaseError, isTombstoneError, type AnyTombstoneError } from '@tombstone/kysely'
import { problemResponses } from './http.ts'
import { HttpProblem, PROBLEM_TYPES, ProblemSchema, type Problem, type ProblemSlug } from './problems.ts'

/** Options of {@link problemDetails}. */
export interface ProblemDetailsOptions {
  /**
   * The base of problem `type` URIs (`https://api.example.com`). Defaults to none: `type` is the
   * relative reference `/problems/<slug>`, which RFC 9457 allows and which resolves against the
   * request's URI on this server. Never taken from the request's `Host`, which a client controls.
   */
  readonly typeBase?: string
  /**
   * Serve `GET /problems/<slug>` descriptions. Defaults to `true`. Pass `false` and register
   * {@link problemTypeRoutes} yourself after `@fastify/swagger` when the OpenAPI document should
   * list that route (swagger sees only routes added after it).
   */
  readonly describeRoutes?: boolean
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const

/**
 * Maps a toolkit coded error to a problem: the one mapping from codes to statuses.
 *
 * @example
 * ```ts
 * problemFromTombstoneError(new NotDeletedError('posts', [1])) // HttpProblem 400 not-deleted
 * ```
 */
export function problemFromTombstoneError(error: AnyTombstoneError): HttpProblem {
  switch (error.code) {
    case 'NOT_FOUND':
      return new HttpProblem('not-found', error.message, { cause: error })
    case 'NOT_DELETED':
      return new HttpProblem('not-deleted', error.message, { cause: error })
    case 'CONFLICT':
      return new HttpProblem('conflict', error.message, {
        cause: error,
        extensions: {
          constraint: error.constraint ?? null,
          fields: error.columns,
          ...(error.conflictingId === undefined ? {} : { conflicting_id: keyForJson(error.conflictingId) }),
        },
      })
    case 'PARENT_DELETED':
      return new HttpProblem('parent-deleted', error.message, {
        cause: error,
        extensions: { parent_table: error.parentTable, parent_id: keyForJson(error.parentId) },
      })
    case 'REFERENCED':
      return new HttpProblem('conflict', error.message, { cause: error })
    case 'LEGAL_HOLD':
      return new HttpProblem('legal-hold', error.message, {
        cause: error,
        extensions: { table: error.table ?? null, ...(error.holdId === undefined ? {} : { hold_id: Number(error.holdId) }) },
      })
    case 'HARD_DELETE_REFUSED':
    case 'DELETE_POLICY':
    case 'AUDIT_APPEND_ONLY':
    case 'DELETION_STAMPED':
    case 'INVALID_CONFIGURATION':
      // A programming error of the service, not of the caller.
      return new HttpProblem('internal', 'Internal Server Error', { cause: error })
    case 'INVALID_ARGUMENT':
      return new HttpProblem('validation-failed', error.message, { cause: error, extensions: { errors: [] } })
    default:
      return error satisfies never
  }
}

/**
 * A row key as a problem carries it: a number when it is an integer within JavaScript's safe range
 * (drivers return integer keys as numbers, strings or bigints), else text (uuid and text keys).
 */
function keyForJson(key: string | number | bigint): string | number {
  if (typeof key === 'number') return key
  if (typeof key === 'bigint') return Number.isSafeInteger(Number(key)) ? Number(key) : key.toString()
  return /^-?[1-9][0-9]{0,15}$/.test(key) && Number.isSafeInteger(Number(key)) ? Number(key) : key
}

interface AjvError {
  instancePath?: string
  message?: string
  keyword?: string
  params?: Record<string, unknown>
}

const CONTEXTS: Record<string, string> = { body: 'body', querystring: 'query', params: 'params', headers: 'headers' }

function validationErrors(error: FastifyError): { pointer: string; detail: string }[] {
  const context = CONTEXTS[(error as { validationContext?: string }).validationContext ?? 'body'] ?? 'body'
  return ((error.validation ?? []) as AjvError[]).map((item) => {
    let path = item.instancePath ?? ''
    const params = item.params ?? {}
    if (item.keyword === 'required' && typeof params.missingProperty === 'string') path += `/${params.missingProperty}`
    if (item.keyword === 'additionalProperties' && typeof params.additionalProperty === 'string') {
      path += `/${params.additionalProperty}`
      return { pointer: `/${context}${path}`, detail: 'is not a known field' }
    }
    return { pointer: `/${context}${path}`, detail: item.message ?? 'is invalid' }
  })
}

/** The problem for any error that reached the handler. @internal */
export function toProblem(error: unknown): HttpProblem {
  if (error instanceof HttpProblem) return error
  if (isTombstoneError(error)) return problemFromTombstoneError(error)
  // A refusal by the toolkit's database objects (guard, parent check, stamps) that reached here raw.
  const classified = classifyDatabaseError(error)
  if (isTombstoneError(classified)) return problemFromTombstoneError(classified)
  const fastifyError = error as FastifyError
  if (Array.isArray(fastifyError.validation)) {
    return new HttpProblem('validation-failed', 'The request is not valid', {
      extensions: { errors: validationErrors(fastifyError) },
      cause: error,
    })
  }
  const status = fastifyError.statusCode
  if (typeof status === 'number' && status >= 400 && status < 500) {
    switch (status) {
      case 400:
        return new HttpProblem('validation-failed', fastifyError.message, {
          status,
          extensions: { errors: [{ pointer: '/body', detail: fastifyError.message }] },
          cause: error,
        })
      case 413:
        return new HttpProblem('payload-too-large', fastifyError.message, { cause: error })
      case 414:
        return new HttpProblem('uri-too-long', fastifyError.message, { cause: error })
      case 415:
        return new HttpProblem('unsupported-media-type', fastifyError.message, { cause: error })
      case 401:
        return new HttpProblem('unauthorized', fastifyError.message, { cause: error, headers: { 'www-authenticate': 'Bearer realm="api"' } })
      case 403:
        return new HttpProblem('forbidden', fastifyError.message, { cause: error })
      case 404:
        return new HttpProblem('not-found', fastifyError.message, { cause: error })
      case 409:
        return new HttpProblem('conflict', fastifyError.message, { cause: error })
      case 412:
        return new HttpProblem('precondition-failed', fastifyError.message, { cause: error })
      case 429:
        return new HttpProblem('too-many-requests', fastifyError.message, { cause: error })
      default:
        return new HttpProblem('validation-failed', fastifyError.message, { status, cause: error })
    }
  }
  if (isUnavailable(error)) {
    return new HttpProblem('service-unavailable', 'The database is not available right now; nothing was changed, retry shortly', {
      cause: error,
      headers: { 'retry-after': '1' },
    })
  }
  return new HttpProblem('internal', 'An internal error occurred; it has been logged.', { cause: error })
}

/** Socket errors of a database that is away (Node's `code`). */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND'])

/**
 * Whether a database error means "not now" rather than "never": the server unreachable, shutting
 * down or restarting (SQLSTATE class 08, 57P01–57P03), out of connections (53300), a statement or
 * lock wait past its timeout (57014, 55P03), or a transaction that lost a deadlock or serialization
 * conflict (40P01, 40001) and was rolled back; on SQLite (node:sqlite), the database held by another
 * writer past the busy timeout (`SQLITE_BUSY` 5, `SQLITE_LOCKED` 6, and their extended codes).
 * Classified by codes, never by message text.
 */
function isUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  if (typeof code !== 'string') return false
  if (code === 'ERR_SQLITE_ERROR') return [5, 6].includes(Number((error as { errcode?: unknown }).errcode) & 0xff)
  return UNREACHABLE.has(code) || code.startsWith('08') || ['57P01', '57P02', '57P03', '53300', '40P01', '40001', '57014', '55P03'].includes(code)
}

function typeUri(options: ProblemDetailsOptions, slug: ProblemSlug): string {
  return `${(options.typeBase ?? '').replace(/\/$/, '')}/problems/${slug}`
}

/** Sends a problem as `application/problem+json`. */
export function sendProblem(
  reply: FastifyReply,
  problem: HttpProblem,
  options: ProblemDetailsOptions = {},
): FastifyReply {
  const request = reply.request
  const body: Problem = {
    type: typeUri(options, problem.slug),
    title: PROBLEM_TYPES[problem.slug].title,
    status: problem.status,
    detail: problem.detail,
    instance: request.url.split('?')[0] ?? request.url,
    ...problem.extensions,
  }
  for (const [name, value] of Object.entries(problem.headers)) reply.header(name, value)
  return reply.code(problem.status).type('application/problem+json; charset=utf-8').send(body)
}

/**
 * Makes every error of the app an RFC 9457 problem (`application/problem+json`): validation (422
 * with `errors[]`), malformed JSON (400), unknown routes (404), wrong methods (405 with `Allow`),
 * 401 with `WWW-Authenticate`, the toolkit's coded errors, and 5xx with internals hidden and
 * logged. Registers the shared `Problem` schema and `GET /problems/<slug>`. Register it first.
 *
 * @example
 * ```ts
 * await app.register(problemDetails)
 * app.get('/things/:id', { schema: { response: problemResponses(404) } }, async () => {
 *   throw new HttpProblem('not-found', 'No such thing')
 * })
 * ```
 */
export const problemDetails = fp<ProblemDetailsOptions>(
  async (app: FastifyInstance, options: ProblemDetailsOptions) => {
    const known = FindMyWay()
    app.addSchema(ProblemSchema)

    app.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method]
      for (const method of methods) {
        try {
          known.on(method as 'GET', route.url, () => undefined)
        } catch {
          // Registered twice (HEAD for GET): already known.
        }
      }
    })

    app.setErrorHandler((error, request, reply) => {
      const problem = toProblem(error)
      if (problem.status >= 500) request.log.error({ err: error }, 'request failed')
      else request.log.info({ status: problem.status, slug: problem.slug, detail: problem.detail }, 'request refused')
      return sendProblem(reply, problem, options)
    })

    app.setNotFoundHandler((request, reply) => {
      const path = request.url.split('?')[0] ?? '/'
      const bare = path.length > 1 ? path.replace(/\/+$/, '') : path
      const allowed = METHODS.filter((method) => known.find(method, path) !== null || known.find(method, bare) !== null)
      if (allowed.length > 0) {
        reply.header('allow', allowed.join(', '))
        return sendProblem(reply, new HttpProblem('method-not-allowed', `${request.method} is not allowed on ${path}`), options)
      }
      return sendProblem(reply, new HttpProblem('not-found', `No route ${request.method} ${path}`), options)
    })

    if (options.describeRoutes !== false) await app.register(problemTypeRoutes, options)
  },
  { name: '@tombstone/fastify/problem-details', fastify: '5.x' },
)

/** A problem type's slug, not a name off `Object.prototype`. */
function isSlug(value: string): value is ProblemSlug {
  return Object.hasOwn(PROBLEM_TYPES, value)
}

/**
 * `GET /problems/<slug>`: a description of each problem type, what a problem's `type` URI points at.
 * {@link problemDetails} registers it unless `describeRoutes: false`; register it on its own after
 * `@fastify/swagger` for the OpenAPI document to list it.
 *
 * @example
 * ```ts
 * await app.register(problemDetails, { describeRoutes: false })
 * await app.register(swagger, { openapi: { openapi: '3.1.0', info: { title: 'API', version: '1' } } })
 * await app.register(problemTypeRoutes)
 * ```
 */
export const problemTypeRoutes = fp<ProblemDetailsOptions>(
  async (instance: FastifyInstance, options: ProblemDetailsOptions) => {
    const app = instance.withTypeProvider<TypeBoxTypeProvider>()
    app.get(
      '/problems/:slug',
      {
        schema: {
          tags: ['problems'],
          operationId: 'describeProblemType',
          summary: 'Describe a problem type',
          description: "What an error response's `type` URI (`/problems/<slug>`) means: its title, status and when it is sent. Public.",
          params: Type.Object({
            slug: Type.String({ maxLength: 64, description: 'The last segment of a problem `type`', examples: ['not-found'] }),
          }),
          response: {
            200: Type.Object(
              { type: Type.String(), slug: Type.String(), title: Type.String(), status: Type.Integer(), description: Type.String() },
              {
                description: 'The problem type',
                examples: [{ type: '/problems/not-found', slug: 'not-found', ...PROBLEM_TYPES['not-found'] }],
              },
            ),
            ...problemResponses(404, 422),
          },
        },
      },
      async (request) => {
        const { slug } = request.params
        if (!isSlug(slug)) throw new HttpProblem('not-found', `No problem type "${slug}"`)
        const entry = PROBLEM_TYPES[slug]
        return { type: typeUri(options, slug), slug, title: entry.title, status: entry.status, description: entry.description }
      },
    )
  },
  { name: '@tombstone/fastify/problem-types', fastify: '5.x' },
)

/**
 * Fastify's `frameworkErrors` option: errors Fastify raises before a route runs (a URL that does not
 * decode, a path parameter past `maxParamLength`) answered as problems, like every other error.
 *
 * @example
 * ```ts
 * const app = Fastify({ frameworkErrors: problemFrameworkErrors() })
 * ```
 */
export function problemFrameworkErrors(options: ProblemDetailsOptions = {}) {
  return (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void => {
    const problem =
      error.code === 'FST_ERR_MAX_PARAM_LENGTH'
        ? new HttpProblem('uri-too-long', 'A path segment is too long', { cause: error })
        : new HttpProblem('validation-failed', 'The URL is not valid (it does not decode as UTF-8 percent-encoding)', {
            status: 400,
            extensions: { errors: [{ pointer: '/path', detail: 'is not a valid URL' }] },
            cause: error,
          })
    void sendProblem(reply, problem, options)
  }
}

/**
 * Fastify's `clientErrorHandler` option: what Node's HTTP parser refuses before Fastify sees a
 * request (headers past the size limit: 431; a request it cannot parse: 400) answered as a problem
 * on the raw socket, then the connection closed.
 *
 * @example
 * ```ts
 * const app = Fastify({ clientErrorHandler: problemClientErrors() })
 * ```
 */
export function problemClientErrors(options: ProblemDetailsOptions = {}) {
  return (error: Error & { code?: string }, socket: { writable: boolean; end(data: string): void; destroy(): void }): void => {
    if (!socket.writable) {
      socket.destroy()
      return
    }
    const headers = error.code === 'HPE_HEADER_OVERFLOW'
    const slug: ProblemSlug = headers ? 'headers-too-large' : 'validation-failed'
    const status = headers ? 431 : 400
    const body = JSON.stringify({
      type: typeUri(options, slug),
      title: PROBLEM_TYPES[slug].title,
      status,
      detail: headers ? 'The request headers are too large' : 'The request could not be parsed as HTTP',
      instance: '/',
      ...(headers ? {} : { errors: [{ pointer: '', detail: 'is not a valid HTTP request' }] }),
    })
    socket.end(
      `HTTP/1.1 ${status} ${headers ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n` +
        `Content-Type: application/problem+json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    )
  }
}
