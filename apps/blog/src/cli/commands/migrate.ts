import type { Command } from 'commander'
import { connect } from '../../db/connect.ts'
import { migrate } from '../../db/migrate.ts'
import { blogSoftDeletes } from '../../db/soft-deletes.ts'
import { CliError, configOf, print, type CliIO, type CommonOptions } from '../io.ts'

export function migrateCommand(program: Command, io: CliIO): void {
  program
    .command('migrate')
    .description('Bring the database schema up to date (the service also does it at start)')
    .addHelpText('after', '\nExamples:\n  $ tombstone-blog migrate\n  $ DATABASE_URL=postgres://me@127.0.0.1/blog tombstone-blog migrate --json')
    .action(async (options: CommonOptions) => {
      const config = configOf(io, options)
      const handle = await connect(config.databaseUrl, blogSoftDeletes(config.retentionDays)).catch((error: unknown) => {
        throw new CliError(`Cannot open the database: ${(error as Error).message}`)
      })
      try {
        const result = await migrate(handle.db)
        const applied = (result.results ?? []).filter((entry) => entry.status === 'Success').map((entry) => entry.migrationName)
        print(io, options, { database: handle.location, applied }, () =>
          applied.length === 0 ? `Schema of ${handle.location} is up to date` : `Applied ${applied.join(', ')} to ${handle.location}`,
        )
      } finally {
        await handle.close()
      }
    })
}
