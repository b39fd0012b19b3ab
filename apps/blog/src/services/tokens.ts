import { createHash, randomBytes } from 'node:crypto'
import { sql, type Kysely } from 'kysely'
import { QueryShapes } from '@tombstone/kysely'
import type { Database, Role } from '../db/schema.ts'
import { ago, bySql, now, sqliteNowPlusSeconds } from '../db/sql-dialect.ts'

/** A bearer token as handed to a client once; only its hash is stored. */
export interface IssuedToken {
  readonly token: string
  readonly expiresIn: number
}

/** The caller a valid token stands for. */
export interface Actor {
  readonly id: number
  readonly username: string
  readonly role: Role
  readonly isAdmin: boolean
}

const PREFIX = 'tsb_'

const liveToken = new QueryShapes<Database, { hash: string }>()

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url')
}

/**
 * Issues a bearer token for a user: 32 random bytes, stored as a SHA-256 hash, expiring after `ttl`
 * seconds.
 *
 * @example
 * ```ts
 * const { token } = await issueToken(db, user.id, 86_400)
 * ```
 */
export async function issueToken(db: Kysely<Database>, userId: number, ttlSeconds: number): Promise<IssuedToken> {
  const token = PREFIX + randomBytes(32).toString('base64url')
  await db
    .insertInto('tokens')
    .values({
      user_id: userId,
      token_hash: hashToken(token),
      expires_at: bySql(db, () => sql<Date>`now() + make_interval(secs => ${ttlSeconds})`, () => sqliteNowPlusSeconds(ttlSeconds)),
    })
    .execute()
  return { token, expiresIn: ttlSeconds }
}

/**
 * The actor of a token, or undefined when it is malformed, unknown, expired, revoked, or its user is
 * deleted (the read filter hides deleted users, so a deleted account's tokens stop working at once).
 */
export async function verifyToken(db: Kysely<Database>, token: string): Promise<Actor | undefined> {
  if (!token.startsWith(PREFIX) || token.length > 200) return undefined
  // Every authenticated request runs it: compiled once (QueryShapes).
  const [row] = await liveToken.execute(db, 'live', { hash: hashToken(token) }, (db, $) =>
    db
      .selectFrom('tokens')
      .innerJoin('users', 'users.id', 'tokens.user_id')
      .select(['users.id', 'users.username', 'users.role'])
      .where('tokens.token_hash', '=', $.hash)
      .where('tokens.revoked_at', 'is', null)
      .where('tokens.expires_at', '>', now(db)),
  )
  return row === undefined ? undefined : { id: row.id, username: row.username, role: row.role, isAdmin: row.role === 'admin' }
}

/** Revokes every live token of the given users (in the caller's transaction). */
export async function revokeTokens(db: Kysely<Database>, userIds: readonly number[]): Promise<void> {
  if (userIds.length === 0) return
  await db
    .updateTable('tokens')
    .set({ revoked_at: now(db) })
    .where('user_id', 'in', userIds)
    .where('revoked_at', 'is', null)
    .execute()
}

/** Revokes one token (the one presented); true when it was live. */
export async function revokeToken(db: Kysely<Database>, token: string): Promise<boolean> {
  const result = await db
    .updateTable('tokens')
    .set({ revoked_at: now(db) })
    .where('token_hash', '=', hashToken(token))
    .where('revoked_at', 'is', null)
    .executeTakeFirst()
  return Number(result.numUpdatedRows) > 0
}

/**
 * Removes tokens expired or revoked more than a day ago, and login failures older than a day (the
 * throttle looks back 15 minutes): housekeeping the periodic purge runs. Returns what it removed.
 */
export async function pruneCredentials(db: Kysely<Database>): Promise<{ tokens: number; loginFailures: number }> {
  const tokens = await db
    .deleteFrom('tokens')
    .where((eb) => eb.or([eb('expires_at', '<', ago(db, sql`now() - interval '1 day'`, '-1 day')), eb('revoked_at', '<', ago(db, sql`now() - interval '1 day'`, '-1 day'))]))
    .executeTakeFirst()
  const failures = await db.deleteFrom('login_failures').where('at', '<', ago(db, sql`now() - interval '1 day'`, '-1 day')).executeTakeFirst()
  await db.deleteFrom('registrations').where('at', '<', ago(db, sql`now() - interval '1 day'`, '-1 day')).execute()
  return { tokens: Number(tokens.numDeletedRows), loginFailures: Number(failures.numDeletedRows) }
}
