import { HttpProblem } from '@tombstone/fastify'
import { sql, type Kysely } from 'kysely'
import { classifyDatabaseError, isTombstoneError, SQLSTATE, sqlStateOf, type RestoreSet, type RowKey } from '@tombstone/kysely'
import { now } from '../db/sql-dialect.ts'

/** Human names of the unique indexes a write can hit. */
const UNIQUE_FIELDS: Readonly<Record<string, string>> = {
  users_username_active_key: 'username',
  users_email_active_key: 'email',
  posts_slug_active_key: 'slug',
}

/**
 * Turns a unique violation (SQLSTATE 23505) on insert or update into a 409 problem naming the field;
 * anything else is rethrown.
 */
export function conflictOnUniqueViolation(error: unknown, describe: (field: string) => string): never {
  if (sqlStateOf(error) === SQLSTATE.uniqueViolation) {
    const constraint = (error as { constraint?: string }).constraint ?? ''
    const field = UNIQUE_FIELDS[constraint] ?? 'value'
    throw new HttpProblem('conflict', describe(field), { cause: error, extensions: { constraint, fields: [field] } })
  }
  throw error
}

/** The field a unique index covers, for conflict messages. */
export function fieldOfConstraint(constraint: string | undefined): string {
  return (constraint !== undefined && UNIQUE_FIELDS[constraint]) || 'value'
}

/** `include_deleted` / `only_deleted` are for admins; others get 403 whatever the target. */
export function visibilityFor(
  isAdmin: boolean,
  query: { include_deleted?: boolean; only_deleted?: boolean },
): 'exclude' | 'include' | 'only' {
  if (query.include_deleted !== true && query.only_deleted !== true) return 'exclude'
  if (!isAdmin) throw new HttpProblem('forbidden', 'include_deleted and only_deleted are for admins')
  return query.only_deleted === true ? 'only' : 'include'
}

/** Escapes `%`, `_` and `\` so that a search term matches literally in `ILIKE … ESCAPE '\'`. */
export function likePattern(term: string): string {
  return `%${term.replace(/[\\%_]/g, (char) => `\\${char}`)}%`
}

/**
 * Maps the database's refusal of an active row under a deleted parent (SQLSTATE TB003, raised by
 * the toolkit's triggers whatever runs concurrently) to what the client should hear: its account was
 * deleted meanwhile (401), or the post it writes under was (404). Other errors pass through.
 */
export function parentGone(error: unknown): never {
  const classified = classifyDatabaseError(error)
  if (isTombstoneError(classified, 'PARENT_DELETED')) {
    if (classified.parentTable === 'users') {
      throw new HttpProblem('unauthorized', 'The account was deleted', { cause: error, headers: { 'www-authenticate': 'Bearer realm="api"' } })
    }
    throw new HttpProblem('not-found', `The ${classified.parentTable === 'posts' ? 'post' : 'parent'} was deleted`, { cause: error })
  }
  throw error
}

/**
 * What a restore writes besides its own columns: every restored row's `updated_at` moves to now, so
 * that its ETag differs from the one it had before the delete (its representation went away and
 * came back). Written by the restore's own statement (`RestoreOptions.set`), table by table.
 */
export function touchRestored(db: Kysely<any>): RestoreSet {
  const at = now(db)
  return { users: { updated_at: at }, posts: { updated_at: at }, comments: { updated_at: at } }
}
