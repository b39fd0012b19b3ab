/**
 * Scenario 5: the reference service over HTTP (autocannon) against a minimal hand-written Fastify +
 * `pg` server running the same queries, in the same run: GET /posts/{id}, GET /posts?author_id=,
 * and a delete + restore cycle.
 */
import { createHash, randomBytes } from 'node:crypto'
import autocannon from 'autocannon'
import Fastify, { type FastifyInstance } from 'fastify'
import { sql } from 'kysely'
import type pg from 'pg'
import { buildApp } from '../../../apps/blog/src/app.ts'
import { loadConfig } from '../../../apps/blog/src/config.ts'
import type { Server } from '../postgres.ts'
import type { ScenarioResult } from '../report.ts'
import { blogDatabase } from '../setup.ts'
import { measurement, median } from '../stats.ts'

const POST_COLUMNS = 'id, title, slug, content, published, author_id, created_at, updated_at'

/** The baseline: what a careful hand-written server does for the same three operations. */
function handWritten(pool: pg.Pool): FastifyInstance {
  const app = Fastify({ logger: false })
  const tokenHash = (header: string | undefined) =>
    header?.startsWith('Bearer ') ? createHash('sha256').update(header.slice(7)).digest('base64url') : undefined
  async function admin(client: pg.Pool | pg.PoolClient, header: string | undefined): Promise<number | undefined> {
    const hash = tokenHash(header)
    if (hash === undefined) return undefined
    const { rows } = await client.query<{ id: number; role: string }>(
      `select u.id, u.role from tokens t join users u on u.id = t.user_id
       where t.token_hash = $1 and t.revoked_at is null and t.expires_at > now() and u.deleted_at is null`,
      [hash],
    )
    return rows[0]?.role === 'admin' ? rows[0].id : undefined
  }
  app.get('/posts/:id', async (request, reply) => {
    const id = Number((request.params as { id: string }).id)
    if (!Number.isSafeInteger(id) || id < 1) return reply.code(422).send({ status: 422 })
    const { rows } = await pool.query(`select ${POST_COLUMNS} from posts where id = $1 and deleted_at is null`, [id])
    if (rows.length === 0) return reply.code(404).send({ status: 404 })
    return rows[0]
  })
  app.get('/posts', async (request) => {
    const author = Number((request.query as { author_id?: string }).author_id)
    const { rows } = await pool.query(
      `select ${POST_COLUMNS} from posts where author_id = $1 and published and deleted_at is null order by created_at desc, id desc limit 21`,
      [author],
    )
    return { items: rows.slice(0, 20), next_cursor: null }
  })
  app.delete('/posts/:id', async (request, reply) => {
    const id = Number((request.params as { id: string }).id)
    const client = await pool.connect()
    try {
      await client.query('begin')
      const by = await admin(client, request.headers.authorization)
      if (by === undefined) {
        await client.query('rollback')
        return reply.code(401).send({ status: 401 })
      }
      const deletion = crypto.randomUUID()
      const posts = await client.query<{ id: number }>(
        `update posts set deleted_at = now(), deleted_by = $2, deletion_id = $3, purge_at = now() + interval '30 days' where id = $1 and deleted_at is null returning id`,
        [id, String(by), deletion],
      )
      const comments = await client.query<{ id: number }>(
        `update comments set deleted_at = now(), deleted_by = $2, deletion_id = $3, purge_at = now() + interval '30 days' where post_id = any($1) and deleted_at is null returning id`,
        [posts.rows.map((row) => row.id), String(by), deletion],
      )
      for (const [entity, rows] of [['posts', posts.rows], ['comments', comments.rows]] as const) {
        if (rows.length > 0) {
          await client.query(
            `insert into tombstone_audit (action, entity, entity_id, actor, deletion_id) select 'soft_delete', $1, k, $2, $3 from unnest($4::text[]) k`,
            [entity, String(by), deletion, rows.map((row) => String(row.id))],
          )
        }
      }
      await client.query('commit')
      return reply.code(204).send()
    } catch (error) {
      await client.query('rollback')
      throw error
    } finally {
      client.release()
    }
  })
  app.post('/posts/:id/restore', async (request, reply) => {
    const id = Number((request.params as { id: string }).id)
    const client = await pool.connect()
    try {
      await client.query('begin')
      const by = await admin(client, request.headers.authorization)
      if (by === undefined) {
        await client.query('rollback')
        return reply.code(401).send({ status: 401 })
      }
      const post = await client.query<{ deletion_id: string | null }>(`select deletion_id from posts where id = $1 and deleted_at is not null for update`, [id])
      if (post.rows.length === 0) {
        await client.query('rollback')
        return reply.code(400).send({ status: 400 })
      }
      const deletion = post.rows[0]?.deletion_id
      await client.query(`update posts set deleted_at = null, deleted_by = null, delete_reason = null, deletion_id = null, purge_at = null where id = $1`, [id])
      const comments = await client.query<{ id: number }>(
        `update comments set deleted_at = null, deleted_by = null, delete_reason = null, deletion_id = null, purge_at = null where post_id = $1 and deletion_id = $2 returning id`,
        [id, deletion],
      )
      await client.query(
        `insert into tombstone_audit (action, entity, entity_id, actor, deletion_id) select 'restore', e, k, $1, $2 from unnest($3::text[], $4::text[]) as x(e, k)`,
        [String(by), deletion, ['posts', ...comments.rows.map(() => 'comments')], [String(id), ...comments.rows.map((row) => String(row.id))]],
      )
      const { rows } = await client.query(`select ${POST_COLUMNS}, deleted_at, deleted_by, delete_reason, deletion_id, purge_at from posts where id = $1`, [id])
      await client.query('commit')
      return rows[0]
    } catch (error) {
      await client.query('rollback')
      throw error
    } finally {
      client.release()
    }
  })
  return app
}

interface Run {
  readonly requestsPerSecond: number
  readonly p99: number
  readonly errors: number
}

async function load(url: string, durationSeconds: number, options: Partial<autocannon.Options>): Promise<Run> {
  const result = await autocannon({ url, connections: 10, duration: durationSeconds, ...options })
  return {
    requestsPerSecond: result.requests.average,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
  }
}

export async function http(server: Server, options: { quick: boolean; repetitions: number }): Promise<ScenarioResult> {
  const bench = await blogDatabase(server, 'bench_http', 20)
  const posts = 10_000
  const duration = options.quick ? 2 : 5
  let blog: FastifyInstance | undefined
  let minimal: FastifyInstance | undefined
  try {
    await sql`insert into users (username, email, password_hash, role) select 'user_' || g, 'u' || g || '@x', 'x', case when g = 1 then 'admin' else 'user' end from generate_series(1, 100) g`.execute(bench.plain)
    await sql`insert into posts (author_id, title, slug, content) select 2 + g % 99, 'Post ' || g, 'post-' || g, repeat('content ', 20) from generate_series(1, ${posts}::int) g`.execute(bench.plain)
    await sql`insert into comments (post_id, author_id, body) select 1 + g % ${posts}::int, 2 + g % 99, 'comment' from generate_series(1, ${posts * 3}::int) g`.execute(bench.plain)
    await sql`update posts set deleted_at = now(), deletion_id = gen_random_uuid(), purge_at = now() + interval '30 days' where id % 10 = 0`.execute(bench.plain)
    await sql`vacuum analyze`.execute(bench.plain)
    const token = `tsb_${randomBytes(32).toString('base64url')}`
    await sql`insert into tokens (user_id, token_hash, expires_at) values (1, ${createHash('sha256').update(token).digest('base64url')}, now() + interval '1 day')`.execute(bench.plain)

    blog = await buildApp(loadConfig({ DATABASE_URL: bench.url, LOG_LEVEL: 'silent', PURGE_INTERVAL_MINUTES: '0', DEMO_DATA: 'off' }), false)
    const blogUrl = await blog.listen({ host: '127.0.0.1', port: 0 })
    minimal = handWritten(bench.pool)
    const minimalUrl = await minimal.listen({ host: '127.0.0.1', port: 0 })

    const activeId = (n: number) => 1 + ((n * 7919) % posts) + (((1 + ((n * 7919) % posts)) % 10 === 0) ? 1 : 0)
    let counter = 0
    const getPost: Partial<autocannon.Options> = {
      requests: [{ method: 'GET', setupRequest: (request) => ({ ...request, path: `/posts/${activeId(++counter)}` }) }],
    }
    const listByAuthor: Partial<autocannon.Options> = {
      requests: [{ method: 'GET', setupRequest: (request) => ({ ...request, path: `/posts?author_id=${2 + (++counter % 99)}` }) }],
    }
    const cycle: Partial<autocannon.Options> = {
      headers: { authorization: `Bearer ${token}` },
      requests: [
        {
          method: 'DELETE',
          setupRequest: (request, context) => {
            (context as { id?: number }).id = activeId(++counter)
            return { ...request, path: `/posts/${String((context as { id?: number }).id)}` }
          },
        },
        { method: 'POST', setupRequest: (request, context) => ({ ...request, path: `/posts/${String((context as { id?: number }).id)}/restore` }) },
      ],
    }
    const cases = [
      ['GET /posts/{id}', getPost],
      ['GET /posts?author_id=', listByAuthor],
      ['DELETE + restore cycle', cycle],
    ] as const
    const results: Record<string, { blog: Run[]; minimal: Run[] }> = {}
    for (const [name, load_] of cases) {
      results[name] = { blog: [], minimal: [] }
      // Warm-up of both, untimed.
      await load(blogUrl, 1, load_)
      await load(minimalUrl, 1, load_)
      for (let round = 0; round < options.repetitions; round++) {
        const order = round % 2 === 0 ? (['blog', 'minimal'] as const) : (['minimal', 'blog'] as const)
        for (const which of order) results[name]?.[which].push(await load(which === 'blog' ? blogUrl : minimalUrl, duration, load_))
      }
    }
    const measurements = cases.flatMap(([name]) => {
      const entry = results[name] as { blog: Run[]; minimal: Run[] }
      return [
        measurement(`${name}: service (toolkit)`, entry.blog.map((run) => run.requestsPerSecond), 'req/s'),
        measurement(`${name}: hand-written Fastify + pg`, entry.minimal.map((run) => run.requestsPerSecond), 'req/s'),
        measurement(`${name}: service p99`, entry.blog.map((run) => run.p99), 'ms'),
        measurement(`${name}: hand-written p99`, entry.minimal.map((run) => run.p99), 'ms'),
      ]
    })
    const ratios = cases.map(([name]) => {
      const entry = results[name] as { blog: Run[]; minimal: Run[] }
      return { name: `${name}: service / hand-written req/s`, value: median(entry.blog.map((r) => r.requestsPerSecond)) / median(entry.minimal.map((r) => r.requestsPerSecond)), baseline: 'hand-written Fastify + pg' }
    })
    const errors = cases.map(([name]) => {
      const entry = results[name] as { blog: Run[]; minimal: Run[] }
      return `${name}: non-2xx or errors, service ${entry.blog.reduce((s, r) => s + r.errors, 0)}, hand-written ${entry.minimal.reduce((s, r) => s + r.errors, 0)}`
    })
    return {
      scenario: 'http',
      description: 'the reference service against a minimal hand-written Fastify + pg server doing the same queries (autocannon, 10 connections)',
      sizes: { posts, comments: posts * 3, duration_seconds: duration, connections: 10 },
      measurements,
      ratios,
      targets: ratios.map((ratio) => ({ description: `${ratio.name} at least 0.8x (${ratio.value.toFixed(3)}x)`, met: ratio.value >= 0.8 })),
      notes: [
        ...errors,
        'the hand-written server skips what the service does besides the queries: request validation (Ajv), response schemas, problem+json, ETags, and the authorization rules',
        'autocannon runs in the same process as both servers, on the same 2 cores',
      ],
    }
  } finally {
    await blog?.close()
    await minimal?.close()
    await bench.close()
  }
}
