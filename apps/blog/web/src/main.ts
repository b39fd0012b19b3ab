/**
 * The admin trash page: sign in, browse what users deleted, restore it (one or many), delete it for
 * good, read the audit timeline, purge. Preact with htm templates (no JSX build step), one bundle.
 */
import { h, render } from 'preact'
import { useEffect, useRef, useState } from 'preact/hooks'
import htm from 'htm'
import { api, ApiError, exact, noun, pathOf, plural, relative, session, SESSION_ENDED, type AuditItem, type Deletion, type DeletionSummary, type EntityType, type Hold, type Me, type PurgePreview, type RestorePreview, type TrashItem } from './api.ts'
import { AuditChart } from './chart.ts'
import { followLink, hrefOf, navigate, TABS, tabOf, useDraft, useParams, withParams, type Tab } from './route.ts'
import { showToast, Toasts, type ToastSpec } from './toast.ts'
import './styles.css'

const html = htm.bind(h)

const TAB_LABELS: Record<Tab, string> = { trash: 'Trash', deletions: 'Deletions', audit: 'Audit', purge: 'Purge' }

function App() {
  const params = useParams()
  const tab = tabOf(params)
  const [me, setMe] = useState<Me | null>(null)
  const [checking, setChecking] = useState(session.token !== null)
  const [notice, setNotice] = useState<string | null>(null)

  useEffect(() => {
    if (session.token === null) return
    api
      .me()
      .then(setMe)
      .catch(() => {
        session.token = null
      })
      .finally(() => setChecking(false))
  }, [])

  useEffect(() => {
    // A token the service refuses (expired, revoked): back to the sign-in form, saying why.
    const ended = () => {
      setMe(null)
      setNotice('Your session has ended (it expired or was revoked): sign in again.')
    }
    window.addEventListener(SESSION_ENDED, ended)
    return () => window.removeEventListener(SESSION_ENDED, ended)
  }, [])

  useEffect(() => {
    document.title = me === null ? 'Tombstone · Sign in' : `Tombstone · ${TAB_LABELS[tab]}`
  }, [me, tab])

  const signOut = () => {
    session.token = null
    setNotice(null)
    setMe(null)
  }

  if (checking) return html`<p class="loading" role="status">Checking your session…</p>`
  if (me === null)
    return html`<${SignIn}
      notice=${notice}
      onSignedIn=${(signedIn: Me) => {
        setNotice(null)
        setMe(signedIn)
      }}
    />`
  if (me.role !== 'admin') {
    return html`<main class="narrow">
      <h1>Tombstone trash</h1>
      <p class="notice error" role="alert">
        You are signed in as <strong>${me.username}</strong>, who is not an admin. This page is for admins: it restores and
        erases what users deleted. Ask an admin, or sign in with an admin account.
      </p>
      <button type="button" onClick=${signOut}>Sign out</button>
    </main>`
  }
  return html`<div class="shell">
    <header>
      <h1>Tombstone <span class="muted">admin</span></h1>
      <${Tabs} params=${params} tab=${tab} />
      <div class="who">Signed in as <strong>${me.username}</strong> · <button type="button" class="link" onClick=${signOut}>Sign out</button></div>
    </header>
    <main id=${`panel-${tab}`} role="tabpanel" aria-labelledby=${`tab-${tab}`} tabindex="-1">
      ${tab === 'trash'
        ? html`<${TrashView} params=${params} />`
        : tab === 'deletions'
          ? html`<${DeletionsView} params=${params} />`
          : tab === 'audit'
            ? html`<${AuditView} params=${params} />`
            : html`<${PurgeView} params=${params} />`}
    </main>
    <${Toasts} />
  </div>`
}

/**
 * The sections, as an ARIA tablist: one tab stop (the selected tab); ArrowLeft/ArrowRight move to
 * the previous/next tab (wrapping), Home/End to the first/last, and the tab moved to is shown.
 * Each tab is in the URL (`?tab=audit`), so Back returns to the previous one.
 */
function Tabs({ params, tab }: { params: URLSearchParams; tab: Tab }) {
  const list = useRef<HTMLDivElement>(null)
  const select = (next: Tab, focus: boolean) => {
    navigate(withParams(params, { tab: next === 'trash' ? null : next }))
    if (focus) list.current?.querySelector<HTMLElement>(`#tab-${next}`)?.focus()
  }
  const onKeyDown = (event: KeyboardEvent) => {
    const index = TABS.indexOf(tab)
    const target =
      event.key === 'ArrowRight' ? TABS[(index + 1) % TABS.length] : event.key === 'ArrowLeft' ? TABS[(index - 1 + TABS.length) % TABS.length] : event.key === 'Home' ? TABS[0] : event.key === 'End' ? TABS.at(-1) : undefined
    if (target === undefined) return
    event.preventDefault()
    select(target, true)
  }
  return html`<div class="tabs" role="tablist" aria-label="Sections" ref=${list} onKeyDown=${onKeyDown}>
    ${TABS.map(
      (id) =>
        html`<button
          type="button"
          role="tab"
          id=${`tab-${id}`}
          aria-selected=${tab === id ? 'true' : 'false'}
          aria-controls=${tab === id ? `panel-${id}` : undefined}
          tabindex=${tab === id ? 0 : -1}
          onClick=${() => select(id, false)}
        >
          ${TAB_LABELS[id]}
        </button>`,
    )}
  </div>`
}

/** A link to another screen of the page: a real href (open in a new tab works), followed in place. */
function Link({ to, children, title }: { to: URLSearchParams; children: unknown; title?: string }) {
  return html`<a href=${hrefOf(to)} title=${title} onClick=${(event: MouseEvent) => followLink(event, to)}>${children}</a>`
}

function SignIn({ onSignedIn, notice }: { onSignedIn: (me: Me) => void; notice: string | null }) {
  const [username, setUsername] = useState('')
  const [password, setPassword] = useState('')
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const submit = async (event: Event) => {
    event.preventDefault()
    setBusy(true)
    setError(null)
    try {
      const { access_token } = await api.signIn(username, password)
      session.token = access_token
      onSignedIn(await api.me())
    } catch (caught) {
      session.token = null
      setError(
        caught instanceof ApiError && caught.status === 401
          ? 'Wrong username or password.'
          : caught instanceof ApiError && caught.status === 429
            ? 'Too many failed attempts: wait a few minutes and try again.'
            : (caught as Error).message,
      )
    } finally {
      setBusy(false)
    }
  }
  return html`<main class="narrow">
    <h1>Tombstone trash</h1>
    <p>Sign in with an admin account to recover what users deleted.</p>
    ${notice !== null && error === null && html`<p class="notice" role="status">${notice}</p>`}
    <form onSubmit=${submit} class="stack" aria-describedby=${error ? 'signin-error' : undefined}>
      <label>Username <input name="username" autocomplete="username" required autofocus value=${username} onInput=${(e: Event) => setUsername((e.target as HTMLInputElement).value)} /></label>
      <label>Password <input name="password" type="password" autocomplete="current-password" required value=${password} onInput=${(e: Event) => setPassword((e.target as HTMLInputElement).value)} /></label>
      ${error && html`<p id="signin-error" class="notice error" role="alert">${error}</p>`}
      <button type="submit" disabled=${busy}>${busy ? 'Signing in…' : 'Sign in'}</button>
    </form>
  </main>`
}

interface Outcome {
  key: string
  ok: boolean
  text: string
}

/** Words for a failed restore or delete. */
function explain(item: TrashItem, error: unknown): string {
  const what = `${noun(item.type)} #${item.id} “${item.label}”`
  if (!(error instanceof ApiError)) return `${what}: ${(error as Error).message}`
  switch (error.slug) {
    case 'conflict': {
      const holder = error.problem.conflicting_id
      if (item.type === 'post' && typeof holder === 'number') return `${what} was not restored: its slug is now used by post #${holder}. Rename one of them, then restore.`
      if (item.type === 'user' && typeof holder === 'number') {
        const fields = Array.isArray(error.problem.fields) ? (error.problem.fields as string[]).join(' and ') : 'name'
        return `${what} was not restored: its ${fields} is now used by user #${holder}.`
      }
      return `${what} was not restored: ${error.message}`
    }
    case 'parent-deleted':
      return `${what} was not restored: ${error.message}`
    case 'not-deleted':
      return `${what} is not deleted any more (someone restored it).`
    case 'not-found':
      return `${what} no longer exists (it was purged or deleted for good).`
    case 'legal-hold':
      return `${what} is under a legal hold: it cannot be deleted for good until the hold is released.`
    default:
      return `${what}: ${error.message}`
  }
}

function dependentsText(item: TrashItem): string {
  const parts = []
  if (item.dependents.posts > 0) parts.push(plural(item.dependents.posts, 'post'))
  if (item.dependents.comments > 0) parts.push(plural(item.dependents.comments, 'comment'))
  return parts.join(' and ')
}

const ENTITY_TYPES: readonly EntityType[] = ['post', 'comment', 'user']
const SORTS = ['deleted_desc', 'deleted_asc', 'purge_asc', 'purge_desc'] as const
const TRASH_PAGE = 20
const AUDIT_PAGE = 50

function entityParam(value: string | null): '' | EntityType {
  return (ENTITY_TYPES as readonly string[]).includes(value ?? '') ? (value as EntityType) : ''
}

/** Previous / Page n / Next over a stack of cursors in the URL; hidden when everything fits on one page. */
function Pager({ page, hasNext, onPrevious, onNext, label }: { page: number; hasNext: boolean; onPrevious: () => void; onNext: () => void; label: string }) {
  if (page <= 1 && !hasNext) return null
  return html`<nav class="pager" aria-label=${label}>
    <button type="button" disabled=${page <= 1} onClick=${onPrevious}>Previous</button>
    <span aria-current="page">Page ${page}</span>
    <button type="button" disabled=${!hasNext} onClick=${onNext}>Next</button>
  </nav>`
}

const CHANGED = 'tombstone:changed'
/** Something changed behind a view's back (an undo from the toast): views read again. */
function announceChange(): void {
  window.dispatchEvent(new Event(CHANGED))
}
function useChanges(onChange: () => void): void {
  useEffect(() => {
    window.addEventListener(CHANGED, onChange)
    return () => window.removeEventListener(CHANGED, onChange)
  }, [])
}

interface RowRef {
  type: EntityType
  id: number
  label?: string | null
}

/** "Post #3 “Hello”", or "3 rows". */
function rowsText(rows: readonly RowRef[]): string {
  const [only] = rows
  if (rows.length === 1 && only !== undefined) return `${noun(only.type)} #${only.id}${only.label ? ` “${only.label}”` : ''}`
  return plural(rows.length, 'row')
}

/** The undo of a restore: the rows are deleted again, and that deletion gets its own undo. */
async function deleteAgain(rows: readonly RowRef[]): Promise<ToastSpec> {
  const deletions: string[] = []
  for (const row of rows) {
    const deletion = await api.softDelete(row.type, row.id, 'undo of a restore (admin page)')
    if (deletion !== null) deletions.push(deletion)
  }
  announceChange()
  return { text: `${rowsText(rows)} ${rows.length === 1 ? 'is' : 'are'} deleted again.`, ...(deletions.length === 0 ? {} : { undo: () => undoDeletions(deletions, rows) }) }
}

/** The undo of a delete made from the page: exactly those deletions are restored. */
async function undoDeletions(deletions: readonly string[], rows: readonly RowRef[]): Promise<ToastSpec> {
  for (const deletion of deletions) await api.undo(deletion)
  announceChange()
  return { text: `${rowsText(rows)} ${rows.length === 1 ? 'is' : 'are'} restored again.`, undo: () => deleteAgain(rows) }
}

/**
 * The trash. Its filters (type, q, sort) and page (the cursors that lead to it) are in the URL;
 * Type and Sort apply at once, with the text the search box shows, like the Search button.
 */
function TrashView({ params }: { params: URLSearchParams }) {
  const type = entityParam(params.get('type'))
  const search = params.get('q') ?? ''
  const sort = (SORTS as readonly string[]).includes(params.get('sort') ?? '') ? (params.get('sort') as string) : 'deleted_desc'
  const cursors = params.getAll('cursor')
  const cursor = cursors.at(-1) ?? null
  const key = JSON.stringify([type, search, sort, cursor])
  const [q, setQ] = useDraft(search)
  const [page, setPage] = useState<{ key: string; items: TrashItem[]; next_cursor: string | null } | null>(null)
  const [loading, setLoading] = useState(true)
  const [error, setError] = useState<string | null>(null)
  const [selected, setSelected] = useState<Set<string>>(new Set())
  const [outcomes, setOutcomes] = useState<Outcome[]>([])
  const [confirming, setConfirming] = useState<TrashItem | null>(null)
  const [holding, setHolding] = useState<HoldTarget | null>(null)
  const [version, setVersion] = useState(0)
  useChanges(() => setVersion((v) => v + 1))
  const dialog = useRef<HTMLDialogElement>(null)
  const outcomesRef = useRef<HTMLDivElement>(null)

  useEffect(() => {
    const query = new URLSearchParams({ limit: String(TRASH_PAGE), sort })
    if (type !== '') query.set('type', type)
    if (search !== '') query.set('q', search)
    if (cursor !== null) query.set('cursor', cursor)
    let current = true
    setLoading(true)
    setError(null)
    api
      .trash(query)
      .then((result) => {
        if (!current) return
        setPage({ key, ...result })
        setSelected(new Set())
      })
      .catch((caught: Error) => current && setError(caught.message))
      .finally(() => current && setLoading(false))
    return () => {
      current = false
    }
  }, [key, version])

  useEffect(() => {
    if (confirming !== null) dialog.current?.showModal()
    else dialog.current?.close()
  }, [confirming])

  /** Applies filters: the given ones, and the search box's text as it is now; back to page 1. */
  const apply = (changes: { type?: string; sort?: string } = {}) => {
    const nextSort = changes.sort ?? sort
    navigate(withParams(params, { type: changes.type ?? type, q: q.trim(), sort: nextSort === 'deleted_desc' ? null : nextSort, cursor: null }))
  }
  const keyOf = (item: TrashItem) => `${item.type}:${item.id}`
  const fresh = page !== null && page.key === key
  const items = fresh ? page.items : []
  const filtered = search !== '' || type !== ''

  const report = (results: Outcome[]) => {
    setOutcomes(results)
    setVersion((v) => v + 1)
    // The row (and the button that had focus) may be gone: focus moves to what happened.
    outcomesRef.current?.focus()
  }

  const restore = async (targets: TrashItem[]) => {
    const results: Outcome[] = []
    const restored: TrashItem[] = []
    // One by one, so that each gets its own outcome in words; a failure does not stop the others.
    for (const item of targets) {
      try {
        await api.restore(item.type, item.id)
        restored.push(item)
        results.push({ key: keyOf(item), ok: true, text: `${noun(item.type)} #${item.id} “${item.label}” is restored.` })
      } catch (caught) {
        results.push({ key: keyOf(item), ok: false, text: explain(item, caught) })
      }
    }
    report(results)
    if (restored.length > 0) showToast({ text: `${rowsText(restored)} ${restored.length === 1 ? 'is' : 'are'} restored.`, undo: () => deleteAgain(restored) })
  }

  const holdRow = (item: TrashItem) =>
    setHolding({
      mode: item.held ? 'release' : 'place',
      title: `${noun(item.type)} #${item.id} “${item.label}”`,
      holds: () => api.holds(new URLSearchParams({ active: 'true', type: item.type, id: String(item.id) })).then((page) => page.items),
      place: (reason) => api.placeHold({ type: item.type, ids: [item.id], reason }).then(() => undefined),
    })

  const erase = async (item: TrashItem) => {
    setConfirming(null)
    try {
      await api.deletePermanently(item.type, item.id)
      const extra = dependentsText(item)
      report([{ key: keyOf(item), ok: true, text: `${noun(item.type)} #${item.id} “${item.label}” is deleted for good${extra === '' ? '' : `, with ${extra}`}.` }])
    } catch (caught) {
      report([{ key: keyOf(item), ok: false, text: explain(item, caught) }])
    }
  }

  const toggle = (item: TrashItem) => {
    const next = new Set(selected)
    if (next.has(keyOf(item))) next.delete(keyOf(item))
    else next.add(keyOf(item))
    setSelected(next)
  }
  const allSelected = items.length > 0 && items.every((item) => selected.has(keyOf(item)))

  return html`<section aria-labelledby="trash-title">
    <h2 id="trash-title">Trash</h2>
    <form class="filters" role="search" onSubmit=${(e: Event) => {
      e.preventDefault()
      apply()
    }}>
      <label>Type
        <select value=${type} onChange=${(e: Event) => apply({ type: (e.target as HTMLSelectElement).value })}>
          <option value="">Everything</option>
          <option value="post">Posts</option>
          <option value="comment">Comments</option>
          <option value="user">Users</option>
        </select>
      </label>
      <label>Search <input type="search" value=${q} placeholder="Title, comment or username" onInput=${(e: Event) => setQ((e.target as HTMLInputElement).value)} /></label>
      <label>Sort
        <select value=${sort} onChange=${(e: Event) => apply({ sort: (e.target as HTMLSelectElement).value })}>
          <option value="deleted_desc">Deleted, newest first</option>
          <option value="deleted_asc">Deleted, oldest first</option>
          <option value="purge_asc">Purged soonest first</option>
          <option value="purge_desc">Purged latest first</option>
        </select>
      </label>
      <button type="submit">Search</button>
      ${filtered && html`<${Link} to=${withParams(params, { type: null, q: null, sort: null, cursor: null })}>Clear filters</${Link}>`}
    </form>

    <div aria-live="polite" class="outcomes" tabindex="-1" ref=${outcomesRef}>
      ${outcomes.length > 0 &&
      html`<ul>
        ${outcomes.map((outcome) => html`<li class=${outcome.ok ? 'ok' : 'error'}>${outcome.text}</li>`)}
      </ul>`}
    </div>

    ${error !== null
      ? html`<p class="notice error" role="alert">The trash could not be loaded: ${error} <button type="button" onClick=${() => setVersion((v) => v + 1)}>Try again</button></p>`
      : !fresh
        ? html`<p class="loading" role="status">Loading the trash…</p>`
        : items.length === 0
          ? cursors.length > 0
            ? html`<p class="empty">Nothing more on this page. <${Link} to=${withParams(params, { cursor: null })}>Back to the first page</${Link}></p>`
            : html`<p class="empty">${filtered ? 'Nothing in the trash matches.' : 'The trash is empty: nothing deleted is waiting to be restored or purged.'}</p>`
          : html`<div class="toolbar">
                <button type="button" disabled=${selected.size === 0} onClick=${() => restore(items.filter((item) => selected.has(keyOf(item))))}>
                  Restore selected (${selected.size})
                </button>
              </div>
              <table class=${loading ? 'trash busy' : 'trash'} aria-busy=${loading ? 'true' : 'false'}>
              <thead>
                <tr>
                  <th scope="col"><input type="checkbox" aria-label="Select all on this page" checked=${allSelected} onChange=${() => setSelected(allSelected ? new Set() : new Set(items.map(keyOf)))} /></th>
                  <th scope="col">What</th>
                  <th scope="col">Deleted by</th>
                  <th scope="col">When</th>
                  <th scope="col">Why</th>
                  <th scope="col">Purged</th>
                  <th scope="col"><span class="visually-hidden">Actions</span></th>
                </tr>
              </thead>
              <tbody>
                ${items.map(
                  (item) => html`<tr key=${keyOf(item)} data-testid=${`trash-${keyOf(item)}`}>
                    <td data-label="Select"><input type="checkbox" aria-label=${`Select ${noun(item.type).toLowerCase()} ${item.id}`} checked=${selected.has(keyOf(item))} onChange=${() => toggle(item)} /></td>
                    <td data-label="What">
                      <div>
                        <span class=${`badge ${item.type}`}>${noun(item.type)}</span> <strong>${item.label}</strong> <span class="muted">#${item.id}</span>
                        ${item.held && html` <${HeldBadge} />`}
                        ${item.parent !== null && item.parent.deleted && html`<div class="muted small">on post #${item.parent.id}, also deleted</div>`}
                        <div class="small"><${Link} to=${auditOf(item.type, item.id)} title="Every delete and restore of this row">History</${Link}>${item.deletion_id !== null &&
                        html` · <${Link} to=${new URLSearchParams({ tab: 'deletions', open: item.deletion_id })} title="The delete operation that took it, with everything else it took">Deletion</${Link}>`}</div>
                      </div>
                    </td>
                    <td data-label="Deleted by">${item.deleted_by_username ?? (item.deleted_by === null ? 'the system' : `user #${item.deleted_by}`)}</td>
                    <td data-label="When"><time datetime=${item.deleted_at} title=${exact(item.deleted_at)}>${relative(item.deleted_at)}</time></td>
                    <td data-label="Why">${item.delete_reason ?? html`<span class="muted">no reason given</span>`}</td>
                    <td data-label="Purged">${item.held ? html`<span class="muted">not while held</span>` : item.purge_at === null ? html`<span class="muted">never</span>` : html`<time datetime=${item.purge_at} title=${exact(item.purge_at)}>${relative(item.purge_at)}</time>`}</td>
                    <td data-label="Actions" class="actions">
                      <div>
                        <button type="button" onClick=${() => restore([item])}>Restore</button>
                        <button type="button" class="secondary" onClick=${() => holdRow(item)}>${item.held ? 'Release hold…' : 'Hold…'}</button>
                        <button type="button" class="danger" disabled=${item.held} title=${item.held ? 'Under a legal hold: release it first' : undefined} onClick=${() => setConfirming(item)}>Delete permanently</button>
                      </div>
                    </td>
                  </tr>`,
                )}
              </tbody>
            </table>`}

    ${fresh &&
    html`<${Pager}
      label="Trash pages"
      page=${cursors.length + 1}
      hasNext=${page.next_cursor !== null}
      onPrevious=${() => navigate(withParams(params, { cursor: cursors.slice(0, -1) }))}
      onNext=${() => page.next_cursor !== null && navigate(withParams(params, { cursor: [...cursors, page.next_cursor] }))}
    />`}

    <${HoldDialog} target=${holding} onClose=${() => setHolding(null)} onDone=${(text: string) => report([{ key: 'hold', ok: true, text }])} />
    <dialog ref=${dialog} aria-labelledby="confirm-title" onClose=${() => setConfirming(null)}>
      ${confirming !== null &&
      html`<form method="dialog" class="stack">
        <h3 id="confirm-title">Delete for good?</h3>
        <p data-testid="confirm-text">
          ${`${noun(confirming.type)} #${confirming.id} “${confirming.label}”`}${dependentsText(confirming) === '' ? '' : html`${' and '}<strong>${dependentsText(confirming)}</strong>`}${' will be erased. This cannot be undone.'}
        </p>
        <div class="row">
          <button type="button" onClick=${() => setConfirming(null)} autofocus>Cancel</button>
          <button type="button" class="danger" onClick=${() => erase(confirming)}>Delete permanently</button>
        </div>
      </form>`}
    </dialog>
  </section>`
}

const TYPE_PLURAL: Record<EntityType, string> = { post: 'posts', comment: 'comments', user: 'users' }
const CASCADE_ORDER: readonly EntityType[] = ['user', 'post', 'comment']
const DELETIONS_PAGE = 20

/** Per-type counts in words: "1 user, 14 posts, 52 comments". */
function countsText(counts: Partial<Record<EntityType, number>>): string {
  return CASCADE_ORDER.filter((type) => (counts[type] ?? 0) > 0)
    .map((type) => plural(counts[type] ?? 0, type))
    .join(', ')
}

/** A deletion in words: "carol's account: 1 user, 14 posts, 52 comments — account closed". */
function deletionTitle(item: DeletionSummary): string {
  const first = item.label === null ? `${noun(item.type)} #${item.root_id ?? '?'} (erased)` : item.type === 'user' ? `${item.label}’s account` : `${noun(item.type)} “${item.label}”`
  const root = item.root_count > 1 ? `${item.root_count} ${TYPE_PLURAL[item.type]} (${first} and ${item.root_count - 1} more)` : first
  return `${root}: ${countsText(item.counts)}${item.reason ? ` — ${item.reason}` : ''}`
}

/** YYYY-MM-DD of a date input, as the start of that day (UTC); the day after, for an inclusive "to". */
function dayStart(date: string, plusDays = 0): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + plusDays * 86_400_000).toISOString()
}

/**
 * Deletions, one per delete operation, newest first: who, when, what it targeted, what it took per
 * type, why. Filters (actor, type, dates) and page in the URL; `open` names the one expanded.
 */
function DeletionsView({ params }: { params: URLSearchParams }) {
  const day = /^\d{4}-\d{2}-\d{2}$/
  const applied = {
    actor: /^[1-9][0-9]{0,9}$/.test(params.get('d_actor') ?? '') ? (params.get('d_actor') as string) : '',
    type: entityParam(params.get('d_type')),
    from: day.test(params.get('d_from') ?? '') ? (params.get('d_from') as string) : '',
    to: day.test(params.get('d_to') ?? '') ? (params.get('d_to') as string) : '',
  }
  const open = params.get('open')
  const cursors = params.getAll('d_cursor')
  const cursor = cursors.at(-1) ?? null
  const key = JSON.stringify([applied, cursor])
  const [actor, setActor] = useDraft(applied.actor)
  const [from, setFrom] = useDraft(applied.from)
  const [to, setTo] = useDraft(applied.to)
  const [invalid, setInvalid] = useState<string | null>(null)
  const [page, setPage] = useState<{ key: string; items: DeletionSummary[]; next_cursor: string | null } | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [version, setVersion] = useState(0)
  const [holding, setHolding] = useState<HoldTarget | null>(null)
  const [notice, setNotice] = useState<string | null>(null)
  useChanges(() => setVersion((v) => v + 1))

  useEffect(() => {
    const query = new URLSearchParams({ limit: String(DELETIONS_PAGE) })
    if (applied.actor !== '') query.set('actor_id', applied.actor)
    if (applied.type !== '') query.set('type', applied.type)
    if (applied.from !== '') query.set('since', dayStart(applied.from))
    if (applied.to !== '') query.set('until', dayStart(applied.to, 1))
    if (cursor !== null) query.set('cursor', cursor)
    let current = true
    setError(null)
    api
      .deletions(query)
      .then((result) => current && setPage({ key, ...result }))
      .catch((caught: Error) => current && setError(caught.message))
    return () => {
      current = false
    }
  }, [key, version])

  const apply = (changes: { type?: string } = {}) => {
    const trimmed = actor.trim()
    if (trimmed !== '' && !/^[1-9][0-9]{0,9}$/.test(trimmed)) {
      setInvalid('Deleted by is a user id, such as 12.')
      return
    }
    if (from !== '' && to !== '' && from > to) {
      setInvalid('From is after To.')
      return
    }
    setInvalid(null)
    navigate(withParams(params, { d_actor: trimmed, d_type: changes.type ?? applied.type, d_from: from, d_to: to, d_cursor: null }))
  }
  const fresh = page !== null && page.key === key
  const items = fresh ? page.items : []
  const filtered = Object.values(applied).some((value) => value !== '')
  const holdDeletion = (item: DeletionSummary) =>
    setHolding({
      mode: item.held ? 'release' : 'place',
      title: deletionTitle(item),
      holds: () => api.holds(new URLSearchParams({ active: 'true', deletion_id: item.id })).then((result) => result.items),
      place: (reason) => api.placeHold({ deletion_id: item.id, reason }).then(() => undefined),
    })

  return html`<section aria-labelledby="deletions-title">
    <h2 id="deletions-title">Deletions</h2>
    <p class="muted">One entry per delete operation, with everything it took. Restore a whole deletion at once, after a preview.</p>
    <form class="filters" role="search" onSubmit=${(e: Event) => {
      e.preventDefault()
      apply()
    }}>
      <label>Deleted by (user id) <input inputmode="numeric" size="6" value=${actor} aria-invalid=${invalid?.startsWith('Deleted') ? 'true' : undefined} onInput=${(e: Event) => setActor((e.target as HTMLInputElement).value)} /></label>
      <label>What
        <select value=${applied.type} onChange=${(e: Event) => apply({ type: (e.target as HTMLSelectElement).value })}>
          <option value="">Anything</option><option value="post">Posts</option><option value="comment">Comments</option><option value="user">Users (accounts)</option>
        </select>
      </label>
      <label>From <input type="date" value=${from} onInput=${(e: Event) => setFrom((e.target as HTMLInputElement).value)} /></label>
      <label>To <input type="date" value=${to} onInput=${(e: Event) => setTo((e.target as HTMLInputElement).value)} /></label>
      <button type="submit">Filter</button>
      ${filtered && html`<${Link} to=${new URLSearchParams({ tab: 'deletions' })}>Clear filters</${Link}>`}
    </form>
    ${invalid !== null && html`<p class="notice error" role="alert">${invalid}</p>`}
    <div aria-live="polite">${notice !== null && html`<p class="notice ok">${notice}</p>`}</div>
    ${error !== null
      ? html`<p class="notice error" role="alert">The deletions could not be loaded: ${error} <button type="button" onClick=${() => setVersion((v) => v + 1)}>Try again</button></p>`
      : !fresh
        ? html`<p class="loading" role="status">Loading the deletions…</p>`
        : items.length === 0
          ? html`<p class="empty">${filtered ? 'No deletion matches.' : 'Nothing has been deleted yet.'}</p>`
          : html`<ol class="deletions">
              ${items.map(
                (item) => html`<${DeletionEntry}
                  key=${item.id}
                  item=${item}
                  params=${params}
                  expanded=${open === item.id}
                  onToggle=${() => navigate(withParams(params, { open: open === item.id ? null : item.id }), { replace: true })}
                  onHold=${() => holdDeletion(item)}
                />`,
              )}
            </ol>`}
    ${fresh &&
    html`<${Pager}
      label="Deletion pages"
      page=${cursors.length + 1}
      hasNext=${page.next_cursor !== null}
      onPrevious=${() => navigate(withParams(params, { d_cursor: cursors.slice(0, -1) }))}
      onNext=${() => page.next_cursor !== null && navigate(withParams(params, { d_cursor: [...cursors, page.next_cursor] }))}
    />`}
    <${HoldDialog} target=${holding} onClose=${() => setHolding(null)} onDone=${setNotice} />
  </section>`
}

/** A row of a deletion still deleted, as the trash lists it. */
function rowLine(item: TrashItem) {
  return html`<li><span class=${`badge ${item.type}`}>${noun(item.type)}</span> ${item.label} <span class="muted">#${item.id}</span>${item.held && html` <${HeldBadge} />`}</li>`
}

/** Words for what a restore preview says would refuse the restore. */
function refusals(preview: RestorePreview, names: Map<string, string>): string[] {
  const name = (type: EntityType, id: number) => `${noun(type)} #${id}${names.has(`${type}:${id}`) ? ` “${names.get(`${type}:${id}`)}”` : ''}`
  return [
    ...preview.conflicts.map((conflict) => `${name(conflict.type, conflict.id)}: its ${conflict.fields.join(' and ')} is now used by ${conflict.type} #${conflict.conflicting_id}. Rename one of them first.`),
    ...preview.parent_deleted.map((entry) => `${name(entry.type, entry.id)}: its ${entry.parent_type} #${entry.parent_id} was deleted since, by another operation. Restore that first.`),
  ]
}

function DeletionEntry({ item, params, expanded, onToggle, onHold }: { item: DeletionSummary; params: URLSearchParams; expanded: boolean; onToggle: () => void; onHold: () => void }) {
  const [detail, setDetail] = useState<{ deletion: Deletion; rows: TrashItem[]; more: boolean } | null>(null)
  const [preview, setPreview] = useState<RestorePreview | null>(null)
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | null>(null)
  const [outcome, setOutcome] = useState<string | null>(null)
  const [version, setVersion] = useState(0)
  const previewRef = useRef<HTMLDivElement>(null)
  const outcomeRef = useRef<HTMLParagraphElement>(null)
  // The preview (and the button that had focus) is gone: focus moves to what happened.
  useEffect(() => {
    if (outcome !== null) outcomeRef.current?.focus()
  }, [outcome])
  useChanges(() => setVersion((v) => v + 1))
  const load = async () => {
    const [deletion, rows] = await Promise.all([api.deletion(item.id), api.trash(new URLSearchParams({ deletion_id: item.id, limit: '100' }))])
    const next = { deletion, rows: rows.items, more: rows.next_cursor !== null }
    setDetail(next)
    return next
  }
  useEffect(() => {
    if (expanded || preview !== null) load().catch((caught: Error) => setError(caught.message))
  }, [expanded, version])
  useEffect(() => {
    if (preview !== null) previewRef.current?.focus()
  }, [preview])

  const startPreview = async () => {
    setBusy(true)
    setError(null)
    setOutcome(null)
    try {
      const [dry] = await Promise.all([api.previewRestoreDeletion(item.id), load()])
      setPreview(dry)
    } catch (caught) {
      setError((caught as Error).message)
    } finally {
      setBusy(false)
    }
  }
  const restore = async () => {
    if (detail === null) return
    setBusy(true)
    setError(null)
    try {
      const result = await api.restoreDeletion(item.id)
      setPreview(null)
      const text = `${deletionTitle(item).split(':')[0]}: ${countsText(result.restored) || 'nothing'} restored.`
      setOutcome(text)
      const roots = detail.deletion.ids.map((id) => ({ type: detail.deletion.type, id, label: detail.deletion.ids.length === 1 ? item.label : null }))
      showToast({ text, undo: () => deleteAgain(roots) })
      announceChange()
    } catch (caught) {
      setError(caught instanceof ApiError && caught.status === 409 ? `Not restored: ${caught.message}. Preview again to see why.` : (caught as Error).message)
    } finally {
      setBusy(false)
    }
  }

  const deletion = detail?.deletion
  const names = new Map((detail?.rows ?? []).map((row) => [`${row.type}:${row.id}`, row.label]))
  const heldRows = (detail?.rows ?? []).filter((row) => row.held).length
  const skipped = deletion === undefined ? [] : CASCADE_ORDER.flatMap((type) => {
    const part = deletion.tables[type]
    if (part === undefined) return []
    return [
      ...(part.restored > 0 ? [`${plural(part.restored, type)} restored since (already back)`] : []),
      ...(part.removed > 0 ? [`${plural(part.removed, type)} removed for good since (purged or deleted permanently): cannot come back`] : []),
    ]
  })
  const actor = item.actor_id === null ? 'the system' : (item.actor_username ?? `user #${item.actor_id}`)
  return html`<li class="deletion" data-testid=${`deletion-${item.id}`}>
    <div class="deletion-head">
      <h3 class="deletion-title">${deletionTitle(item)}${item.held && html` <${HeldBadge} />`}</h3>
      <p class="muted small">
        Deleted by ${item.actor_id === null ? actor : html`<${Link} to=${withParams(params, { d_actor: String(item.actor_id), d_cursor: null, open: null })} title=${`Every deletion by user #${item.actor_id}`}>${actor}</${Link}>`}
        ${' · '}<time datetime=${item.at} title=${exact(item.at)}>${relative(item.at)}</time>
      </p>
    </div>
    <div class="row">
      <button type="button" class="secondary" aria-expanded=${expanded ? 'true' : 'false'} aria-controls=${`rows-${item.id}`} onClick=${onToggle}>${expanded ? 'Hide rows' : 'Show rows'}</button>
      <button type="button" disabled=${busy} onClick=${startPreview}>${busy && preview === null ? 'Checking…' : 'Restore…'}</button>
      <button type="button" class="secondary" onClick=${onHold}>${item.held ? 'Release hold…' : 'Hold…'}</button>
    </div>
    ${error !== null && html`<p class="notice error" role="alert">${error}</p>`}
    ${outcome !== null && html`<p class="notice ok" role="status" tabindex="-1" ref=${outcomeRef}>${outcome}</p>`}
    ${preview !== null &&
    html`<div class="preview" tabindex="-1" ref=${previewRef} role="region" aria-label="Restore preview" data-testid="restore-preview">
      <h4>Restore preview <span class="muted small">(nothing has changed yet)</span></h4>
      ${preview.count === 0
        ? html`<p data-testid="preview-back">Nothing would come back: nothing of it is still deleted.</p>`
        : html`<p data-testid="preview-back"><strong>Comes back: ${countsText(Object.fromEntries(Object.entries(preview.tables).map(([type, part]) => [type, part?.count ?? 0])))}</strong>${preview.count > 0 && html`<span class="muted">${' — '}${CASCADE_ORDER.flatMap((type) => (preview.tables[type]?.sample ?? []).map((id) => `${type} #${id}${names.has(`${type}:${id}`) ? ` “${names.get(`${type}:${id}`)}”` : ''}`)).slice(0, 8).join(', ')}${preview.count > 8 ? ', …' : ''}</span>`}</p>`}
      ${skipped.length > 0 && html`<div data-testid="preview-skipped"><p>Not coming back:</p><ul>${skipped.map((line) => html`<li>${line}</li>`)}</ul></div>`}
      ${heldRows > 0 && html`<p data-testid="preview-held"><${HeldBadge} /> ${plural(heldRows, 'row')} under a legal hold ${heldRows === 1 ? 'comes' : 'come'} back too; the hold stays on ${heldRows === 1 ? 'it' : 'them'}.</p>`}
      ${preview.would_refuse
        ? html`<div class="notice error" data-testid="preview-refused"><p><strong>The restore would be refused, as a whole:</strong></p><ul>${refusals(preview, names).map((line) => html`<li>${line}</li>`)}</ul></div>`
        : null}
      <div class="row">
        <button type="button" onClick=${() => setPreview(null)}>Cancel</button>
        ${!preview.would_refuse && preview.count > 0 && html`<button type="button" disabled=${busy} onClick=${restore}>${busy ? 'Restoring…' : `Restore ${plural(preview.count, 'row')}`}</button>`}
      </div>
    </div>`}
    ${expanded &&
    html`<div id=${`rows-${item.id}`} class="deletion-rows">
      ${deletion === undefined
        ? html`<p class="loading" role="status">Loading its rows…</p>`
        : html`<table class="numbers" data-testid="deletion-parts">
              <caption class="visually-hidden">What it took, and what became of it</caption>
              <thead><tr><th scope="col">Type</th><th scope="col">Taken</th><th scope="col">Still deleted</th><th scope="col">Restored since</th><th scope="col">Removed since</th></tr></thead>
              <tbody>
                ${CASCADE_ORDER.filter((type) => deletion.tables[type] !== undefined).map((type) => {
                  const part = deletion.tables[type] as NonNullable<Deletion['tables'][EntityType]>
                  return html`<tr><th scope="row">${TYPE_PLURAL[type]}</th><td>${part.taken}</td><td>${part.still_deleted}</td><td>${part.restored}</td><td>${part.removed}</td></tr>`
                })}
              </tbody>
            </table>
            ${deletion.purge_at !== null && html`<p class="muted small">What is left of it may be purged <time datetime=${deletion.purge_at} title=${exact(deletion.purge_at)}>${relative(deletion.purge_at)}</time>.</p>`}
            ${detail !== null && detail.rows.length > 0
              ? html`<p class="small">Still deleted:</p><ul class="rows">${detail.rows.map(rowLine)}</ul>${detail.more && html`<p class="muted small">And more: the first 100 are shown.</p>`}`
              : html`<p class="muted">Nothing of it is still deleted.</p>`}`}
    </div>`}
  </li>`
}

const ACTION_WORDS: Record<AuditItem['action'], string> = {
  soft_delete: 'deleted',
  restore: 'restored',
  hard_delete: 'deleted for good',
  purge: 'purged',
  hold: 'put under a legal hold',
  release: 'released from a legal hold',
}

function HeldBadge() {
  return html`<span class="badge held" title="Under a legal hold: never purged or deleted for good until released">Held</span>`
}

/** What the hold dialog acts on: a row of the trash or a whole deletion. */
interface HoldTarget {
  mode: 'place' | 'release'
  /** "Post #3 “Hello”", "carol's account: …". */
  title: string
  /** The standing holds that cover it (what a release lifts). */
  holds: () => Promise<Hold[]>
  place: (reason: string) => Promise<void>
}

/**
 * Place or release a legal hold, with a reason (both are audited). A release lists the standing
 * holds that cover the target and lifts each of them: a hold on a whole deletion covers all of its
 * rows, so releasing it from one row releases it for all (the dialog says so).
 */
function HoldDialog({ target, onClose, onDone }: { target: HoldTarget | null; onClose: () => void; onDone: (text: string) => void }) {
  const dialog = useRef<HTMLDialogElement>(null)
  const [reason, setReason] = useState('')
  const [holds, setHolds] = useState<Hold[] | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  useEffect(() => {
    setReason('')
    setError(null)
    setHolds(null)
    if (target === null) {
      dialog.current?.close()
      return
    }
    dialog.current?.showModal()
    if (target.mode === 'release') target.holds().then(setHolds, (caught: Error) => setError(caught.message))
  }, [target])
  const submit = async (event: Event) => {
    event.preventDefault()
    if (target === null) return
    if (reason.trim() === '') {
      setError('Give a reason: it is kept in the audit.')
      return
    }
    setBusy(true)
    setError(null)
    try {
      if (target.mode === 'place') {
        await target.place(reason.trim())
        onDone(`${target.title} is under a legal hold: it will not be purged or deleted for good until the hold is released.`)
      } else {
        for (const hold of holds ?? []) await api.releaseHold(hold.id, reason.trim())
        onDone(`${target.title}: ${plural((holds ?? []).length, 'legal hold')} released.`)
      }
      announceChange()
      onClose()
    } catch (caught) {
      setError((caught as Error).message)
    } finally {
      setBusy(false)
    }
  }
  const place = target?.mode !== 'release'
  return html`<dialog ref=${dialog} aria-labelledby="hold-title" onClose=${onClose}>
    ${target !== null &&
    html`<form class="stack" onSubmit=${submit}>
      <h3 id="hold-title">${place ? 'Place a legal hold' : 'Release the legal hold'}</h3>
      <p>${target.title}</p>
      ${place
        ? html`<p class="muted small">While the hold stands, it is never purged or deleted for good. It can still be restored or deleted again.</p>`
        : holds === null
          ? html`<p class="loading" role="status">Looking up its holds…</p>`
          : holds.length === 0
            ? html`<p>No hold stands on it any more.</p>`
            : html`<ul data-testid="holds-to-release">
                ${holds.map(
                  (hold) =>
                    html`<li>Hold #${hold.id} — “${hold.reason}”, placed <time datetime=${hold.placed_at} title=${exact(hold.placed_at)}>${relative(hold.placed_at)}</time>, on ${plural(hold.rows, 'row')}${hold.deletion_id !== null ? ' (a whole deletion: released for all of them)' : ''}</li>`,
                )}
              </ul>`}
      <label>Reason <textarea name="reason" rows="2" required maxlength="500" value=${reason} onInput=${(e: Event) => setReason((e.target as HTMLTextAreaElement).value)}></textarea></label>
      ${error !== null && html`<p class="notice error" role="alert">${error}</p>`}
      <div class="row">
        <button type="button" onClick=${onClose} autofocus>Cancel</button>
        <button type="submit" disabled=${busy || (!place && (holds === null || holds.length === 0))}>${place ? 'Place hold' : 'Release hold'}</button>
      </div>
    </form>`}
  </dialog>`
}

/** The audit of one row, as a URL. */
function auditOf(entity: EntityType, id: number): URLSearchParams {
  return new URLSearchParams({ tab: 'audit', entity, entity_id: String(id) })
}

/** The row an audit entry names, linked to where it is now: the trash (filtered to it), the API's view of it, or nowhere (erased). */
function AuditRow({ item }: { item: AuditItem }) {
  const name = `${noun(item.entity)} ${item.entity_label === null ? '' : `“${item.entity_label}” `}#${item.entity_id}`
  if (item.entity_state === 'deleted' && item.entity_label !== null) {
    const to = new URLSearchParams({ type: item.entity, q: item.entity_label })
    return html`<${Link} to=${to} title="In the trash: show it there"><strong>${name}</strong></${Link}> <span class="muted small">(in the trash)</span>`
  }
  if (item.entity_state === 'active') {
    return html`<a href=${pathOf(item.entity, item.entity_id)} title="Active: open it in the API"><strong>${name}</strong></a>`
  }
  return html`<strong>${name}</strong> <span class="muted small">(erased)</span>`
}

function Actor({ item }: { item: AuditItem }) {
  if (item.actor_id === null) return 'the system'
  const who = item.actor_username ?? `user #${item.actor_id}`
  return html`<${Link} to=${new URLSearchParams({ tab: 'audit', actor_id: String(item.actor_id) })} title=${`Everything user #${item.actor_id} did`}>${who}</${Link}>`
}

/**
 * The audit timeline, newest first. Its filters and page are in the URL; the selects apply at once
 * (with the ids as typed), like the Filter button.
 */
function AuditView({ params }: { params: URLSearchParams }) {
  const applied = {
    entity: entityParam(params.get('entity')),
    entity_id: params.get('entity_id') ?? '',
    actor_id: params.get('actor_id') ?? '',
    action: (Object.keys(ACTION_WORDS) as string[]).includes(params.get('action') ?? '') ? (params.get('action') as string) : '',
  }
  const cursors = params.getAll('audit_cursor')
  const cursor = cursors.at(-1) ?? null
  const key = JSON.stringify([applied, cursor])
  const [entityId, setEntityId] = useDraft(applied.entity_id)
  const [actorId, setActorId] = useDraft(applied.actor_id)
  const [invalid, setInvalid] = useState<string | null>(null)
  const [page, setPage] = useState<{ key: string; items: AuditItem[]; next_cursor: string | null } | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [version, setVersion] = useState(0)


  useEffect(() => {
    const query = new URLSearchParams({ limit: String(AUDIT_PAGE) })
    for (const [name, value] of Object.entries(applied)) if (value !== '') query.set(name, value)
    if (cursor !== null) query.set('cursor', cursor)
    let current = true
    setError(null)
    api
      .audit(query)
      .then((result) => current && setPage({ key, ...result }))
      .catch((caught: Error) => current && setError(caught.message))
    return () => {
      current = false
    }
  }, [key, version])

  const apply = (changes: { entity?: string; action?: string } = {}) => {
    const ids = { entity_id: entityId.trim(), actor_id: actorId.trim() }
    const wrong = Object.entries(ids).find(([, value]) => value !== '' && !/^[1-9][0-9]{0,9}$/.test(value))
    if (wrong !== undefined) {
      setInvalid(`${wrong[0] === 'entity_id' ? 'Id' : 'Actor id'} is a number, such as 12.`)
      return
    }
    setInvalid(null)
    navigate(withParams(params, { entity: changes.entity ?? applied.entity, action: changes.action ?? applied.action, ...ids, audit_cursor: null }))
  }
  const fresh = page !== null && page.key === key
  const items = fresh ? page.items : []
  const filtered = Object.values(applied).some((value) => value !== '')

  return html`<section aria-labelledby="audit-title">
    <h2 id="audit-title">Audit</h2>
    <${AuditChart} days=${30} version=${version} />
    <form class="filters" onSubmit=${(e: Event) => {
      e.preventDefault()
      apply()
    }}>
      <label>Entity
        <select value=${applied.entity} onChange=${(e: Event) => apply({ entity: (e.target as HTMLSelectElement).value })}>
          <option value="">Any</option><option value="post">Posts</option><option value="comment">Comments</option><option value="user">Users</option>
        </select>
      </label>
      <label>Id <input inputmode="numeric" size="6" value=${entityId} aria-invalid=${invalid?.startsWith('Id') ? 'true' : undefined} onInput=${(e: Event) => setEntityId((e.target as HTMLInputElement).value)} /></label>
      <label>Actor id <input inputmode="numeric" size="6" value=${actorId} aria-invalid=${invalid?.startsWith('Actor') ? 'true' : undefined} onInput=${(e: Event) => setActorId((e.target as HTMLInputElement).value)} /></label>
      <label>Action
        <select value=${applied.action} onChange=${(e: Event) => apply({ action: (e.target as HTMLSelectElement).value })}>
          <option value="">Any</option><option value="soft_delete">Deleted</option><option value="restore">Restored</option><option value="hard_delete">Deleted for good</option><option value="purge">Purged</option><option value="hold">Held</option><option value="release">Released</option>
        </select>
      </label>
      <button type="submit">Filter</button>
      ${filtered && html`<${Link} to=${new URLSearchParams({ tab: 'audit' })}>Clear filters</${Link}>`}
    </form>
    ${invalid !== null && html`<p class="notice error" role="alert">${invalid}</p>`}
    ${error !== null
      ? html`<p class="notice error" role="alert">The audit could not be loaded: ${error} <button type="button" onClick=${() => setVersion((v) => v + 1)}>Try again</button></p>`
      : !fresh
        ? html`<p class="loading" role="status">Loading the audit…</p>`
        : items.length === 0
          ? html`<p class="empty">${filtered ? 'No audit entries match.' : 'Nothing has been deleted, restored or purged yet.'}</p>`
          : html`<ol class="timeline">
              ${items.map(
                (item) => html`<li key=${item.id} class=${item.action} data-testid=${`audit-${item.id}`}>
                  <time datetime=${item.at} title=${exact(item.at)}>${relative(item.at)}</time>
                  <span><${AuditRow} item=${item} /> ${ACTION_WORDS[item.action]} by <${Actor} item=${item} />${item.reason ? html` — <em>${item.reason}</em>` : ''}
                    ${!(applied.entity === item.entity && applied.entity_id === String(item.entity_id)) &&
                    html` <span class="small">· <${Link} to=${auditOf(item.entity, item.entity_id)} title="Every delete and restore of this row">history</${Link}></span>`}</span>
                </li>`,
              )}
            </ol>`}
    ${fresh &&
    html`<${Pager}
      label="Audit pages"
      page=${cursors.length + 1}
      hasNext=${page.next_cursor !== null}
      onPrevious=${() => navigate(withParams(params, { audit_cursor: cursors.slice(0, -1) }))}
      onNext=${() => page.next_cursor !== null && navigate(withParams(params, { audit_cursor: [...cursors, page.next_cursor] }))}
    />`}
  </section>`
}

/** Purge: a dry run for a cutoff (days, in the URL with the type), then the purge after confirming. */
function PurgeView({ params }: { params: URLSearchParams }) {
  const appliedDays = /^[0-9]{1,5}$/.test(params.get('days') ?? '') ? (params.get('days') as string) : ''
  const appliedType = entityParam(params.get('only'))
  const [days, setDays] = useState(appliedDays)
  const [type, setType] = useState<'' | EntityType>(appliedType)
  const [preview, setPreview] = useState<(PurgePreview & { key: string }) | null>(null)
  const [done, setDone] = useState<string | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const [confirming, setConfirming] = useState(false)
  const key = JSON.stringify([appliedDays, appliedType])
  const cancelRef = useRef<HTMLButtonElement>(null)
  // The confirmation replaces the button that had focus: focus goes to its safe choice.
  useEffect(() => {
    if (confirming) cancelRef.current?.focus()
  }, [confirming])

  useEffect(() => {
    setDays(appliedDays)
    setType(appliedType)
  }, [key])

  const run = async (work: () => Promise<void>) => {
    setBusy(true)
    setError(null)
    try {
      await work()
    } catch (caught) {
      setError((caught as Error).message)
    } finally {
      setBusy(false)
    }
  }
  const dryRun = (event: Event) => {
    event.preventDefault()
    const trimmed = days.trim()
    if (trimmed !== '' && !/^[0-9]{1,5}$/.test(trimmed)) {
      setError('Days is a whole number, such as 30 (or empty for the retention period).')
      return
    }
    setDone(null)
    setConfirming(false)
    const nextKey = JSON.stringify([trimmed, type])
    navigate(withParams(params, { days: trimmed, only: type }), { replace: true })
    void run(async () => {
      const body = { ...(trimmed === '' ? {} : { older_than_days: Number(trimmed) }), ...(type === '' ? {} : { type }) }
      setPreview({ key: nextKey, ...(await api.purgePreview(body)) })
    })
  }
  const purge = () =>
    run(async () => {
      if (preview === null) return
      // The preview's plan: exactly what it counted, or less (rows restored since stay).
      const result = await api.purge(preview.plan)
      setDone(`Purged ${plural(result.purged_count, 'row')} deleted before ${exact(result.cutoff)}.`)
      setPreview(null)
      setConfirming(false)
    })
  const shown = preview !== null && preview.key === key ? preview : null

  return html`<section aria-labelledby="purge-title">
    <h2 id="purge-title">Purge</h2>
    <p>Erase for good what was deleted before a cutoff. First see what would go; nothing changes until you confirm.</p>
    <form class="filters" onSubmit=${dryRun}>
      <label>Deleted more than <span class="inline"><input name="days" inputmode="numeric" size="5" placeholder="retention" aria-describedby="days-hint" value=${days} onInput=${(e: Event) => setDays((e.target as HTMLInputElement).value)} /> days ago</span></label>
      <label>Only
        <select value=${type} onChange=${(e: Event) => setType((e.target as HTMLSelectElement).value as '' | EntityType)}>
          <option value="">Everything</option><option value="post">Posts</option><option value="comment">Comments</option><option value="user">Users</option>
        </select>
      </label>
      <button type="submit" disabled=${busy}>${busy && preview === null ? 'Counting…' : 'Preview (dry run)'}</button>
    </form>
    <p id="days-hint" class="muted small">Empty: rows past the retention period (the service's RETENTION_DAYS). Comments go before their posts, posts before their users.</p>
    ${error !== null && html`<p class="notice error" role="alert">${error}</p>`}
    ${done !== null && html`<p class="notice ok" role="status">${done} <${Link} to=${new URLSearchParams({ tab: 'audit', action: 'purge' })}>See the purges in the audit</${Link}></p>`}
    ${shown !== null &&
    html`<div class="preview" aria-live="polite">
      ${shown.purge_count === 0 && shown.held_count > 0
        ? html`<p data-testid="purge-count">Nothing can be purged: what was deleted before ${exact(shown.cutoff)} is under a legal hold.</p>`
        : shown.purge_count === 0
        ? html`<p data-testid="purge-count">Nothing${appliedType === '' ? '' : ` of type ${appliedType}`} was deleted before ${exact(shown.cutoff)}: there is nothing to purge.</p>`
        : html`<p data-testid="purge-count"><strong>${plural(shown.purge_count, 'row')}</strong> deleted before ${exact(shown.cutoff)} would be erased.</p>`}
      ${shown.held_count > 0 &&
      html`<p data-testid="purge-held"><${HeldBadge} /> ${shown.held_count === 1 ? '1 held row is kept' : `${shown.held_count} held rows are kept`}: a legal hold stands on ${shown.held_count === 1 ? 'it' : 'them'} (or on a comment below), so the purge skips ${shown.held_count === 1 ? 'it' : 'them'}. <${Link} to=${new URLSearchParams({ tab: 'audit', action: 'hold' })}>See the holds in the audit</${Link}></p>`}
      ${shown.purge_sample.length > 0 &&
      html`<p class="muted" data-testid="purge-sample">Among them: ${shown.purge_sample.slice(0, 20).map((entry) => `${entry.type} “${entry.label}” (#${entry.id})`).join(', ')}${shown.purge_count > 20 ? ', …' : ''}</p>`}
      ${shown.purge_count > 0 && html`<p class="muted">Rows deleted after this preview are not part of it; rows restored since are kept.</p>`}
      ${shown.purge_count > 0 &&
      (confirming
        ? html`<div class="row" role="group" aria-label="Confirm the purge">
            <span>Erase ${plural(shown.purge_count, 'row')} for good? This cannot be undone.</span>
            <button type="button" ref=${cancelRef} onClick=${() => setConfirming(false)}>Cancel</button>
            <button type="button" class="danger" disabled=${busy} onClick=${purge}>${busy ? 'Purging…' : `Yes, purge ${plural(shown.purge_count, 'row')}`}</button>
          </div>`
        : html`<button type="button" class="danger" onClick=${() => setConfirming(true)}>Purge ${plural(shown.purge_count, 'row')}…</button>`)}
    </div>`}
  </section>`
}

const root = document.getElementById('app') as HTMLElement
// Preact renders beside what the container holds: the static "Loading the admin page…" line goes first.
root.replaceChildren()
render(html`<${App} />`, root)
