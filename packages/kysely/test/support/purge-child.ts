/**
 * A purge in its own process, for the crash test: `node --conditions=source purge-child.ts <target>`
 * where target is a postgres:// URL or a PGlite folder. Prints a line per batch.
 */
import { PGlite } from '@electric-sql/pglite'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { purge, SoftDeletePlugin } from '../../src/index.ts'
import { PGliteDialect } from '../../src/pglite/pglite-dialect.ts'
import { definition, type Database } from './fixture.ts'

const target = process.argv[2] as string
const dialect = target.startsWith('postgres')
  ? new PostgresDialect({ pool: new pg.Pool({ connectionString: target, max: 2 }) })
  : new PGliteDialect({ pglite: await PGlite.create(target) })
const db = new Kysely<Database>({ dialect, plugins: [new SoftDeletePlugin(definition)] })
const result = await purge(db, {
  batchSize: Number(process.argv[3] ?? 50),
  by: 'crash-test',
  onProgress: (progress) => process.stdout.write(`progress ${progress.done}\n`),
})
process.stdout.write(`done ${result.count}\n`)
await db.destroy()
