import type { ColumnType, Generated, Selectable } from 'kysely'

/** The five columns every soft-deletable table carries. */
export interface SoftDeleteFields {
  deleted_at: Date | null
  deleted_by: string | null
  delete_reason: string | null
  deletion_id: string | null
  purge_at: Date | null
}

type CreatedAt = ColumnType<Date, Date | undefined, never>
type UpdatedAt = ColumnType<Date, Date | undefined, Date>

export type Role = 'user' | 'admin'

export interface UsersTable extends SoftDeleteFields {
  id: Generated<number>
  username: string
  email: string
  password_hash: string
  role: ColumnType<Role, Role | undefined, Role>
  created_at: CreatedAt
  updated_at: UpdatedAt
}

export interface PostsTable extends SoftDeleteFields {
  id: Generated<number>
  author_id: number
  title: string
  slug: string
  content: string
  published: ColumnType<boolean, boolean | undefined, boolean>
  created_at: CreatedAt
  updated_at: UpdatedAt
}

export interface CommentsTable extends SoftDeleteFields {
  id: Generated<number>
  post_id: number
  author_id: number
  body: string
  created_at: CreatedAt
  updated_at: UpdatedAt
}

export interface TokensTable {
  id: Generated<number>
  user_id: number
  token_hash: string
  created_at: CreatedAt
  expires_at: Date
  revoked_at: Date | null
}

export interface LoginFailuresTable {
  id: Generated<number>
  username: string
  address: string
  at: CreatedAt
}

export interface AuditTable {
  id: ColumnType<number, never, never>
  at: ColumnType<Date, never, never>
  action: 'soft_delete' | 'restore' | 'hard_delete' | 'purge'
  entity: string
  entity_id: string
  actor: string | null
  reason: string | null
  deletion_id: string | null
}

/** The service's database, as Kysely sees it. */
export interface Database {
  users: UsersTable
  posts: PostsTable
  comments: CommentsTable
  tokens: TokensTable
  login_failures: LoginFailuresTable
  tombstone_audit: AuditTable
  bootstrap_state: { id: Generated<number>; admin_id: number; password_shown: Generated<boolean> }
  registrations: { id: Generated<number>; address: string; at: Generated<Date> }
}

export type User = Selectable<UsersTable>
export type Post = Selectable<PostsTable>
export type Comment = Selectable<CommentsTable>
