import { sql, type Kysely } from 'kysely'
import { grantSoftDeleteRuntime, InvalidArgumentError } from '@tombstone/kysely'
import { blogSoftDeletes } from './soft-deletes.ts'

const ROLE = /^[A-Za-z_][A-Za-z0-9_$]*$/

/**
 * Grants an existing role what the service needs to run, and no more: the toolkit's part (users,
 * posts, comments, tokens: read and write, deletes guarded; the audit: read), the login failures
 * table, and reading the migrations table (to check the schema at start). Migrations, DDL and
 * `truncate` stay with the owner. Run it as the owner after `migrate`.
 *
 * @example
 * ```ts
 * await grantRuntime(ownerDb, 'blog_app')
 * ```
 */
export async function grantRuntime(db: Kysely<any>, role: string): Promise<void> {
  if (!ROLE.test(role)) throw new InvalidArgumentError(`Invalid role name "${role}"`)
  const exists = await sql<{ found: boolean }>`select exists (select 1 from pg_roles where rolname = ${role}) as found`.execute(db)
  if (exists.rows[0]?.found !== true) throw new InvalidArgumentError(`The role "${role}" does not exist: create it first (create role ${role} login password '…')`)
  await grantSoftDeleteRuntime(db, blogSoftDeletes(30), role)
  const grantee = sql.id(role)
  await sql`grant select, insert, delete on table login_failures to ${grantee}`.execute(db)
  await sql`grant select on table kysely_migration to ${grantee}`.execute(db)
  await sql`grant select, insert, update on table bootstrap_state to ${grantee}`.execute(db)
  await sql`grant select, insert, delete on table registrations to ${grantee}`.execute(db)
}
