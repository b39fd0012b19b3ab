import { InvalidArgumentError } from '@tombstone/kysely'

/** The entity types of the blog, as the API and the CLI name them. */
export type PlanEntity = 'post' | 'comment' | 'user'
const ENTITIES: readonly PlanEntity[] = ['post', 'comment', 'user']

/**
 * What a purge plan fixes, from a dry run: the instant it counted at, its cutoff (or none: rows whose
 * `purge_at` has come), its type (or every table). Executing it purges exactly what the dry run
 * counted, or less.
 */
export interface PurgePlan {
  readonly asOf: Date
  readonly cutoff: Date | undefined
  readonly type: PlanEntity | undefined
}

/**
 * A plan as an opaque token (base64url JSON). It can only narrow a purge (to rows due at its
 * instant), so it needs no signature.
 *
 * @example
 * ```ts
 * const token = encodePlan({ asOf: preview.asOf, cutoff, type: 'post' })
 * ```
 */
export function encodePlan(plan: PurgePlan): string {
  return Buffer.from(
    JSON.stringify({ v: 1, as_of: plan.asOf.toISOString(), cutoff: plan.cutoff?.toISOString() ?? null, type: plan.type ?? null }),
  ).toString('base64url')
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

/** Reads a token made by {@link encodePlan}; anything else is an `InvalidArgumentError`. */
export function decodePlan(token: string): PurgePlan {
  const invalid = () => new InvalidArgumentError('The plan is not one a dry run gave out')
  let value: { v?: unknown; as_of?: unknown; cutoff?: unknown; type?: unknown } | null
  try {
    value = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'))
  } catch {
    throw invalid()
  }
  if (value === null || typeof value !== 'object' || value.v !== 1) throw invalid()
  if (typeof value.as_of !== 'string' || !ISO.test(value.as_of)) throw invalid()
  if (value.cutoff !== null && (typeof value.cutoff !== 'string' || !ISO.test(value.cutoff))) throw invalid()
  if (value.type !== null && !(ENTITIES as readonly unknown[]).includes(value.type)) throw invalid()
  const asOf = new Date(value.as_of)
  const cutoff = value.cutoff === null ? undefined : new Date(value.cutoff as string)
  if (Number.isNaN(asOf.getTime()) || (cutoff !== undefined && Number.isNaN(cutoff.getTime()))) throw invalid()
  return { asOf, cutoff, type: (value.type ?? undefined) as PlanEntity | undefined }
}
