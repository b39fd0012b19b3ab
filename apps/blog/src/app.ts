import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import Fastify from 'fastify'
import formbody from '@fastify/formbody'
import fp from 'fastify-plugin'
import { Ajv } from 'ajv'
import addFormatsModule from 'ajv-formats'
import { HttpProblem, problemClientErrors, problemDetails, problemFrameworkErrors, problemTypeRoutes, rejectUnstorableInput } from '@tombstone/fastify'
import type { Config } from './config.ts'
import { adminPagePlugin } from './plugins/admin-page.ts'
import { authPlugin } from './plugins/auth.ts'
import { databasePlugin } from './plugins/database.ts'
import { openapiPlugin } from './plugins/openapi.ts'
import { purgeScheduler } from './plugins/purge-scheduler.ts'
import { adminRoutes } from './routes/admin.ts'
import { authRoutes } from './routes/auth.ts'
import { commentRoutes } from './routes/comments.ts'
import { deletionRoutes } from './routes/deletions.ts'
import { healthRoutes } from './routes/health.ts'
import { postRoutes } from './routes/posts.ts'
import { userRoutes } from './routes/users.ts'
import { CommentView, PostView, UserView } from './views.ts'

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv

/** Options of the {@link app} plugin. */
export interface AppOptions {
  readonly config: Config
}

/** Body limit: the largest legitimate body is a 100,000-character post. */
const BODY_LIMIT = 1024 * 1024

/**
 * Fastify's own options for this service: logger, limits, and how the request id is taken.
 * The launcher and the tests build the server with the same ones.
 */
export function serverOptions(config: Config, logger: FastifyServerOptions['logger'] = { level: config.logLevel }): FastifyServerOptions {
  return {
    logger,
    bodyLimit: BODY_LIMIT,
    requestIdHeader: 'x-request-id',
    return503OnClosing: true,
    // A hop count trusts that many proxies in front of the service (proxy-addr's function form).
    trustProxy: typeof config.trustProxy === 'number' ? ((hops: number) => (_address: string, hop: number) => hop < hops)(config.trustProxy) : config.trustProxy,
    // What fails before a route runs is a problem too: a URL that does not decode, a path segment
    // past maxParamLength (414), headers past Node's limit (431).
    frameworkErrors: problemFrameworkErrors(),
    clientErrorHandler: problemClientErrors(),
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
  }
}

/**
 * Bodies are validated as sent (no coercion: `"title": 123` is a 422; unknown fields are rejected,
 * not dropped); query strings, path and headers are text on the wire, so they are coerced.
 */
function validators() {
  const options = { allErrors: true, useDefaults: true, removeAdditional: false as const, strict: false }
  const body = addFormats(new Ajv({ ...options, coerceTypes: false }))
  const text = addFormats(new Ajv({ ...options, coerceTypes: 'array' }))
  return ({ schema, httpPart }: { schema: object; httpPart?: string }) => (httpPart === 'body' ? body : text).compile(schema)
}

/** A path id as this API writes them: no sign, no leading zero, no space, no exponent, within int4. */
const CANONICAL_ID = /^[1-9][0-9]{0,9}$/

/**
 * Refuses a path `id` that is not written the one way this API writes ids, before validation
 * coerces it: `" 1"`, `01`, `1e0` or `0x1` would otherwise all address row 1. A 422, never another row.
 */
async function canonicalIds(request: { params?: unknown }): Promise<void> {
  const id = (request.params as Record<string, unknown> | undefined)?.id
  if (typeof id !== 'string') return
  if (!CANONICAL_ID.test(id) || Number(id) > 2_147_483_647) {
    throw new HttpProblem('validation-failed', 'The id is not a positive integer written plainly (1 to 2147483647)', {
      extensions: { errors: [{ pointer: '/params/id', detail: 'must be a positive integer without sign, leading zeros or spaces' }] },
    })
  }
}

/**
 * The service, as a Fastify plugin: problem+json errors, OpenAPI, the database (migrated), auth,
 * and every route of the contract.
 */
export const app = fp<AppOptions>(
  async (fastify: FastifyInstance, { config }) => {
    fastify.setValidatorCompiler(validators())
    // GET /problems/<slug> is registered after swagger, which documents only the routes added after it.
    await fastify.register(problemDetails, { describeRoutes: false })
    fastify.addHook('preValidation', rejectUnstorableInput)
    fastify.addHook('preValidation', canonicalIds)
    await fastify.register(formbody, { bodyLimit: BODY_LIMIT })
    await fastify.register(openapiPlugin)
    await fastify.register(problemTypeRoutes)
    fastify.addSchema(UserView)
    fastify.addSchema(PostView)
    fastify.addSchema(CommentView)
    await fastify.register(databasePlugin, { config })
    await fastify.register(authPlugin)
    await fastify.register(healthRoutes)
    await fastify.register(authRoutes, { maxFailures: config.loginMaxFailures, tokenTtlSeconds: config.tokenTtlSeconds, passwordCost: config.passwordCost })
    await fastify.register(userRoutes, { passwordCost: config.passwordCost, registerMaxPerHour: config.registerMaxPerHour })
    await fastify.register(postRoutes)
    await fastify.register(commentRoutes)
    await fastify.register(adminRoutes, { retentionDays: config.retentionDays })
    await fastify.register(deletionRoutes, { undoWindowSeconds: config.undoWindowSeconds })
    await fastify.register(adminPagePlugin)
    await fastify.register(purgeScheduler, {
      intervalMinutes: config.purgeIntervalMinutes,
      targetBatchMs: config.purgeTargetBatchMs,
      dutyCycle: config.purgeDutyCycle,
    })
  },
  { name: 'tombstone-blog', fastify: '5.x' },
)

/**
 * Builds the service (not listening): what the launcher starts and the tests inject into.
 *
 * @example
 * ```ts
 * const server = await buildApp(loadConfig({ DATABASE_URL: 'memory://' }))
 * const response = await server.inject({ method: 'GET', url: '/healthz' })
 * ```
 */
export async function buildApp(config: Config, logger?: FastifyServerOptions['logger']): Promise<FastifyInstance> {
  const fastify = Fastify(serverOptions(config, logger))
  await fastify.register(app, { config })
  await fastify.ready()
  return fastify
}
