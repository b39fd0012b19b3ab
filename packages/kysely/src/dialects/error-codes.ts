/**
 * SQLite's and MariaDB/MySQL's errors, read by their own codes and turned into the SQLSTATE the
 * toolkit classifies (so one `classifyDatabaseError` serves every dialect):
 *
 * | database | field read | value | SQLSTATE |
 * | --- | --- | --- | --- |
 * | SQLite (node:sqlite) | `errcode` | 2067 `SQLITE_CONSTRAINT_UNIQUE`, 1555 `SQLITE_CONSTRAINT_PRIMARYKEY` | 23505 |
 * | SQLite | `errcode` | 787 `SQLITE_CONSTRAINT_FOREIGNKEY` | 23503 |
 * | SQLite | `errcode` 1811 `SQLITE_CONSTRAINT_TRIGGER` | the toolkit's own `RAISE` (`TB00n {json}`) | TB00n |
 * | MariaDB/MySQL (mysql2) | `errno` | 1062 `ER_DUP_ENTRY` | 23505 |
 * | MariaDB/MySQL | `errno` | 1451, 1452 (row referenced / parent missing) | 23503 |
 * | MariaDB/MySQL | `sqlState` | the toolkit's own `SIGNAL SQLSTATE 'TB00n'` | TB00n |
 *
 * A message is never read, except for the one a toolkit trigger raised on SQLite, whose only
 * channel is the message: it starts with the code and carries its details as JSON.
 *
 * @module
 */
/** SQLite's extended result codes the toolkit classifies (node:sqlite puts them in `errcode`). */
export const SQLITE_CODES = {
  /** SQLITE_CONSTRAINT_UNIQUE */
  unique: 2067,
  /** SQLITE_CONSTRAINT_PRIMARYKEY */
  primaryKey: 1555,
  /** SQLITE_CONSTRAINT_FOREIGNKEY */
  foreignKey: 787,
  /** SQLITE_CONSTRAINT_TRIGGER: a trigger's RAISE(ABORT). */
  trigger: 1811,
} as const

const OWN_CODE = /^(TB\d{3}) (\{.*\})$/s

/** Fields of a toolkit refusal raised by a trigger (table, ids), parsed from its JSON detail. */
export interface ForeignDetail {
  readonly [name: string]: string | undefined
}

function sqliteOwn(error: Record<string, unknown>): { state: string; detail: ForeignDetail } | undefined {
  if (error.errcode !== SQLITE_CODES.trigger || typeof error.message !== 'string') return undefined
  const match = OWN_CODE.exec(error.message)
  if (match === null) return undefined
  try {
    const parsed: unknown = JSON.parse(match[2] as string)
    return { state: match[1] as string, detail: typeof parsed === 'object' && parsed !== null ? (parsed as ForeignDetail) : {} }
  } catch {
    return { state: match[1] as string, detail: {} }
  }
}

function isSqlite(error: Record<string, unknown>): boolean {
  return error.code === 'ERR_SQLITE_ERROR' && typeof error.errcode === 'number'
}

function isMysql(error: Record<string, unknown>): boolean {
  return typeof error.errno === 'number' && typeof error.sqlState === 'string'
}

/** The SQLSTATE a SQLite or MariaDB/MySQL error stands for, or undefined. @internal */
export function foreignSqlState(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined
  const e = error as Record<string, unknown>
  if (isSqlite(e)) {
    const own = sqliteOwn(e)
    if (own !== undefined) return own.state
    if (e.errcode === SQLITE_CODES.unique || e.errcode === SQLITE_CODES.primaryKey) return '23505'
    if (e.errcode === SQLITE_CODES.foreignKey) return '23503'
    return undefined
  }
  if (isMysql(e)) {
    if (/^TB\d{3}$/.test(e.sqlState as string)) return e.sqlState as string
    if (e.errno === 1062) return '23505'
    if (e.errno === 1451 || e.errno === 1452) return '23503'
    // 1213 deadlock, 1205 lock wait timeout: the transaction (or statement) lost a conflict.
    if (e.errno === 1213) return '40P01'
    return undefined
  }
  return undefined
}

/** The details of a toolkit refusal raised on SQLite or MariaDB/MySQL (JSON in the message). @internal */
export function foreignDetail(error: unknown): ForeignDetail {
  if (typeof error !== 'object' || error === null) return {}
  const e = error as Record<string, unknown>
  if (isSqlite(e)) return sqliteOwn(e)?.detail ?? {}
  if (isMysql(e) && /^TB\d{3}$/.test(e.sqlState as string)) {
    const text = typeof e.sqlMessage === 'string' ? e.sqlMessage : typeof e.message === 'string' ? e.message : ''
    try {
      const parsed: unknown = JSON.parse(text)
      return typeof parsed === 'object' && parsed !== null ? (parsed as ForeignDetail) : {}
    } catch {
      return {}
    }
  }
  return {}
}
