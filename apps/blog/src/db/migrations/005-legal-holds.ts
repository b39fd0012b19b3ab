import type { Kysely } from 'kysely'
import { installSoftDeletes } from '@tombstone/kysely'
import { blogSoftDeletes } from '../soft-deletes.ts'

/**
 * Legal holds and deletions as objects: the holds tables and their audited functions, the guard
 * refusing the removal of a held row for every client, the audit's `hold_id` column and its
 * `hold`/`release` actions, and the audit's deletion index. `installSoftDeletes` is idempotent:
 * on a fresh database (where 002 installed all of it already) this changes nothing.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await installSoftDeletes(db, blogSoftDeletes(30))
}
