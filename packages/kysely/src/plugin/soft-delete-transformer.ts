import {
  AliasNode,
  AndNode,
  BinaryOperationNode,
  ColumnNode,
  IdentifierNode,
  JoinNode,
  MatchedNode,
  OnNode,
  OperatorNode,
  ParensNode,
  RawNode,
  ReferenceNode,
  SelectAllNode,
  SelectionNode,
  SelectQueryNode,
  TableNode,
  WhereNode,
  type DeleteQueryNode,
  type FromNode,
  type InsertQueryNode,
  type JoinType,
  type MergeQueryNode,
  type OnConflictNode,
  type OperationNode,
  type UpdateQueryNode,
  type WhenNode,
  type WithNode,
} from 'kysely'
import type { SoftDeleteDefinition, TableDefinition } from '../definition.ts'
import { HardDeleteRefusedError } from '../errors.ts'
import { readMarkers, type Visibility } from './markers.ts'

/** One table reference found in a FROM, JOIN, USING, MERGE or UPDATE/DELETE target position. */
interface TableRef {
  readonly node: TableNode
  /** The FROM/JOIN item naming it (the table, its alias, or a derived table of ours). */
  readonly item: OperationNode
  readonly alias: string | undefined
  readonly table: TableDefinition
}

/** The state of one query node (and, unless overridden, of the queries nested in it). */
interface Frame {
  /** CTE names visible in the query's body. */
  readonly ctes: ReadonlySet<string>
  /** CTE names visible where the query itself is (what its own WITH does not define). */
  readonly outerCtes: ReadonlySet<string>
  /** Visibility by alias or table name, innermost `withDeleted` first. */
  readonly scopes: readonly ReadonlyMap<string, Visibility>[]
  /** Visibility for this query's own tables only (never inherited by nested queries). */
  readonly target: ReadonlyMap<string, Visibility> | undefined
  readonly hardDelete: boolean
  /**
   * Whether a query nested here is rewritten exactly as on its own: no `withDeleted` scope is
   * inherited and no CTE in scope has the name of a declared table.
   */
  readonly neutral: boolean
}

const DML_ROOTS: Readonly<Record<string, true>> = {
  SelectQueryNode: true,
  InsertQueryNode: true,
  UpdateQueryNode: true,
  DeleteQueryNode: true,
  MergeQueryNode: true,
}

/**
 * Node kinds that hold names, operators or the user's values, and at most other such nodes (a
 * column, a table, a reference `t.c`): not walked (a value may be a large array or object of the
 * user's).
 */
const SCALARS: ReadonlySet<string> = new Set([
  'IdentifierNode',
  'SchemableIdentifierNode',
  'TableNode',
  'ColumnNode',
  'ReferenceNode',
  'DataTypeNode',
  'ValueNode',
  'PrimitiveValueListNode',
  'OperatorNode',
  'SelectAllNode',
  'DefaultInsertValueNode',
  'JSONPathLegNode',
] satisfies OperationNode['kind'][])

/** Root nodes of DDL, left alone. */
const DDL = /^(Create|Alter|Drop|Refresh)/

const EMPTY: ReadonlySet<string> = new Set()

/** Aliases whose filters a transformer keeps (see `#condition`); past this many, it starts over. */
const MAX_CACHED_ALIASES = 256

/** The two filters of one qualifier, built on first use. */
interface Filters {
  exclude?: OperationNode
  only?: OperationNode
}

/** The filters of one soft-deletable table, by the alias or the table name qualifying them. */
interface TableFilters {
  readonly byAlias: Map<string, Filters>
  /** Qualified by the table itself: unqualified names by name, schema-qualified ones by `schema.name`. */
  readonly byTable: Map<string, Filters>
  readonly bySchemaTable: Map<string, Filters>
}

type WithEndModifiers = OperationNode & { readonly endModifiers?: readonly OperationNode[] }

/** The property naming the transformer that wrote a node (see `#mark`). */
const OWNER = Symbol('tombstone.owner')

/**
 * The property naming the transformer that returned a query node from a pass of its own (a query
 * not nested in another one; see `#query`).
 */
const TRANSFORMED = Symbol('tombstone.transformed')

/**
 * Rewrites a query tree so that every soft-deletable table it reads is filtered by its visibility
 * (active rows by default), wherever the table appears. Filters are qualified by the alias and go
 * where they keep the query's meaning:
 *
 * - FROM items (and UPDATE targets, DELETE USING items): in WHERE;
 * - inner and left joins (lateral too): in the join's ON, so an outer join stays outer;
 * - cross joins: become inner joins ON the filter;
 * - right and full joins, and FROM items of a query that has one: the table is replaced by
 *   `(select * from t where filter) as alias`, because a filter in WHERE or ON would either drop
 *   preserved rows or let a deleted row through as unmatched. PostgreSQL flattens it.
 *
 * Writes into existing rows touch active rows only: `UPDATE` targets are filtered, an
 * `INSERT … ON CONFLICT DO UPDATE` updates a conflicting row only while it is active (its `DO
 * UPDATE … WHERE` gets the filter), and `MERGE`'s `WHEN MATCHED` and `WHEN NOT MATCHED BY SOURCE`
 * clauses apply to active target rows only.
 *
 * The rewrite is idempotent: a builder embedded in another query is transformed on its own first,
 * then again in context, and the second pass must replace, not add. The transformer recognises the
 * nodes it wrote by identity (a module-private mark), never by shape, so a condition of the user's
 * that looks like a filter is never taken for one. A `DELETE` whose target is a soft-deletable table
 * is refused unless the query carries the hard-delete marker. DDL is left alone.
 *
 * The walk is its own rather than Kysely's `OperationNodeTransformer`, which copies and freezes
 * every node of the tree: this one copies only the nodes on the path to a change and returns every
 * other subtree as it is (Kysely's nodes are immutable, so sharing them is safe), which is most of
 * the plugin's compile-time cost saved.
 */
export class SoftDeleteTransformer {
  readonly #definition: SoftDeleteDefinition<any>
  readonly #frames: Frame[] = []
  /** Filter nodes by table, qualifier and visibility: frozen, so queries share them. */
  readonly #filters = new Map<TableDefinition, TableFilters>()

  constructor(definition: SoftDeleteDefinition<any>) {
    this.#definition = definition
  }

  /** The tree with the read filter and the guard applied (the node itself when nothing changes). */
  transformNode<T extends OperationNode>(node: T): T {
    if (!(node.kind in DML_ROOTS) && DDL.test(node.kind)) return node
    return this.#node(node) as T
  }

  // Dispatch by a switch and a `Set`: an `in` test on an object with varying keys is a megamorphic
  // look-up, several times slower, and this runs for every node of the tree.
  #node(node: OperationNode): OperationNode {
    switch (node.kind) {
      case 'SelectQueryNode':
        // A derived table of ours is rebuilt by the node holding it, never copied.
        return this.#isOwn(node) || this.#done(node) ? node : this.#query(node)
      case 'InsertQueryNode':
      case 'UpdateQueryNode':
      case 'DeleteQueryNode':
      case 'MergeQueryNode':
        return this.#done(node) ? node : this.#query(node)
      case 'BinaryOperationNode':
        // Nor is a filter of ours.
        return this.#isOwn(node) ? node : this.#children(node)
      case 'WithNode':
        return this.#with(node as WithNode)
      default:
        return SCALARS.has(node.kind) ? node : this.#children(node)
    }
  }

  /**
   * The node with its children transformed: the node itself when none changed, else a copy (which
   * keeps the mark of a node of ours, so that an AND or parentheses of ours stay ours).
   *
   * The copies and the nodes built per query are not frozen (Kysely reads nodes, it never checks
   * that they are frozen, and a freeze costs as much as building the node); the filters shared
   * between queries are.
   */
  #children<N extends OperationNode>(node: N): N {
    let copy: Record<string | symbol, unknown> | undefined
    for (const key in node) {
      const value = (node as unknown as Record<string, unknown>)[key]
      if (typeof value !== 'object' || value === null) continue
      let next: unknown
      if (Array.isArray(value)) {
        next = this.#list(value)
      } else {
        // Scalars are skipped here rather than in `#node`: most children are, and a call costs.
        const kind = (value as { kind?: unknown }).kind
        if (typeof kind !== 'string' || SCALARS.has(kind)) continue
        next = this.#node(value as OperationNode)
      }
      if (next !== value) {
        copy ??= { ...(node as unknown as Record<string, unknown>) }
        copy[key] = next
      }
    }
    return copy === undefined ? node : (copy as unknown as N)
  }

  #list(list: readonly unknown[]): readonly unknown[] {
    let copy: unknown[] | undefined
    for (let index = 0; index < list.length; index++) {
      const item = list[index]
      if (typeof item !== 'object' || item === null) continue
      const kind = (item as { kind?: unknown }).kind
      if (typeof kind !== 'string' || SCALARS.has(kind)) continue
      const next = this.#node(item as OperationNode)
      if (next !== item) {
        copy ??= list.slice()
        copy[index] = next
      }
    }
    return copy ?? list
  }

  #query(node: OperationNode): OperationNode {
    // Markers stay in the tree (they compile to comments), so that a second pass still sees them.
    const { markers } = readMarkers((node as WithEndModifiers).endModifiers)
    const parent = this.#frames.at(-1)
    const outerCtes = parent?.ctes ?? EMPTY
    const withNode = (node as { with?: WithNode }).with
    const ctes = withNode === undefined ? outerCtes : union(outerCtes, withNode.expressions.map(cteName))
    const scopes = parent?.scopes ?? []
    const ownScopes = markers?.scope === undefined ? scopes : [markers.scope, ...scopes]
    this.#frames.push({
      ctes,
      outerCtes,
      scopes: ownScopes,
      target: markers?.target,
      hardDelete: markers?.hardDelete ?? false,
      neutral:
        ownScopes.length === 0 &&
        (parent?.neutral ?? true) &&
        (withNode === undefined || !withNode.expressions.some((cte) => this.#definition.match(cteName(cte), undefined) !== undefined)),
    })
    try {
      const result = this.#queryOfKind(node)
      // Marks the result of a pass of its own, so that the pass over a query it is later nested in
      // (Kysely transforms a builder when it is embedded, then the query holding it) returns it as
      // it is where the rewrite would be the same. A copy inherits the mark, so a nested result
      // loses it.
      const transformed = parent === undefined ? this : undefined
      if (result !== node && (result as { [TRANSFORMED]?: unknown })[TRANSFORMED] !== transformed && !Object.isFrozen(result)) {
        ;(result as { [TRANSFORMED]?: unknown })[TRANSFORMED] = transformed
      }
      return result
    } finally {
      this.#frames.pop()
    }
  }

  /**
   * Whether a query node is the result of a pass of this transformer's own, and the query holding
   * it lets it be seen as it is: the rewrite is idempotent, so it would change nothing.
   */
  #done(node: OperationNode): boolean {
    return (node as { [TRANSFORMED]?: unknown })[TRANSFORMED] === this && (this.#frames.at(-1)?.neutral ?? true)
  }

  #queryOfKind(node: OperationNode): OperationNode {
    const kind = node.kind as (DeleteQueryNode | InsertQueryNode | MergeQueryNode | SelectQueryNode | UpdateQueryNode)['kind']
    switch (kind) {
      case 'SelectQueryNode':
        return this.#select(node as SelectQueryNode)
      case 'InsertQueryNode':
        return this.#insert(node as InsertQueryNode)
      case 'UpdateQueryNode':
        return this.#update(node as UpdateQueryNode)
      case 'DeleteQueryNode':
        return this.#delete(node as DeleteQueryNode)
      case 'MergeQueryNode':
        return this.#merge(node as MergeQueryNode)
      default:
        return kind satisfies never
    }
  }

  #with(node: WithNode): WithNode {
    const frame = this.#frame
    const names = node.expressions.map(cteName)
    let changed = false
    const expressions = node.expressions.map((expression, index) => {
      // In WITH RECURSIVE every name is visible to every CTE; otherwise only the ones before it, so
      // `with posts as (select * from posts)` reads the real table inside and is filtered there.
      const visible = node.recursive ? frame.ctes : union(frame.outerCtes, names.slice(0, index))
      this.#frames[this.#frames.length - 1] = { ...frame, ctes: visible }
      try {
        const transformed = this.#node(expression) as typeof expression
        if (transformed !== expression) changed = true
        return transformed
      } finally {
        this.#frames[this.#frames.length - 1] = frame
      }
    })
    return changed ? { ...node, expressions } : node
  }

  #select(node: SelectQueryNode): SelectQueryNode {
    const transformed = this.#children(node)
    const sources = this.#filterSources(transformed.from, transformed.joins)
    const where = this.#withConditions(transformed.where, sources.conditions)
    if (sources.from === transformed.from && sources.joins === transformed.joins && where === transformed.where) return transformed
    return { ...transformed, from: sources.from, joins: sources.joins, where }
  }

  #insert(node: InsertQueryNode): InsertQueryNode {
    const transformed = this.#children(node)
    const onConflict = transformed.onConflict
    if (onConflict === undefined || onConflict.updates === undefined || transformed.into === undefined) return transformed
    const target = this.#ref(transformed.into)
    const condition = target === undefined ? undefined : this.#condition(target)
    const updateWhere = this.#withConditions(onConflict.updateWhere, condition === undefined ? [] : [condition])
    if (updateWhere === onConflict.updateWhere) return transformed
    const { updateWhere: _old, ...rest } = onConflict
    const changed: OnConflictNode = updateWhere === undefined ? rest : { ...rest, updateWhere }
    return { ...transformed, onConflict: changed }
  }

  #update(node: UpdateQueryNode): UpdateQueryNode {
    const transformed = this.#children(node)
    const conditions: OperationNode[] = []
    const target = transformed.table === undefined ? undefined : this.#ref(transformed.table)
    if (target !== undefined) {
      const condition = this.#condition(target)
      if (condition !== undefined) conditions.push(condition)
    }
    const sources = this.#filterSources(transformed.from, transformed.joins, conditions)
    const where = this.#withConditions(transformed.where, sources.conditions)
    if (sources.from === transformed.from && sources.joins === transformed.joins && where === transformed.where) return transformed
    return { ...transformed, from: sources.from, joins: sources.joins, where }
  }

  #delete(node: DeleteQueryNode): DeleteQueryNode {
    if (!this.#frame.hardDelete) {
      for (const item of node.from.froms) {
        const target = this.#ref(item)
        if (target !== undefined) throw new HardDeleteRefusedError(target.table.name, 'query')
      }
    }
    const transformed = this.#children(node)
    const using = transformed.using
    const usingFrom: FromNode | undefined = using === undefined ? undefined : { kind: 'FromNode', froms: using.tables }
    const sources = this.#filterSources(usingFrom, transformed.joins)
    const where = this.#withConditions(transformed.where, sources.conditions)
    const newUsing = using === undefined || sources.from === undefined || sources.from === usingFrom ? using : { ...using, tables: sources.from.froms }
    if (newUsing === using && sources.joins === transformed.joins && where === transformed.where) return transformed
    return { ...transformed, using: newUsing, joins: sources.joins, where }
  }

  #merge(node: MergeQueryNode): MergeQueryNode {
    const target = this.#ref(node.into)
    if (target !== undefined && !this.#frame.hardDelete) {
      const deletes = node.whens?.some(
        (when) =>
          when.result !== undefined && RawNode.is(when.result) && when.result.sqlFragments.join('').trim().toLowerCase() === 'delete',
      )
      if (deletes) throw new HardDeleteRefusedError(target.table.name, 'query')
    }
    const transformed = this.#children(node)
    let result = transformed
    // Deleted target rows are left alone: every WHEN that acts on an existing target row (MATCHED,
    // NOT MATCHED BY SOURCE) applies to active rows only. A deleted row that matches stays matched,
    // so no WHEN NOT MATCHED inserts a twin of it.
    if (target !== undefined && transformed.whens !== undefined) {
      const condition = this.#condition(target)
      result = { ...result, whens: transformed.whens.map((when) => this.#filteredWhen(when, condition)) }
    }
    const using = transformed.using
    const source = using === undefined ? undefined : this.#ref(using.table)
    // PostgreSQL picks the join type of MERGE's source from its WHEN clauses, so only a pre-filtered
    // source keeps the meaning.
    if (using !== undefined && source !== undefined) result = { ...result, using: { ...using, table: this.#derivedOrPlain(source) } }
    return result
  }

  /** A MERGE WHEN clause with the target's filter (after taking out the one of a former pass). */
  #filteredWhen(when: WhenNode, condition: OperationNode | undefined): WhenNode {
    const user = this.#withoutOwnConditions(when.condition) as OperationNode
    if (condition === undefined || !actsOnTargetRow(user)) return user === when.condition ? when : { ...when, condition: user }
    return { ...when, condition: this.#and(user, condition) }
  }

  get #frame(): Frame {
    const frame = this.#frames.at(-1)
    if (frame === undefined) throw new Error('tombstone: transformer used outside of a query')
    return frame
  }

  /**
   * The soft-deletable table a FROM/JOIN item names, unless it is a CTE or not declared. A derived
   * table this transformer wrote before counts as the table it wraps.
   */
  #ref(node: OperationNode): TableRef | undefined {
    let tableNode: TableNode
    let alias: string | undefined
    if (TableNode.is(node)) {
      tableNode = node
    } else if (AliasNode.is(node) && IdentifierNode.is(node.alias) && TableNode.is(node.node)) {
      tableNode = node.node
      alias = node.alias.name
    } else if (AliasNode.is(node) && IdentifierNode.is(node.alias) && SelectQueryNode.is(node.node) && this.#isOwn(node.node)) {
      tableNode = node.node.from?.froms[0] as TableNode
      alias = node.alias.name
    } else {
      return undefined
    }
    const identifier = tableNode.table.identifier.name
    const schema = tableNode.table.schema?.name
    if (schema === undefined && this.#frame.ctes.has(identifier)) return undefined
    const table = this.#definition.match(identifier, schema)
    return table === undefined ? undefined : { node: tableNode, item: node, alias, table }
  }

  /** The query's own target scope first, then the inherited scopes, innermost first; else `exclude`. */
  #visibility(ref: TableRef): Visibility {
    const { target, scopes } = this.#frame
    if (target !== undefined) {
      const visibility = visibilityIn(target, ref)
      if (visibility !== undefined) return visibility
    }
    for (const scope of scopes) {
      const visibility = visibilityIn(scope, ref)
      if (visibility !== undefined) return visibility
    }
    return 'exclude'
  }

  /**
   * The filter for one reference, qualified by its alias (or by the table itself when `qualifyByAlias`
   * is false, for use inside a derived table). Undefined when the table is seen whole.
   *
   * A filter depends only on its visibility, column and qualifier, and nodes are immutable, so each
   * one is built once and shared by every query that needs it.
   */
  #condition(ref: TableRef, qualifyByAlias = true, visibility: Visibility = this.#visibility(ref)): OperationNode | undefined {
    switch (visibility) {
      case 'include':
        return undefined
      case 'exclude':
      case 'only': {
        const alias = qualifyByAlias ? ref.alias : undefined
        const filters = this.#filtersOf(ref, alias)
        return (filters[visibility] ??= this.#mark(
          BinaryOperationNode.create(
            ReferenceNode.create(ColumnNode.create(ref.table.columns.deletedAt), alias === undefined ? ref.node : TableNode.create(alias)),
            OperatorNode.create(visibility === 'exclude' ? 'is' : 'is not'),
            RawNode.createWithSql('null'),
          ),
        ))
      }
      default:
        return visibility satisfies never
    }
  }

  /** The filters of a table qualified by `alias`, or by the table itself (as the query names it). */
  #filtersOf(ref: TableRef, alias: string | undefined): Filters {
    let table = this.#filters.get(ref.table)
    if (table === undefined) {
      table = { byAlias: new Map(), byTable: new Map(), bySchemaTable: new Map() }
      this.#filters.set(ref.table, table)
    }
    let map: Map<string, Filters>
    let key: string
    if (alias !== undefined) {
      // Aliases are the user's, so their number is not bounded by the declaration.
      if (table.byAlias.size >= MAX_CACHED_ALIASES) table.byAlias.clear()
      map = table.byAlias
      key = alias
    } else {
      const schema = ref.node.table.schema?.name
      map = schema === undefined ? table.byTable : table.bySchemaTable
      key = schema === undefined ? ref.node.table.identifier.name : `${schema}.${ref.node.table.identifier.name}`
    }
    let filters = map.get(key)
    if (filters === undefined) {
      filters = {}
      map.set(key, filters)
    }
    return filters
  }

  /** The table as written (`t` or `t as a`), or the derived table filtering it when it needs one. */
  #derivedOrPlain(ref: TableRef): OperationNode {
    const condition = this.#condition(ref, false)
    if (condition === undefined) return plainTable(ref)
    const select: SelectQueryNode = this.#mark({
      ...SelectQueryNode.createFrom([ref.node]),
      selections: [SelectionNode.createSelectAll()],
      where: WhereNode.create(condition),
    })
    return AliasNode.create(select, IdentifierNode.create(ref.alias ?? ref.table.identifier))
  }

  /**
   * The nodes this transformer writes (filters, the ANDs and parentheses joining them to the user's
   * conditions, and their copies made by a later pass; the derived tables replacing a table) carry
   * the transformer under a module-private symbol: no user can write it, and a look-up is a
   * property read (a `WeakSet` costs about 1 µs per node added, most of the plugin's compile time).
   */
  #mark<N extends OperationNode>(node: N): N {
    return Object.freeze({ ...node, [OWNER]: this })
  }

  #isOwn(node: OperationNode): boolean {
    return (node as { [OWNER]?: unknown })[OWNER] === this
  }

  #and(left: OperationNode, right: OperationNode): OperationNode {
    const node: AndNode & { [OWNER]: unknown } = { kind: 'AndNode', left, right, [OWNER]: this }
    return node
  }

  #parens(node: OperationNode): OperationNode {
    const parens: ParensNode & { [OWNER]: unknown } = { kind: 'ParensNode', node, [OWNER]: this }
    return parens
  }

  /**
   * Takes out the filters a former pass appended: `(<user's>) and f1 and f2` gives back the user's
   * expression, `f1 and f2` gives undefined, anything else is returned as is. Only nodes of ours
   * are taken out.
   */
  #withoutOwnConditions(node: OperationNode | undefined): OperationNode | undefined {
    let current = node
    while (current !== undefined && this.#isOwn(current)) {
      if (BinaryOperationNode.is(current)) return undefined
      if (AndNode.is(current)) current = current.left
      else if (ParensNode.is(current)) return current.node
      else break
    }
    return current
  }

  /** The user's WHERE (without filters of a former pass), in parentheses, and the filters. */
  #withConditions(where: WhereNode | undefined, conditions: readonly OperationNode[]): WhereNode | undefined {
    const user = this.#withoutOwnConditions(where?.where)
    if (conditions.length === 0) return user === undefined ? undefined : user === where?.where ? where : whereNode(user)
    // Parenthesised so that an OR in it cannot escape the filters.
    let combined: OperationNode = user === undefined ? (conditions[0] as OperationNode) : this.#parens(user)
    for (let index = user === undefined ? 1 : 0; index < conditions.length; index++) {
      combined = this.#and(combined, conditions[index] as OperationNode)
    }
    return whereNode(combined)
  }

  #withoutOwnJoinFilter(join: JoinNode): JoinNode {
    if (join.on === undefined) return join
    const on = this.#withoutOwnConditions(join.on.on)
    if (on === join.on.on) return join
    if (on !== undefined) return { ...join, on: OnNode.create(on) }
    // An inner join whose ON was only our filter was a cross join.
    const joinType =
      join.joinType === 'InnerJoin' ? 'CrossJoin' : join.joinType === 'LateralInnerJoin' ? 'LateralCrossJoin' : join.joinType
    return { kind: 'JoinNode', joinType, table: join.table }
  }

  /**
   * Filters the FROM items and joins of one query (after taking out the filters of a former pass),
   * appending the conditions for WHERE to `conditions`. Returns `from` and `joins` themselves when
   * nothing in them changes.
   */
  #filterSources(
    from: FromNode | undefined,
    joins: readonly JoinNode[] | undefined,
    conditions: OperationNode[] = [],
  ): { from: FromNode | undefined; joins: readonly JoinNode[] | undefined; conditions: OperationNode[] } {
    let newJoins: JoinNode[] | undefined
    let preservedOnly = true
    if (joins !== undefined) {
      for (let index = 0; index < joins.length; index++) {
        const join = joins[index] as JoinNode
        const normalized = this.#withoutOwnJoinFilter(join)
        if (normalized.joinType === 'RightJoin' || normalized.joinType === 'FullJoin') preservedOnly = false
        if (normalized !== join) {
          newJoins ??= joins.slice()
          newJoins[index] = normalized
        }
      }
    }

    let froms: OperationNode[] | undefined
    if (from !== undefined) {
      for (let index = 0; index < from.froms.length; index++) {
        const item = from.froms[index] as OperationNode
        const ref = this.#ref(item)
        if (ref === undefined) continue
        let next: OperationNode
        if (!preservedOnly) {
          next = this.#derivedOrPlain(ref)
        } else {
          const condition = this.#condition(ref)
          if (condition !== undefined) conditions.push(condition)
          next = plainTable(ref)
        }
        if (next !== item) {
          froms ??= from.froms.slice()
          froms[index] = next
        }
      }
    }

    const normalizedJoins: readonly JoinNode[] | undefined = newJoins ?? joins
    if (normalizedJoins !== undefined) {
      for (let index = 0; index < normalizedJoins.length; index++) {
        const join = normalizedJoins[index] as JoinNode
        const next = this.#filteredJoin(join)
        if (next !== join) {
          newJoins ??= normalizedJoins.slice()
          newJoins[index] = next
        }
      }
    }

    return {
      from: froms === undefined ? from : { kind: 'FromNode', froms },
      joins: newJoins ?? joins,
      conditions,
    }
  }

  /** One join with the filter of its table where it keeps the join's meaning. */
  #filteredJoin(join: JoinNode): JoinNode {
    const ref = this.#ref(join.table)
    if (ref === undefined) return join
    const joinType: JoinType = join.joinType
    switch (joinType) {
      case 'InnerJoin':
      case 'LeftJoin':
      case 'LateralInnerJoin':
      case 'LateralLeftJoin':
      case 'CrossJoin':
      case 'LateralCrossJoin': {
        const condition = this.#condition(ref)
        const table = plainTable(ref)
        if (condition === undefined) return table === join.table ? join : { ...join, table }
        const on = join.on === undefined ? condition : this.#and(this.#parens(join.on.on), condition)
        return JoinNode.createWithOn(crossToInner(joinType), table, on)
      }
      case 'RightJoin':
      case 'FullJoin':
      case 'Using':
      case 'OuterApply':
      case 'CrossApply': {
        const table = this.#derivedOrPlain(ref)
        return table === join.table ? join : { ...join, table }
      }
      default:
        return joinType satisfies never
    }
  }
}

function whereNode(where: OperationNode): WhereNode {
  return { kind: 'WhereNode', where }
}

/** A key's visibility in one scope: aliases first, then the table's name, then `'*'`. */
function visibilityIn(scope: ReadonlyMap<string, Visibility>, ref: TableRef): Visibility | undefined {
  return (ref.alias === undefined ? undefined : scope.get(ref.alias)) ?? scope.get(ref.table.identifier) ?? scope.get(ref.table.name) ?? scope.get('*')
}

/** The table as written: the item itself when it is `t` or `t as a`, else (a derived table of ours) `t as a`. */
function plainTable(ref: TableRef): OperationNode {
  if (ref.item === ref.node || (AliasNode.is(ref.item) && ref.item.node === ref.node)) return ref.item
  return ref.alias === undefined ? ref.node : AliasNode.create(ref.node, IdentifierNode.create(ref.alias))
}

function crossToInner(joinType: JoinType): JoinType {
  return joinType === 'CrossJoin' ? 'InnerJoin' : joinType === 'LateralCrossJoin' ? 'LateralInnerJoin' : joinType
}

/**
 * Whether a MERGE WHEN condition acts on an existing target row: `matched [and …]` or `not matched
 * by source [and …]` (Kysely writes the MatchedNode first in an AND chain).
 */
function actsOnTargetRow(condition: OperationNode): boolean {
  let first = condition
  while (AndNode.is(first)) first = first.left
  return MatchedNode.is(first) && (!first.not || first.bySource)
}

function cteName(node: { name: { table: TableNode } }): string {
  return node.name.table.table.identifier.name
}

function union(set: ReadonlySet<string>, more: readonly string[]): ReadonlySet<string> {
  if (more.length === 0) return set
  const result = new Set(set)
  for (const name of more) result.add(name)
  return result
}
