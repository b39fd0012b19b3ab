import { createQueryId, type CompiledQuery, type Compilable, type Kysely } from 'kysely'
import { InvalidArgumentError } from './errors.ts'

/** A value still to come: what `$.name` is while a shape is built and compiled. */
class Placeholder {
  readonly name: string
  constructor(name: string) {
    this.name = name
  }
  toString(): string {
    // Only reached when a dialect writes a value into the SQL text instead of binding it.
    throw new InvalidArgumentError(`QueryShapes: the placeholder ${this.name} must be bound, not written into the SQL (sql.lit, a literal-only position)`)
  }
}

/** The placeholders a shape is built with: `$.name` stands for the value named `name`. */
export type Placeholders<V> = { readonly [K in keyof V]-?: NonNullable<V[K]> }

/**
 * Queries compiled once per shape. A hot read whose query takes one of a few shapes (which filters
 * are present) is built and compiled the first time each shape runs, with placeholders for its
 * values; afterwards only the values are bound. The SQL is byte for byte what building the query
 * anew compiles, the read filter's conditions included (a placeholder is a value like any other to
 * Kysely and to the {@link SoftDeletePlugin}), so Kysely's builder, the plugin's walk over the tree
 * and the compiler are paid once per shape instead of once per call.
 *
 * Shapes are kept per Kysely instance (another instance, with other plugins or a replica's pool,
 * compiles its own); a transaction's are not kept. Nothing is kept beyond the shapes named, so
 * name them by structure only.
 *
 * The rule that keeps it correct: everything that varies between calls is either in the shape's
 * name (what changes the query's structure) or a placeholder (what changes a value), never a value
 * the build function closes over. A placeholder bound to `undefined` fails with
 * {@link InvalidArgumentError} before the database sees the query.
 *
 * @example
 * ```ts
 * const byAuthor = new QueryShapes<Database, { author: number; limit: number }>()
 * const rows = await byAuthor.execute(db, 'by-author', { author: 3, limit: 20 }, (db, $) =>
 *   db.selectFrom('posts').select(['id', 'title']).where('author_id', '=', $.author).limit($.limit))
 * // select "id", "title" from "posts" where ("author_id" = $1) and "posts"."deleted_at" is null limit $2
 * ```
 */
export class QueryShapes<DB, V extends Record<string, unknown>> {
  readonly #compiled = new WeakMap<Kysely<DB>, Map<string, CompiledQuery>>()
  readonly #placeholders = new Proxy({} as Placeholders<V>, {
    get: (_target, name) => new Placeholder(String(name)),
  })

  /** The SQL the shape named `shape` compiled to on `db`, once it has run there. */
  sqlOf(db: Kysely<DB>, shape: string): string | undefined {
    return this.#compiled.get(db)?.get(shape)?.sql
  }

  /** Runs the shape named `shape` (built by `build` the first time) with these values; its rows. */
  async execute<O>(db: Kysely<DB>, shape: string, values: V, build: (db: Kysely<DB>, $: Placeholders<V>) => Compilable<O>): Promise<O[]> {
    let shapes = this.#compiled.get(db)
    if (shapes === undefined && !db.isTransaction) this.#compiled.set(db, (shapes = new Map()))
    let compiled = shapes?.get(shape)
    if (compiled === undefined) {
      compiled = build(db, this.#placeholders).compile()
      shapes?.set(shape, compiled)
    }
    const parameters = compiled.parameters.map((slot) => {
      if (!(slot instanceof Placeholder)) return slot
      const value = values[slot.name]
      if (value === undefined) throw new InvalidArgumentError(`QueryShapes: the shape ${shape} binds ${slot.name}, which has no value`)
      return value
    })
    const query: CompiledQuery<O> = { query: compiled.query, queryId: createQueryId(), sql: compiled.sql, parameters }
    return (await db.executeQuery(query)).rows
  }
}
