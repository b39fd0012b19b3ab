/** The service's API, as the admin page uses it. Every error arrives as problem details. */

export type EntityType = 'post' | 'comment' | 'user'

export interface TrashItem {
  type: EntityType
  id: number
  label: string
  deleted_at: string
  deleted_by: number | null
  deleted_by_username: string | null
  delete_reason: string | null
  deletion_id: string | null
  purge_at: string | null
  parent: { type: string; id: number; deleted: boolean } | null
  dependents: { posts: number; comments: number }
  /** A legal hold stands on it: never purged or permanently deleted until released. */
  held: boolean
}

/** Counts per entity type. */
export type PerType<T> = Partial<Record<EntityType, T>>

/** One delete operation, as the deletion list shows it. */
export interface DeletionSummary {
  id: string
  at: string
  actor_id: number | null
  actor_username: string | null
  reason: string | null
  /** What was targeted (the cascade is in counts). */
  type: EntityType
  root_id: number | null
  root_count: number
  label: string | null
  count: number
  counts: PerType<number>
  held: boolean
}

/** One deletion in full: what it took per type, and what became of it since. */
export interface Deletion {
  id: string
  at: string
  actor_id: number | null
  reason: string | null
  type: EntityType
  ids: number[]
  root_count: number
  count: number
  still_deleted: number
  tables: PerType<{ taken: number; still_deleted: number; restored: number; removed: number }>
  purge_at: string | null
}

/** A dry run of a deletion's restore: what would come back, and what would refuse it. */
export interface RestorePreview {
  dry_run: true
  count: number
  tables: PerType<{ count: number; sample: number[] }>
  would_refuse: boolean
  parent_deleted: { type: EntityType; id: number; parent_type: EntityType; parent_id: number }[]
  conflicts: { type: EntityType; id: number; constraint: string; fields: string[]; conflicting_id: number }[]
}

export interface Hold {
  id: number
  type: EntityType
  deletion_id: string | null
  placed_at: string
  placed_by: number | null
  reason: string
  released_at: string | null
  rows: number
}

/** Rows deleted, restored and purged on one day (UTC). */
export interface DailyAudit {
  date: string
  soft_delete: number
  restore: number
  purge: number
}

export interface AuditItem {
  id: number
  at: string
  action: 'soft_delete' | 'restore' | 'hard_delete' | 'purge' | 'hold' | 'release'
  entity: EntityType
  entity_id: number
  actor_id: number | null
  deletion_id: string | null
  reason: string | null
  /** The actor by name; null for the service itself or an actor since erased. */
  actor_username: string | null
  /** The row as the trash names it today; null once erased. */
  entity_label: string | null
  entity_state: 'active' | 'deleted' | 'gone'
}

export interface Page<T> {
  items: T[]
  next_cursor: string | null
}

export interface Me {
  id: number
  username: string
  role: 'user' | 'admin'
}

/** A failed request, with the problem the service answered. */
export class ApiError extends Error {
  readonly status: number
  readonly slug: string
  readonly problem: Record<string, unknown>
  constructor(status: number, problem: Record<string, unknown>) {
    super(typeof problem.detail === 'string' ? problem.detail : `HTTP ${status}`)
    this.status = status
    this.problem = problem
    this.slug = typeof problem.type === 'string' ? (problem.type.split('/problems/')[1] ?? '') : ''
  }
}

const TOKEN_KEY = 'tombstone.admin.token'

/** Fired when the service refuses the session's token (expired, revoked): the page signs out. */
export const SESSION_ENDED = 'tombstone:session-ended'

export const session = {
  get token(): string | null {
    return sessionStorage.getItem(TOKEN_KEY)
  },
  set token(value: string | null) {
    if (value === null) sessionStorage.removeItem(TOKEN_KEY)
    else sessionStorage.setItem(TOKEN_KEY, value)
  },
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  return (await exchange<T>(method, path, body)).data
}

/** A request, with the answer's headers (a DELETE names its deletion in one). */
async function exchange<T>(method: string, path: string, body?: unknown): Promise<{ data: T; headers: Headers }> {
  const headers: Record<string, string> = { accept: 'application/json' }
  const token = session.token
  if (token !== null) headers.authorization = `Bearer ${token}`
  if (body !== undefined) headers['content-type'] = 'application/json'
  let response: Response
  try {
    response = await fetch(path, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
  } catch {
    throw new ApiError(0, { detail: 'The service does not answer. Is it running?' })
  }
  if (response.status === 204) return { data: undefined as T, headers: response.headers }
  const text = await response.text()
  let data: Record<string, unknown>
  try {
    data = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>)
  } catch {
    data = { detail: `The service answered ${response.status} with something other than JSON.` }
  }
  if (response.status === 401 && token !== null) {
    session.token = null
    window.dispatchEvent(new Event(SESSION_ENDED))
  }
  if (!response.ok) throw new ApiError(response.status, data)
  return { data: data as T, headers: response.headers }
}

const PLURAL: Record<EntityType, string> = { post: 'posts', comment: 'comments', user: 'users' }

/** A purge dry run: what would go, and the plan that purges exactly that. */
export interface PurgePreview {
  purge_count: number
  purge_sample: { type: string; id: number; label: string }[]
  cutoff: string
  as_of: string
  plan: string
  /** Rows past the cutoff that a legal hold keeps (not in purge_count). */
  held_count: number
}

/** The admin page's plural of an entity type, for the API's paths. */
export function pathOf(type: EntityType, id: number): string {
  return `/${PLURAL[type]}/${id}`
}

export const api = {
  signIn: (username: string, password: string) =>
    call<{ access_token: string }>('POST', '/auth/token', { username, password }),
  me: () => call<Me>('GET', '/users/me'),
  trash: (query: URLSearchParams) => call<Page<TrashItem>>('GET', `/admin/trash?${query}`),
  restore: (type: EntityType, id: number) => call<Record<string, unknown>>('POST', `/${PLURAL[type]}/${id}/restore`),
  deletePermanently: (type: EntityType, id: number) => call<void>('DELETE', `/${PLURAL[type]}/${id}/permanent`),
  /** Soft-deletes a row again (the undo of a restore); answers the deletion it made. */
  softDelete: async (type: EntityType, id: number, reason: string) =>
    (await exchange<void>('DELETE', `/${PLURAL[type]}/${id}?${new URLSearchParams({ reason })}`)).headers.get('tombstone-deletion'),
  /** Undoes one's own deletion, within the undo window. */
  undo: (deletionId: string) => call<{ count: number }>('POST', `/deletions/${deletionId}/undo`),
  deletions: (query: URLSearchParams) => call<Page<DeletionSummary>>('GET', `/admin/deletions?${query}`),
  deletion: (id: string) => call<Deletion>('GET', `/admin/deletions/${id}`),
  previewRestoreDeletion: (id: string) => call<RestorePreview>('POST', `/admin/deletions/${id}/restore?dry_run=true`),
  restoreDeletion: (id: string) => call<{ count: number; restored: PerType<number> }>('POST', `/admin/deletions/${id}/restore`),
  holds: (query: URLSearchParams) => call<Page<Hold>>('GET', `/admin/holds?${query}`),
  placeHold: (body: { type: EntityType; ids: number[]; reason: string } | { deletion_id: string; reason: string }) =>
    call<{ hold: Hold; not_found: number[] }>('POST', '/admin/holds', body),
  releaseHold: (id: number, reason: string) => call<Hold>('DELETE', `/admin/holds/${id}?${new URLSearchParams({ reason })}`),
  auditDaily: (days: number) => call<{ days: DailyAudit[] }>('GET', `/admin/audit/daily?days=${days}`),
  audit: (query: URLSearchParams) => call<Page<AuditItem>>('GET', `/admin/audit?${query}`),
  purgePreview: (body: { older_than_days?: number; type?: EntityType }) =>
    call<PurgePreview>('POST', '/admin/purge', body),
  /** Purges exactly what a preview counted, or less: its plan travels back. */
  purge: (plan: string) => call<{ purged_count: number; cutoff: string }>('POST', '/admin/purge', { force: true, plan }),
}

/**
 * "3 minutes ago", "in 29 days": relative to now, in words. Days up to 60 (a purge due in 30 days
 * reads "in 30 days", never "next month" beside another's "in 30 days"), months up to a year.
 */
export function relative(iso: string, now = Date.now()): string {
  const seconds = Math.round((Date.parse(iso) - now) / 1000)
  const units: [Intl.RelativeTimeFormatUnit, number, number][] = [
    ['year', 31_536_000, 31_536_000],
    ['month', 2_592_000, 5_184_000],
    ['day', 86_400, 86_400],
    ['hour', 3_600, 3_600],
    ['minute', 60, 60],
    ['second', 1, 0],
  ]
  const format = new Intl.RelativeTimeFormat('en', { numeric: 'auto' })
  for (const [unit, size, from] of units) {
    if (Math.abs(seconds) >= from) return format.format(Math.round(seconds / size), unit)
  }
  return iso
}

/** The exact time, for a title attribute. */
export function exact(iso: string): string {
  return new Date(iso).toLocaleString('en-GB', { dateStyle: 'full', timeStyle: 'long', timeZone: 'UTC' })
}

export function noun(type: EntityType): string {
  return type === 'user' ? 'User' : type === 'post' ? 'Post' : 'Comment'
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}
