/**
 * The CLI in-process (each command, --json, --help, bad arguments) and once as a real process.
 */
import { spawnSync } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { PassThrough } from 'node:stream'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { databaseKinds, freshDatabase, type FreshDatabase } from '@tombstone/testing'
import { run } from '../src/cli/main.ts'
import { MIGRATIONS } from '../src/db/migrate.ts'
import { connect } from '../src/db/connect.ts'
import { blogSoftDeletes } from '../src/db/soft-deletes.ts'
import { verifyPassword } from '../src/services/passwords.ts'

const ROOT = resolve(import.meta.dirname, '../../..')

async function cli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  let out = ''
  let err = ''
  stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
  stderr.on('data', (chunk: Buffer) => (err += chunk.toString()))
  const code = await run(args, { stdout, stderr, env: { LOG_LEVEL: 'silent', ...env } })
  return { code, stdout: out, stderr: err }
}

describe.each(databaseKinds())('cli on %s', (kind) => {
  let database: FreshDatabase | undefined
  let folder: string
  let env: Record<string, string>
  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'tombstone-cli-'))
    database = kind === 'postgres' ? await freshDatabase('postgres') : undefined
    env = { DATABASE_URL: database?.url ?? `file:${folder}` }
  })
  afterAll(async () => {
    await database?.drop()
    await rm(folder, { recursive: true, force: true })
  })

  test('migrate, then seed (set-based, with the share deleted), then stats', async () => {
    const migrated = await cli(['migrate', '--json'], env)
    expect(migrated.code).toBe(0)
    expect(JSON.parse(migrated.stdout).applied).toEqual(Object.keys(MIGRATIONS))
    expect(JSON.parse((await cli(['migrate', '--json'], env)).stdout).applied).toEqual([])

    const seeded = await cli(['seed', '--users', '40', '--posts-per-user', '5', '--comments-per-post', '3', '--deleted-share', '0.5', '--json'], env)
    expect(seeded.code).toBe(0)
    const summary = JSON.parse(seeded.stdout)
    expect(summary.inserted).toEqual({ users: 40, posts: 200, comments: 600, total: 840 })
    expect(summary.soft_deleted.users).toBeGreaterThan(5)
    expect(summary.soft_deleted.users).toBeLessThan(35)

    const stats = JSON.parse((await cli(['stats', '--json'], env)).stdout) as { tables: { table: string; active: number; deleted: number }[] }
    const users = stats.tables.find((entry) => entry.table === 'users')
    expect(users).toMatchObject({ active: 40 - summary.soft_deleted.users, deleted: summary.soft_deleted.users })
    const human = await cli(['stats'], env)
    expect(human.stdout).toMatch(/^table\s+active\s+deleted\s+purgeable now\s+oldest deleted/)
  })

  test('purge: --dry-run changes nothing, then the real run removes what it said', async () => {
    const dry = JSON.parse((await cli(['purge', '--dry-run', '--older-than', '0s', '--type', 'comment', '--json'], env)).stdout)
    expect(dry.dry_run).toBe(true)
    expect(dry.count).toBeGreaterThan(0)
    expect(dry.sample.length).toBeLessThanOrEqual(100)
    expect(dry.sample.every((entry: { table: string }) => entry.table === 'comments')).toBe(true)
    const again = JSON.parse((await cli(['purge', '--dry-run', '--older-than', '0s', '--type', 'comment', '--json'], env)).stdout)
    expect(again.count).toBe(dry.count)
    const real = await cli(['purge', '--older-than', '0s', '--type', 'comment', '--batch-size', '7', '--json'], env)
    expect(real.code).toBe(0)
    const result = JSON.parse(real.stdout)
    expect(result).toMatchObject({ dry_run: false, count: dry.count, tables: { comments: { count: dry.count } } })
    expect(result.batches).toBe(Math.ceil(dry.count / 7))
    const paced = await cli(['purge', '--older-than', '0s', '--type', 'post', '--target-batch-ms', '50', '--duty-cycle', '0.5', '--json'], env)
    expect(paced.code).toBe(0)
    expect(JSON.parse(paced.stdout).pacing).toMatchObject({ target_batch_ms: 50, duty_cycle: 0.5, batch_sizes: { smallest: expect.any(Number) } })
    const human = await cli(['purge', '--older-than', '0s'], env)
    expect(human.stdout).toMatch(/^Purged \d+ rows? in \d+ batch(es)?,/)
    const stats = JSON.parse((await cli(['stats', '--json'], env)).stdout) as { tables: { deleted: number }[] }
    expect(stats.tables.every((table) => table.deleted === 0)).toBe(true)
  })

  test('--help with examples; bad arguments exit 2 with a clear message', async () => {
    for (const command of ['migrate', 'serve', 'seed', 'purge', 'stats']) {
      const help = await cli([command, '--help'], env)
      expect(help.code).toBe(0)
      expect(help.stdout).toContain('Examples:')
    }
    const cases: [string[], RegExp][] = [
      [['purge', '--older-than', 'yesterday'], /duration/],
      [['purge', '--type', 'posts'], /post, comment or user/],
      [['purge', '--batch-size', '0'], /1 to/],
      [['purge', '--target-batch-ms', '0'], /1 to/],
      [['purge', '--duty-cycle', '0'], /above 0/],
      [['purge', '--duty-cycle', 'half'], /above 0/],
      [['seed', '--deleted-share', '2'], /between 0 and 1/],
      [['seed', '--users', 'many'], /whole number/],
      [['seed', '--password', 'short'], /at least 8/],
      [['frobnicate'], /unknown command/],
      [['stats', '--database-url', 'mysql://x'], /DATABASE_URL/],
    ]
    for (const [args, message] of cases) {
      const result = await cli(args, env)
      expect({ args, code: result.code }).toEqual({ args, code: 2 })
      expect(result.stderr).toMatch(message)
    }
  })

  test('purge --plan executes exactly what a --dry-run counted; a bad or mixed plan is a usage error', async () => {
    const dry = JSON.parse((await cli(['purge', '--dry-run', '--older-than', '0s', '--json'], env)).stdout) as { count: number; plan: string }
    expect(dry.plan).toEqual(expect.any(String))
    const human = await cli(['purge', '--dry-run', '--older-than', '0s'], env)
    expect(human.stdout).toContain('npm run cli -- purge --plan ')
    expect((await cli(['purge', '--plan', 'junk'], env)).code).toBe(2)
    expect((await cli(['purge', '--plan', dry.plan, '--type', 'post'], env)).code).toBe(2)
    const done = JSON.parse((await cli(['purge', '--plan', dry.plan, '--json'], env)).stdout) as { count: number; dry_run: boolean }
    expect(done).toMatchObject({ dry_run: false, count: dry.count })
  })

  test('one row is "1 row" and one batch "1 batch", in the seed and purge outputs', async () => {
    const seeded = await cli(['seed', '--users', '1', '--posts-per-user', '0', '--comments-per-post', '0', '--deleted-share', '1'], env)
    expect(seeded.code).toBe(0)
    expect(seeded.stdout).toMatch(/^Seeded 1 row \(1 user, 0 posts, 0 comments\)/)
    const dry = await cli(['purge', '--dry-run', '--older-than', '0s'], env)
    expect(dry.stdout).toMatch(/^Would purge 1 row deleted before /)
    const real = await cli(['purge', '--older-than', '0s'], env)
    expect(real.stdout).toMatch(/^Purged 1 row in 1 batch,/)
    expect(`${dry.stdout}${real.stdout}`).not.toMatch(/\b1 (rows|batches)\b/)
  })

  test('durations take a unit (d, h, m, s, ms); a bare number is days, as the help says', async () => {
    const help = await cli(['purge', '--help'], env)
    expect(help.stdout.replace(/\s+/g, ' ')).toContain('30d, 12h, 15m, 45s or 500ms; a bare number is days')
    const cutoffOf = async (duration: string) => {
      const before = Date.now()
      const result = await cli(['purge', '--dry-run', '--older-than', duration, '--json'], env)
      const after = Date.now()
      expect({ duration, code: result.code, stderr: result.stderr }).toEqual({ duration, code: 0, stderr: '' })
      return { cutoff: Date.parse((JSON.parse(result.stdout) as { cutoff: string }).cutoff), before, after }
    }
    for (const [duration, ms] of [['500ms', 500], ['15m', 900_000], ['12h', 43_200_000], ['30d', 2_592_000_000], ['30', 2_592_000_000], ['1.5h', 5_400_000]] as const) {
      const { cutoff, before, after } = await cutoffOf(duration)
      expect({ duration, inRange: cutoff >= before - ms && cutoff <= after - ms }).toEqual({ duration, inRange: true })
    }
    for (const bad of ['5x', 'ms', '-1d', '12 hours']) {
      const result = await cli(['purge', '--dry-run', '--older-than', bad], env)
      expect({ bad, code: result.code }).toEqual({ bad, code: 2 })
      expect(result.stderr).toContain('a bare number is days')
    }
  })

  test('--version (and -V) prints the version of package.json', async () => {
    const { version } = JSON.parse(await readFile(resolve(ROOT, 'apps/blog/package.json'), 'utf8')) as { version: string }
    for (const flag of ['--version', '-V']) {
      const result = await cli([flag], env)
      expect({ flag, code: result.code, stdout: result.stdout }).toEqual({ flag, code: 0, stdout: `${version}\n` })
    }
    expect((await cli(['--help'], env)).stdout).toContain('--version')
  })

  test('create-admin and reset-password recover an installation whose admin is lost; each password works once printed', async () => {
    const created = await cli(['create-admin', 'rescue_admin', '--json'], env)
    expect(created.code).toBe(0)
    const admin = JSON.parse(created.stdout) as { id: number; username: string; password: string }
    expect(admin).toMatchObject({ username: 'rescue_admin', password: expect.stringMatching(/^.{16}$/) })
    expect((await cli(['create-admin', 'rescue_admin'], env)).code).toBe(1)
    expect((await cli(['create-admin', 'Bad Name'], env)).code).toBe(2)

    const reset = await cli(['reset-password', 'rescue_admin', '--json'], env)
    expect(reset.code).toBe(0)
    const again = JSON.parse(reset.stdout) as { password: string }
    expect(again.password).not.toBe(admin.password)
    expect((await cli(['reset-password', 'nobody_here'], env)).code).toBe(1)

    const handle = await connect(env.DATABASE_URL as string, blogSoftDeletes(30))
    try {
      const row = await handle.db.selectFrom('users').select(['role', 'password_hash']).where('username', '=', 'rescue_admin').executeTakeFirstOrThrow()
      expect(row.role).toBe('admin')
      expect(await verifyPassword(again.password, row.password_hash)).toBe(true)
      expect(await verifyPassword(admin.password, row.password_hash)).toBe(false)
    } finally {
      await handle.close()
    }
  })

  test('as a real process: npm run cli -- stats --json', () => {
    const result = spawnSync('npm', ['run', '--silent', 'cli', '--', 'stats', '--json'], { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8' })
    expect(result.status).toBe(0)
    expect(JSON.parse(result.stdout).tables).toHaveLength(3)
    const bad = spawnSync(join(ROOT, 'apps/blog/bin/tombstone-blog.js'), ['purge', '--type', 'nope'], { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8' })
    expect(bad.status).toBe(2)
  })

  test('an unreachable database is exit code 1 with one line, not a stack trace', async () => {
    const result = await cli(['stats'], { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' })
    expect(result.code).toBe(1)
    expect(result.stderr.trim().split('\n')).toHaveLength(1)
  })
})

