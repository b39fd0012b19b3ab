import type { Command } from 'commander'
import { connect } from '../../db/connect.ts'
import { grantRuntime } from '../../db/grant.ts'
import { pendingMigrations } from '../../db/migrate.ts'
import { blogSoftDeletes } from '../../db/soft-deletes.ts'
import { CliError, configOf, print, type CliIO, type CommonOptions } from '../io.ts'

export function grantCommand(program: Command, io: CliIO): void {
  program
    .command('grant')
    .argument('<role>', 'an existing PostgreSQL role, the one the service connects as')
    .description('Grant a role exactly what the service needs to run (run as the schema owner, after migrate)')
    .addHelpText(
      'after',
      [
        '',
        'The role can then read and write the blog\'s rows, but cannot run DDL, truncate, write the audit,',
        'disable triggers or opt a transaction in to hard deletes except through the toolkit\'s function.',
        'Start the service as that role with MIGRATE_ON_START=off.',
        '',
        'Examples:',
        "  $ psql -c \"create role blog_app login password 'secret'\"",
        '  $ DATABASE_URL=postgres://owner@127.0.0.1/blog npm run cli -- migrate',
        '  $ DATABASE_URL=postgres://owner@127.0.0.1/blog npm run cli -- grant blog_app --json',
      ].join('\n'),
    )
    .action(async (role: string, options: CommonOptions) => {
      const config = configOf(io, options)
      if (config.databaseUrl === undefined || !/^postgres(ql)?:\/\//.test(config.databaseUrl)) {
        throw new CliError('grant needs a PostgreSQL server (DATABASE_URL=postgres://…): the embedded database has one user', 2)
      }
      const handle = await connect(config.databaseUrl, blogSoftDeletes(config.retentionDays)).catch((error: unknown) => {
        throw new CliError(`Cannot open the database: ${(error as Error).message}`)
      })
      try {
        const pending = await pendingMigrations(handle.db)
        if (pending.length > 0) throw new CliError(`Migrate first (not applied: ${pending.join(', ')})`)
        await grantRuntime(handle.db, role).catch((error: unknown) => {
          throw new CliError((error as Error).message)
        })
        print(io, options, { role, granted: true }, () => `Granted ${role} what the service needs on ${handle.location}`)
      } finally {
        await handle.close()
      }
    })
}
