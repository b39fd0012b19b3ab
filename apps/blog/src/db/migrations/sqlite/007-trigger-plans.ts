import type { Kysely } from 'kysely'

/**
 * Nothing on SQLite: its triggers are row-level and keep no plan made for another statement's
 * size. Kept under the same name so that both dialects list the same migrations.
 */
export async function up(_db: Kysely<any>): Promise<void> {}
