import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import fastifyStatic from '@fastify/static'
import fp from 'fastify-plugin'
import { HttpProblem } from '@tombstone/fastify'

/** Where the built admin page is. */
export const ADMIN_PAGE_DIR = resolve(import.meta.dirname, '../../web/dist')

/**
 * Serves the admin trash page (built by `npm run build:web`, which `npm start` runs when needed) at
 * `/admin/` (and `/admin`: trailing slashes are ignored). Without a build, `/admin/` says how to make one instead of failing obscurely.
 */
export const adminPagePlugin = fp(
  async (app) => {
    if (existsSync(resolve(ADMIN_PAGE_DIR, 'index.html'))) {
      // Encapsulated: its reply.sendFile does not meet the one Swagger UI brings.
      await app.register(async (scope) => {
        await scope.register(fastifyStatic, { root: ADMIN_PAGE_DIR, prefix: '/admin/', index: false, wildcard: true })
        scope.get('/admin', { schema: { hide: true } }, async (_request, reply) => reply.header('cache-control', 'no-cache').sendFile('index.html'))
      })
    } else {
      app.get('/admin', { schema: { hide: true } }, async () => {
        throw new HttpProblem('internal', 'The admin page is not built: run npm run build:web (npm start does it)', { status: 503 })
      })
    }
  },
  { name: 'admin-page', fastify: '5.x' },
)
