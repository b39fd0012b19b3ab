import {
  AliasNode,
  AndNode,
  BinaryOperationNode,
  ColumnNode,
  IdentifierNode,
  JoinNode,
  MatchedNode,
  OnNode,
  OperationNodeTransformer,
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
  type QueryId,
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
}

const DML_ROOTS: Readonly<Record<string, true>> = {
  SelectQueryNode: true,
  InsertQueryNode: true,
  UpdateQueryNode: true,
  DeleteQueryNode: true,
  MergeQueryNode: true,
}

const EMPTY: ReadonlySet<string> = new Set()

type WithEndModifiers = OperationNode & { readonly endModifiers?: readonly OperationNode[] }

/** The property naming the transformer that wrote a node (see `#mark`). */
const OWNER = Symbol('tombstone.owner')

/**
 * Whether a subtree holds no query (no SELECT, INSERT, UPDATE, DELETE or MERGE node at any depth,
 * raw SQL's parameters included). The rewrite changes nothing in such a subtree (tables are only
 * filtered by the query holding them), so it is returned as it is instead of copied and frozen
 * anew: most of a tree's nodes are in such subtrees, and reading is much cheaper than copying.
 */
function holdsNoQuery(node: OperationNode): boolean {
  if (node.kind in SCALARS) return true
  if (node.kind in DML_ROOTS) return false
  for (const key in node) {
    const value = (node as unknown as Record<string, unknown>)[key]
    if (typeof value !== 'object' || value === null) continue
    if (Array.isArray(value)) {
      for (const item of value as unknown[]) {
        if (typeof item === 'object' && item !== null && 'kind' in item && !holdsNoQuery(item as OperationNode)) return false
      }
    } else if ('kind' in value && !holdsNoQuery(value as OperationNode)) {
      return false
    }
  }
  return true
}

/**
 * Node kinds that hold names, operators or the user's values, and at most other such nodes (a
 * column, a table, a reference `t.c`): not walked (a value may be a large array or object of the
 * user's).
 */
const SCALARS: Readonly<Record<string, true>> = {
  IdentifierNode: true,
  SchemableIdentifierNode: true,
  TableNode: true,
  ColumnNode: true,
  ReferenceNode: true,
  DataTypeNode: true,
  ValueNode: true,
  PrimitiveValueListNode: true,
  OperatorNode: true,
  SelectAllNode: true,
  DefaultInsertValueNode: true,
  JSONPathLegNode: true,
}

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
 * nodes it wrote by identity (a `WeakSet`), never by shape, so a condition of the user's that looks
 * like a filter is never taken for one. A `DELETE` whose target is a soft-deletable table is refused
 * unless the query carries the hard-delete marker. DDL is left alone.
 */
export class SoftDeleteTransformer extends OperationNodeTransformer {
  readonly #definition: SoftDeleteDefinition<any>
  readonly #frames: Frame[] = []

  constructor(definition: SoftDeleteDefinition<any>) {
    super()
    this.#definition = definition
  }

  protected override transformNodeImpl<T extends OperationNode>(node: T, queryId?: QueryId): T {
    // A filter or derived table of ours is rebuilt by the node holding it, never copied.
    if (this.#isOwn(node) && (BinaryOperationNode.is(node) || SelectQueryNode.is(node))) return node
    if (!(node.kind in DML_ROOTS)) {
      if (holdsNoQuery(node)) return node
      if (this.#frames.length === 0 && /^(Create|Alter|Drop|Refresh)/.test(node.kind)) return node
      return super.transformNodeImpl(node, queryId)
    }
    // Markers stay in the tree (they compile to comments), so that a second pass still sees them.
    const { markers } = readMarkers((node as WithEndModifiers).endModifiers)
    const parent = this.#frames.at(-1)
    const outerCtes = parent?.ctes ?? EMPTY
    const withNode = (node as { with?: WithNode }).with
    const ctes = withNode === undefined ? outerCtes : union(outerCtes, withNode.expressions.map(cteName))
    const scopes = parent?.scopes ?? []
    this.#frames.push({
      ctes,
      outerCtes,
      scopes: markers?.scope === undefined ? scopes : [markers.scope, ...scopes],
      target: markers?.target,
      hardDelete: markers?.hardDelete ?? false,
    })
    try {
      return super.transformNodeImpl(node, queryId)
    } finally {
      this.#frames.pop()
    }
  }

  protected override transformWith(node: WithNode, queryId?: QueryId): WithNode {
    const frame = this.#frame
    const names = node.expressions.map(cteName)
    const expressions = node.expressions.map((expression, index) => {
      // In WITH RECURSIVE every name is visible to every CTE; otherwise only the ones before it, so
      // `with posts as (select * from posts)` reads the real table inside and is filtered there.
      const visible = node.recursive ? frame.ctes : union(frame.outerCtes, names.slice(0, index))
      this.#frames[this.#frames.length - 1] = { ...frame, ctes: visible }
      try {
        return this.transformNode(expression, queryId)
      } finally {
        this.#frames[this.#frames.length - 1] = frame
      }
    })
    return { kind: 'WithNode', expressions, recursive: node.recursive }
  }

  // The ANDs and parentheses of ours stay ours through a later pass, which copies them.
  protected override transformAnd(node: AndNode, queryId?: QueryId): AndNode {
    return this.#keepOwn(node, super.transformAnd(node, queryId))
  }

  protected override transformParens(node: ParensNode, queryId?: QueryId): ParensNode {
    return this.#keepOwn(node, super.transformParens(node, queryId))
  }

  #keepOwn<N extends OperationNode>(node: N, copy: N): N {
    return this.#isOwn(node) && !this.#isOwn(copy) ? this.#mark(copy) : copy
  }

  protected override transformSelectQuery(node: SelectQueryNode, queryId?: QueryId): SelectQueryNode {
    const transformed = super.transformSelectQuery(node, queryId)
    const sources = this.#filterSources(transformed.from, transformed.joins)
    return {
      ...transformed,
      from: sources.from,
      joins: sources.joins,
      where: this.#withConditions(transformed.where, sources.conditions),
    }
  }

  protected override transformInsertQuery(node: InsertQueryNode, queryId?: QueryId): InsertQueryNode {
    const transformed = super.transformInsertQuery(node, queryId)
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

  protected override transformUpdateQuery(node: UpdateQueryNode, queryId?: QueryId): UpdateQueryNode {
    const transformed = super.transformUpdateQuery(node, queryId)
    const conditions: OperationNode[] = []
    const target = transformed.table === undefined ? undefined : this.#ref(transformed.table)
    if (target !== undefined) {
      const condition = this.#condition(target)
      if (condition !== undefined) conditions.push(condition)
    }
    const sources = this.#filterSources(transformed.from, transformed.joins)
    return {
      ...transformed,
      from: sources.from,
      joins: sources.joins,
      where: this.#withConditions(transformed.where, [...conditions, ...sources.conditions]),
    }
  }

  protected override transformDeleteQuery(node: DeleteQueryNode, queryId?: QueryId): DeleteQueryNode {
    if (!this.#frame.hardDelete) {
      for (const item of node.from.froms) {
        const target = this.#ref(item)
        if (target !== undefined) throw new HardDeleteRefusedError(target.table.name, 'query')
      }
    }
    const transformed = super.transformDeleteQuery(node, queryId)
    const using = transformed.using
    const sources = this.#filterSources(
      using === undefined ? undefined : { kind: 'FromNode', froms: using.tables },
      transformed.joins,
    )
    return {
      ...transformed,
      using: using === undefined || sources.from === undefined ? using : { ...using, tables: sources.from.froms },
      joins: sources.joins,
      where: this.#withConditions(transformed.where, sources.conditions),
    }
  }

  protected override transformMergeQuery(node: MergeQueryNode, queryId?: QueryId): MergeQueryNode {
    const target = this.#ref(node.into)
    if (target !== undefined && !this.#frame.hardDelete) {
      const deletes = node.whens?.some(
        (when) =>
          when.result !== undefined && RawNode.is(when.result) && when.result.sqlFragments.join('').trim().toLowerCase() === 'delete',
      )
      if (deletes) throw new HardDeleteRefusedError(target.table.name, 'query')
    }
    const transformed = super.transformMergeQuery(node, queryId)
    let result = transformed
    // Deleted target rows are left alone: every WHEN that acts on an existing target row (MATCHED,
    // NOT MATCHED BY SOURCE) applies to active rows only. A deleted row that matches stays matched,
    // so no WHEN NOT MATCHED inserts a twin of it.
    if (target !== undefined && transformed.whens !== undefined) {
      const condition = this.#condition(target)
      result = { ...result, whens: transformed.whens.map((when) => this.#filteredWhen(when, condition)) }
    }
    const using = transformed.using
    if (using === undefined) return result
    const source = this.#ref(using.table)
    if (source === undefined) return result
    // PostgreSQL picks the join type of MERGE's source from its WHEN clauses, so only a pre-filtered
    // source keeps the meaning.
    return { ...result, using: { ...using, table: this.#derivedOrPlain(source) } }
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
    return table === undefined ? undefined : { node: tableNode, alias, table }
  }

  /** The query's own target scope first, then the inherited scopes, innermost first; else `exclude`. */
  #visibility(ref: TableRef): Visibility {
    const { target, scopes } = this.#frame
    for (const scope of target === undefined ? scopes : [target, ...scopes]) {
      // Aliases first, then the table's name, then '*'.
      const visibility =
        (ref.alias === undefined ? undefined : scope.get(ref.alias)) ?? scope.get(ref.table.identifier) ?? scope.get(ref.table.name) ?? scope.get('*')
      if (visibility !== undefined) return visibility
    }
    return 'exclude'
  }

  /**
   * The filter for one reference, qualified by its alias (or by the table itself when `qualifyByAlias`
   * is false, for use inside a derived table). Undefined when the table is seen whole.
   */
  #condition(ref: TableRef, qualifyByAlias = true, visibility: Visibility = this.#visibility(ref)): OperationNode | undefined {
    switch (visibility) {
      case 'include':
        return undefined
      case 'exclude':
      case 'only': {
        const qualifier = qualifyByAlias && ref.alias !== undefined ? TableNode.create(ref.alias) : ref.node
        return this.#mark(
          BinaryOperationNode.create(
            ReferenceNode.create(ColumnNode.create(ref.table.columns.deletedAt), qualifier),
            OperatorNode.create(visibility === 'exclude' ? 'is' : 'is not'),
            RawNode.createWithSql('null'),
          ),
        )
      }
      default:
        return visibility satisfies never
    }
  }

  /** The table as written (`t` or `t as a`), or the derived table filtering it when it needs one. */
  #derivedOrPlain(ref: TableRef): OperationNode {
    const plain = ref.alias === undefined ? ref.node : AliasNode.create(ref.node, IdentifierNode.create(ref.alias))
    const condition = this.#condition(ref, false)
    if (condition === undefined) return plain
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
    return this.#mark(AndNode.create(left, right))
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
    if (conditions.length === 0) return user === undefined ? undefined : user === where?.where ? where : WhereNode.create(user)
    // Parenthesised so that an OR in it cannot escape the filters.
    let combined: OperationNode = user === undefined ? (conditions[0] as OperationNode) : this.#mark(ParensNode.create(user))
    for (const condition of user === undefined ? conditions.slice(1) : conditions) combined = this.#and(combined, condition)
    return WhereNode.create(combined)
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

  /** Filters the FROM items and joins of one query (after taking out the filters of a former pass). */
  #filterSources(
    from: FromNode | undefined,
    joins: readonly JoinNode[] | undefined,
  ): { from: FromNode | undefined; joins: readonly JoinNode[] | undefined; conditions: OperationNode[] } {
    const conditions: OperationNode[] = []
    const normalizedJoins = joins?.map((join) => this.#withoutOwnJoinFilter(join))
    const preservedOnly = !(normalizedJoins ?? []).some((join) => join.joinType === 'RightJoin' || join.joinType === 'FullJoin')

    const froms = from?.froms.map((item) => {
      const ref = this.#ref(item)
      if (ref === undefined) return item
      if (!preservedOnly) return this.#derivedOrPlain(ref)
      const condition = this.#condition(ref)
      if (condition !== undefined) conditions.push(condition)
      return plainTable(ref)
    })

    const newJoins = normalizedJoins?.map((join) => {
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
          if (condition === undefined) return { ...join, table }
          const on = join.on === undefined ? condition : this.#and(this.#mark(ParensNode.create(join.on.on)), condition)
          return JoinNode.createWithOn(crossToInner(joinType), table, on)
        }
        case 'RightJoin':
        case 'FullJoin':
        case 'Using':
        case 'OuterApply':
        case 'CrossApply':
          return { ...join, table: this.#derivedOrPlain(ref) }
        default:
          return joinType satisfies never
      }
    })

    return {
      from: from === undefined || froms === undefined ? from : { kind: 'FromNode', froms },
      joins: newJoins,
      conditions,
    }
  }
}

function plainTable(ref: TableRef): OperationNode {
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
