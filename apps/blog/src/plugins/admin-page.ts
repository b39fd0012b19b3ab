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
/** The admin page's Content-Security-Policy: its own scripts, styles and API only; never framed. */
const ADMIN_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ')

/**
 * The headers a browser page of this service carries (/admin, /docs): no MIME sniffing, never
 * framed (clickjacking), no referrer leaking paths elsewhere, and a Content-Security-Policy (Swagger
 * UI brings its own, with hashes of its inline parts: kept when present).
 */
export function pageSecurityHeaders(url: string, headers: { has(name: string): boolean; set(name: string, value: string): void }): void {
  if (!/^\/(admin|docs)(\/|$|\?)/.test(url)) return
  headers.set('x-content-type-options', 'nosniff')
  headers.set('x-frame-options', 'DENY')
  headers.set('referrer-policy', 'no-referrer')
  if (!headers.has('content-security-policy')) {
    headers.set('content-security-policy', url.startsWith('/admin') ? ADMIN_CSP : "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
  }
}

export const adminPagePlugin = fp(
  async (app) => {
    app.addHook('onSend', async (request, reply, payload) => {
      pageSecurityHeaders(request.url, { has: (name) => reply.hasHeader(name), set: (name, value) => void reply.header(name, value) })
      return payload
    })
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
