import type { Kysely } from 'kysely'

/**
 * Nothing on SQLite: it has no deferred triggers, so a parent's soft delete is checked for active
 * children by the toolkit (`softDelete` cascades, or refuses with `cascade: false`), not by the
 * database (docs/dialects.md). Kept under the same name so that both dialects list the same
 * migrations.
 */
export async function up(_db: Kysely<any>): Promise<void> {}
