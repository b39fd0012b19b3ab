import type { Command } from 'commander'
import { sql } from 'kysely'
import { withDeleted } from '@tombstone/kysely'
import { print, usingDatabase, type CliIO, type CommonOptions } from '../io.ts'

export interface TableStats {
  readonly table: string
  readonly active: number
  readonly deleted: number
  readonly purgeable_now: number
  readonly oldest_deleted: string | null
}

export function statsCommand(program: Command, io: CliIO): void {
  program
    .command('stats')
    .description('Per table: active rows, deleted rows, rows purgeable now, the oldest deletion')
    .addHelpText('after', '\nExamples:\n  $ tombstone-blog stats\n  $ tombstone-blog stats --json')
    .action(async (options: CommonOptions) => {
      await usingDatabase(io, options, async ({ db }) => {
        const stats: TableStats[] = []
        for (const table of ['users', 'posts', 'comments'] as const) {
          const row = await db
            .selectFrom(table)
            .select([
              sql<number>`count(*) filter (where deleted_at is null)::int`.as('active'),
              sql<number>`count(*) filter (where deleted_at is not null)::int`.as('deleted'),
              sql<number>`count(*) filter (where deleted_at is not null and purge_at <= now())::int`.as('purgeable_now'),
              sql<Date | null>`min(deleted_at)`.as('oldest_deleted'),
            ])
            .$call(withDeleted({ [table]: 'include' }))
            .executeTakeFirstOrThrow()
          stats.push({
            table,
            active: Number(row.active),
            deleted: Number(row.deleted),
            purgeable_now: Number(row.purgeable_now),
            oldest_deleted: row.oldest_deleted === null ? null : new Date(row.oldest_deleted).toISOString(),
          })
        }
        print(io, options, { tables: stats }, () => {
          const header = ['table', 'active', 'deleted', 'purgeable now', 'oldest deleted']
          const rows = stats.map((s) => [s.table, String(s.active), String(s.deleted), String(s.purgeable_now), s.oldest_deleted ?? '-'])
          const widths = header.map((title, index) => Math.max(title.length, ...rows.map((row) => (row[index] as string).length)))
          return [header, ...rows].map((row) => row.map((cell, index) => cell.padEnd(widths[index] as number)).join('  ')).join('\n')
        })
      })
    })
}
