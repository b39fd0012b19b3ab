/**
 * {@link PGliteDialect}: a Kysely dialect for PGlite, the embedded PostgreSQL.
 *
 * @module \@tombstone/kysely/pglite
 */
import {
  CompiledQuery,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
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

/**
 * The part of a PGlite instance the dialect uses; `@electric-sql/pglite`'s `PGlite` satisfies it.
 * Typed structurally so that this package does not depend on PGlite.
 */
export interface PGliteLike {
  query<T>(query: string, params?: unknown[]): Promise<{ rows: T[]; affectedRows?: number }>
  close(): Promise<void>
  readonly closed?: boolean
}

/** Options of {@link PGliteDialect}. */
export interface PGliteDialectConfig {
  /** The PGlite instance, or a function creating it (called once, by the first query). */
  readonly pglite: PGliteLike | (() => Promise<PGliteLike>)
  /** Close the instance when the Kysely instance is destroyed. Defaults to `true`. */
  readonly closeOnDestroy?: boolean
}

/**
 * A Kysely dialect for PGlite, the embedded PostgreSQL.
 *
 * PGlite is one connection. Dialects that hand that one connection to every caller at once let a
 * query from outside a transaction run inside it, so that a rollback takes the outsider's work with
 * it (or a commit makes a half-done transaction visible). This one queues: a transaction holds the
 * connection from `begin` to `commit`/`rollback`, and everything else waits its turn. Do not use the
 * outer `db` inside `db.transaction().execute(...)`: it waits for the transaction, which waits for it.
 *
 * @example
 * ```ts
 * import { PGlite } from '@electric-sql/pglite'
 * import { Kysely } from 'kysely'
 * import { PGliteDialect } from '@tombstone/kysely/pglite'
 *
 * const db = new Kysely<Database>({ dialect: new PGliteDialect({ pglite: new PGlite('./.data') }) })
 * ```
 */
export class PGliteDialect implements Dialect {
  readonly #config: PGliteDialectConfig
  constructor(config: PGliteDialectConfig) {
    this.#config = config
  }
  createDriver(): Driver {
    return new PGliteDriver(this.#config)
  }
  createQueryCompiler(): QueryCompiler {
    return new PostgresQueryCompiler()
  }
  createAdapter(): DialectAdapter {
    return new PostgresAdapter()
  }
  /** Kysely's PostgreSQL introspector (`db.introspection`). */
  createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    return new PostgresIntrospector(db)
  }
}

class PGliteDriver extends EmbeddedTransactions implements Driver {
  readonly #config: PGliteDialectConfig
  #pglite: PGliteLike | undefined
  #connection: PGliteConnection | undefined
  /** The tail of the queue of connection holders. */
  #queue: Promise<void> = Promise.resolve()
  #release: (() => void) | undefined

  constructor(config: PGliteDialectConfig) {
    super()
    this.#config = config
  }

  async init(): Promise<void> {
    const { pglite } = this.#config
    this.#pglite = typeof pglite === 'function' ? await pglite() : pglite
    this.#connection = new PGliteConnection(this.#pglite)
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    const previous = this.#queue
    let release!: () => void
    this.#queue = new Promise<void>((resolve) => {
      release = resolve
    })
    await previous
    this.#release = release
    return this.#connection as PGliteConnection
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    let statement = 'begin'
    if (settings.isolationLevel !== undefined || settings.accessMode !== undefined) {
      statement = 'start transaction'
      if (settings.isolationLevel !== undefined) statement += ` isolation level ${settings.isolationLevel}`
      if (settings.accessMode !== undefined) statement += ` ${settings.accessMode}`
    }
    await connection.executeQuery(CompiledQuery.raw(statement))
  }

  override async commitTransaction(connection: DatabaseConnection): Promise<void> {
    // A COMMIT of a transaction an earlier error aborted silently rolls back; PGlite does not report
    // the command tag, so ask first and make the rollback loud.
    try {
      await connection.executeQuery(CompiledQuery.raw('select 1'))
    } catch (error) {
      await connection.executeQuery(CompiledQuery.raw('rollback'))
      throw error
    }
    await connection.executeQuery(CompiledQuery.raw('commit'))
  }

  async releaseConnection(): Promise<void> {
    const release = this.#release
    this.#release = undefined
    release?.()
  }

  async destroy(): Promise<void> {
    if (this.#pglite !== undefined && this.#config.closeOnDestroy !== false && this.#pglite.closed !== true) {
      await this.#queue
      await this.#pglite.close()
    }
  }
}


class PGliteConnection implements DatabaseConnection {
  readonly #pglite: PGliteLike
  constructor(pglite: PGliteLike) {
    this.#pglite = pglite
  }

  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const result = await this.#pglite.query<R>(compiledQuery.sql, [...compiledQuery.parameters])
    const kind = compiledQuery.query.kind
    const changes = kind === 'InsertQueryNode' || kind === 'UpdateQueryNode' || kind === 'DeleteQueryNode' || kind === 'MergeQueryNode'
    return changes && result.affectedRows !== undefined
      ? { rows: result.rows, numAffectedRows: BigInt(result.affectedRows) }
      : { rows: result.rows }
  }

  // eslint-disable-next-line require-yield
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('PGliteDialect does not support streaming; use execute()')
  }
}
