/**
 * The scale-out topology, for real (docs/scaling.md): a PostgreSQL primary, its streaming replica
 * (pg_basebackup -R), PgBouncer in transaction pooling in front of the primary, two service
 * instances (real processes, the application role, MIGRATE_ON_START=off) behind nginx; migrations
 * run once beforehand by the CLI as the schema's owner. Checks read-your-writes with replay paused
 * on the replica, then a bounded mixed load with the periodic purge running on both instances.
 *
 * Runs when TOPOLOGY_TEST=1 (.ci/run sets it); needs Debian's postgresql, pgbouncer and nginx.
 * TOPOLOGY_PORT_BASE picks six consecutive ports (default: the first free run from 56100).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { parseLsn } from '../src/db/read-routing.ts'

const enabled = process.env.TOPOLOGY_TEST === '1'
const root = resolve(import.meta.dirname, '../../..')
const script = resolve(import.meta.dirname, 'topology/servers.sh')
const ADMIN_PASSWORD = 'admin-password-topology'

/** Load: workers, each running this many rounds of create, read, delete, read back, maybe restore. */
const WORKERS = 6
const ROUNDS = 12

function free(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer()
    server.once('error', () => done(false))
    server.listen(port, '127.0.0.1', () => server.close(() => done(true)))
  })
}

async function portBase(): Promise<number> {
  if (process.env.TOPOLOGY_PORT_BASE !== undefined) return Number(process.env.TOPOLOGY_PORT_BASE)
  for (let base = 56100; base < 56900; base += 10) {
    const all = await Promise.all([0, 1, 2, 3, 4, 5].map((offset) => free(base + offset)))
    if (all.every(Boolean)) return base
  }
  throw new Error('no six free ports from 56100')
}

/** Polls `check` until it is true, at most `bound` attempts 50 ms apart: a bound, not a guess. */
async function until(what: string, check: () => Promise<boolean>, bound = 400): Promise<void> {
  for (let attempt = 0; attempt < bound; attempt++) {
    if (await check()) return
    await new Promise((done) => setTimeout(done, 50))
  }
  throw new Error(`gave up waiting: ${what}`)
}

describe.skipIf(!enabled)('topology: primary + streaming replica + PgBouncer + nginx + two instances', () => {
  let dir: string
  let base: number
  let url: string
  const instances: ChildProcess[] = []
  const output: string[] = []
  /** Rows each instance's periodic purge removed, from its 'periodic purge' log lines. */
  const purgedBy = [0, 0]
  let primary: pg.Client
  let replica: pg.Client

  beforeAll(async () => {
    base = await portBase()
    dir = mkdtempSync(join(tmpdir(), 'tombstone-topology-'))
    rmSync(dir, { recursive: true })
    const started = spawnSync('bash', [script, 'start', dir, String(base)], { encoding: 'utf8' })
    if (started.status !== 0) throw new Error(`servers.sh start failed: ${started.stderr}${started.stdout}`)

    // Migrations once, by the CLI, as the schema's owner, straight to the primary; then the grants.
    const owner = { ...process.env, DATABASE_URL: `postgres://blog_owner@127.0.0.1:${base}/blog` }
    for (const args of [['migrate'], ['grant', 'blog_app']]) {
      const cli = spawnSync(process.execPath, ['--conditions=source', 'apps/blog/src/cli/main.ts', ...args], { cwd: root, env: owner, encoding: 'utf8' })
      if (cli.status !== 0) throw new Error(`cli ${args.join(' ')} failed: ${cli.stderr}`)
    }

    for (const port of [base + 4, base + 5]) {
      const child = spawn(process.execPath, ['--conditions=source', 'apps/blog/src/server.ts'], {
        cwd: root,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          PATH: process.env.PATH,
          HOST: '127.0.0.1',
          PORT: String(port),
          DATABASE_URL: `postgres://blog_app:app-secret@127.0.0.1:${base + 2}/blog`,
          DATABASE_READ_URL: `postgres://blog_app@127.0.0.1:${base + 1}/blog`,
          MIGRATE_ON_START: 'off',
          // Through PgBouncer: the role carries the timeouts (servers.sh), none is sent at connect.
          DB_STATEMENT_TIMEOUT_MS: '0',
          DB_LOCK_TIMEOUT_MS: '0',
          DB_POOL_SIZE: '8',
          DEMO_DATA: 'off',
          ADMIN_PASSWORD,
          PASSWORD_COST: '14',
          REGISTER_MAX_PER_HOUR: '1000000',
          TRUST_PROXY: '127.0.0.1',
          // Purge every second, of rows deleted any time before: it purges during the run.
          PURGE_INTERVAL_SECONDS: '1',
          RETENTION_DAYS: '0',
          LOG_LEVEL: 'info',
        },
      })
      const instance = instances.length
      let pending = ''
      child.stdout?.on('data', (chunk: Buffer) => {
        const lines = (pending + chunk.toString()).split('\n')
        pending = lines.pop() ?? ''
        for (const line of lines) {
          if (!line.startsWith('{')) continue
          const entry = JSON.parse(line) as { level?: number; msg?: string; purged?: number }
          if (entry.msg === 'periodic purge') purgedBy[instance]! += entry.purged ?? 0
          else if ((entry.level ?? 0) >= 40) output.push(line)
        }
      })
      child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()))
      instances.push(child)
    }
    url = `http://127.0.0.1:${base + 3}`
    for (const [index, port] of [base + 4, base + 5].entries()) {
      await until(`instance on ${port} ready`, async () => {
        if (instances[index]!.exitCode !== null) throw new Error(`instance on ${port} exited: ${output.join('')}`)
        return (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200
      }, 3000)
    }
    primary = new pg.Client({ connectionString: `postgres://tombstone@127.0.0.1:${base}/blog` })
    replica = new pg.Client({ connectionString: `postgres://tombstone@127.0.0.1:${base + 1}/blog` })
    // The last test stops the replica: its end is expected, not an unhandled error.
    replica.on('error', () => {})
    primary.on('error', () => {})
    await primary.connect()
    await replica.connect()
    // Under the whole suite on 2 cores, starting four servers and two instances takes a while.
  }, 300_000)

  afterAll(async () => {
    await replica?.query('select pg_wal_replay_resume()').catch(() => undefined)
    await primary?.end().catch(() => undefined)
    await replica?.end().catch(() => undefined)
    for (const child of instances) child.kill('SIGTERM')
    await Promise.all(instances.map((child) => (child.exitCode === null ? new Promise((done) => child.once('exit', done)) : undefined)))
    if (dir !== undefined) {
      spawnSync('bash', [script, 'stop', dir])
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)

  const replayed = async (): Promise<bigint> => parseLsn((await replica.query<{ lsn: string }>('select pg_last_wal_replay_lsn()::text as lsn')).rows[0]!.lsn)!

  async function call(method: string, path: string, options: { token?: string; consistency?: string; cookie?: string; body?: unknown } = {}) {
    const headers: Record<string, string> = {}
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
    if (options.consistency !== undefined) headers['tombstone-consistency'] = options.consistency
    if (options.cookie !== undefined) headers.cookie = options.cookie
    if (options.body !== undefined) headers['content-type'] = 'application/json'
    const response = await fetch(`${url}${path}`, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) })
    const text = await response.text()
    return {
      status: response.status,
      source: response.headers.get('tombstone-read-source'),
      consistency: response.headers.get('tombstone-consistency') ?? undefined,
      cookie: response.headers.get('set-cookie')?.split(';')[0],
      json: () => JSON.parse(text) as Record<string, unknown>,
      text,
    }
  }

  async function signIn(username: string, password: string): Promise<string> {
    const response = await call('POST', '/auth/token', { body: { username, password } })
    if (response.status !== 200) throw new Error(`sign-in failed: ${response.status} ${response.text}`)
    return response.json().access_token as string
  }

  async function newUser(name: string): Promise<{ id: number; token: string }> {
    const password = `password-${name}`
    const created = await call('POST', '/users', { body: { username: name, email: `${name}@example.com`, password } })
    if (created.status !== 201) throw new Error(`register failed: ${created.status} ${created.text}`)
    return { id: created.json().id as number, token: await signIn(name, password) }
  }

  test('read-your-writes with replay paused: the deleting client never sees its post again; a client without the token sees the replica as it is', { timeout: 120_000 }, async () => {
    const author = await newUser('ryw_author')
    const created = await call('POST', '/posts', { token: author.token, body: { title: 'Paused replay', content: 'x' } })
    expect(created.status).toBe(201)
    const id = created.json().id as number
    const createdAt = parseLsn(created.consistency!)!
    await until('the replica replays the create', async () => (await replayed()) >= createdAt)

    await replica.query('select pg_wal_replay_pause()')
    await until('replay paused', async () => (await replica.query<{ state: string }>('select pg_get_wal_replay_pause_state() as state')).rows[0]!.state === 'paused')
    let token: string
    try {
      const deleted = await call('DELETE', `/posts/${id}`, { token: author.token })
      expect(deleted.status).toBe(204)
      token = deleted.consistency!
      expect(parseLsn(token)! > (await replayed())).toBe(true)

      // Without the token: the replica as it is, which has not seen the delete.
      const stale = await call('GET', `/posts/${id}`)
      expect([stale.status, stale.source]).toEqual([200, 'replica'])
      // With it, by header or by cookie: the primary, where the post is deleted.
      const byHeader = await call('GET', `/posts/${id}`, { consistency: token })
      expect([byHeader.status, byHeader.source]).toEqual([404, 'primary'])
      const byCookie = await call('GET', `/posts/${id}`, { cookie: deleted.cookie })
      expect([byCookie.status, byCookie.source]).toEqual([404, 'primary'])
      const list = await call('GET', `/posts?author_id=${author.id}`, { consistency: token })
      expect(list.source).toBe('primary')
      expect((list.json().items as { id: number }[]).map((post) => post.id)).not.toContain(id)
    } finally {
      await replica.query('select pg_wal_replay_resume()')
    }
    // Once the replica has replayed that far, it serves the token's reads again, without the post.
    await until('the replica replays the delete', async () => (await replayed()) >= parseLsn(token)!)
    const after = await call('GET', `/posts/${id}`, { consistency: token })
    expect([after.status, after.source]).toEqual([404, 'replica'])
  })

  test('a bounded mixed load: no 5xx, no double purge, no restore lost to a purge, no deleted post read back, a measured replica share', { timeout: 240_000 }, async () => {
    const admin = await signIn('admin', ADMIN_PASSWORD)
    const statuses = new Map<number, number>()
    const sources = { replica: 0, primary: 0 }
    const readBack: number[] = []
    const restored = new Set<number>()
    let requests = 0
    const count = <R extends { status: number; source: string | null }>(response: R): R => {
      requests += 1
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1)
      if (response.source === 'replica' || response.source === 'primary') sources[response.source] += 1
      return response
    }
    const started = performance.now()
    await Promise.all(
      Array.from({ length: WORKERS }, async (_, worker) => {
        const user = await newUser(`load_${worker}`)
        for (let round = 0; round < ROUNDS; round++) {
          const created = count(await call('POST', '/posts', { token: user.token, body: { title: `Load ${worker} ${round}`, content: 'x' } }))
          if (created.status !== 201) continue
          const id = created.json().id as number
          count(await call('GET', `/posts/${id}`, { consistency: created.consistency }))
          count(await call('GET', '/posts'))
          count(await call('GET', `/posts/${id}`))
          const deleted = count(await call('DELETE', `/posts/${id}`, { token: user.token }))
          // The deleting client, carrying its token, must never read the post back.
          const back = count(await call('GET', `/posts/${id}`, { consistency: deleted.consistency }))
          if (back.status !== 404) readBack.push(id)
          const list = count(await call('GET', `/posts?author_id=${user.id}`, { consistency: deleted.consistency }))
          if ((list.json().items as { id: number }[]).some((post) => post.id === id)) readBack.push(id)
          count(await call('GET', `/users/${user.id}`))
          if (round % 2 === 0) {
            // Races the purge (retention 0, every second on both instances): restored, or purged first.
            const restore = count(await call('POST', `/posts/${id}/restore`, { token: admin }))
            if (restore.status === 200) restored.add(id)
            else expect(restore.status, restore.text).toBe(404)
          }
        }
      }),
    )
    const seconds = (performance.now() - started) / 1000
    // One more purge period on both instances, bounded: every deleted, unrestored post gets purged.
    await until('the purge catches up', async () => {
      const { rows } = await primary.query<{ n: number }>("select count(*)::int as n from posts where deleted_at is not null and title like 'Load %'")
      return rows[0]!.n === 0
    })
    const purged = await primary.query<{ rows: number; doubles: number }>(
      "select count(*)::int as rows, count(*) filter (where n > 1)::int as doubles from (select entity, entity_id, count(*) as n from tombstone_audit where action = 'purge' group by 1, 2) per_row",
    )
    // The audit context (set_config(..., true) in the operation's transaction) reached the triggers
    // through PgBouncer: every restore is audited with its actor.
    const audit = await primary.query<{ restores: number; anonymous: number }>(
      "select count(*)::int as restores, count(*) filter (where actor is null)::int as anonymous from tombstone_audit where action = 'restore' and entity = 'posts'",
    )
    const active = await primary.query<{ id: number }>('select id from posts where id = any($1::int[]) and deleted_at is null', [[...restored]])
    const lost = [...restored].filter((id) => !active.rows.some((row) => row.id === id))
    const fivexx = [...statuses].filter(([status]) => status >= 500).reduce((sum, [, n]) => sum + n, 0)
    const share = sources.replica / (sources.replica + sources.primary)
    const figures = {
      requests,
      seconds: Number(seconds.toFixed(1)),
      statuses: Object.fromEntries(statuses),
      fivexx,
      purgedRows: purged.rows[0]!.rows,
      purgedTwice: purged.rows[0]!.doubles,
      purgedByInstance: purgedBy,
      restoresAudited: audit.rows[0]!.restores,
      restored: restored.size,
      restoresLost: lost.length,
      deletedReadBack: readBack.length,
      routedReads: sources,
      replicaShare: Number(share.toFixed(3)),
    }
    process.stdout.write(`topology figures: ${JSON.stringify(figures)}\n`)
    expect(fivexx, output.join('')).toBe(0)
    expect(figures.purgedTwice).toBe(0)
    expect(figures.purgedRows).toBeGreaterThan(0)
    expect(lost).toEqual([])
    expect(audit.rows[0]!.restores).toBe(restored.size)
    expect(audit.rows[0]!.anonymous).toBe(0)
    expect(readBack).toEqual([])
    expect(sources.replica).toBeGreaterThan(0)
  })

  // Last: it stops servers. The replica away: reads are served by the primary, readiness stays 200;
  // then the primary's pooler away: readiness 503, reads 503, never a 500.
  test('the replica away: reads fall back to the primary, readiness 200; the primary away: readiness 503', { timeout: 120_000 }, async () => {
    const author = await newUser('failover')
    const created = await call('POST', '/posts', { token: author.token, body: { title: 'Failover', content: 'x' } })
    expect(created.status).toBe(201)
    const id = created.json().id as number
    const stopped = spawnSync('bash', [script, 'stop-replica', dir], { encoding: 'utf8' })
    expect(stopped.status, stopped.stderr).toBe(0)
    // Each instance notices on its first read; then every read is the primary's.
    const reads = []
    for (let n = 0; n < 6; n++) reads.push(await call('GET', n % 2 === 0 ? `/posts/${id}` : '/posts'))
    expect(reads.map((read) => [read.status, read.source])).toEqual(Array.from({ length: 6 }, () => [200, 'primary']))
    for (const port of [base + 4, base + 5]) {
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`)
      expect([ready.status, await ready.json()]).toEqual([200, { status: 'ok', database: 'postgres', replica: 'unavailable' }])
    }
    const pooler = spawnSync('bash', [script, 'stop-pooler', dir], { encoding: 'utf8' })
    expect(pooler.status, pooler.stderr).toBe(0)
    for (const port of [base + 4, base + 5]) {
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`)
      expect(ready.status).toBe(503)
      expect(ready.headers.get('retry-after')).toBe('1')
    }
    const read = await call('GET', `/posts/${id}`)
    expect(read.status).toBe(503)
  })
})
