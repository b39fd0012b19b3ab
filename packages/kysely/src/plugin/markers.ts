import { RawNode, SelectModifierNode, type Expression, type OperationNode } from 'kysely'
import { InvalidArgumentError } from '../errors.ts'

/**
 * What a query sees of one soft-deletable table:
 * - `'exclude'`: active rows only (the default everywhere),
 * - `'include'`: active and deleted rows,
 * - `'only'`: deleted rows only.
 */
export type Visibility = 'exclude' | 'include' | 'only'

/** The visibilities, for validation and exhaustive switches. */
export const VISIBILITIES = ['exclude', 'include', 'only'] as const satisfies readonly Visibility[]

const SCOPE_PREFIX = '/*tombstone:scope '
const TARGET_PREFIX = '/*tombstone:target '
const HARD_DELETE_MARKER = '/*tombstone:hard-delete*/'
const SUFFIX = '*/'
const KEY = /^(\*|[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?)$/

/**
 * A query modifier the plugin reads. It is a SQL comment, so a query built with it and run without
 * the plugin stays valid. Carried as text (not object identity) so that plugins running before ours,
 * which clone nodes, keep it intact; writing the same comment by hand asks for the same thing as the
 * function that makes it. Only a whole end modifier of exactly this form is read: a comment inside
 * other SQL is the user's.
 */
class Marker implements Expression<unknown> {
  readonly #text: string
  constructor(text: string) {
    this.#text = text
  }
  get expressionType(): unknown {
    return undefined
  }
  toOperationNode(): OperationNode {
    return RawNode.createWithSql(this.#text)
  }
}

/** The builders a marker can be added to: every Kysely query builder has `modifyEnd`. */
export interface ModifiableBuilder {
  modifyEnd(modifier: Expression<any>): this
}

/** Table names or aliases mapped to what the query sees of them. `'*'` stands for every table. */
export type VisibilityMap<Name extends string = string> = { readonly [K in Name | '*']?: Visibility }

/**
 * Lets one query see deleted rows, per table or alias, for use with `$call`. Tables not named keep
 * the default (active rows only). Applies to the query it is called on and every query nested in it
 * (subqueries, CTEs, set operations); a nested `withDeleted` overrides it for its own subtree.
 * A key is matched against aliases first, then table names; `'*'` matches every table.
 *
 * @example
 * ```ts
 * // Only deleted posts, with their comments deleted or not, and only active authors.
 * const rows = await db
 *   .selectFrom('posts')
 *   .leftJoin('comments', 'comments.post_id', 'posts.id')
 *   .innerJoin('users', 'users.id', 'posts.author_id')
 *   .select(['posts.id', 'comments.id as comment_id', 'users.username'])
 *   .$call(withDeleted({ posts: 'only', comments: 'include' }))
 *   .execute()
 * ```
 */
export function withDeleted<const Name extends string>(
  visibility: VisibilityMap<Name>,
): <QB extends ModifiableBuilder>(builder: QB) => QB {
  const marker = new Marker(`${SCOPE_PREFIX}${JSON.stringify(checkedEntries(visibility, 'withDeleted'))}${SUFFIX}`)
  return (builder) => builder.modifyEnd(marker)
}

function checkedEntries(visibility: VisibilityMap, caller: string): Record<string, Visibility> {
  const entries = Object.entries(visibility as Record<string, Visibility | undefined>).filter(
    (entry): entry is [string, Visibility] => entry[1] !== undefined,
  )
  for (const [key, value] of entries) {
    if (!KEY.test(key)) throw new InvalidArgumentError(`${caller}: invalid table or alias "${key}"`)
    if (!(VISIBILITIES as readonly string[]).includes(value)) {
      throw new InvalidArgumentError(`${caller}: "${String(value)}" for "${key}" is not one of ${VISIBILITIES.join(', ')}`)
    }
  }
  return Object.fromEntries(entries)
}

/**
 * Like {@link withDeleted}, but for the query's own tables only (its FROM items, joins and UPDATE
 * or DELETE target): queries nested in it keep their own visibility. The operations use it so that
 * the scope they need for their target rows never leaks into a caller's `where` subqueries.
 *
 * @example
 * ```ts
 * // Deleted users, but a subquery on users in the where still sees active users only.
 * db.selectFrom('users').selectAll().where('id', 'in', db.selectFrom('users').select('id'))
 *   .$call(targetVisibility({ users: 'only' }))
 * ```
 * @internal
 */
export function targetVisibility<const Name extends string>(
  visibility: VisibilityMap<Name>,
): <QB extends ModifiableBuilder>(builder: QB) => QB {
  const marker = new Marker(`${TARGET_PREFIX}${JSON.stringify(checkedEntries(visibility, 'targetVisibility'))}${SUFFIX}`)
  return (builder) => builder.modifyEnd(marker)
}

/**
 * Marks a `DELETE` on a soft-deletable table as intended. Used by {@link forceDelete} and the purge;
 * prefer those. The database guard still needs the transaction's opt-in ({@link allowHardDelete}).
 *
 * @example
 * ```ts
 * await db.deleteFrom('posts').where('id', '=', 1).$call(hardDelete()).execute()
 * ```
 */
export function hardDelete(): <QB extends ModifiableBuilder>(builder: QB) => QB {
  const marker = new Marker(HARD_DELETE_MARKER)
  return (builder) => builder.modifyEnd(marker)
}

/** What the markers of one query node say. */
export interface Markers {
  /** For the query and the queries nested in it. */
  readonly scope: ReadonlyMap<string, Visibility> | undefined
  /** For the query's own tables only. */
  readonly target: ReadonlyMap<string, Visibility> | undefined
  readonly hardDelete: boolean
}

function markerText(node: OperationNode): string | undefined {
  const raw = SelectModifierNode.is(node) ? node.rawModifier : node
  if (raw === undefined || !RawNode.is(raw) || raw.sqlFragments.length !== 1 || raw.parameters.length !== 0) {
    return undefined
  }
  const text = raw.sqlFragments[0] as string
  return text === HARD_DELETE_MARKER || ((text.startsWith(SCOPE_PREFIX) || text.startsWith(TARGET_PREFIX)) && text.endsWith(SUFFIX))
    ? text
    : undefined
}

/** The visibility map a scope marker carries, or undefined when its JSON is not one. */
function parseScope(json: string): Map<string, Visibility> | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(json)
  } catch {
    return undefined
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined
  const map = new Map<string, Visibility>()
  for (const [key, value] of Object.entries(parsed)) {
    if (!KEY.test(key) || !(VISIBILITIES as readonly unknown[]).includes(value)) return undefined
    map.set(key, value as Visibility)
  }
  return map
}

/**
 * Splits a query node's end modifiers into the markers and the rest.
 * @internal
 */
export function readMarkers(endModifiers: readonly OperationNode[] | undefined): {
  markers: Markers | undefined
  rest: readonly OperationNode[] | undefined
} {
  if (endModifiers === undefined || endModifiers.length === 0) return { markers: undefined, rest: endModifiers }
  let scope: Map<string, Visibility> | undefined
  let target: Map<string, Visibility> | undefined
  let hard = false
  const rest: OperationNode[] = []
  for (const modifier of endModifiers) {
    const text = markerText(modifier)
    const prefix = text?.startsWith(TARGET_PREFIX) ? TARGET_PREFIX : SCOPE_PREFIX
    const parsed = text === undefined || text === HARD_DELETE_MARKER ? undefined : parseScope(text.slice(prefix.length, -SUFFIX.length))
    if (text === HARD_DELETE_MARKER) {
      hard = true
    } else if (parsed === undefined) {
      // Not a marker after all (a comment of the user's that happens to start alike).
      rest.push(modifier)
    } else if (prefix === TARGET_PREFIX) {
      target ??= new Map()
      for (const [key, value] of parsed) target.set(key, value)
    } else {
      scope ??= new Map()
      for (const [key, value] of parsed) scope.set(key, value)
    }
  }
  if (scope === undefined && target === undefined && !hard) return { markers: undefined, rest: endModifiers }
  return { markers: { scope, target, hardDelete: hard }, rest: rest.length > 0 ? rest : undefined }
}
