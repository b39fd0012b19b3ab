import { sql, type Kysely } from 'kysely'
import { installSoftDeletes } from '@tombstone/kysely'
import { blogSoftDeletes } from '../soft-deletes.ts'

/**
 * Re-installs the database's statement-level triggers on a database installed before they planned
 * for the statement's size: a small statement now runs their transition-table queries as static SQL
 * and a large one through `EXECUTE`, so that a plan made for a 100,000-row cascade is not
 * JIT-compiled again on every later one-row `UPDATE`, nor a one-row plan run on a cascade. On a
 * database 002 installed with them already, nothing to do.
 */
export async function up(db: Kysely<any>): Promise<void> {
  const current = await sql<{ planned: boolean }>`select coalesce(bool_and(prosrc like '%v_small%'), true) as planned
    from pg_proc where proname in ('tombstone_audit_update_posts', 'tombstone_audit_delete_posts')`.execute(db)
  if (current.rows[0]?.planned === true) return
  await installSoftDeletes(db, blogSoftDeletes(30))
}
