/**
 * The admin trash page: sign in, browse what users deleted, restore it (one or many), delete it for
 * good, read the audit timeline, purge. Preact with htm templates (no JSX build step), one bundle.
 */
import { h, render } from 'preact'
import { useEffect, useRef, useState } from 'preact/hooks'
import htm from 'htm'
import { api, ApiError, exact, noun, pathOf, plural, relative, session, SESSION_ENDED, type AuditItem, type EntityType, type Me, type PurgePreview, type TrashItem } from './api.ts'
import { followLink, hrefOf, navigate, TABS, tabOf, useParams, withParams, type Tab } from './route.ts'
import './styles.css'

const html = htm.bind(h)

const TAB_LABELS: Record<Tab, string> = { trash: 'Trash', audit: 'Audit', purge: 'Purge' }

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
    <main id=${`panel-${tab}`} role="tabpanel" aria-labelledby=${`tab-${tab}`}>
      ${tab === 'trash' ? html`<${TrashView} params=${params} />` : tab === 'audit' ? html`<${AuditView} params=${params} />` : html`<${PurgeView} params=${params} />`}
    </main>
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
  const [q, setQ] = useState(search)
  const [page, setPage] = useState<{ key: string; items: TrashItem[]; next_cursor: string | null } | null>(null)
  const [loading, setLoading] = useState(true)
  const [error, setError] = useState<string | null>(null)
  const [selected, setSelected] = useState<Set<string>>(new Set())
  const [outcomes, setOutcomes] = useState<Outcome[]>([])
  const [confirming, setConfirming] = useState<TrashItem | null>(null)
  const [version, setVersion] = useState(0)
  const dialog = useRef<HTMLDialogElement>(null)
  const outcomesRef = useRef<HTMLDivElement>(null)

  // Back, Forward or a link changed the applied search: the box shows it again.
  useEffect(() => setQ(search), [search])

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
    // One by one, so that each gets its own outcome in words; a failure does not stop the others.
    for (const item of targets) {
      try {
        await api.restore(item.type, item.id)
        results.push({ key: keyOf(item), ok: true, text: `${noun(item.type)} #${item.id} “${item.label}” is restored.` })
      } catch (caught) {
        results.push({ key: keyOf(item), ok: false, text: explain(item, caught) })
      }
    }
    report(results)
  }

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
                        ${item.parent !== null && item.parent.deleted && html`<div class="muted small">on post #${item.parent.id}, also deleted</div>`}
                        <div class="small"><${Link} to=${auditOf(item.type, item.id)} title="Every delete and restore of this row">History</${Link}></div>
                      </div>
                    </td>
                    <td data-label="Deleted by">${item.deleted_by_username ?? (item.deleted_by === null ? 'the system' : `user #${item.deleted_by}`)}</td>
                    <td data-label="When"><time datetime=${item.deleted_at} title=${exact(item.deleted_at)}>${relative(item.deleted_at)}</time></td>
                    <td data-label="Why">${item.delete_reason ?? html`<span class="muted">no reason given</span>`}</td>
                    <td data-label="Purged">${item.purge_at === null ? html`<span class="muted">never</span>` : html`<time datetime=${item.purge_at} title=${exact(item.purge_at)}>${relative(item.purge_at)}</time>`}</td>
                    <td data-label="Actions" class="actions">
                      <div>
                        <button type="button" onClick=${() => restore([item])}>Restore</button>
                        <button type="button" class="danger" onClick=${() => setConfirming(item)}>Delete permanently</button>
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

const ACTION_WORDS: Record<AuditItem['action'], string> = {
  soft_delete: 'deleted',
  restore: 'restored',
  hard_delete: 'deleted for good',
  purge: 'purged',
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
  const [entityId, setEntityId] = useState(applied.entity_id)
  const [actorId, setActorId] = useState(applied.actor_id)
  const [invalid, setInvalid] = useState<string | null>(null)
  const [page, setPage] = useState<{ key: string; items: AuditItem[]; next_cursor: string | null } | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [version, setVersion] = useState(0)

  useEffect(() => setEntityId(applied.entity_id), [applied.entity_id])
  useEffect(() => setActorId(applied.actor_id), [applied.actor_id])

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
          <option value="">Any</option><option value="soft_delete">Deleted</option><option value="restore">Restored</option><option value="hard_delete">Deleted for good</option><option value="purge">Purged</option>
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
      ${shown.purge_count === 0
        ? html`<p data-testid="purge-count">Nothing${appliedType === '' ? '' : ` of type ${appliedType}`} was deleted before ${exact(shown.cutoff)}: there is nothing to purge.</p>`
        : html`<p data-testid="purge-count"><strong>${plural(shown.purge_count, 'row')}</strong> deleted before ${exact(shown.cutoff)} would be erased.</p>`}
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
