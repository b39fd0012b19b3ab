import { InvalidArgumentError } from 'commander'
import { loadConfig, type Config } from '../config.ts'
import { connect, type DatabaseHandle } from '../db/connect.ts'
import { migrate } from '../db/migrate.ts'
import { blogSoftDeletes } from '../db/soft-deletes.ts'

/** Where a command writes, and the environment it reads: the process's, or a test's. */
export interface CliIO {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean }
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean }
  readonly env: NodeJS.ProcessEnv
}

/** Options every command takes. */
export interface CommonOptions {
  readonly json?: boolean
  readonly databaseUrl?: string
}

/** A failure to report in one line, with exit code 1 (2 is for bad arguments, from commander). */
export class CliError extends Error {
  readonly exitCode: number
  constructor(message: string, exitCode = 1) {
    super(message)
    this.name = 'CliError'
    this.exitCode = exitCode
  }
}

/** The configuration from the environment, with `--database-url` winning over `DATABASE_URL`. */
export function configOf(io: CliIO, options: CommonOptions): Config {
  return loadConfig({ ...io.env, ...(options.databaseUrl === undefined ? {} : { DATABASE_URL: options.databaseUrl }) })
}

/**
 * Opens the database (migrated), runs `work`, and always closes it.
 *
 * @example
 * ```ts
 * await usingDatabase(io, options, async ({ db }) => db.selectFrom('posts').selectAll().execute())
 * ```
 */
export async function usingDatabase<T>(io: CliIO, options: CommonOptions, work: (handle: DatabaseHandle, config: Config) => Promise<T>): Promise<T> {
  const config = configOf(io, options)
  let handle: DatabaseHandle
  try {
    handle = await connect(config.databaseUrl, blogSoftDeletes(config.retentionDays), { poolSize: 4 })
  } catch (error) {
    throw new CliError(`Cannot open the database: ${(error as Error).message}`)
  }
  try {
    await migrate(handle.db)
    return await work(handle, config)
  } finally {
    await handle.close()
  }
}

/** Writes a result: JSON on stdout with `--json`, else the human text. */
export function print(io: CliIO, options: CommonOptions, data: unknown, text: () => string): void {
  io.stdout.write(options.json === true ? `${JSON.stringify(data, null, 2)}\n` : `${text()}\n`)
}

/** The units a duration option takes, in milliseconds. */
const DURATION_UNITS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000, ms: 1 } as const

/** What a duration option's help says about its format. */
export const DURATION_HELP = '30d, 12h, 15m, 45s or 500ms; a bare number is days'

/**
 * Parses `30d`, `12h`, `15m`, `45s`, `500ms` into milliseconds. A bare number is days (the unit the
 * API's `older_than_days` uses), as {@link DURATION_HELP} says in every option's help.
 *
 * @example
 * ```ts
 * parseDuration('12h') // 43_200_000
 * parseDuration('30') // 2_592_000_000 (30 days)
 * ```
 */
export function parseDuration(value: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|[dhms]?)$/i.exec(value.trim())
  if (match === null) throw new InvalidArgumentError(`expected a duration such as ${DURATION_HELP}`)
  const unit = (match[2] === '' ? 'd' : (match[2] as string).toLowerCase()) as keyof typeof DURATION_UNITS
  return Number(match[1]) * DURATION_UNITS[unit]
}

/** "1 row", "2 rows": a count with its noun, singular for one. */
export function plural(n: number, singular: string, pluralForm = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : pluralForm}`
}

/** A positive integer argument. */
export function positiveInteger(max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError('expected a whole number')
    const number = Number(value)
    if (number < 1 || number > max) throw new InvalidArgumentError(`expected 1 to ${max}`)
    return number
  }
}

/** A non-negative integer argument. */
export function count(max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError('expected a whole number')
    const number = Number(value)
    if (number > max) throw new InvalidArgumentError(`expected at most ${max}`)
    return number
  }
}

/** A share argument: between 0 and 1, or above 0 and at most 1 when `aboveZero`. */
function shareOf(aboveZero: boolean) {
  const expected = aboveZero ? 'expected a number above 0 and at most 1' : 'expected a number between 0 and 1'
  return (value: string): number => {
    const number = Number(value)
    if (value.trim() === '' || !Number.isFinite(number) || number < 0 || number > 1 || (aboveZero && number === 0)) throw new InvalidArgumentError(expected)
    return number
  }
}

/** A share between 0 and 1. */
export const share = shareOf(false)

/** A share above 0 and at most 1 (a duty cycle). */
export const positiveShare = shareOf(true)

export const ENTITY_TABLES = { post: 'posts', comment: 'comments', user: 'users' } as const
export type EntityName = keyof typeof ENTITY_TABLES

export function entity(value: string): EntityName {
  if (!(value in ENTITY_TABLES)) throw new InvalidArgumentError('expected post, comment or user')
  return value as EntityName
}
