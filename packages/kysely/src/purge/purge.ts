import { sql, type Expression, type ExpressionBuilder, type Kysely, type RawBuilder, type SqlBool } from 'kysely'
import type { TableDefinition } from '../definition.ts'
import { InvalidArgumentError, type RowKey } from '../errors.ts'
import { withDeleted } from '../plugin/markers.ts'
import { contextOf, type ActorOptions, type Context } from '../operations/context.ts'
import { classifyGrantError, hardDeleteGrant, removeTrees, selectionFor } from '../operations/force-delete.ts'
import { freeOfHolds, holdsInstalled, standingHolds } from '../holds/holds.ts'
import { dialectKindOf, type DialectKind } from '../dialects/adapter.ts'
import { HELD_ROWS_TABLE } from '../holds/schema.ts'
import { portableFor } from '../dialects/portable.ts'

/** Options of {@link purge}. */
export interface PurgeOptions extends ActorOptions {
  /**
   * The tables to purge. Defaults to every declared table. Children always go before parents. The
   * rows below a purged row go with it, whatever their tables: a run and a dry run count them under
   * their own tables, and count nothing else of a table left out.
   */
  readonly tables?: readonly string[]
  /**
   * Purge rows deleted before this instant instead of rows whose `purge_at` has passed. Defaults to
   * `purge_at <= now()`.
   */
  readonly before?: Date
  /** Rows per batch; each batch is its own short transaction. Defaults to 1,000. */
  readonly batchSize?: number
  /** Count and sample what would go, change nothing. Defaults to `false`. */
  readonly dryRun?: boolean
  /** How many `{ table, id }` a dry run returns. Defaults to 100. */
  readonly sampleSize?: number
  /** Called after each batch. */
  readonly onProgress?: (progress: PurgeProgress) => void
  /**
   * Milliseconds to wait between batches, leaving the database (and the CPU) to live traffic; the
   * purge is slower, reads beside it less so. Defaults to 0.
   */
  readonly pauseMs?: number
  /**
   * The share of wall time the purge may spend in its batches, between 0 (exclusive) and 1: after a
   * batch that took `t` ms it waits `t × (1 − dutyCycle) / dutyCycle` ms, so it paces itself to what
   * the database can spare: batches that slow down under live traffic lengthen the pauses with
   * them, where a fixed `pauseMs` does not. `0.5` leaves the database half the time. Added to
   * `pauseMs`. Defaults to `1` (no pacing).
   *
   * @example
   * ```ts
   * const result = await purge(db, { dutyCycle: 0.25 })   // busy at most a quarter of the time
   * console.log(result.busyMs, result.pausedMs)
   * ```
   */
  readonly dutyCycle?: number
  /**
   * How long a batch should take, in milliseconds: after each batch the purge sizes the next one to
   * it from the rate the last batches ran at (as pt-online-schema-change's `--chunk-time` does),
   * between 1 row and `batchSize` rows, so that no batch holds its row locks, or the database, much
   * longer than this, whatever the rows cost (deep trees, wide rows, a busy server). The first batch
   * of each table takes at most 100 rows. Batches stop shrinking where their fixed cost (transaction,
   * lock, round trips) dominates: a target below it cannot be met, and `pacing.batchesOverTarget`
   * counts the batches over it. Combine with `dutyCycle` for the share of time. Defaults to none:
   * every batch takes `batchSize` rows. The result's `pacing` says what it did.
   *
   * @example
   * ```ts
   * const result = await purge(db, { targetBatchMs: 20, dutyCycle: 0.25 })
   * console.log(result.pacing)   // { targetBatchMs: 20, dutyCycle: 0.25, smallestBatchSize: …, largestBatchSize: …, lastBatchSize: …, batchesOverTarget: … }
   * ```
   */
  readonly targetBatchMs?: number
  /**
   * Per table, a condition a due row must also meet to be purged: a retention beyond age (keep what
   * an investigation still needs, purge spam sooner with `before`, …). The callback gets an
   * expression builder and `column(name)`, a reference to the row's column qualified as the
   * statement needs it (write columns through it, never by a bare name). A row that does not meet it
   * is not due, and nor is what is below it only through it; the descendants of a row that is
   * purged still go with it (they cannot outlive it). Counts, samples and plans follow it too.
   * Defaults to none: every due row.
   *
   * @example
   * ```ts
   * // Purge only the posts deleted as spam, and the deleted comments that are due.
   * await purge(db, { where: { posts: (eb, column) => eb(column('delete_reason'), '=', 'spam') } })
   * ```
   */
  readonly where?: Readonly<Record<string, PurgePredicate>>
  /** Stops between batches; what is done stays done. */
  readonly signal?: AbortSignal
  /**
   * Purge only what was due at this instant: rows deleted (or, without `before`, whose `purge_at`
   * came) after it stay, and rows restored since are not deleted any more. A dry run returns its
   * `asOf`; passing it with the same `before` and `tables` to the real run removes exactly what the
   * dry run counted, or less (a purge plan). Defaults to the database's clock when the run starts.
   */
  readonly asOf?: Date
}

/** A condition on a due row of one table (see {@link PurgeOptions.where}). */
export type PurgePredicate = (eb: ExpressionBuilder<any, any>, column: (name: string) => RawBuilder<unknown>) => Expression<SqlBool>

/** Where a purge is, after a batch. */
export interface PurgeProgress {
  readonly table: string
  /** Rows removed so far, all tables (descendants included). */
  readonly done: number
  /** What the run expects to remove in all, counted before it started (rows may be restored meanwhile). */
  readonly total: number
  readonly batches: number
  readonly elapsedMs: number
  /** How long this batch's transaction took, in milliseconds. */
  readonly batchMs: number
  /** The most rows this batch could take (`batchSize`, or what `targetBatchMs` sized it to). */
  readonly batchSize: number
  readonly rowsPerSecond: number
}

/** How a run paced itself (see {@link PurgeOptions.targetBatchMs} and {@link PurgeOptions.dutyCycle}). */
export interface PurgePacing {
  /** The batch time aimed at, or `null` when batches took `batchSize` rows each. */
  readonly targetBatchMs: number | null
  readonly dutyCycle: number
  /** The batch sizes used (the most rows a batch could take), 0 when no batch ran. */
  readonly smallestBatchSize: number
  readonly largestBatchSize: number
  readonly lastBatchSize: number
  /**
   * Batches that took longer than `targetBatchMs` (0 without a target). Many of them, at the
   * smallest size, say the target is below what one batch costs on this database.
   */
  readonly batchesOverTarget: number
}

/** What one table's purge did. */
export interface PurgeTableResult {
  readonly count: number
  readonly batches: number
  /** `'busy'` when another run held the table's lock: this run left it alone. */
  readonly skipped?: 'busy'
  /** Due rows left because a legal hold covers them or a row below them (counted when the run started). */
  readonly held: number
}

/** What {@link purge} did, or would do. */
export interface PurgeResult {
  readonly dryRun: boolean
  /** Rows removed (or that would be), all tables, descendants of purged rows included. */
  readonly count: number
  /**
   * Per table that loses rows (or would): its own rows, those due and those going with a parent's,
   * alike in a run and in a dry run; `batches` counts the batches started from the table.
   */
  readonly tables: Readonly<Record<string, PurgeTableResult>>
  /** Dry run only: up to `sampleSize` of the rows that would go. */
  readonly sample: readonly { readonly table: string; readonly id: RowKey }[]
  readonly batches: number
  readonly durationMs: number
  /** The longest batch (how long row locks were held), in milliseconds. */
  readonly longestBatchMs: number
  /** Time spent in batches (their transactions), in milliseconds. */
  readonly busyMs: number
  /** Time spent waiting between batches (`pauseMs` and `dutyCycle`), in milliseconds. */
  readonly pausedMs: number
  /** True when `signal` stopped the run before the end. */
  readonly aborted: boolean
  /** The instant the run purged as of (the database's clock at its start, or the `asOf` given). */
  readonly asOf: Date
  /** Due rows left, all tables, because a legal hold covers them or a row below them ({@link placeHold}). */
  readonly held: number
  /** How the run paced itself. */
  readonly pacing: PurgePacing
}

/** Hooks for the race tests; not part of the public API. @internal */
export interface PurgeTestHooks {
  /** Run between taking a batch and removing it. */
  readonly afterSelect?: () => Promise<void>
  /** Take the batch without locking it and delete without re-checking: the bug the race test shows. */
  readonly skipRecheck?: boolean
  /** Replaces a batch's measured duration (ms) by this one, for the pacing tests. */
  readonly batchMs?: (taken: number, measured: number) => number
}

/** Rows the first batch of a table takes when `targetBatchMs` sizes the batches. */
const FIRST_PACED_BATCH = 100

/**
 * Sizes batches to `targetBatchMs`: the next batch takes the rate the batches ran at (rows per ms,
 * averaged with the one before) times the target, grown at most 2x a batch, within a floor and
 * `batchSize`. The floor rises when a smaller batch saved less than half of the time a per-row cost
 * would have: each batch's fixed cost (its transaction, the lock, the round trips) dominates there,
 * and smaller batches would only make more of them (a target below that cost cannot be met; the
 * result counts the batches over it).
 */
class BatchPacer {
  size: number
  #floor = 1
  #rate: number | undefined
  #previous: { size: number; ms: number } | undefined
  readonly target: number
  readonly batchSize: number
  constructor(target: number, batchSize: number) {
    this.target = target
    this.batchSize = batchSize
    this.size = Math.min(batchSize, FIRST_PACED_BATCH)
  }
  /** After a full batch of `this.size` rows that took `ms`. */
  next(ms: number): void {
    const size = this.size
    const previous = this.#previous
    if (previous !== undefined && size < previous.size) {
      const perRow = (previous.ms * size) / previous.size
      if (ms - perRow > (previous.ms - perRow) / 2) this.#floor = Math.max(this.#floor, size)
    }
    this.#previous = { size, ms }
    const latest = size / Math.max(ms, 0.001)
    this.#rate = this.#rate === undefined ? latest : (this.#rate + latest) / 2
    this.size = Math.max(this.#floor, Math.min(this.batchSize, size * 2, Math.floor(this.#rate * this.target)))
  }
}

/**
 * Removes for good the deleted rows that are due — `purge_at` passed, or deleted before `before` —
 * children before parents, in batches, each its own short transaction:
 *
 * - rows are taken with `FOR UPDATE SKIP LOCKED`, so a restore in progress is never waited for and
 *   its rows are skipped; under the lock each row is re-checked as still deleted (a restore that
 *   committed first wins), and the `DELETE` repeats the check;
 * - a due row's descendants go with it (they cannot outlive it), whatever their state;
 * - a transaction-scoped advisory lock per table means two runs (two service instances) never
 *   purge the same table at once: the second leaves the table and reports it `busy`;
 * - killed at any point, a run loses only its current batch's uncommitted work: the next run
 *   finishes the job;
 * - every removed row is written to the audit trail as `purge`.
 *
 * @example
 * ```ts
 * const preview = await purge(db, { dryRun: true })            // count and sample, nothing changes
 * const result = await purge(db, {
 *   batchSize: 1000,
 *   onProgress: (p) => console.error(`${p.done}/${p.total} rows, ${p.rowsPerSecond.toFixed(0)} rows/s`),
 * })
 * const old = await purge(db, { before: new Date(Date.now() - 90 * 86_400_000), tables: ['posts'] })
 * ```
 */
export async function purge<DB>(db: Kysely<DB>, options: PurgeOptions = {}): Promise<PurgeResult> {
  return purgeWithHooks(db as Kysely<any>, options, {})
}

/** {@link purge} with test hooks. @internal */
export async function purgeWithHooks(db: Kysely<any>, options: PurgeOptions, hooks: PurgeTestHooks): Promise<PurgeResult> {
  const context = contextOf(db)
  const batchSize = options.batchSize ?? 1000
  if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > 100_000) {
    throw new InvalidArgumentError('batchSize must be an integer between 1 and 100000')
  }
  const sampleSize = options.sampleSize ?? 100
  if (options.pauseMs !== undefined && (!Number.isFinite(options.pauseMs) || options.pauseMs < 0)) throw new InvalidArgumentError('pauseMs must be >= 0')
  const dutyCycle = options.dutyCycle ?? 1
  if (!Number.isFinite(dutyCycle) || dutyCycle <= 0 || dutyCycle > 1) throw new InvalidArgumentError('dutyCycle must be greater than 0 and at most 1')
  const target = options.targetBatchMs
  if (target !== undefined && (typeof target !== 'number' || !Number.isFinite(target) || target <= 0 || target > 3_600_000)) {
    throw new InvalidArgumentError('targetBatchMs must be a number of milliseconds greater than 0 and at most 3600000')
  }
  if (options.before !== undefined && Number.isNaN(options.before.getTime())) throw new InvalidArgumentError('before is not a valid date')
  if (options.asOf !== undefined && Number.isNaN(options.asOf.getTime())) throw new InvalidArgumentError('asOf is not a valid date')
  // SQLite and MariaDB/MySQL: their clock, locks and counts (dialects/portable.ts).
  const portable = portableFor(db)
  const clock =
    portable !== undefined
      ? { now: await portable.now(db), holds: await holdsInstalled(db) }
      : (await sql<{ now: Date; holds: boolean }>`select now() as now, to_regclass(${HELD_ROWS_TABLE}) is not null as holds`.execute(db)).rows[0]
  const asOf = options.asOf ?? new Date(clock?.now as Date)
  options = { ...options, asOf }
  // Rows under a legal hold (or above one) are never taken. Without a standing hold (or without the
  // holds installed) there is nothing to skip, and the statements stay as they were.
  const holds: Holds | undefined = clock?.holds === true && (await standingHolds(db)) ? { context, kind: dialectKindOf(db) } : undefined
  const wanted = new Set(options.tables ?? context.definition.tables.keys())
  for (const name of wanted) context.definition.table(name)
  for (const [name, predicate] of Object.entries(options.where ?? {})) {
    context.definition.table(name)
    if (typeof predicate !== 'function') throw new InvalidArgumentError(`where.${name} must be a function`)
  }
  // Children first, so that a parent's batch rarely has anything left below it.
  const childrenFirst = [...context.definition.topologicalOrder()].reverse()
  const order = childrenFirst.filter((name) => wanted.has(name))
  // What a run can remove: the wanted tables' due rows and, whatever their tables, the rows below them.
  const reach = new Set([...wanted].flatMap((name) => [name, ...context.definition.descendantsOf(name)]))
  const counted = childrenFirst.filter((name) => reach.has(name))
  const scope: Scope = { context, options, holds, wanted, reach }
  const started = performance.now()

  const counts = new Map<string, number>()
  const held = new Map<string, number>()
  for (const name of counted) {
    const row = await db
      .selectFrom(name)
      .select((portable === undefined ? sql<number>`count(*)::int` : sql<number>`count(*)`).as('n'))
      .where((eb) => dueOrBelowDue(eb, scope, name, name))
      .$call(withDeleted({ '*': 'include' }))
      .executeTakeFirstOrThrow()
    counts.set(name, Number(row.n))
    if (holds !== undefined && wanted.has(name)) {
      const heldRow = await db
        .selectFrom(name)
        .select((portable === undefined ? sql<number>`count(*)::int` : sql<number>`count(*)`).as('n'))
        .where((eb) => eb.and([due(eb, context.definition.table(name), options, name, undefined), eb.not(freeOfHolds(context, name, name, holds.kind))]))
        .$call(withDeleted({ '*': 'include' }))
        .executeTakeFirstOrThrow()
      held.set(name, Number(heldRow.n))
    }
  }
  const heldTotal = [...held.values()].reduce((sum, n) => sum + n, 0)
  const total = [...counts.values()].reduce((sum, n) => sum + n, 0)

  if (options.dryRun === true) {
    const sample: { table: string; id: RowKey }[] = []
    for (const name of counted) {
      if (sample.length >= sampleSize) break
      const table = context.definition.table(name)
      const rows = await db
        .selectFrom(name)
        .select(`${table.key} as key`)
        .where((eb) => dueOrBelowDue(eb, scope, name, name))
        .$call(withDeleted({ '*': 'include' }))
        .orderBy(table.key)
        .limit(sampleSize - sample.length)
        .execute()
      for (const row of rows) sample.push({ table: name, id: row.key as RowKey })
    }
    const tables = Object.fromEntries(counted.map((name) => [name, { count: counts.get(name) ?? 0, batches: 0, held: held.get(name) ?? 0 }]))
    return {
      dryRun: true,
      count: total,
      tables,
      sample,
      batches: 0,
      durationMs: performance.now() - started,
      longestBatchMs: 0,
      busyMs: 0,
      pausedMs: 0,
      aborted: false,
      asOf,
      held: heldTotal,
      pacing: { targetBatchMs: target ?? null, dutyCycle, smallestBatchSize: 0, largestBatchSize: 0, lastBatchSize: 0, batchesOverTarget: 0 },
    }
  }

  // Rows removed per table, wherever the batch that removed them started; batches per purged table.
  const removedIn = new Map<string, number>()
  const batchesOf = new Map<string, number>()
  const busyTables = new Set<string>()
  let done = 0
  let batches = 0
  let longest = 0
  let busyMs = 0
  let pausedMs = 0
  let aborted = false
  const sizes = { smallest: 0, largest: 0, last: 0 }
  let overTarget = 0
  for (const name of order) {
    const table = context.definition.table(name)
    let tableBatches = 0
    let busy = false
    // Each table's rows cost differently: its pacing starts over.
    const pacer = target === undefined ? undefined : new BatchPacer(target, batchSize)
    for (;;) {
      if (options.signal?.aborted) {
        aborted = true
        break
      }
      const size = pacer?.size ?? batchSize
      const batchStarted = performance.now()
      const outcome = await db.transaction().execute(async (trx) => {
        if (portable !== undefined) {
          if (!(await portable.tryPurgeLock(trx, name))) return { busy: true, taken: 0, removed: 0, tables: undefined }
        } else {
          // The table's purge lock and the opt-in to hard deletes in one round trip (a batch's fixed
          // cost is what limits a paced purge's small batches); an opt-in of a transaction that then
          // removes nothing is harmless.
          const lock = await sql<{ locked: boolean }>`select pg_try_advisory_xact_lock(hashtext(${`tombstone:purge:${name}`})) as locked, ${hardDeleteGrant({
            purpose: 'purge',
            by: options.by,
            reason: options.reason,
          })}`
            .execute(trx)
            .catch(classifyGrantError)
          if (lock.rows[0]?.locked !== true) return { busy: true, taken: 0, removed: 0, tables: undefined }
        }
        let select = trx
          .selectFrom(name)
          .select(selectionFor(context, table))
          .where((eb) => due(eb, table, options, name, holds))
          .orderBy(sql.ref(table.columns.purgeAt))
          .limit(size)
        select = hooks.skipRecheck === true ? select.$call(withDeleted({ [name]: 'include' })) : portable !== undefined ? portable.lockSkipLocked(select.$call(withDeleted({ [name]: 'only' }))) : select.$call(withDeleted({ [name]: 'only' })).forUpdate().skipLocked()
        const rows = await select.execute()
        if (rows.length === 0) return { busy: false, taken: 0, removed: 0, tables: undefined }
        await hooks.afterSelect?.()
        const removed = await removeTrees(trx, context, table, rows, {
          action: 'purge',
          rootVisibility: hooks.skipRecheck === true ? 'include' : 'only',
          by: options.by,
          reason: options.reason,
          granted: portable === undefined,
        })
        let count = 0
        for (const ids of removed.values()) count += ids.length
        return { busy: false, taken: rows.length, removed: count, tables: removed }
      })
      const measured = performance.now() - batchStarted
      const elapsed = hooks.batchMs === undefined ? measured : hooks.batchMs(outcome.taken, measured)
      busyMs += elapsed
      if (outcome.busy) {
        busy = true
        break
      }
      if (outcome.taken === 0) break
      longest = Math.max(longest, elapsed)
      batches += 1
      tableBatches += 1
      for (const [removedFrom, ids] of outcome.tables ?? []) removedIn.set(removedFrom, (removedIn.get(removedFrom) ?? 0) + ids.length)
      done += outcome.removed
      const elapsedMs = performance.now() - started
      sizes.smallest = sizes.smallest === 0 ? size : Math.min(sizes.smallest, size)
      sizes.largest = Math.max(sizes.largest, size)
      sizes.last = size
      options.onProgress?.({ table: name, done, total, batches, elapsedMs, batchMs: elapsed, batchSize: size, rowsPerSecond: elapsedMs > 0 ? (done * 1000) / elapsedMs : 0 })
      if (target !== undefined && elapsed > target) overTarget += 1
      if (outcome.taken < size) break
      pacer?.next(elapsed)
      const pause = (options.pauseMs ?? 0) + (elapsed * (1 - dutyCycle)) / dutyCycle
      if (pause > 0) {
        const pauseStarted = performance.now()
        await new Promise((resolve) => setTimeout(resolve, pause))
        pausedMs += performance.now() - pauseStarted
      }
    }
    batchesOf.set(name, tableBatches)
    if (busy) busyTables.add(name)
    if (aborted) break
  }
  // The dry run's tables: each with the rows it lost, its own (a parent's batch takes its children).
  const tables: Record<string, PurgeTableResult> = {}
  for (const name of counted) {
    const entry = { count: removedIn.get(name) ?? 0, batches: batchesOf.get(name) ?? 0, held: held.get(name) ?? 0 }
    tables[name] = busyTables.has(name) ? { ...entry, skipped: 'busy' } : entry
  }
  return {
    dryRun: false,
    count: done,
    tables,
    sample: [],
    batches,
    durationMs: performance.now() - started,
    longestBatchMs: longest,
    busyMs,
    pausedMs,
    aborted,
    asOf,
    held: heldTotal,
    pacing: {
      targetBatchMs: target ?? null,
      dutyCycle,
      smallestBatchSize: sizes.smallest,
      largestBatchSize: sizes.largest,
      lastBatchSize: sizes.last,
      batchesOverTarget: overTarget,
    },
  }
}

/** What the purge skips legal holds with: the definition, and the dialect's casts. */
interface Holds {
  readonly context: Context
  readonly kind: DialectKind
}

/** `deleted_at is not null` and due, qualified by `qualifier`; with `holds`, and free of legal holds. */
function due(
  eb: ExpressionBuilder<any, any>,
  table: TableDefinition,
  options: PurgeOptions,
  qualifier: string,
  holds: Holds | undefined,
): Expression<SqlBool> {
  if (holds !== undefined) return eb.and([due(eb, table, options, qualifier, undefined), freeOfHolds(holds.context, table.name, qualifier, holds.kind)])
  const deletedAt = sql.ref(`${qualifier}.${table.columns.deletedAt}`)
  const asOf = options.asOf as Date
  // Deleted by the plan's instant: a row deleted (again) after it is not in the plan.
  const conditions: Expression<SqlBool>[] = [eb(deletedAt, 'is not', null), eb(deletedAt, '<=', asOf)]
  conditions.push(options.before === undefined ? eb(sql.ref(`${qualifier}.${table.columns.purgeAt}`), '<=', asOf) : eb(deletedAt, '<', options.before))
  const predicate = options.where?.[table.name]
  if (predicate !== undefined) conditions.push(predicate(eb, (column) => sql.ref(`${qualifier}.${column}`) as RawBuilder<unknown>))
  return eb.and(conditions)
}

/** What the counts of a run look at: its tables, the tables below them, its options and holds. */
interface Scope {
  readonly context: Context
  readonly options: PurgeOptions
  readonly holds: Holds | undefined
  /** The tables the run purges (`PurgeOptions.tables`). */
  readonly wanted: ReadonlySet<string>
  /** Those and every table below them: where a run removes rows. */
  readonly reach: ReadonlySet<string>
}

/**
 * Due, or below a due row along the relations (and, in a table that references itself, below such
 * a row along its own relation, to any depth: the purge removes replies with the row they answer):
 * what a purge removes from this table, for the counts and the dry run.
 */
function dueOrBelowDue(eb: ExpressionBuilder<any, any>, scope: Scope, name: string, qualifier: string, depth = 0): Expression<SqlBool> {
  const table = scope.context.definition.table(name)
  const self = scope.context.definition.selfRelationOf(name)
  if (self !== undefined) {
    // The rows reached otherwise (`tombstone_t<depth>` seeds a recursive query), then every reply
    // below them, whatever its state (operations/tree.ts); plain SQL, so SQLite and MariaDB run it too.
    const seed = `tombstone_t${depth}`
    const tree = sql.id(`tombstone_tree${depth}`)
    const [t, key, fk, pk] = [sql.table(name), sql.id(table.key), sql.id(self.foreignKey), sql.id(self.parentKey)]
    return eb(
      sql.ref(`${qualifier}.${table.key}`),
      'in',
      sql`(with recursive ${tree}(k, s) as (
        select ${sql.ref(`${seed}.${table.key}`)}, ${sql.ref(`${seed}.${self.parentKey}`)} from ${t} as ${sql.id(seed)}
        where ${reached(eb, scope, name, seed, depth + 1)}
        union
        select c.${key}, c.${pk} from ${t} as c join ${tree} as r on c.${fk} = r.s
      ) select k from ${tree})`,
    )
  }
  return reached(eb, scope, name, qualifier, depth)
}

/**
 * Due in a table the run purges, or below a row of a parent table that the run removes:
 * {@link dueOrBelowDue} but for the table's own relation. A table the run does not purge loses only
 * the rows below the ones it does.
 */
function reached(eb: ExpressionBuilder<any, any>, scope: Scope, name: string, qualifier: string, depth: number): Expression<SqlBool> {
  const table = scope.context.definition.table(name)
  const branches: Expression<SqlBool>[] = scope.wanted.has(name) ? [due(eb, table, scope.options, qualifier, scope.holds)] : []
  for (const relation of scope.context.definition.parentsOf(name)) {
    if (!scope.reach.has(relation.parent)) continue
    const alias = `tombstone_p${depth}_${relation.parent.replaceAll('.', '_')}`
    branches.push(
      eb(
        sql.ref(`${qualifier}.${relation.foreignKey}`),
        'in',
        eb
          .selectFrom(`${relation.parent} as ${alias}`)
          .select(`${alias}.${relation.parentKey}`)
          .where((inner) => dueOrBelowDue(inner, scope, relation.parent, alias, depth + 1)),
      ),
    )
  }
  return eb.or(branches)
}
