/**
 * @tombstone/fastify: what any Fastify app needs to serve soft-deletable resources.
 *
 * - {@link problemDetails}: every error as RFC 9457 problem+json, the toolkit's coded errors mapped
 *   ({@link problemTypeRoutes}: the `GET /problems/<slug>` descriptions on their own);
 * - {@link softDeleteRoutes}: delete / restore / permanent delete / trash / bulk routes for a table;
 * - small HTTP helpers: ETags and `If-Match`, opaque cursors, list and id schemas.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify'
 * import { problemDetails, softDeleteRoutes } from '@tombstone/fastify'
 *
 * const app = Fastify()
 * await app.register(problemDetails)
 * app.decorate('db', db) // a Kysely instance with the SoftDeletePlugin
 * softDeleteRoutes(app, { table: 'posts', prefix: '/posts', actor: (request) => request.actor })
 * ```
 *
 * @module \@tombstone/fastify
 */
export {
  PROBLEM_TYPES,
  ProblemSchema,
  ValidationErrorSchema,
  HttpProblem,
  unauthorized,
  type Problem,
  type ProblemSlug,
} from './problems.ts'
export {
  problemDetails,
  problemTypeRoutes,
  problemFromTombstoneError,
  problemFrameworkErrors,
  problemClientErrors,
  sendProblem,
  type ProblemDetailsOptions,
} from './problem-details.ts'
export {
  etagOf,
  checkIfMatch,
  encodeCursor,
  decodeCursor,
  hasUnstorableText,
  rejectUnstorableInput,
  ListSchema,
  PageQuery,
  IdParams,
  ProblemRef,
  problemResponses,
  type ProblemResponse,
} from './http.ts'
export {
  softDeleteRoutes,
  requireActor,
  requireAdmin,
  rowHashEtag,
  type SoftDeleteActor,
  type SoftDeleteKey,
  type SoftDeleteKeyValue,
  type SoftDeleteRouteSet,
  type SoftDeleteRoutesOptions,
} from './soft-delete-routes.ts'
