/**
 * A throwaway PostgreSQL cluster on 127.0.0.1 for the benchmarks (or the server `DATABASE_URL`
 * names). As root, the server binaries run as the `postgres` user: initdb refuses root.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'

export interface Server {
  /** Admin URL (database `postgres`). */
  readonly url: string
  readonly version: string
  /** A fresh database on it; returns its URL. */
  createDatabase(name: string): Promise<string>
  stop(): Promise<void>
}

function binDir(): string {
  const base = '/usr/lib/postgresql'
  if (!existsSync(base)) throw new Error('PostgreSQL is not installed (apt-get install postgresql-15), or set DATABASE_URL')
  const versions = readdirSync(base).sort((a, b) => Number(b) - Number(a))
  return join(base, versions[0] as string, 'bin')
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))))
    })
  })
}

function asPostgres(command: string, args: string[]): void {
  const root = process.getuid?.() === 0
  const result = root
    ? spawnSync('runuser', ['-u', 'postgres', '--', command, ...args], { stdio: 'pipe', encoding: 'utf8' })
    : spawnSync(command, args, { stdio: 'pipe', encoding: 'utf8' })
  if (result.status !== 0) throw new Error(`${command} failed: ${result.stderr || result.stdout}`)
}

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await work(client)
  } finally {
    await client.end()
  }
}

function attach(url: string, stop: () => Promise<void>): Promise<Server> {
  return withClient(url, async (client) => {
    const version = (await client.query<{ server_version: string }>('show server_version')).rows[0]?.server_version ?? '?'
    return {
      url,
      version,
      stop,
      createDatabase: async (name: string) => {
        await withClient(url, async (admin) => {
          await admin.query(`drop database if exists "${name}" with (force)`)
          await admin.query(`create database "${name}"`)
        })
        const target = new URL(url)
        target.pathname = `/${name}`
        return target.toString()
      },
    }
  })
}

/** Uses `DATABASE_URL`, or starts a cluster in a temporary folder. */
export async function startPostgres(): Promise<Server> {
  const given = process.env.DATABASE_URL
  if (given !== undefined && given.startsWith('postgres')) return attach(given, async () => {})
  const bin = binDir()
  const dir = mkdtempSync(join(tmpdir(), 'tombstone-bench-pg-'))
  if (process.getuid?.() === 0) chownSync(dir, Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()), 0)
  const data = join(dir, 'data')
  const port = await freePort()
  asPostgres(join(bin, 'initdb'), ['-D', data, '-U', 'bench', '--auth=trust', '-E', 'UTF8', '--no-locale'])
  asPostgres(join(bin, 'pg_ctl'), [
    '-D', data, '-l', join(dir, 'log'), '-w', '-t', '60',
    '-o', `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c shared_buffers=256MB -c max_connections=100`,
    'start',
  ])
  const stop = async () => {
    asPostgres(join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop'])
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    return await attach(`postgres://bench@127.0.0.1:${port}/postgres`, stop)
  } catch (error) {
    await stop()
    throw error
  }
}
