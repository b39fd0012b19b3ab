/**
 * {@link NodeSqliteDialect}: SQLite on Node's built-in `node:sqlite`.
 *
 * @module \@tombstone/kysely/sqlite
 */
import {
  CompiledQuery,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  type QueryCompiler,
  type QueryResult,
  type TransactionSettings,
} from 'kysely'
import { EmbeddedTransactions } from '../dialects/savepoints.ts'

/** The part of a `node:sqlite` prepared statement the dialect uses (`StatementSync` satisfies it). */
export interface NodeSqliteStatementLike {
  all(...parameters: unknown[]): unknown[]
  run(...parameters: unknown[]): { changes: number | bigint; lastInsertRowid: number | bigint }
  iterate(...parameters: unknown[]): Iterator<unknown>
  columns(): readonly unknown[]
}

/**
 * The part of a `node:sqlite` database the dialect uses (`DatabaseSync` satisfies it). Typed
 * structurally so that this package does not load `node:sqlite` unless asked to open a file.
 */
export interface NodeSqliteDatabaseLike {
  prepare(sql: string): NodeSqliteStatementLike
  exec(sql: string): void
  close(): void
  readonly isOpen?: boolean
}

/** Options of {@link NodeSqliteDialect}. */
export interface NodeSqliteDialectConfig {
  /**
   * The database: a `DatabaseSync` from `node:sqlite`, a file path (`':memory:'` for a private
   * in-memory database), or a function returning either (called once, by the first query).
   */
  readonly database: NodeSqliteDatabaseLike | string | (() => NodeSqliteDatabaseLike | string | Promise<NodeSqliteDatabaseLike | string>)
  /** Close the database when the Kysely instance is destroyed. Defaults to `true`. */
  readonly closeOnDestroy?: boolean
  /**
   * How long a statement waits for another process's write lock before failing with
   * `SQLITE_BUSY`, in milliseconds. Defaults to `5000`.
   */
  readonly busyTimeoutMs?: number
  /** How many prepared statements to keep, by SQL text. Defaults to `200`; `0` keeps none. */
  readonly statementCacheSize?: number
}

/**
 * A Kysely dialect for SQLite on Node's built-in `node:sqlite` (Node ≥ 22.13): nothing to compile
 * or download, unlike native addons.
 *
 * One connection per database, as SQLite wants: Kysely's `SqliteAdapter` (which this dialect uses)
 * declares that it does not support several connections, so Kysely hands the connection to one
 * transaction, or one query outside a transaction, at a time, and a rollback never takes someone
 * else's work with it. Transactions start with
 * `begin immediate` (read-only ones with a plain `begin`), so two processes sharing a file meet at
 * the start of a transaction, where `busyTimeoutMs` applies, never halfway through it.
 *
 * On open it turns on what SQLite leaves off: `foreign_keys` (referential integrity), and for a
 * file, the write-ahead log. Parameters are converted the way other SQLite drivers do: booleans to
 * 1/0, dates to ISO 8601 text, `undefined` to null.
 *
 * @example
 * ```ts
 * import { Kysely } from 'kysely'
 * import { NodeSqliteDialect } from '@tombstone/kysely/sqlite'
 *
 * const db = new Kysely<Database>({ dialect: new NodeSqliteDialect({ database: './app.db' }) })
 * ```
 */
export class NodeSqliteDialect implements Dialect {
  readonly #config: NodeSqliteDialectConfig
  constructor(config: NodeSqliteDialectConfig) {
    this.#config = config
  }
  createDriver(): Driver {
    return new NodeSqliteDriver(this.#config)
  }
  createQueryCompiler(): QueryCompiler {
    return new SqliteQueryCompiler()
  }
  createAdapter(): DialectAdapter {
    return new SqliteAdapter()
  }
  /** Kysely's SQLite introspector (`db.introspection`). */
  createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    return new SqliteIntrospector(db)
  }
}

async function open(database: NodeSqliteDialectConfig['database']): Promise<{ db: NodeSqliteDatabaseLike; file: boolean }> {
  const given = typeof database === 'function' ? await database() : database
  if (typeof given !== 'string') return { db: given, file: false }
  const { DatabaseSync } = await import('node:sqlite')
  return { db: new DatabaseSync(given) as unknown as NodeSqliteDatabaseLike, file: given !== ':memory:' && given !== '' }
}

class NodeSqliteDriver extends EmbeddedTransactions implements Driver {
  readonly #config: NodeSqliteDialectConfig
  #db: NodeSqliteDatabaseLike | undefined
  #connection: NodeSqliteConnection | undefined

  constructor(config: NodeSqliteDialectConfig) {
    super()
    this.#config = config
  }

  async init(): Promise<void> {
    const { db, file } = await open(this.#config.database)
    this.#db = db
    db.exec(`pragma foreign_keys = on; pragma busy_timeout = ${Math.max(0, Math.trunc(this.#config.busyTimeoutMs ?? 5000))}`)
    if (file) db.exec('pragma journal_mode = wal')
    this.#connection = new NodeSqliteConnection(db, this.#config.statementCacheSize ?? 200)
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    // Kysely serializes acquisitions itself (SqliteAdapter.supportsMultipleConnections is false).
    return this.#connection as NodeSqliteConnection
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    // SQLite transactions are serializable whatever the level asked for.
    await connection.executeQuery(CompiledQuery.raw(settings.accessMode === 'read only' ? 'begin' : 'begin immediate'))
  }

  override async commitTransaction(connection: DatabaseConnection): Promise<void> {
    // The toolkit's hard-delete opt-in and context are rows this transaction wrote: they end with it.
    await (connection as NodeSqliteConnection).endTombstoneState()
    await super.commitTransaction(connection)
  }

  async releaseConnection(): Promise<void> {}

  async destroy(): Promise<void> {
    if (this.#db === undefined || this.#config.closeOnDestroy === false || this.#db.isOpen === false) return
    this.#db.close()
  }
}


/** What SQLite can bind: other SQLite drivers' conversions for the rest. */
function bindable(value: unknown): unknown {
  if (value === undefined) return null
  if (typeof value === 'boolean') return value ? 1 : 0
  if (value instanceof Date) return value.toISOString()
  return value
}

const CHANGES = new Set(['InsertQueryNode', 'UpdateQueryNode', 'DeleteQueryNode'])

class NodeSqliteConnection implements DatabaseConnection {
  readonly #db: NodeSqliteDatabaseLike
  readonly #cacheSize: number
  /** Prepared statements by SQL text, least recently used first. */
  readonly #statements = new Map<string, { statement: NodeSqliteStatementLike; reader: boolean }>()

  constructor(db: NodeSqliteDatabaseLike, cacheSize: number) {
    this.#db = db
    this.#cacheSize = cacheSize
  }

  #prepare(sql: string): { statement: NodeSqliteStatementLike; reader: boolean } {
    const cached = this.#statements.get(sql)
    if (cached !== undefined) {
      this.#statements.delete(sql)
      this.#statements.set(sql, cached)
      return cached
    }
    const statement = this.#db.prepare(sql)
    const prepared = { statement, reader: statement.columns().length > 0 }
    if (this.#cacheSize > 0) {
      if (this.#statements.size >= this.#cacheSize) this.#statements.delete(this.#statements.keys().next().value as string)
      this.#statements.set(sql, prepared)
    }
    return prepared
  }

  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const { statement, reader } = this.#prepare(compiledQuery.sql)
    const parameters = compiledQuery.parameters.map(bindable)
    if (reader) {
      const rows = statement.all(...parameters) as R[]
      // With RETURNING, every changed row is returned once.
      return CHANGES.has(compiledQuery.query?.kind) ? { rows, numAffectedRows: BigInt(rows.length) } : { rows }
    }
    const { changes, lastInsertRowid } = statement.run(...parameters)
    return {
      rows: [],
      numAffectedRows: BigInt(changes),
      insertId: compiledQuery.query?.kind === 'InsertQueryNode' ? BigInt(lastInsertRowid) : undefined,
    }
  }

  /**
   * Removes the toolkit's transaction-scoped rows (hard-delete grant, context) before a commit, so
   * that an opt-in never outlives its transaction. A database without them has nothing to remove.
   */
  async endTombstoneState(): Promise<void> {
    for (const table of ['tombstone_hard_delete_grants', 'tombstone_context']) {
      let probe: { statement: NodeSqliteStatementLike; reader: boolean }
      try {
        probe = this.#prepare(`select 1 from ${table} limit 1`)
      } catch {
        continue // not installed
      }
      // Looked at first: a DELETE takes the write lock even when it removes nothing, which would
      // make a read-only transaction (a preview) wait for, or fail against, another writer.
      if (probe.statement.all().length > 0) this.#prepare(`delete from ${table}`).statement.run()
    }
  }

  async *streamQuery<R>(compiledQuery: CompiledQuery): AsyncIterableIterator<QueryResult<R>> {
    const { statement } = this.#prepare(compiledQuery.sql)
    const iterator = statement.iterate(...compiledQuery.parameters.map(bindable))
    for (let next = iterator.next(); next.done !== true; next = iterator.next()) yield { rows: [next.value as R] }
  }
}
