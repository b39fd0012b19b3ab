import type {
  KyselyPlugin,
  PluginTransformQueryArgs,
  PluginTransformResultArgs,
  QueryResult,
  RootOperationNode,
  UnknownRow,
} from 'kysely'
import { SoftDeleteDefinition, type SoftDeleteOptions } from '../definition.ts'
import { SoftDeleteTransformer } from './soft-delete-transformer.ts'

/**
 * The read filter: a Kysely plugin that rewrites every query so that deleted rows of the declared
 * tables are invisible wherever the table appears (FROM, every join, subqueries, CTEs, set
 * operations, `INSERT … SELECT`, `UPDATE … WHERE`), refuses a plain `DELETE` on them, and carries the
 * definition the operations ({@link softDelete}, {@link restore}, {@link forceDelete}, {@link purge})
 * read from the Kysely instance.
 *
 * Tables not declared are never touched: their SQL is byte-for-byte what Kysely generates without
 * the plugin. Raw SQL (`sql` fragments) is opaque to it; see the docs on what covers that.
 *
 * @example
 * ```ts
 * const db = new Kysely<Database>({
 *   dialect: new PostgresDialect({ pool }),
 *   plugins: [new SoftDeletePlugin(softDeletes)],
 * })
 * await db.selectFrom('posts').selectAll().execute()
 * // select * from "posts" where "posts"."deleted_at" is null
 * ```
 */
export class SoftDeletePlugin implements KyselyPlugin {
  /** The declaration this plugin enforces. */
  readonly definition: SoftDeleteDefinition<any>
  readonly #transformer: SoftDeleteTransformer

  /** Takes a definition from {@link defineSoftDeletes}, or the same options unchecked. */
  constructor(definition: SoftDeleteDefinition<any> | SoftDeleteOptions) {
    this.definition = definition instanceof SoftDeleteDefinition ? definition : new SoftDeleteDefinition(definition)
    this.#transformer = new SoftDeleteTransformer(this.definition)
  }

  /** Called by Kysely for every query: returns its tree with the read filter and the guard applied. */
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    return this.#transformer.transformNode(args.node)
  }

  /** Called by Kysely for every result: returns it unchanged (the plugin only rewrites queries). */
  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result
  }
}
