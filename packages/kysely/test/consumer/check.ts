// Type-checked by the consumer test under strict tsc, once with moduleResolution nodenext and once
// with bundler: the packages' declarations must resolve and type a real use.
import { Kysely, type Generated } from 'kysely'
import Fastify from 'fastify'
import {
  defineSoftDeletes,
  isTombstoneError,
  restore,
  softDelete,
  SoftDeletePlugin,
  withDeleted,
  type SoftDeleteResult,
} from '@tombstone/kysely'
import { PGliteDialect } from '@tombstone/kysely/pglite'
import { NodeSqliteDialect } from '@tombstone/kysely/sqlite'
import { HttpProblem, problemDetails, problemFromTombstoneError } from '@tombstone/fastify'

interface SoftDeleteFields {
  deleted_at: Date | null
  deleted_by: string | null
  delete_reason: string | null
  deletion_id: string | null
  purge_at: Date | null
}
interface Database {
  posts: { id: Generated<number>; title: string } & SoftDeleteFields
  comments: { id: Generated<number>; post_id: number; body: string } & SoftDeleteFields
}

const softDeletes = defineSoftDeletes<Database>()({
  tables: { posts: { retention: { days: 30 } }, comments: {} },
  relations: [{ parent: 'posts', child: 'comments', foreignKey: 'post_id' }],
})
declare const pglite: ConstructorParameters<typeof PGliteDialect>[0]['pglite']
export const db = new Kysely<Database>({ dialect: new PGliteDialect({ pglite }), plugins: [new SoftDeletePlugin(softDeletes)] })
export const sqlite: unknown = NodeSqliteDialect

export async function use(): Promise<string[]> {
  const result: SoftDeleteResult = await softDelete(db, 'posts', { id: 1 }, { by: 'alice' })
  const rows: { id: number; title: string }[] = await db.selectFrom('posts').select(['id', 'title']).$call(withDeleted({ posts: 'only' })).execute()
  await restore(db, 'posts', { id: 1 })
  // @ts-expect-error: not a declared soft-deletable table
  await softDelete(db, 'nope', { id: 1 })
  return [result.deletionId ?? '', ...rows.map((row) => row.title)]
}

export async function serve(): Promise<void> {
  const app = Fastify()
  await app.register(problemDetails)
  app.setErrorHandler((error, _request, reply) => {
    if (isTombstoneError(error)) {
      const problem: HttpProblem = problemFromTombstoneError(error)
      return reply.send(problem)
    }
    return reply.send(error)
  })
}
