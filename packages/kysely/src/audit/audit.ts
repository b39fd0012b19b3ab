import { sql, type Kysely } from 'kysely'
import { InvalidArgumentError, InvalidConfigurationError, sqlStateOf } from '../errors.ts'
import { notInstalled } from '../operations/force-delete.ts'
import { AUDIT_ACTIONS, contextOf, type AuditAction } from '../operations/context.ts'
import { dialectKindOf } from '../dialects/adapter.ts'

/** One row of the audit trail: one action on one row. It holds ids, never row content. */
export interface AuditEntry {
  readonly id: number
  readonly at: Date
  readonly action: AuditAction
  /** The table, as declared. */
  readonly entity: string
  /** The row's key, as text. */
  readonly entityId: string
  readonly actor: string | null
  readonly reason: string | null
  readonly deletionId: string | null
}

/** Filters of {@link readAudit}. */
export interface AuditQuery {
  readonly entity?: string
  readonly entityId?: string | number
  readonly action?: AuditAction
  readonly actor?: string | number
  readonly deletionId?: string
  /** Entries with an id below this one (keyset pagination, newest first). */
  readonly beforeId?: number
  /** Defaults to 100; at most 1,000. */
  readonly limit?: number
}

/**
 * Reads the audit trail, newest first. Every row a cascade or a bulk operation reached has its own
 * entry, so `{ entity, entityId }` finds it.
 *
 * @example
 * ```ts
 * const history = await readAudit(db, { entity: 'comments', entityId: 42 })
 * // [{ action: 'restore', ... }, { action: 'soft_delete', deletionId: '…', actor: '7', ... }]
 * ```
 */
export async function readAudit<DB>(db: Kysely<DB>, query: AuditQuery = {}): Promise<AuditEntry[]> {
  const table = contextOf(db as Kysely<any>).definition.auditTable
  if (table === undefined) throw new InvalidConfigurationError('The definition has no audit table (audit: true)')
  const limit = query.limit ?? 100
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) throw new InvalidArgumentError('limit must be between 1 and 1000')
  if (query.action !== undefined && !(AUDIT_ACTIONS as readonly string[]).includes(query.action)) {
    throw new InvalidArgumentError(`action must be one of ${AUDIT_ACTIONS.join(', ')}`)
  }
  let select = (db as Kysely<any>)
    .selectFrom(table)
    .select(['id', 'at', 'action', 'entity', 'entity_id', 'actor', 'reason', 'deletion_id'])
    .orderBy('id', 'desc')
    .limit(limit)
  if (query.entity !== undefined) select = select.where('entity', '=', query.entity)
  if (query.entityId !== undefined) select = select.where('entity_id', '=', String(query.entityId))
  if (query.action !== undefined) select = select.where('action', '=', query.action)
  if (query.actor !== undefined) select = select.where('actor', '=', String(query.actor))
  if (query.deletionId !== undefined) select = select.where(dialectKindOf(db as Kysely<any>) === 'postgres' ? sql`deletion_id::text` : sql.ref('deletion_id'), '=', query.deletionId)
  if (query.beforeId !== undefined) select = select.where('id', '<', query.beforeId)
  const rows = await select.execute().catch((error: unknown) => {
    // 42P01 undefined_table, from the one table this statement reads: the audit was never installed.
    if (sqlStateOf(error) === '42P01') throw notInstalled(error)
    throw error
  })
  return rows.map((row) => ({
    id: Number(row.id),
    at: new Date(row.at as Date),
    action: row.action as AuditAction,
    entity: row.entity as string,
    entityId: row.entity_id as string,
    actor: row.actor as string | null,
    reason: row.reason as string | null,
    deletionId: row.deletion_id as string | null,
  }))
}
