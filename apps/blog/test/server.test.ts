/**
 * End to end over a real socket: `npm start` as a newcomer runs it (embedded database in a fresh
 * folder, demo data, generated admin password), a few requests, then SIGTERM and a clean exit.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { databaseKinds, freshDatabase, type FreshDatabase } from '@tombstone/testing'

const ROOT = resolve(import.meta.dirname, '../../..')

interface Started {
  readonly child: ChildProcess
  readonly base: string
  readonly output: () => string
}

/** Runs the service as `npm start` does (or its command itself, when the exit code matters). */
async function npmStart(env: Record<string, string>, direct = false): Promise<Started> {
  const [command, args] = direct ? [process.execPath, ['--conditions=source', 'apps/blog/src/server.ts']] : ['npm', ['start', '--silent']]
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'warn', PURGE_INTERVAL_MINUTES: '0', ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const base = await new Promise<string>((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL printed in 60 s:\n${output}`)), 60_000)
    const check = () => {
      const match = /Tombstone blog API: (http:\/\/\S+)/.exec(output)
      if (match?.[1] !== undefined) {
        clearTimeout(timer)
        resolvePromise(match[1])
      }
    }
    child.stdout?.on('data', check)
    child.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`exited with ${code}:\n${output}`))
    })
  })
  return { child, base, output: () => output }
}

async function stop(started: Started): Promise<number | null> {
  const child = started.child
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
  const exited = new Promise<number | null>((resolvePromise) => child.once('exit', (code) => resolvePromise(code)))
  child.kill('SIGTERM')
  const timer = setTimeout(() => process.kill(-(child.pid as number), 'SIGKILL'), 20_000)
  try {
    return await exited
  } finally {
    clearTimeout(timer)
  }
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0)
    return true
  } catch {
    return false
  }
}

async function stopGroup(pid: number): Promise<void> {
  if (!groupAlive(pid)) return
  process.kill(-pid, 'SIGTERM')
  for (let waited = 0; waited < 15_000 && groupAlive(pid); waited += 100) await new Promise((done) => setTimeout(done, 100))
  if (groupAlive(pid)) process.kill(-pid, 'SIGKILL')
}

describe.each(databaseKinds())('npm start over a real socket on %s', (kind) => {
  let started: Started
  let folder: string
  let database: FreshDatabase | undefined
  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'tombstone-start-'))
    database = kind === 'postgres' ? await freshDatabase('postgres') : undefined
    started = await npmStart({ DATABASE_URL: database?.url ?? `file:${folder}`, DEMO_DATA: 'on' })
  }, 90_000)
  afterAll(async () => {
    // npm does not wait for its child on a signal: take the whole group down, and wait for it.
    if (started?.child.pid !== undefined) await stopGroup(started.child.pid)
    await database?.drop()
    await rm(folder, { recursive: true, force: true })
  })

  test('the first lines name the API, /docs, /admin and the generated admin password', () => {
    const lines = started.output().split('\n')
    expect(lines[0]).toMatch(/^Tombstone blog API: http:\/\/127\.0\.0\.1:\d+$/)
    expect(lines[1]).toContain('/docs')
    expect(lines[2]).toContain('/admin')
    expect(started.output()).toMatch(/username "admin", password "[^"]{8,}"/)
  })

  test('a user signs up, writes, deletes; deleted is gone; the demo data is there; health and docs answer', async () => {
    const password = /password "([^"]+)"/.exec(started.output())?.[1] as string
    const json = { 'content-type': 'application/json' }
    const signup = await fetch(`${started.base}/users`, { method: 'POST', headers: json, body: JSON.stringify({ username: 'socket_user', email: 's@example.com', password: 'socket-password' }) })
    expect(signup.status).toBe(201)
    const token = ((await (await fetch(`${started.base}/auth/token`, { method: 'POST', headers: json, body: JSON.stringify({ username: 'socket_user', password: 'socket-password' }) })).json()) as { access_token: string }).access_token
    const auth = { ...json, authorization: `Bearer ${token}` }
    const created = await fetch(`${started.base}/posts`, { method: 'POST', headers: auth, body: JSON.stringify({ title: 'Over the wire', content: 'x' }) })
    expect(created.status).toBe(201)
    const location = created.headers.get('location') as string
    expect((await fetch(`${started.base}${location}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } })).status).toBe(204)
    const gone = await fetch(`${started.base}${location}`)
    expect(gone.status).toBe(404)
    expect(gone.headers.get('content-type')).toMatch(/^application\/problem\+json/)
    const demo = (await (await fetch(`${started.base}/posts`)).json()) as { items: unknown[] }
    expect(demo.items.length).toBeGreaterThan(0)
    const adminToken = ((await (await fetch(`${started.base}/auth/token`, { method: 'POST', headers: json, body: JSON.stringify({ username: 'admin', password }) })).json()) as { access_token: string }).access_token
    const trash = (await (await fetch(`${started.base}/admin/trash`, { headers: { authorization: `Bearer ${adminToken}` } })).json()) as { items: unknown[] }
    expect(trash.items.length).toBeGreaterThan(0)
    expect((await fetch(`${started.base}/healthz`)).status).toBe(200)
    expect(((await (await fetch(`${started.base}/openapi.json`)).json()) as { openapi: string }).openapi).toBe('3.1.0')
    expect((await fetch(`${started.base}/docs/`)).status).toBe(200)
  })

  test('SIGTERM shuts the service down cleanly (exit code 0, socket closed)', async () => {
    const direct = await npmStart({ DATABASE_URL: kind === 'postgres' ? (database?.url as string) : `file:${folder}-direct`, DEMO_DATA: 'off' }, true)
    expect((await fetch(`${direct.base}/healthz`)).status).toBe(200)
    expect(await stop(direct)).toBe(0)
    await expect(fetch(`${direct.base}/healthz`)).rejects.toThrow()
    await rm(`${folder}-direct`, { recursive: true, force: true })
  })
})

describe('starting without a database', () => {
  test('a server that refuses connections: one line saying why, exit code 5, no stack trace', async () => {
    const { spawnSync } = await import('node:child_process')
    const { createServer } = await import('node:net')
    // A port nobody listens on: take one, then free it.
    const probe = createServer()
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
    const port = (probe.address() as { port: number }).port
    await new Promise<void>((resolve) => probe.close(() => resolve()))
    const result = spawnSync(process.execPath, ['--conditions=source', 'apps/blog/src/server.ts'], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: `postgres://nobody@127.0.0.1:${port}/blog`, LOG_LEVEL: 'silent', PORT: '0' },
      encoding: 'utf8',
      timeout: 60_000,
    })
    expect(result.status).toBe(5)
    const lines = result.stderr.trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^Cannot use the database: .*ECONNREFUSED/)
  })
})
