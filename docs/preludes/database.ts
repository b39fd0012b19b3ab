// docs-test prelude "database": the imports and the Kysely database interface the docs' fragments use.
import { PGlite } from '@electric-sql/pglite'
import { Kysely, sql, type Generated } from 'kysely'
import { PGliteDialect } from '@tombstone/kysely/pglite'
import {
  addSoftDeleteColumns,
  allowHardDelete,
  classifyDatabaseError,
  createActiveIndex,
  createActiveUniqueIndex,
  defineSoftDeletes,
  forceDelete,
  HardDeleteRefusedError,
  installHardDeleteGuard,
  installSoftDeletes,
  isTombstoneError,
  purge,
  readAudit,
  restore,
  softDelete,
  softDeleteColumns,
  SoftDeletePlugin,
  withDeleted,
} from '@tombstone/kysely'

/** The five soft-delete columns, as Kysely sees them. */
interface Deletable {
  deleted_at: Date | null
  deleted_by: string | null
  delete_reason: string | null
  deletion_id: string | null
  purge_at: Date | null
}
interface Database {
  users: { id: Generated<number>; username: string; email: string } & Deletable
  posts: { id: Generated<number>; author_id: number; title: string; slug: string; created_at: Generated<Date> } & Deletable
  comments: { id: Generated<number>; post_id: number; author_id: number; body: string } & Deletable
}
