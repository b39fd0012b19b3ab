import fp from 'fastify-plugin'
import { purge } from '@tombstone/kysely'
import { pruneCredentials } from '../services/tokens.ts'

/**
 * Purges expired rows (`purge_at` passed) every `intervalMinutes`, paced by `targetBatchMs` (0: none)
 * and `dutyCycle` (1: none) as `purge()` is, and prunes tokens expired or
 * revoked more than a day ago and login failures older than a day; 0 turns it off. Safe with several
 * instances on one database: the purge takes an advisory lock per table, and an instance that finds
 * a table busy leaves it to the other. Closing the app stops a run between batches and waits for it.
 */
export const purgeScheduler = fp<{ intervalMinutes: number; targetBatchMs?: number; dutyCycle?: number }>(
  async (app, { intervalMinutes, targetBatchMs = 0, dutyCycle = 1 }) => {
    if (intervalMinutes <= 0) return
    const controller = new AbortController()
    let running: Promise<void> | undefined
    const run = () => {
      if (running !== undefined) return
      running = purge(app.db, {
        by: 'system',
        reason: 'retention expired',
        signal: controller.signal,
        dutyCycle,
        ...(targetBatchMs > 0 ? { targetBatchMs } : {}),
      })
        .then(async (result) => {
          if (result.count > 0 || Object.values(result.tables).some((table) => table.skipped !== undefined)) {
            app.log.info(
              { purged: result.count, tables: result.tables, longestBatchMs: Math.round(result.longestBatchMs), pausedMs: Math.round(result.pausedMs), pacing: result.pacing },
              'periodic purge',
            )
          }
          // Housekeeping beside it: expired and revoked tokens, old login failures.
          const pruned = await pruneCredentials(app.db)
          if (pruned.tokens + pruned.loginFailures > 0) app.log.info(pruned, 'pruned credentials')
        })
        .catch((error: unknown) => app.log.error({ err: error }, 'periodic purge failed'))
        .finally(() => {
          running = undefined
        })
    }
    const timer = setInterval(run, intervalMinutes * 60_000)
    timer.unref()
    app.addHook('onClose', async () => {
      clearInterval(timer)
      controller.abort()
      await running
    })
  },
  { name: 'purge-scheduler', dependencies: ['database'], fastify: '5.x' },
)
