import { sql, type RawBuilder, type SqlBool } from 'kysely'
import type { DatabaseKind } from '@tombstone/testing'

/** `now()` moved by a number of days (negative: the past), in the dialect's words and stamp format. */
export function daysFromNow(kind: DatabaseKind, days: number): RawBuilder<unknown> {
  if (kind === 'sqlite') return sql`strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ${`${days >= 0 ? '+' : ''}${days} days`})`
  if (kind === 'mysql') return sql`now(3) + interval ${days} day`
  return sql`now() + make_interval(days => ${days})`
}

/** `column in (ids)` on every dialect. */
export function idIn(column: string, ids: readonly number[]): RawBuilder<SqlBool> {
  return ids.length === 0 ? sql<SqlBool>`1 = 0` : sql<SqlBool>`${sql.ref(column)} in (${sql.join(ids)})`
}
