import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'

/**
 * The OpenAPI 3.1 document, generated from the routes' schemas, at `/openapi.json`, and Swagger UI
 * at `/docs`. Register before the routes.
 */
export const openapiPlugin = fp(
  async (app) => {
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'Tombstone reference blog',
          version: '0.1.0',
          description:
            'Users, posts and comments where deletion is soft by default, recoverable by an admin, and permanent only on purpose. Errors are RFC 9457 problem details.',
        },
        tags: [
          { name: 'service', description: 'Liveness and readiness' },
          { name: 'auth', description: 'Bearer tokens' },
          { name: 'users', description: 'Accounts; deleting one takes its posts and comments with it' },
          { name: 'posts', description: 'Posts; deleting one takes its comments with it' },
          { name: 'comments', description: 'Comments on posts' },
          { name: 'admin', description: 'Purge, the audit trail and the trash (admin)' },
          { name: 'problems', description: 'What each problem `type` of an error response means' },
        ],
        components: {
          securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'A token from POST /auth/token' } },
        },
        // Public unless an operation says otherwise: every operation that reads a token declares
        // bearer (optional ones as [{}, { bearer: [] }]), so that "Try it out" sends it.
        security: [],
      },
      refResolver: { buildLocalReference: (json, _baseUri, _fragment, index) => (typeof json.$id === 'string' ? json.$id : `def-${index}`) },
    })
    await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true })
    app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  },
  { name: 'openapi', fastify: '5.x' },
)
