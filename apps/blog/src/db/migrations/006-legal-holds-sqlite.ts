import type { Kysely } from 'kysely'

/**
 * Nothing on PostgreSQL: 005 installed legal holds. SQLite's 006 installs them on a SQLite database
 * made before they existed there. Kept under the same name so that both dialects list the same
 * migrations.
 */
export async function up(_db: Kysely<any>): Promise<void> {}
