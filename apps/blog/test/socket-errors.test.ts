/**
 * What fails before a route runs, over a real socket: a path segment past the router's limit (414),
 * headers past Node's limit (431), a URL that does not decode (400), an oversized body (413), a
 * media type the API does not read (415). Each is problem+json with its own slug, and no problem's
 * `type` reflects the request's Host header (a client could make it point anywhere).
 */
import { connect } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { buildApp } from '../src/app.ts'
import { loadConfig } from '../src/config.ts'

describe('errors before a route runs, over a socket', () => {
  let app: FastifyInstance
  let port: number
  beforeAll(async () => {
    app = await buildApp(loadConfig({ DATABASE_URL: 'memory://', DEMO_DATA: 'off', LOG_LEVEL: 'silent', PURGE_INTERVAL_MINUTES: '0' }), false)
    await app.listen({ port: 0, host: '127.0.0.1' })
    port = (app.server.address() as { port: number }).port
  })
  afterAll(async () => {
    await app?.close()
  })

  /** Sends raw bytes; resolves with the status, the content type and the parsed body. */
  function raw(text: string): Promise<{ status: number; type: string; body: Record<string, unknown> }> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => socket.write(text))
      let out = ''
      socket.on('data', (chunk: Buffer) => {
        out += chunk.toString()
        const [head, body] = out.split('\r\n\r\n', 2)
        const length = Number(/content-length: (\d+)/i.exec(head ?? '')?.[1] ?? -1)
        if (body !== undefined && length >= 0 && Buffer.byteLength(body) >= length) {
          socket.destroy()
          resolve({
            status: Number(head?.split(' ')[1]),
            type: /content-type: ([^\r\n]+)/i.exec(head ?? '')?.[1] ?? '',
            body: JSON.parse(body.slice(0, length)) as Record<string, unknown>,
          })
        }
      })
      socket.on('error', reject)
    })
  }

  test.each([
    ['a path segment past the limit', `GET /posts/${'1'.repeat(300)} HTTP/1.1\r\nHost: evil.example\r\n\r\n`, 414, 'uri-too-long'],
    ['headers past the limit', `GET /posts HTTP/1.1\r\nHost: evil.example\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'headers-too-large'],
    ['a URL that does not decode', `GET /posts/%E0%A4%A HTTP/1.1\r\nHost: evil.example\r\n\r\n`, 400, 'validation-failed'],
    ['an oversized body', `POST /posts HTTP/1.1\r\nHost: evil.example\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n\r\n{}`, 413, 'payload-too-large'],
    ['an unsupported media type', `POST /posts HTTP/1.1\r\nHost: evil.example\r\nContent-Type: text/csv\r\nContent-Length: 3\r\n\r\na,b`, 415, 'unsupported-media-type'],
    ['an unknown route', `GET /nowhere HTTP/1.1\r\nHost: evil.example\r\n\r\n`, 404, 'not-found'],
  ] as const)('%s: %i %s as problem+json', async (_label, request, status, slug) => {
    const response = await raw(request)
    expect(response.status).toBe(status)
    expect(response.type).toMatch(/^application\/problem\+json/)
    expect(response.body).toMatchObject({ type: `/problems/${slug}`, status, title: expect.any(String), detail: expect.any(String) })
    expect(JSON.stringify(response.body)).not.toContain('evil.example')
  })
})
