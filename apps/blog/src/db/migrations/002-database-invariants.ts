import type { Kysely } from 'kysely'
import { installSoftDeletes } from '@tombstone/kysely'
import { blogSoftDeletes } from '../soft-deletes.ts'

/**
 * Moves a database made by 001 (before the toolkit held its invariants in the database) to them:
 * deletion stamps set by triggers, the audit written by triggers, the hard-delete guard on a
 * per-transaction grant instead of a setting, and no active row (or token) under a deleted parent.
 * `installSoftDeletes` is idempotent, so on a fresh database this changes nothing.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await installSoftDeletes(db, blogSoftDeletes(30))
}
