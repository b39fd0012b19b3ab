import type { Kysely } from 'kysely'

/**
 * Nothing on SQLite: when 005 was written, legal holds were PostgreSQL's. 006 installs them on a
 * SQLite database made before. Kept under the same name so that both dialects list the same
 * migrations.
 */
export async function up(_db: Kysely<any>): Promise<void> {}
