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
const HARD_DELETE_MARKER = '/*tombstone:hard-delete*/'
const SUFFIX = '*/'
const KEY = /^(\*|[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?)$/

/**
 * A query modifier the plugin reads and removes. It is a SQL comment, so a query built with it and
 * run without the plugin stays valid. Carried as text (not object identity) so that plugins running
 * before ours, which clone nodes, keep it intact.
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
  const entries = Object.entries(visibility as Record<string, Visibility | undefined>).filter(
    (entry): entry is [string, Visibility] => entry[1] !== undefined,
  )
  for (const [key, value] of entries) {
    if (!KEY.test(key)) throw new InvalidArgumentError(`withDeleted: invalid table or alias "${key}"`)
    if (!(VISIBILITIES as readonly string[]).includes(value)) {
      throw new InvalidArgumentError(`withDeleted: "${String(value)}" for "${key}" is not one of ${VISIBILITIES.join(', ')}`)
    }
  }
  const marker = new Marker(`${SCOPE_PREFIX}${JSON.stringify(Object.fromEntries(entries))}${SUFFIX}`)
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
  readonly scope: ReadonlyMap<string, Visibility> | undefined
  readonly hardDelete: boolean
}

function markerText(node: OperationNode): string | undefined {
  const raw = SelectModifierNode.is(node) ? node.rawModifier : node
  if (raw === undefined || !RawNode.is(raw) || raw.sqlFragments.length !== 1 || raw.parameters.length !== 0) {
    return undefined
  }
  const text = raw.sqlFragments[0] as string
  return text === HARD_DELETE_MARKER || (text.startsWith(SCOPE_PREFIX) && text.endsWith(SUFFIX)) ? text : undefined
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
  let hard = false
  const rest: OperationNode[] = []
  for (const modifier of endModifiers) {
    const text = markerText(modifier)
    if (text === undefined) {
      rest.push(modifier)
    } else if (text === HARD_DELETE_MARKER) {
      hard = true
    } else {
      const parsed = JSON.parse(text.slice(SCOPE_PREFIX.length, -SUFFIX.length)) as Record<string, Visibility>
      scope ??= new Map()
      for (const [key, value] of Object.entries(parsed)) scope.set(key, value)
    }
  }
  if (scope === undefined && !hard) return { markers: undefined, rest: endModifiers }
  return { markers: { scope, hardDelete: hard }, rest: rest.length > 0 ? rest : undefined }
}
