import fp from 'fastify-plugin'
import { unauthorized } from '@tombstone/fastify'
import { verifyToken, type Actor } from '../services/tokens.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller, or undefined for an anonymous request. */
    actor: Actor | undefined
  }
}

/**
 * Reads `Authorization: Bearer <token>` on every request. No header: anonymous. A header that is
 * malformed, or a token that is unknown, expired, revoked or whose user is deleted: `401` with
 * `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750), on any endpoint: a client that sent
 * credentials is told they are bad rather than silently served as anonymous.
 */
export const authPlugin = fp(
  async (app) => {
    app.decorateRequest('actor', undefined)
    app.addHook('onRequest', async (request) => {
      const header = request.headers.authorization
      if (header === undefined) return
      const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(header.trim())
      if (match === null) throw unauthorized('The Authorization header is not a bearer token', { invalidToken: true })
      const actor = await verifyToken(app.db, match[1] as string)
      if (actor === undefined) throw unauthorized('The token is invalid, expired or revoked', { invalidToken: true })
      request.actor = actor
    })
  },
  { name: 'auth', dependencies: ['database'], fastify: '5.x' },
)
