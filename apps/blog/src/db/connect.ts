import { createHash } from 'node:crypto'
import { mkdir, open, readFile, unlink } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { Kysely, PostgresDialect, type Dialect } from 'kysely'
import pg from 'pg'
import { SoftDeletePlugin, type SoftDeleteDefinition } from '@tombstone/kysely'
import { PGliteDialect } from '@tombstone/kysely/pglite'
import { NodeSqliteDialect } from '@tombstone/kysely/sqlite'
import type { Database } from './schema.ts'
import { SqliteRowLocksPlugin } from './sql-dialect.ts'

/** An open database: the plugin-equipped Kysely instance and what it is. */
export interface DatabaseHandle {
  readonly db: Kysely<Database>
  readonly kind: 'pglite' | 'postgres' | 'sqlite'
  /** Where the data is, for humans (a folder, `memory`, or the server without password). */
  readonly location: string
  close(): Promise<void>
}

/** The embedded database folder is open in another process (or earlier in this one). */
export class DatabaseInUseError extends Error {
  readonly pid: number
  constructor(folder: string, pid: number) {
    super(
      `The embedded database in ${folder} is open in process ${pid}${pid === process.pid ? ' (this one)' : ''}; stop that process first, or use a PostgreSQL server (DATABASE_URL=postgres://…) for several processes`,
    )
    this.name = 'DatabaseInUseError'
    this.pid = pid
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: it exists, it is someone else's.
    return (error as { code?: string }).code === 'EPERM'
  }
}

/**
 * Takes the embedded database folder for this process: PGlite is one writer, and two processes on
 * one folder corrupt it silently. A lock file holds the owner's pid; a file left by a process that
 * is gone (a crash) is taken over. Returns the release.
 */
async function lockFolder(folder: string): Promise<() => Promise<void>> {
  const path = resolve(folder, 'tombstone.lock')
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx')
      await handle.writeFile(`${process.pid}\n`)
      await handle.close()
      return async () => {
        await unlink(path).catch(() => undefined)
      }
    } catch (error) {
      if ((error as { code?: string }).code !== 'EEXIST') throw error
      const pid = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10)
      if (Number.isSafeInteger(pid) && pid > 0 && alive(pid)) throw new DatabaseInUseError(folder, pid)
      // Stale: its process is gone. Remove it and try once more (another process may win that race).
      await unlink(path).catch(() => undefined)
    }
  }
  throw new DatabaseInUseError(folder, Number.parseInt(await readFile(path, 'utf8').catch(() => '0'), 10))
}

/** The folder of the embedded database when `DATABASE_URL` is unset. */
export const DEFAULT_DATA_DIR = '.data'

/**
 * Opens the database a `DATABASE_URL` names: unset, embedded PGlite in `./.data`; `memory://`, an
 * in-memory PGlite; `file:<folder>`, PGlite in that folder; `postgres://…`, a PostgreSQL server;
 * `sqlite://<path>`, SQLite in that file (see {@link sqlitePathOf}), `sqlite://:memory:` a private
 * in-memory SQLite database.
 *
 * @example
 * ```ts
 * const { db, close } = await connect('memory://', softDeletes)
 * ```
 */
const BROKEN = Symbol('tombstone.broken')

/**
 * The pool as Kysely sees it, with one difference: a query that fails because its connection was
 * lost (the server restarted, the backend was terminated, the network dropped) fails with SQLSTATE
 * 08006 (connection_failure), which the error handler answers with 503, instead of pg's uncoded
 * "Connection terminated" errors, which would be a 500. Which connection broke is known from the
 * client's own events, never from the message. A checked-out client losing its server would also
 * emit an unhandled 'error' and end the process; here every client has a listener.
 */
function connectionAware(pool: pg.Pool, prepared: boolean): { connect(): Promise<pg.PoolClient>; end(): Promise<void>; readonly options: pg.Pool['options'] } {
  pool.on('connect', (client) => {
    const mark = () => void ((client as unknown as Record<symbol, boolean>)[BROKEN] = true)
    client.on('error', mark)
    client.on('end', mark)
  })
  return {
    async connect() {
      // A pool that cannot hand out a connection in time (or at all) says so without a code.
      const client = await pool.connect().catch((error: unknown) => {
        if (typeof (error as { code?: unknown }).code === 'string') throw error
        throw Object.assign(new Error('No database connection could be had', { cause: error }), { code: '08001' })
      })
      const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>
      return Object.assign(Object.create(client) as pg.PoolClient, {
        query: async (...args: unknown[]) => {
          try {
            // Kysely sends (text, values): pg then uses the unnamed statement, which a pooler in
            // transaction mode handles. Named statements only when asked for (DB_PREPARED_STATEMENTS).
            if (prepared && typeof args[0] === 'string' && Array.isArray(args[1])) {
              return await query({ name: statementName(args[0]), text: args[0], values: args[1] })
            }
            return await query(...args)
          } catch (error) {
            const coded = typeof (error as { code?: unknown }).code === 'string'
            if (!coded && (client as unknown as Record<symbol, boolean>)[BROKEN] === true) {
              throw Object.assign(new Error('The connection to the database was lost', { cause: error }), { code: '08006' })
            }
            throw error
          }
        },
        release: (destroy?: boolean | Error) => client.release(destroy === undefined && (client as unknown as Record<symbol, boolean>)[BROKEN] === true ? true : destroy),
      })
    },
    end: () => pool.end(),
    options: pool.options,
  }
}

/** A stable name per statement text, so that a connection prepares each statement once. */
function statementName(text: string): string {
  return `tombstone_${createHash('sha1').update(text).digest('hex').slice(0, 24)}`
}

/**
 * The SQLite file a `sqlite://` URL names, or undefined for any other URL. Everything after
 * `sqlite://` is the path as the operating system reads it: `sqlite://app.db` and
 * `sqlite://./data/app.db` are relative to the working directory, `sqlite:///var/lib/app.db` is
 * absolute (note: SQLAlchemy counts one slash fewer), `sqlite://:memory:` is in memory.
 *
 * @example
 * ```ts
 * sqlitePathOf('sqlite:///srv/blog.db') // '/srv/blog.db'
 * ```
 */
export function sqlitePathOf(url: string): string | undefined {
  if (!url.startsWith('sqlite://')) return undefined
  const path = decodeURIComponent(url.slice('sqlite://'.length))
  if (path === '') throw new Error('DATABASE_URL=sqlite:// needs a file (sqlite://app.db, sqlite:///abs/app.db) or :memory:')
  return path
}

export async function connect(
  url: string | undefined,
  softDeletes: SoftDeleteDefinition<Database>,
  options: {
    poolSize?: number
    statementTimeoutMs?: number
    lockTimeoutMs?: number
    acquireTimeoutMs?: number
    /** Named (server-side) prepared statements. Defaults to false: what PgBouncer < 1.21 needs. */
    preparedStatements?: boolean
  } = {},
): Promise<DatabaseHandle> {
  const plugins = [new SoftDeletePlugin(softDeletes)]
  const sqlitePath = url === undefined ? undefined : sqlitePathOf(url)
  if (sqlitePath !== undefined) {
    if (sqlitePath !== ':memory:') await mkdir(dirname(resolve(sqlitePath)), { recursive: true })
    // No lock file as for PGlite: SQLite's own file locks make several processes on one file safe
    // (WAL; every writing transaction is `begin immediate`, and waits its turn up to busy_timeout).
    const db = new Kysely<Database>({
      // DB_LOCK_TIMEOUT_MS is how long a writer waits for the write lock (busy_timeout); 0, which on
      // PostgreSQL sends no timeout, keeps the driver's 5 s here (SQLite's 0 would mean not to wait).
      dialect: new NodeSqliteDialect({ database: sqlitePath, ...(options.lockTimeoutMs ? { busyTimeoutMs: options.lockTimeoutMs } : {}) }),
      plugins: [...plugins, new SqliteRowLocksPlugin()],
    })
    return { db, kind: 'sqlite', location: sqlitePath === ':memory:' ? 'sqlite memory' : resolve(sqlitePath), close: () => db.destroy() }
  }
  if (url !== undefined && /^postgres(ql)?:\/\//.test(url)) {
    const pool = new pg.Pool({
      connectionString: url,
      max: options.poolSize ?? 10,
      // Sent at connection start: a statement or a lock wait that runs away is cancelled by the
      // server (57014, 55P03) and answered 503, instead of holding the request and a connection.
      ...(options.statementTimeoutMs === undefined ? {} : { statement_timeout: options.statementTimeoutMs }),
      ...(options.lockTimeoutMs === undefined ? {} : { lock_timeout: options.lockTimeoutMs }),
      ...(options.acquireTimeoutMs === undefined ? {} : { connectionTimeoutMillis: options.acquireTimeoutMs }),
    })
    // An idle client losing its server must not crash the process; the next query reports it.
    pool.on('error', () => {})
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: connectionAware(pool, options.preparedStatements ?? false) }), plugins })
    const parsed = new URL(url)
    parsed.password = ''
    return { db, kind: 'postgres', location: parsed.toString(), close: () => db.destroy() }
  }
  let pglite: PGlite
  let location: string
  let release = async () => {}
  if (url === 'memory://') {
    pglite = await PGlite.create()
    location = 'memory'
  } else {
    const folder = resolve(url?.startsWith('file:') ? url.slice('file:'.length).replace(/^\/\//, '') : DEFAULT_DATA_DIR)
    await mkdir(folder, { recursive: true })
    release = await lockFolder(folder)
    try {
      pglite = await PGlite.create(folder)
    } catch (error) {
      await release()
      throw error
    }
    location = folder
  }
  const dialect: Dialect = new PGliteDialect({ pglite })
  const db = new Kysely<Database>({ dialect, plugins })
  return {
    db,
    kind: 'pglite',
    location,
    close: async () => {
      try {
        await db.destroy()
      } finally {
        await release()
      }
    },
  }
}
