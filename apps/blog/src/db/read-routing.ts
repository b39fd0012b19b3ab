import { sql, type Kysely } from 'kysely'
import { sqlStateOf } from '@tombstone/kysely'
import type { Database } from './schema.ts'

/**
 * The only routes whose reads may be served by the replica (`DATABASE_READ_URL`): public reads of
 * posts, comments and users, by `METHOD route-pattern`. Everything else reads the primary: every
 * write and every read in a write's transaction, the token check of every request (a revoked token
 * stops working at once), the caller's own account, and every admin route (trash, purge preview and
 * plan, restore: reads that decide a write). A request by an admin reads the primary even on these
 * routes (an admin's view decides restores and purges).
 */
export const REPLICA_READS: ReadonlySet<string> = new Set([
  'GET /posts',
  'GET /posts/:id',
  'GET /posts/:id/comments',
  'GET /comments/:id',
  'GET /users/:id',
])

/** The header a write's answer carries its commit's WAL position in, and a read may send back. */
export const CONSISTENCY_HEADER = 'tombstone-consistency'
/** The cookie carrying the same position, for browsers. */
export const CONSISTENCY_COOKIE = 'tombstone_consistency'
/** The header a routed read's answer says who served it in (`replica` or `primary`). */
export const READ_SOURCE_HEADER = 'tombstone-read-source'

/** After the replica failed to answer, reads go to the primary for this long before trying it again. */
export const REPLICA_RETRY_MS = 5_000

/** Where a routed read was served. */
export type ReadSource = 'replica' | 'primary'

const LSN = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/

/** A WAL position (`16/B374D848`) as a number, or undefined when it is not one. */
export function parseLsn(text: string): bigint | undefined {
  const match = LSN.exec(text.trim())
  if (match === null) return undefined
  return (BigInt(`0x${match[1]}`) << 32n) + BigInt(`0x${match[2]}`)
}

/**
 * The newest WAL position among those a request carries (header values and cookies); undefined when
 * it carries none. A value that is not a WAL position counts as one the replica has not reached
 * (the primary answers), never as none: a garbled token must not show the state before a write.
 */
export function consistencyTokenOf(headers: Record<string, string | string[] | undefined>): bigint | undefined {
  const values: string[] = []
  const header = headers[CONSISTENCY_HEADER]
  for (const value of Array.isArray(header) ? header : header === undefined ? [] : [header]) values.push(...value.split(','))
  const cookie = headers.cookie
  for (const line of Array.isArray(cookie) ? cookie : cookie === undefined ? [] : [cookie]) {
    for (const pair of line.split(';')) {
      const at = pair.indexOf('=')
      if (at > 0 && pair.slice(0, at).trim() === CONSISTENCY_COOKIE) values.push(pair.slice(at + 1).trim().replace(/%2F/gi, '/'))
    }
  }
  let newest: bigint | undefined
  for (const value of values) {
    if (value.trim() === '') continue
    const lsn = parseLsn(value) ?? 0xffff_ffff_ffff_ffffn
    if (newest === undefined || lsn > newest) newest = lsn
  }
  return newest
}

/** Errors of the replica that send the read to the primary: it is away, or replay cancelled the read. */
function replicaUnavailable(error: unknown): boolean {
  const code = sqlStateOf(error) ?? (error as { code?: unknown } | null)?.code
  if (typeof code !== 'string') return false
  return code.startsWith('08') || /^57P0[1-3]$/.test(code) || code === '53300' || code === '40001' || /^E[A-Z]+$/.test(code)
}

class BehindToken extends Error {}

/**
 * Chooses the database a read runs on: the replica when there is one, it answers, and (for a client
 * carrying a consistency token) it has replayed at least that far; else the primary.
 *
 * @example
 * ```ts
 * const router = new ReadRouter(primary, replica)
 * const posts = await router.read(token, (db) => db.selectFrom('posts').selectAll().execute(), (source) => console.log(source))
 * ```
 */
export class ReadRouter {
  readonly #primary: Kysely<Database>
  readonly #replica: Kysely<Database> | undefined
  readonly #onReplicaError: (error: unknown) => void
  #replicaDownUntil = 0

  constructor(primary: Kysely<Database>, replica: Kysely<Database> | undefined, onReplicaError: (error: unknown) => void = () => {}) {
    this.#primary = primary
    this.#replica = replica
    this.#onReplicaError = onReplicaError
  }

  /** Whether a replica is configured at all. */
  get hasReplica(): boolean {
    return this.#replica !== undefined
  }

  /**
   * Runs `work` (reads only: it may run twice, on the replica then on the primary) where it may,
   * telling `served` where before each run (so that an answer that is an error says it too).
   * With a token, the replay check and the reads run in one transaction on the replica, so that
   * they see one server even through a pooler in front of several replicas.
   */
  async read<T>(
    token: bigint | undefined,
    work: (db: Kysely<Database>) => Promise<T>,
    served: (source: ReadSource) => void = () => {},
  ): Promise<T> {
    const onPrimary = () => {
      served('primary')
      return work(this.#primary)
    }
    const replica = this.#replica
    if (replica === undefined || Date.now() < this.#replicaDownUntil) return onPrimary()
    try {
      if (token === undefined) {
        served('replica')
        return await work(replica)
      }
      return await replica.transaction().execute(async (trx) => {
        const { rows } = await sql<{ lsn: string | null }>`select (case when pg_is_in_recovery() then pg_last_wal_replay_lsn() else pg_current_wal_insert_lsn() end)::text as lsn`.execute(trx)
        const replayed = rows[0]?.lsn == null ? undefined : parseLsn(rows[0].lsn)
        if (replayed === undefined || replayed < token) throw new BehindToken()
        served('replica')
        return work(trx)
      })
    } catch (error) {
      if (error instanceof BehindToken) return onPrimary()
      if (!replicaUnavailable(error)) throw error
      // A recovery conflict (40001: replay cancelled the read) is this read's bad luck, not an outage.
      if ((sqlStateOf(error) ?? (error as { code?: string }).code) !== '40001') {
        this.#replicaDownUntil = Date.now() + REPLICA_RETRY_MS
        this.#onReplicaError(error)
      }
      return onPrimary()
    }
  }

  /**
   * The primary's WAL position after a commit: `pg_current_wal_insert_lsn()`, which is past the end of
   * every commit record already inserted. `pg_current_wal_lsn()` (written so far) can be behind a
   * commit that returned under `synchronous_commit = off`, and a replica that replayed that far might
   * not show it yet.
   */
  async position(): Promise<string> {
    const { rows } = await sql<{ lsn: string }>`select pg_current_wal_insert_lsn()::text as lsn`.execute(this.#primary)
    return rows[0]?.lsn as string
  }

  /** How far the replica has replayed, or undefined when it does not answer (for readiness). */
  async replicaStatus(timeoutMs: number): Promise<'ok' | 'unavailable' | undefined> {
    const replica = this.#replica
    if (replica === undefined) return undefined
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        sql`select 1`.execute(replica),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('timed out')), timeoutMs)
        }),
      ])
      return 'ok'
    } catch {
      return 'unavailable'
    } finally {
      clearTimeout(timer)
    }
  }
}
