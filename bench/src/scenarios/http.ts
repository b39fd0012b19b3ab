/**
 * Scenario 5: the reference service over HTTP (autocannon) against a minimal hand-written Fastify +
 * `pg` server running the same queries, in the same run: GET /posts/{id}, GET /posts?author_id=,
 * and a delete + restore cycle.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { resolve } from 'node:path'
import autocannon from 'autocannon'
import { sql } from 'kysely'
import type { Server } from '../postgres.ts'
import type { ScenarioResult } from '../report.ts'
import { blogDatabase } from '../setup.ts'
import { measurement, median } from '../stats.ts'

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
  const duration = options.quick ? 1 : 5
  const children: ChildProcess[] = []
  const start = async (which: 'service' | 'hand-written'): Promise<string> => {
    const child = spawn(process.execPath, ['--conditions=source', resolve(import.meta.dirname, '../http-server.ts'), which, bench.url], { stdio: ['ignore', 'pipe', 'inherit'] })
    children.push(child)
    return new Promise((done, fail) => {
      let output = ''
      child.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString()
        const match = /listening (\S+)/.exec(output)
        if (match?.[1] !== undefined) done(match[1])
      })
      child.once('exit', (code) => fail(new Error(`${which} server exited with ${code}`)))
    })
  }
  try {
    await sql`insert into users (username, email, password_hash, role) select 'user_' || g, 'u' || g || '@x', 'x', case when g = 1 then 'admin' else 'user' end from generate_series(1, 100) g`.execute(bench.plain)
    await sql`insert into posts (author_id, title, slug, content) select 2 + g % 99, 'Post ' || g, 'post-' || g, repeat('content ', 20) from generate_series(1, ${posts}::int) g`.execute(bench.plain)
    await sql`insert into comments (post_id, author_id, body) select 1 + g % ${posts}::int, 2 + g % 99, 'comment' from generate_series(1, ${posts * 3}::int) g`.execute(bench.plain)
    await sql`update posts set deleted_at = now(), deletion_id = gen_random_uuid(), purge_at = now() + interval '30 days' where id % 10 = 0`.execute(bench.plain)
    await sql`vacuum analyze`.execute(bench.plain)
    const token = `tsb_${randomBytes(32).toString('base64url')}`
    await sql`insert into tokens (user_id, token_hash, expires_at) values (1, ${createHash('sha256').update(token).digest('base64url')}, now() + interval '1 day')`.execute(bench.plain)

    const blogUrl = await start('service')
    const minimalUrl = await start('hand-written')

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
        'each server runs in its own process, one at a time under load; autocannon runs in the bench process, on the same 2 cores',
      ],
    }
  } finally {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((done) => {
            if (child.exitCode !== null) return done()
            child.removeAllListeners('exit')
            child.once('exit', () => done())
            child.kill('SIGTERM')
          }),
      ),
    )
    await bench.close()
  }
}
