import type { Kysely } from 'kysely'

/**
 * Nothing on SQLite: legal holds are PostgreSQL's (docs/dialects.md). Kept under the same name so
 * that both dialects list the same migrations.
 */
export async function up(_db: Kysely<any>): Promise<void> {}
