import type { Kysely } from 'kysely'

/**
 * Nothing on SQLite: its hard-delete grant is one row the toolkit writes and removes inside its
 * transaction, with no grants kept to prune. Kept under the same name so that both dialects list
 * the same migrations.
 */
export async function up(_db: Kysely<any>): Promise<void> {}
