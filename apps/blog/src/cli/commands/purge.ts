import type { Command } from 'commander'
import { purge } from '@tombstone/kysely'
import { decodePlan, encodePlan, type PurgePlan } from '../../services/purge-plan.ts'
import { CliError, DURATION_HELP, entity, ENTITY_TABLES, parseDuration, plural, positiveInteger, positiveShare, print, usingDatabase, type CliIO, type CommonOptions, type EntityName } from '../io.ts'
import { progressBar } from '../progress.ts'

interface PurgeCommandOptions extends CommonOptions {
  readonly dryRun?: boolean
  readonly plan?: string
  readonly olderThan?: number
  readonly type?: EntityName
  readonly batchSize?: number
  readonly targetBatchMs?: number
  readonly dutyCycle?: number
}


export function purgeCommand(program: Command, io: CliIO): void {
  program
    .command('purge')
    .description('Remove for good the deleted rows that are due (purge_at passed), or deleted before --older-than')
    .option('--dry-run', 'count and sample what would go; change nothing')
    .option('--older-than <duration>', `rows deleted longer ago than this: ${DURATION_HELP}`, parseDuration)
    .option('--type <type>', 'only posts, comments or users (post, comment, user); children go first', entity)
    .option('--batch-size <n>', 'rows per transaction (default 1000; the most, with --target-batch-ms)', positiveInteger(100_000))
    .option('--target-batch-ms <ms>', 'size each batch to take about this long', positiveInteger(60_000))
    .option('--duty-cycle <share>', 'the share of time spent in batches, above 0 and at most 1 (default 1: no pauses)', positiveShare)
    .option('--plan <plan>', 'purge exactly what a --dry-run counted (its plan), or less: rows deleted since stay')
    .addHelpText(
      'after',
      '\nExamples:\n  $ tombstone-blog purge --dry-run                 # prints a plan\n  $ tombstone-blog purge --plan <plan>             # purges exactly that, or less\n  $ tombstone-blog purge --older-than 90d --type post\n  $ tombstone-blog purge --older-than 12h --dry-run\n  $ tombstone-blog purge --batch-size 5000 --json\n  $ tombstone-blog purge --target-batch-ms 20 --duty-cycle 0.25',
    )
    .action(async (options: PurgeCommandOptions) => {
      if (options.plan !== undefined && (options.olderThan !== undefined || options.type !== undefined || options.dryRun === true)) {
        throw new CliError('--plan carries its own cutoff and type: give it alone', 2)
      }
      let plan: PurgePlan | undefined
      try {
        plan = options.plan === undefined ? undefined : decodePlan(options.plan)
      } catch (error) {
        throw new CliError(`--plan: ${(error as Error).message}`, 2)
      }
      await usingDatabase(io, options, async ({ db }) => {
        const before = plan !== undefined ? plan.cutoff : options.olderThan === undefined ? undefined : new Date(Date.now() - options.olderThan)
        const type = plan !== undefined ? plan.type : options.type
        const tables = type === undefined ? undefined : [ENTITY_TABLES[type]]
        const bar = options.dryRun === true ? undefined : progressBar(io, 'purging')
        const result = await purge(db, {
          by: 'cli',
          reason: before === undefined ? 'retention expired' : `deleted before ${before.toISOString()}`,
          dryRun: options.dryRun === true,
          ...(before === undefined ? {} : { before }),
          ...(plan === undefined ? {} : { asOf: plan.asOf }),
          ...(tables === undefined ? {} : { tables }),
          ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
          ...(options.targetBatchMs === undefined ? {} : { targetBatchMs: options.targetBatchMs }),
          ...(options.dutyCycle === undefined ? {} : { dutyCycle: options.dutyCycle }),
          ...(bar === undefined ? {} : { onProgress: (progress) => bar.update(progress.done, progress.total) }),
        }).finally(() => bar?.stop())
        const summary = {
          dry_run: result.dryRun,
          count: result.count,
          cutoff: before?.toISOString() ?? null,
          tables: result.tables,
          batches: result.batches,
          duration_ms: Math.round(result.durationMs),
          longest_batch_ms: Math.round(result.longestBatchMs),
          rows_per_second: result.durationMs > 0 ? Math.round((result.count * 1000) / result.durationMs) : 0,
          paused_ms: Math.round(result.pausedMs),
          pacing: {
            target_batch_ms: result.pacing.targetBatchMs,
            duty_cycle: result.pacing.dutyCycle,
            batch_sizes: { smallest: result.pacing.smallestBatchSize, largest: result.pacing.largestBatchSize, last: result.pacing.lastBatchSize },
            batches_over_target: result.pacing.batchesOverTarget,
          },
          ...(result.dryRun ? { sample: result.sample.map((entry) => ({ table: entry.table, id: Number(entry.id) })) } : {}),
          as_of: result.asOf.toISOString(),
          ...(result.dryRun ? { plan: encodePlan({ asOf: result.asOf, cutoff: before, type }) } : {}),
        }
        print(io, options, summary, () => {
          const perTable = Object.entries(result.tables)
            .map(([name, table]) => `  ${name}: ${table.count}${table.skipped === 'busy' ? ' (skipped: another purge holds it)' : ''}`)
            .join('\n')
          if (result.dryRun) {
            const sample = result.sample.slice(0, 10).map((entry) => `${entry.table}#${String(entry.id)}`).join(', ')
            return `Would purge ${plural(result.count, 'row')}${before === undefined ? '' : ` deleted before ${before.toISOString()}`}:\n${perTable}${
              sample === '' ? '' : `\n  e.g. ${sample}`
            }\nTo purge exactly these (or fewer): npm run cli -- purge --plan ${summary.plan as string}`
          }
          const pacing =
            result.pacing.targetBatchMs === null && result.pacing.dutyCycle === 1
              ? ''
              : `, batches of ${result.pacing.smallestBatchSize}–${result.pacing.largestBatchSize} rows, paused ${summary.paused_ms} ms`
          return `Purged ${plural(result.count, 'row')} in ${plural(result.batches, 'batch', 'batches')}, ${summary.duration_ms} ms (${summary.rows_per_second} rows/s, longest batch ${summary.longest_batch_ms} ms${pacing}):\n${perTable}`
        })
      })
    })
}
