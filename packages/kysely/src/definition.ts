import { InvalidConfigurationError, InvalidArgumentError } from './errors.ts'

/**
 * Names of the five soft-delete columns of a table.
 *
 * Defaults to {@link DEFAULT_COLUMNS}: `deleted_at`, `deleted_by`, `delete_reason`, `deletion_id`,
 * `purge_at`. Use the names your Kysely code uses (with `CamelCasePlugin`, the camel-case names).
 */
export interface SoftDeleteColumns {
  /** `timestamptz`, null on an active row; stamped from the database clock (`now()`). */
  readonly deletedAt: string
  /** Who deleted the row (any type the database casts from a parameter; `text` by default). */
  readonly deletedBy: string
  /** Why, as free text. */
  readonly deleteReason: string
  /** `uuid` shared by every row one operation deleted: what restore brings back. */
  readonly deletionId: string
  /** `timestamptz`: `deleted_at` + the table's retention; null means keep until purged by cutoff. */
  readonly purgeAt: string
}

/** The default column names. */
export const DEFAULT_COLUMNS = {
  deletedAt: 'deleted_at',
  deletedBy: 'deleted_by',
  deleteReason: 'delete_reason',
  deletionId: 'deletion_id',
  purgeAt: 'purge_at',
} as const satisfies SoftDeleteColumns

/**
 * How long a soft-deleted row is kept before it may be purged. The parts add up.
 *
 * @example
 * ```ts
 * const retention: Retention = { days: 30 }
 * ```
 */
export interface Retention {
  readonly days?: number
  readonly hours?: number
  readonly minutes?: number
  readonly seconds?: number
}

/** Options of one soft-deletable table. */
export interface TableOptions {
  /**
   * The primary key column: one column of any type (`integer`, `bigint`, `uuid`, `text`, ...).
   * Composite keys are not supported (an `InvalidConfigurationError`). Defaults to `'id'`.
   */
  readonly key?: string
  /** Column names; each defaults to its entry in {@link DEFAULT_COLUMNS}. */
  readonly columns?: Partial<SoftDeleteColumns>
  /**
   * How long a deleted row is kept before `purge_at`. Defaults to no retention: `purge_at` stays
   * null and only a purge with an explicit cutoff removes the row.
   */
  readonly retention?: Retention | null
  /**
   * What {@link softDelete} does to this table's target rows (see {@link DeletePolicy}). Defaults to
   * `'soft'`.
   */
  readonly policy?: DeletePolicy
}

/**
 * A table's delete policy:
 * - `'soft'`: rows are soft-deleted (and removed for good only by `forceDelete` or the purge).
 * - `'never'`: rows are never deleted, soft or hard: `softDelete` and `forceDelete` refuse with a
 *   `DeletePolicyError`, and a trigger refuses, for every client, an `UPDATE` that stamps a row
 *   deleted and any `DELETE` (`TB007`; PostgreSQL, SQLite and MariaDB alike). Restoring rows deleted before the
 *   policy was set stays possible. Such a table cannot be a relation's child (a cascade would delete it).
 * - `'hard-unless-referenced'`: `softDelete` removes a target row for good when no row of a declared
 *   relation's child or dependent table references it (audited as `hard_delete`), and soft-deletes it
 *   (with its cascade) otherwise; the result says which (`deleted`, `hardDeleted`). Rows a cascade
 *   reaches in such a table are soft-deleted, as part of their deletion.
 *
 * Every policy works on the four databases.
 *
 * @example
 * ```ts
 * tables: { users: {}, countries: { policy: 'never' }, tags: { policy: 'hard-unless-referenced' } }
 * ```
 */
export type DeletePolicy = 'soft' | 'never' | 'hard-unless-referenced'

const POLICIES: readonly DeletePolicy[] = ['soft', 'never', 'hard-unless-referenced']

/**
 * A relation to cascade along: deleting a `parent` row soft-deletes the `child` rows whose
 * `foreignKey` equals the parent's `parentKey`.
 */
export interface RelationOptions<Table extends string = string> {
  readonly parent: Table
  readonly child: Table
  /** The child's column that references the parent. */
  readonly foreignKey: string
  /** The parent's referenced column. Defaults to the parent table's `key`. */
  readonly parentKey?: string
}

/**
 * A table that is not soft-deletable whose rows reference a soft-deletable `parent` (sessions or
 * tokens of a user, line items of an order that is never soft-deleted itself). The database refuses
 * a new row, or a changed `foreignKey`, that references a deleted parent (`ParentDeletedError`), so
 * no such row can appear under a deleted parent whatever runs concurrently. What happens to the
 * rows already there when the parent is soft-deleted is `onParentSoftDelete`.
 *
 * @example
 * ```ts
 * dependents: [
 *   { table: 'tokens', foreignKey: 'user_id', parent: 'users' },                                  // 'leave'
 *   { table: 'assignments', foreignKey: 'assignee_id', parent: 'users', onParentSoftDelete: 'set null' },
 * ]
 * ```
 */
export interface DependentOptions<Table extends string = string> {
  readonly table: string
  /** The dependent table's primary key. Defaults to `'id'`. */
  readonly key?: string
  readonly foreignKey: string
  readonly parent: Table
  /** The parent's referenced column. Defaults to the parent table's `key`. */
  readonly parentKey?: string
  /**
   * What `softDelete` does, in its transaction, to the rows of this table that reference a row it
   * deletes (a target or a row its cascade reaches), set-based (one statement per dependent):
   * - `'leave'` (default): nothing; they stay as they are (the application's to handle).
   * - `'restrict'`: the soft delete fails with a `ReferencedError` when any such row exists.
   * - `'set null'`: their `foreignKey` is set to null (a restore does not set it back).
   * - `'set default'`: their `foreignKey` is set to the column's default, which must reference an
   *   active parent (else the database's parent check refuses: `ParentDeletedError`).
   * On every database (SQLite has no `DEFAULT` in an `UPDATE`: the column's default expression is
   * read from its schema).
   */
  readonly onParentSoftDelete?: DependentAction
}

/** What happens to a dependent's rows when their parent is soft-deleted; see {@link DependentOptions}. */
export type DependentAction = 'leave' | 'restrict' | 'set null' | 'set default'

const DEPENDENT_ACTIONS: readonly DependentAction[] = ['leave', 'restrict', 'set null', 'set default']

/** A declared dependent table, normalized. */
export interface DependentDefinition {
  readonly table: string
  readonly key: string
  readonly foreignKey: string
  readonly parent: string
  readonly parentKey: string
  readonly onParentSoftDelete: DependentAction
}

/** Options of {@link defineSoftDeletes}. */
export interface SoftDeleteOptions<Table extends string = string> {
  /** The soft-deletable tables (keys: table names as in your Kysely database interface). */
  readonly tables: { readonly [T in Table]?: TableOptions }
  /** The relations to cascade along, any depth. Defaults to none. */
  readonly relations?: readonly RelationOptions<NoInfer<Table>>[]
  /** Tables that are not soft-deletable but reference one; see {@link DependentOptions}. Defaults to none. */
  readonly dependents?: readonly DependentOptions<NoInfer<Table>>[]
  /**
   * The append-only audit trail: `true` writes to `tombstone_audit`, `{ table }` names another
   * table, `false` writes none. Defaults to `false`.
   */
  readonly audit?: boolean | { readonly table: string }
}

/** A declared table, normalized. */
export interface TableDefinition {
  /** The name as declared (may be `schema.table`). */
  readonly name: string
  readonly schema: string | undefined
  /** The table name without schema. */
  readonly identifier: string
  readonly key: string
  readonly columns: SoftDeleteColumns
  readonly retention: Retention | null
  readonly policy: DeletePolicy
}

/** A declared relation, normalized. */
export interface RelationDefinition {
  readonly parent: string
  readonly child: string
  readonly foreignKey: string
  readonly parentKey: string
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_$]*$/
const QUALIFIED = /^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$/

/**
 * The normalized, validated declaration of which tables are soft-deletable and how deletes cascade.
 * Build it with {@link defineSoftDeletes}; give it to the {@link SoftDeletePlugin}.
 */
export class SoftDeleteDefinition<DB = unknown> {
  /** Declared tables by declared name. */
  readonly tables: ReadonlyMap<string, TableDefinition>
  readonly relations: readonly RelationDefinition[]
  readonly dependents: readonly DependentDefinition[]
  /** The audit table's name, or undefined when the audit trail is off. */
  readonly auditTable: string | undefined
  readonly #byIdentifier = new Map<string, TableDefinition[]>()
  readonly #children = new Map<string, RelationDefinition[]>()
  readonly #parents = new Map<string, RelationDefinition[]>()
  readonly #descendants = new Map<string, readonly string[]>()
  readonly #self = new Map<string, RelationDefinition>()
  /** Phantom: ties the definition to the Kysely database interface it was declared for. */
  declare readonly __db?: DB

  constructor(options: SoftDeleteOptions) {
    const tables = new Map<string, TableDefinition>()
    for (const [name, table] of Object.entries(options.tables as Record<string, TableOptions | undefined>)) {
      if (table === undefined) continue
      if (!QUALIFIED.test(name)) throw new InvalidConfigurationError(`Invalid table name "${name}"`, name)
      refuseComposite(table.key, name, 'key')
      const dot = name.indexOf('.')
      const columns: SoftDeleteColumns = { ...DEFAULT_COLUMNS, ...table.columns }
      for (const column of [table.key ?? 'id', ...Object.values(columns)]) {
        if (!IDENTIFIER.test(column)) {
          throw new InvalidConfigurationError(`Invalid column name "${column}" for table "${name}"`, name)
        }
      }
      const definition: TableDefinition = Object.freeze({
        name,
        schema: dot === -1 ? undefined : name.slice(0, dot),
        identifier: dot === -1 ? name : name.slice(dot + 1),
        key: table.key ?? 'id',
        columns: Object.freeze(columns),
        retention: table.retention ? validateRetention(table.retention, name) : null,
        policy: validatePolicy(table.policy, name),
      })
      tables.set(name, definition)
      const same = this.#byIdentifier.get(definition.identifier) ?? []
      same.push(definition)
      this.#byIdentifier.set(definition.identifier, same)
    }
    this.tables = tables

    const relations: RelationDefinition[] = []
    for (const relation of options.relations ?? []) {
      for (const end of [relation.parent, relation.child]) {
        if (!tables.has(end)) {
          throw new InvalidConfigurationError(
            `Relation ${relation.parent} -> ${relation.child}: "${end}" is not a declared soft-deletable table`,
            end,
          )
        }
      }
      refuseComposite(relation.foreignKey, relation.child, 'foreignKey')
      refuseComposite(relation.parentKey, relation.child, 'parentKey')
      const parent = tables.get(relation.parent) as TableDefinition
      if ((tables.get(relation.child) as TableDefinition).policy === 'never') {
        throw new InvalidConfigurationError(
          `Relation ${relation.parent} -> ${relation.child}: "${relation.child}" has policy 'never', so a cascade could not delete its rows; declare it as a dependent instead`,
          relation.child,
        )
      }
      const normalized: RelationDefinition = Object.freeze({
        parent: relation.parent,
        child: relation.child,
        foreignKey: relation.foreignKey,
        parentKey: relation.parentKey ?? parent.key,
      })
      for (const column of [normalized.foreignKey, normalized.parentKey]) {
        if (!IDENTIFIER.test(column)) {
          throw new InvalidConfigurationError(`Invalid column name "${column}" in a relation`, relation.child)
        }
      }
      relations.push(normalized)
      if (normalized.parent === normalized.child) {
        // A self-reference (threaded comments, a category tree): cascades follow it through the tree.
        if (this.#self.has(normalized.child)) {
          throw new InvalidConfigurationError(
            `"${normalized.child}" has two self-referencing relations; at most one per table is supported`,
            normalized.child,
          )
        }
        this.#self.set(normalized.child, normalized)
        continue
      }
      this.#children.set(normalized.parent, [...(this.#children.get(normalized.parent) ?? []), normalized])
      this.#parents.set(normalized.child, [...(this.#parents.get(normalized.child) ?? []), normalized])
    }
    this.relations = relations

    this.dependents = (options.dependents ?? []).map((dependent) => {
      const parent = tables.get(dependent.parent)
      if (parent === undefined) {
        throw new InvalidConfigurationError(`Dependent ${dependent.table}: "${dependent.parent}" is not a declared soft-deletable table`, dependent.parent)
      }
      refuseComposite(dependent.key, dependent.table, 'key')
      refuseComposite(dependent.foreignKey, dependent.table, 'foreignKey')
      refuseComposite(dependent.parentKey, dependent.table, 'parentKey')
      if (tables.has(dependent.table)) {
        throw new InvalidConfigurationError(`Dependent "${dependent.table}" is soft-deletable: declare a relation instead`, dependent.table)
      }
      const normalized: DependentDefinition = Object.freeze({
        table: dependent.table,
        key: dependent.key ?? 'id',
        foreignKey: dependent.foreignKey,
        parent: dependent.parent,
        parentKey: dependent.parentKey ?? parent.key,
        onParentSoftDelete: dependent.onParentSoftDelete ?? 'leave',
      })
      if (!DEPENDENT_ACTIONS.includes(normalized.onParentSoftDelete)) {
        throw new InvalidConfigurationError(
          `Dependent ${dependent.table}: onParentSoftDelete ${JSON.stringify(dependent.onParentSoftDelete)} is not one of ${DEPENDENT_ACTIONS.join(', ')}`,
          dependent.table,
        )
      }
      if (!QUALIFIED.test(normalized.table)) throw new InvalidConfigurationError(`Invalid table name "${normalized.table}"`, normalized.table)
      for (const column of [normalized.key, normalized.foreignKey, normalized.parentKey]) {
        if (!IDENTIFIER.test(column)) throw new InvalidConfigurationError(`Invalid column name "${column}" in a dependent`, normalized.table)
      }
      return normalized
    })

    const audit = options.audit ?? false
    this.auditTable = audit === false ? undefined : audit === true ? 'tombstone_audit' : audit.table
    if (this.auditTable !== undefined && !QUALIFIED.test(this.auditTable)) {
      throw new InvalidConfigurationError(`Invalid audit table name "${this.auditTable}"`)
    }
    for (const name of tables.keys()) this.#descendants.set(name, this.#topologicalDescendants(name))
  }

  /**
   * The declared table a reference names, or undefined. A reference without schema matches a table
   * declared with or without one; a schema-qualified reference matches that schema or an unqualified
   * declaration.
   */
  match(identifier: string, schema: string | undefined): TableDefinition | undefined {
    const candidates = this.#byIdentifier.get(identifier)
    if (candidates === undefined) return undefined
    if (schema === undefined) return candidates[0]
    return candidates.find((table) => table.schema === schema) ?? candidates.find((table) => table.schema === undefined)
  }

  /** The declared table called `name`, or a coded error. */
  table(name: string): TableDefinition {
    const table = this.tables.get(name)
    if (table === undefined) {
      throw new InvalidConfigurationError(`"${name}" is not a declared soft-deletable table`, name)
    }
    return table
  }

  /** The relations where `table` is the parent. */
  childrenOf(table: string): readonly RelationDefinition[] {
    return this.#children.get(table) ?? []
  }

  /** The relations where `table` is the child. */
  parentsOf(table: string): readonly RelationDefinition[] {
    return this.#parents.get(table) ?? []
  }

  /**
   * The relation of `table` to itself (a reply's `parent_id` naming another comment), or undefined.
   * It is not among {@link childrenOf} and {@link parentsOf}: every operation follows it through
   * the tree of `table`'s rows, with one recursive statement.
   *
   * @example
   * ```ts
   * definition.selfRelationOf('comments') // { parent: 'comments', child: 'comments', foreignKey: 'parent_id', parentKey: 'id' }
   * ```
   */
  selfRelationOf(table: string): RelationDefinition | undefined {
    return this.#self.get(table)
  }

  /**
   * The tables a cascade from `table` reaches, `table` excluded, in an order where every table comes
   * after all of its parents that the cascade reaches.
   */
  descendantsOf(table: string): readonly string[] {
    return this.#descendants.get(table) ?? []
  }

  /** Every declared table, parents before children. */
  topologicalOrder(): readonly string[] {
    const order: string[] = []
    const seen = new Set<string>()
    const visit = (name: string) => {
      if (seen.has(name)) return
      seen.add(name)
      for (const relation of this.parentsOf(name)) visit(relation.parent)
      order.push(name)
    }
    for (const name of this.tables.keys()) visit(name)
    return order
  }

  #topologicalDescendants(root: string): readonly string[] {
    // Reachable set first, then a depth-first post-order on it, which detects cycles too.
    const reachable = new Set<string>()
    const stack = [root]
    while (stack.length > 0) {
      const name = stack.pop() as string
      for (const relation of this.childrenOf(name)) {
        if (relation.child === root) {
          throw new InvalidConfigurationError(
            `The relations form a cycle through "${root}"; cascading along cycles between tables is not supported (a table's relation to itself is)`,
            root,
          )
        }
        if (!reachable.has(relation.child)) {
          reachable.add(relation.child)
          stack.push(relation.child)
        }
      }
    }
    const order: string[] = []
    const state = new Map<string, 'visiting' | 'done'>()
    const visit = (name: string) => {
      const current = state.get(name)
      if (current === 'done') return
      if (current === 'visiting') {
        throw new InvalidConfigurationError(`The relations form a cycle through "${name}"`, name)
      }
      state.set(name, 'visiting')
      for (const relation of this.parentsOf(name)) {
        if (reachable.has(relation.parent)) visit(relation.parent)
      }
      state.set(name, 'done')
      order.push(name)
    }
    for (const name of reachable) visit(name)
    return order
  }
}

/**
 * Keys, foreign keys and referenced keys are one column each: every operation matches rows by one
 * key column (`key = any($1)`), the audit stores one key, and the database's parent checks compare
 * one column. A composite key (an array, or a list in a string) is refused here rather than
 * half-supported: give the table a single-column key (a surrogate `id`, or one unique column).
 */
function refuseComposite(column: unknown, table: string, option: string): void {
  if (column === undefined) return
  if (Array.isArray(column) || (typeof column === 'string' && /[,()\s]/.test(column))) {
    throw new InvalidConfigurationError(
      `"${table}": ${option} ${JSON.stringify(column)} is not one column; composite keys are not supported (declare a single-column key, such as a surrogate id or one unique column)`,
      table,
    )
  }
}

function validatePolicy(policy: unknown, table: string): DeletePolicy {
  if (policy === undefined) return 'soft'
  if (!(POLICIES as readonly unknown[]).includes(policy)) {
    throw new InvalidConfigurationError(`Invalid policy ${JSON.stringify(policy)} for "${table}": one of ${POLICIES.join(', ')}`, table)
  }
  return policy as DeletePolicy
}

function validateRetention(retention: Retention, table: string): Retention {
  const parts = [retention.days, retention.hours, retention.minutes, retention.seconds]
  for (const part of parts) {
    if (part !== undefined && (!Number.isFinite(part) || part < 0)) {
      throw new InvalidConfigurationError(`Invalid retention for "${table}": parts must be finite and >= 0`, table)
    }
  }
  return Object.freeze({ ...retention })
}

/**
 * Checks a retention given to an operation; the same rules as in a definition.
 * @internal
 */
export function checkRetention(retention: Retention, table: string): Retention {
  try {
    return validateRetention(retention, table)
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message, table)
  }
}

/**
 * Declares which tables are soft-deletable, their columns, retention and the relations to cascade
 * along. Curried so that the database interface is given and the table names are checked against it.
 *
 * @example
 * ```ts
 * import { Kysely } from 'kysely'
 * import { defineSoftDeletes, SoftDeletePlugin } from '@tombstone/kysely'
 *
 * const softDeletes = defineSoftDeletes<Database>()({
 *   tables: {
 *     users: { retention: { days: 30 } },
 *     posts: { retention: { days: 30 } },
 *     comments: { retention: { days: 30 } },
 *   },
 *   relations: [
 *     { parent: 'users', child: 'posts', foreignKey: 'author_id' },
 *     { parent: 'users', child: 'comments', foreignKey: 'author_id' },
 *     { parent: 'posts', child: 'comments', foreignKey: 'post_id' },
 *   ],
 *   audit: true,
 * })
 * const db = new Kysely<Database>({ dialect, plugins: [new SoftDeletePlugin(softDeletes)] })
 * ```
 */
export function defineSoftDeletes<DB>() {
  return <const Table extends keyof DB & string>(options: SoftDeleteOptions<Table>): SoftDeleteDefinition<DB> =>
    new SoftDeleteDefinition<DB>(options as SoftDeleteOptions)
}
