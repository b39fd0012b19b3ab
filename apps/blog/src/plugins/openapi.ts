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
        components: {
          securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'A token from POST /auth/token' } },
        },
        security: [],
      },
      refResolver: { buildLocalReference: (json, _baseUri, _fragment, index) => (typeof json.$id === 'string' ? json.$id : `def-${index}`) },
    })
    await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true })
    app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  },
  { name: 'openapi', fastify: '5.x' },
)
