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
  /** Non-2xx answers by status code. */
  readonly statuses: Readonly<Record<string, number>>
}

async function load(url: string, durationSeconds: number, options: Partial<autocannon.Options>): Promise<Run> {
  const result = await autocannon({ url, connections: 10, duration: durationSeconds, ...options })
  return {
    requestsPerSecond: result.requests.average,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
    statuses: Object.fromEntries(
      Object.entries(result.statusCodeStats as Record<string, { count: number }>)
        .filter(([code]) => !code.startsWith('2'))
        .map(([code, { count }]) => [code, count]),
    ),
  }
}

export async function http(server: Server, options: { quick: boolean; repetitions: number }): Promise<ScenarioResult> {
  const bench = await blogDatabase(server, 'bench_http', 20)
  const posts = 10_000
  const duration = options.quick ? 1 : 5
  const children: ChildProcess[] = []
  const start = async (which: 'service' | 'service-prepared' | 'hand-written'): Promise<string> => {
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
    // Every tenth post deleted with its comments (the database refuses a deleted post that keeps active ones).
    await bench.plain.transaction().execute(async (trx) => {
      await sql`update posts set deleted_at = now(), deletion_id = gen_random_uuid(), purge_at = now() + interval '30 days' where id % 10 = 0`.execute(trx)
      await sql`update comments c set deleted_at = now(), deletion_id = p.deletion_id from posts p where p.id = c.post_id and p.id % 10 = 0`.execute(trx)
    })
    await sql`vacuum analyze`.execute(bench.plain)
    const token = `tsb_${randomBytes(32).toString('base64url')}`
    await sql`insert into tokens (user_id, token_hash, expires_at) values (1, ${createHash('sha256').update(token).digest('base64url')}, now() + interval '1 day')`.execute(bench.plain)

    const urls = { blog: await start('service'), prepared: await start('service-prepared'), minimal: await start('hand-written') }

    // An active post (every tenth is deleted): the one before a deleted one, never past the last.
    const activeId = (n: number) => {
      const id = 1 + ((n * 7919) % posts)
      return id % 10 === 0 ? id - 1 : id
    }
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
    // A run that ends between a cycle's DELETE and its restore leaves that post deleted (one per
    // connection at most), and a later run's cycle on it would answer 404: put them back, untimed.
    // A request still in flight when the run ends may hold those rows: a deadlock is retried.
    const putBack = async (): Promise<void> => {
      for (let attempt = 1; ; attempt++) {
        try {
          await sql`with cut as (select id, deletion_id from posts where id % 10 <> 0 and deleted_at is not null),
            posts_back as (update posts set deleted_at = null where id in (select id from cut))
            update comments set deleted_at = null where (post_id, deletion_id) in (select id, deletion_id from cut)`.execute(bench.plain)
          return
        } catch (error) {
          if ((error as { code?: string }).code !== '40P01' || attempt >= 5) throw error
        }
      }
    }
    const cases = [
      ['GET /posts/{id}', getPost, async () => {}],
      ['GET /posts?author_id=', listByAuthor, async () => {}],
      ['DELETE + restore cycle', cycle, putBack],
    ] as const
    type Which = 'blog' | 'prepared' | 'minimal'
    const servers: readonly Which[] = ['blog', 'prepared', 'minimal']
    const results: Record<string, Record<Which, Run[]>> = {}
    for (const [name, load_, after] of cases) {
      const entry: Record<Which, Run[]> = { blog: [], prepared: [], minimal: [] }
      results[name] = entry
      // Warm-up of each, untimed.
      for (const which of servers) {
        await load(urls[which], 1, load_)
        await after()
      }
      for (let round = 0; round < options.repetitions; round++) {
        // Rotating order, so that drift hits every server alike.
        for (let i = 0; i < servers.length; i++) {
          const which = servers[(round + i) % servers.length] as Which
          entry[which].push(await load(urls[which], duration, load_))
          await after()
        }
      }
    }
    const label: Record<Which, string> = {
      blog: 'service (toolkit)',
      prepared: 'service, DB_PREPARED_STATEMENTS=on',
      minimal: 'hand-written Fastify + pg',
    }
    const measurements = cases.flatMap(([name]) => {
      const entry = results[name] as Record<Which, Run[]>
      return servers.flatMap((which) => [
        measurement(`${name}: ${label[which]}`, entry[which].map((run) => run.requestsPerSecond), 'req/s'),
        measurement(`${name}: ${label[which]} p99`, entry[which].map((run) => run.p99), 'ms'),
      ])
    })
    // The issue's targets: GET and list at least 0.9x, delete + restore at least 0.8x.
    const floor = (name: string) => (name.startsWith('DELETE') ? 0.8 : 0.9)
    const ratios = cases.flatMap(([name]) => {
      const entry = results[name] as Record<Which, Run[]>
      const baseline = median(entry.minimal.map((r) => r.requestsPerSecond))
      return (['blog', 'prepared'] as const).map((which) => ({
        name: `${name}: ${label[which]} / hand-written req/s`,
        value: median(entry[which].map((r) => r.requestsPerSecond)) / baseline,
        baseline: 'hand-written Fastify + pg',
        floor: floor(name),
      }))
    })
    const errors = cases.map(([name]) => {
      const entry = results[name] as Record<Which, Run[]>
      const tally = (runs: readonly Run[]) => {
        const codes: Record<string, number> = {}
        for (const run of runs) for (const [code, count] of Object.entries(run.statuses)) codes[code] = (codes[code] ?? 0) + count
        const text = Object.entries(codes).map(([code, count]) => `${count} × ${code}`).join(', ')
        return `${runs.reduce((s, r) => s + r.errors, 0)}${text === '' ? '' : ` (${text})`}`
      }
      return `${name}: non-2xx or errors, ${servers.map((which) => `${label[which]} ${tally(entry[which])}`).join(', ')}`
    })
    return {
      scenario: 'http',
      description: 'the reference service against a minimal hand-written Fastify + pg server doing the same queries (autocannon, 10 connections)',
      sizes: { posts, comments: posts * 3, duration_seconds: duration, connections: 10 },
      measurements,
      ratios: ratios.map(({ floor: _, ...ratio }) => ratio),
      targets: ratios.map((ratio) => ({ description: `${ratio.name} at least ${ratio.floor}x (${ratio.value.toFixed(3)}x)`, met: ratio.value >= ratio.floor })),
      notes: [
        ...errors,
        'the hand-written server skips what the service does besides the queries: request validation (Ajv), response schemas, problem+json, ETags, and the authorization rules',
        'each server runs in its own process, one at a time under load, in rotating order; autocannon runs in the bench process, on the same 2 cores',
        'DB_PREPARED_STATEMENTS=on: named server-side prepared statements (parsed and planned once per connection); the hand-written server uses unnamed ones, as the service does by default',
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
