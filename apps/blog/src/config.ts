/**
 * The service's environment, parsed once at start. A bad value is a {@link ConfigError} naming the
 * variable: the service refuses to start rather than run with a guess.
 */
export interface Config {
  readonly host: string
  readonly port: number
  /** Undefined: embedded PGlite under `./.data`; `memory://`: in-memory PGlite; `postgres://…`: a server; `sqlite://<file>`: SQLite. */
  readonly databaseUrl: string | undefined
  /**
   * PostgreSQL only: a streaming replica (or a pooler in front of replicas) that public reads may be
   * served from (docs/scaling.md). Undefined: every query goes to `databaseUrl`.
   */
  readonly databaseReadUrl: string | undefined
  /**
   * PostgreSQL: use named (server-side) prepared statements for the service's repeated queries.
   * Off by default: PgBouncer in transaction pooling keeps them only from 1.21 on (with
   * `max_prepared_statements`); Debian's is older.
   */
  readonly preparedStatements: boolean
  readonly adminPassword: string | undefined
  readonly demoData: boolean
  readonly retentionDays: number
  /** 0 turns the periodic purge off. `PURGE_INTERVAL_SECONDS`, when set, wins (as a fraction of minutes). */
  readonly purgeIntervalMinutes: number
  /** How long one batch of the periodic purge should take (`targetBatchMs`); 0: batches of 1,000 rows. */
  readonly purgeTargetBatchMs: number
  /** The share of time the periodic purge may spend in its batches (`dutyCycle`), above 0 and at most 1. */
  readonly purgeDutyCycle: number
  /** Seconds during which the one who deleted something may undo it (`POST /deletions/{id}/undo`); 0 turns undo off. */
  readonly undoWindowSeconds: number
  readonly logLevel: string
  readonly loginMaxFailures: number
  /** Accounts one address may register per hour before `429`. */
  readonly registerMaxPerHour: number
  /** Lifetime of an access token, in seconds. */
  readonly tokenTtlSeconds: number
  /**
   * Apply pending migrations at start (`MIGRATE_ON_START=on`, the default). Off: the service only
   * checks that the schema is up to date and refuses to start otherwise, so that it can run as an
   * application role without DDL rights (migrate with `npm run cli -- migrate` as the owner).
   */
  readonly migrateOnStart: boolean
  /** PostgreSQL: connections per instance. */
  readonly poolSize: number
  /**
   * PostgreSQL: a statement running longer is cancelled (503 to the client). 0: the service sends
   * none (the role's or server's setting applies), as through PgBouncer, which refuses it at connect.
   */
  readonly statementTimeoutMs: number
  /** PostgreSQL: waiting longer for a lock gives up (503 to the client). 0: the service sends none. */
  readonly lockTimeoutMs: number
  /** PostgreSQL: waiting longer for a free connection of the pool gives up (503 to the client). */
  readonly acquireTimeoutMs: number
  /**
   * Whom to believe about the client's address (`X-Forwarded-For`): `false` (the socket's peer),
   * `true` (every proxy), a number of proxy hops, or a list of proxy addresses or CIDRs. Behind a
   * balancer, without it every client shares the balancer's address (and its login throttle).
   */
  readonly trustProxy: boolean | number | string
  /** scrypt cost of new password hashes, log2 of N (OWASP: 17); older hashes are upgraded at sign-in. */
  readonly passwordCost: number
}

/** A variable of the environment has a value the service cannot use. */
export class ConfigError extends Error {
  readonly variable: string
  constructor(variable: string, message: string) {
    super(`${variable}: ${message}`)
    this.name = 'ConfigError'
    this.variable = variable
  }
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]
  if (raw === undefined || raw.trim() === '') return fallback
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(name, `"${raw}" is not a whole number`)
  const value = Number(raw)
  if (value < min || value > max) throw new ConfigError(name, `${value} is outside ${min}–${max}`)
  return value
}

/** A share: a decimal number above 0 and at most 1 (`0.25`). */
function share(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name]
  if (raw === undefined || raw.trim() === '') return fallback
  if (!/^(0(\.\d+)?|1(\.0+)?|\.\d+)$/.test(raw.trim())) throw new ConfigError(name, `"${raw}" is not a decimal number between 0 and 1`)
  const value = Number(raw)
  if (value <= 0) throw new ConfigError(name, 'must be above 0 (1: no pacing)')
  return value
}

function trustProxyOf(raw: string | undefined): boolean | number | string {
  const value = (raw ?? 'off').trim().toLowerCase()
  if (value === 'off' || value === '' || value === 'false') return false
  if (value === 'on' || value === 'true') return true
  if (/^\d{1,2}$/.test(value)) return Number(value)
  if (/^[0-9a-f.:/]+(\s*,\s*[0-9a-f.:/]+)*$/.test(value)) return value
  throw new ConfigError('TRUST_PROXY', `"${raw}" is not off, on, a hop count or a list of addresses`)
}

/**
 * Reads the configuration from an environment (defaults as in the HTTP contract).
 *
 * @example
 * ```ts
 * const config = loadConfig({ ...process.env, DATABASE_URL: 'memory://' })
 * ```
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const migrateOnStart = (env.MIGRATE_ON_START ?? 'on').trim().toLowerCase()
  if (!['on', 'off'].includes(migrateOnStart)) throw new ConfigError('MIGRATE_ON_START', `"${env.MIGRATE_ON_START}" is neither on nor off`)
  const demo = (env.DEMO_DATA ?? 'on').trim().toLowerCase()
  if (!['on', 'off'].includes(demo)) throw new ConfigError('DEMO_DATA', `"${env.DEMO_DATA}" is neither on nor off`)
  const logLevel = (env.LOG_LEVEL ?? 'info').trim().toLowerCase()
  if (!LEVELS.includes(logLevel)) throw new ConfigError('LOG_LEVEL', `"${env.LOG_LEVEL}" is not one of ${LEVELS.join(', ')}`)
  const databaseUrl = env.DATABASE_URL === undefined || env.DATABASE_URL.trim() === '' ? undefined : env.DATABASE_URL.trim()
  if (databaseUrl !== undefined && !/^(memory:\/\/|postgres(ql)?:\/\/|file:|sqlite:\/\/.)/.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL', 'expected memory://, postgres://…, file:<folder>, sqlite://<file> or sqlite://:memory:')
  }
  const databaseReadUrl = env.DATABASE_READ_URL === undefined || env.DATABASE_READ_URL.trim() === '' ? undefined : env.DATABASE_READ_URL.trim()
  if (databaseReadUrl !== undefined) {
    if (!/^postgres(ql)?:\/\//.test(databaseReadUrl)) throw new ConfigError('DATABASE_READ_URL', 'expected postgres://…')
    if (databaseUrl === undefined || !/^postgres(ql)?:\/\//.test(databaseUrl)) {
      throw new ConfigError('DATABASE_READ_URL', 'needs DATABASE_URL to be a PostgreSQL server (postgres://…) too')
    }
  }
  const prepared = (env.DB_PREPARED_STATEMENTS ?? 'off').trim().toLowerCase()
  if (!['on', 'off'].includes(prepared)) throw new ConfigError('DB_PREPARED_STATEMENTS', `"${env.DB_PREPARED_STATEMENTS}" is neither on nor off`)
  const adminPassword = env.ADMIN_PASSWORD === undefined || env.ADMIN_PASSWORD === '' ? undefined : env.ADMIN_PASSWORD
  if (adminPassword !== undefined && adminPassword.length < 8) throw new ConfigError('ADMIN_PASSWORD', 'must be at least 8 characters')
  return {
    host: env.HOST?.trim() || '127.0.0.1',
    port: integer(env, 'PORT', 3000, 0, 65_535),
    databaseUrl,
    databaseReadUrl,
    preparedStatements: prepared === 'on',
    adminPassword,
    demoData: demo === 'on',
    retentionDays: integer(env, 'RETENTION_DAYS', 30, 0, 36_500),
    purgeIntervalMinutes:
      env.PURGE_INTERVAL_SECONDS === undefined || env.PURGE_INTERVAL_SECONDS.trim() === ''
        ? integer(env, 'PURGE_INTERVAL_MINUTES', 60, 0, 525_600)
        : integer(env, 'PURGE_INTERVAL_SECONDS', 0, 0, 31_536_000) / 60,
    purgeTargetBatchMs: integer(env, 'PURGE_TARGET_BATCH_MS', 0, 0, 60_000),
    purgeDutyCycle: share(env, 'PURGE_DUTY_CYCLE', 1),
    undoWindowSeconds: integer(env, 'UNDO_WINDOW_SECONDS', 600, 0, 86_400),
    logLevel,
    loginMaxFailures: integer(env, 'LOGIN_MAX_FAILURES', 10, 1, 1_000_000),
    registerMaxPerHour: integer(env, 'REGISTER_MAX_PER_HOUR', 20, 1, 1_000_000),
    tokenTtlSeconds: integer(env, 'TOKEN_TTL_SECONDS', 86_400, 60, 31_536_000),
    migrateOnStart: migrateOnStart === 'on',
    poolSize: integer(env, 'DB_POOL_SIZE', 10, 1, 1_000),
    statementTimeoutMs: integer(env, 'DB_STATEMENT_TIMEOUT_MS', 10_000, 0, 3_600_000),
    lockTimeoutMs: integer(env, 'DB_LOCK_TIMEOUT_MS', 5_000, 0, 3_600_000),
    acquireTimeoutMs: integer(env, 'DB_ACQUIRE_TIMEOUT_MS', 5_000, 1, 600_000),
    trustProxy: trustProxyOf(env.TRUST_PROXY),
    passwordCost: integer(env, 'PASSWORD_COST', 17, 14, 20),
  }
}
