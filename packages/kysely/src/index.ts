/**
 * @tombstone/kysely: complete, automatic soft delete for Kysely on PostgreSQL.
 *
 * A query flows builder -> {@link SoftDeletePlugin} (tree rewrite) -> compiler -> driver. The
 * operations ({@link softDelete}, {@link restore}, {@link forceDelete}, {@link purge}) are plain
 * functions taking the plugin-equipped database or a transaction first.
 *
 * @example
 * ```ts
 * import { Kysely } from 'kysely'
 * import { defineSoftDeletes, SoftDeletePlugin, softDelete, restore, withDeleted } from '@tombstone/kysely'
 *
 * const softDeletes = defineSoftDeletes<Database>()({
 *   tables: { posts: { retention: { days: 30 } }, comments: {} },
 *   relations: [{ parent: 'posts', child: 'comments', foreignKey: 'post_id' }],
 * })
 * const db = new Kysely<Database>({ dialect, plugins: [new SoftDeletePlugin(softDeletes)] })
 *
 * await softDelete(db, 'posts', { id: 1 }, { by: 'alice', reason: 'duplicate' })
 * await db.selectFrom('posts').selectAll().execute()                                   // post 1 is gone
 * await db.selectFrom('posts').selectAll().$call(withDeleted({ posts: 'only' })).execute() // only post 1
 * await restore(db, 'posts', { id: 1 })                                                 // with its comments
 * ```
 *
 * @module \@tombstone/kysely
 */
export {
  defineSoftDeletes,
  SoftDeleteDefinition,
  DEFAULT_COLUMNS,
  type SoftDeleteColumns,
  type SoftDeleteOptions as SoftDeleteDefinitionOptions,
  type TableOptions,
  type RelationOptions,
  type DependentOptions,
  type DependentDefinition,
  type DependentAction,
  type Retention,
  type DeletePolicy,
  type TableDefinition,
  type RelationDefinition,
} from './definition.ts'
export {
  ERROR_CODES,
  SQLSTATE,
  TombstoneError,
  NotFoundError,
  NotDeletedError,
  ConflictError,
  ParentDeletedError,
  ReferencedError,
  HardDeleteRefusedError,
  AuditAppendOnlyError,
  DeletionStampedError,
  LegalHoldError,
  DeletePolicyError,
  InvalidArgumentError,
  InvalidConfigurationError,
  isTombstoneError,
  sqlStateOf,
  classifyDatabaseError,
  type TombstoneErrorCode,
  type AnyTombstoneError,
  type RowKey,
} from './errors.ts'
export { SoftDeletePlugin } from './plugin/soft-delete-plugin.ts'
export { QueryShapes, type Placeholders } from './query-shapes.ts'
export {
  withDeleted,
  hardDelete,
  VISIBILITIES,
  type Visibility,
  type VisibilityMap,
  type ModifiableBuilder,
} from './plugin/markers.ts'
export {
  inTransaction,
  TRANSACTION_ATTEMPTS,
  AUDIT_ACTIONS,
  type AuditAction,
  type Target,
  type ActorOptions,
  type TableResult,
  type ActiveChildEntry,
} from './operations/context.ts'
export { softDelete, type SoftDeleteOptions, type SoftDeleteResult } from './operations/soft-delete.ts'
export {
  restore,
  type RestoreOptions,
  type RestoreResult,
  type RestoreSet,
  type ParentDeletedEntry,
} from './operations/restore.ts'
export {
  restoreOrCreate,
  type RestoreOrCreateOptions,
  type RestoreOrCreateResult,
  type RestoreOrCreateRow,
} from './operations/restore-or-create.ts'
export {
  forceDelete,
  allowHardDelete,
  withHardDeletes,
  type HardDeleteGrantOptions,
  type ForceDeleteResult,
} from './operations/force-delete.ts'
export {
  softDeleteColumns,
  addSoftDeleteColumns,
  createActiveUniqueIndex,
  createActiveIndex,
  createSoftDeleteIndexes,
  createRelationIndexes,
  installHardDeleteGuard,
  removeHardDeleteGuard,
  createAuditTable,
  installSoftDeletes,
  type ColumnOptions,
  type IndexOptions,
  type InstallOptions,
  type InstallResult,
  type UniqueWarning,
  type ConvertedUnique,
} from './schema/migrations.ts'
export {
  purge,
  type PurgeOptions,
  type PurgePacing,
  type PurgeProgress,
  type PurgeResult,
  type PurgeTableResult,
  type PurgePredicate,
} from './purge/purge.ts'
export { grantSoftDeleteRuntime } from './schema/invariants.ts'
export { dialectKindOf, DIALECT_KINDS, type DialectKind } from './dialects/adapter.ts'
export { readAudit, type AuditEntry, type AuditQuery } from './audit/audit.ts'
export {
  placeHold,
  releaseHold,
  listHolds,
  type Hold,
  type HoldTarget,
  type HoldQuery,
  type PlaceHoldOptions,
  type PlaceHoldResult,
  type ReleaseHoldResult,
} from './holds/holds.ts'
export {
  previewSoftDelete,
  previewRestore,
  previewForceDelete,
  type PreviewResult,
  type PreviewTable,
  type PreviewConflict,
  type PreviewOptions,
} from './operations/preview.ts'
export {
  listDeletions,
  readDeletion,
  restoreDeletion,
  previewRestoreDeletion,
  type Deletion,
  type DeletionTable,
  type DeletionSummary,
  type DeletionQuery,
  type DeletionPage,
} from './deletions/deletions.ts'
