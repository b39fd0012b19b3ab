/**
 * The admin trash page: sign in, browse what users deleted, restore it (one or many), delete it for
 * good, read the audit timeline, purge. Preact with htm templates (no JSX build step), one bundle.
 */
import { h, render } from 'preact'
import { useCallback, useEffect, useRef, useState } from 'preact/hooks'
import htm from 'htm'
import { api, ApiError, exact, noun, plural, relative, session, type AuditItem, type EntityType, type Me, type PurgePreview, type TrashItem } from './api.ts'
import './styles.css'

const html = htm.bind(h)

type Tab = 'trash' | 'audit' | 'purge'

function App() {
  const [me, setMe] = useState<Me | null>(null)
  const [checking, setChecking] = useState(session.token !== null)
  const [tab, setTab] = useState<Tab>('trash')

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

  const signOut = () => {
    session.token = null
    setMe(null)
  }

  if (checking) return html`<p class="loading" role="status">Checking your session…</p>`
  if (me === null) return html`<${SignIn} onSignedIn=${setMe} />`
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
  const tabs: [Tab, string][] = [
    ['trash', 'Trash'],
    ['audit', 'Audit'],
    ['purge', 'Purge'],
  ]
  return html`<div class="shell">
    <header>
      <h1>Tombstone <span class="muted">admin</span></h1>
      <nav role="tablist" aria-label="Sections">
        ${tabs.map(
          ([id, label]) =>
            html`<button role="tab" id=${`tab-${id}`} aria-selected=${tab === id} aria-controls=${`panel-${id}`} onClick=${() => setTab(id)}>
              ${label}
            </button>`,
        )}
      </nav>
      <div class="who">${me.username} · <button type="button" class="link" onClick=${signOut}>Sign out</button></div>
    </header>
    <main id=${`panel-${tab}`} role="tabpanel" aria-labelledby=${`tab-${tab}`}>
      ${tab === 'trash' ? html`<${TrashView} />` : tab === 'audit' ? html`<${AuditView} />` : html`<${PurgeView} />`}
    </main>
  </div>`
}

function SignIn({ onSignedIn }: { onSignedIn: (me: Me) => void }) {
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
    <form onSubmit=${submit} class="stack" aria-describedby=${error ? 'signin-error' : undefined}>
      <label>Username <input name="username" autocomplete="username" required value=${username} onInput=${(e: Event) => setUsername((e.target as HTMLInputElement).value)} /></label>
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

function TrashView() {
  const [type, setType] = useState<'' | EntityType>('')
  const [q, setQ] = useState('')
  const [search, setSearch] = useState('')
  const [sort, setSort] = useState('deleted_desc')
  const [cursors, setCursors] = useState<(string | null)[]>([null])
  const [page, setPage] = useState<{ items: TrashItem[]; next_cursor: string | null } | null>(null)
  const [loading, setLoading] = useState(true)
  const [error, setError] = useState<string | null>(null)
  const [selected, setSelected] = useState<Set<string>>(new Set())
  const [outcomes, setOutcomes] = useState<Outcome[]>([])
  const [confirming, setConfirming] = useState<TrashItem | null>(null)
  const [version, setVersion] = useState(0)
  const dialog = useRef<HTMLDialogElement>(null)
  const cursor = cursors.at(-1) ?? null

  useEffect(() => {
    const query = new URLSearchParams({ limit: '20', sort })
    if (type !== '') query.set('type', type)
    if (search !== '') query.set('q', search)
    if (cursor !== null) query.set('cursor', cursor)
    setLoading(true)
    setError(null)
    api
      .trash(query)
      .then((result) => {
        setPage(result)
        setSelected(new Set())
      })
      .catch((caught: Error) => setError(caught.message))
      .finally(() => setLoading(false))
  }, [type, search, sort, cursor, version])

  useEffect(() => {
    if (confirming !== null) dialog.current?.showModal()
    else dialog.current?.close()
  }, [confirming])

  const resetPaging = () => setCursors([null])
  const keyOf = (item: TrashItem) => `${item.type}:${item.id}`
  const items = page?.items ?? []

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
    setOutcomes(results)
    setVersion((v) => v + 1)
  }

  const erase = async (item: TrashItem) => {
    setConfirming(null)
    try {
      await api.deletePermanently(item.type, item.id)
      const extra = dependentsText(item)
      setOutcomes([{ key: keyOf(item), ok: true, text: `${noun(item.type)} #${item.id} “${item.label}” is deleted for good${extra === '' ? '' : `, with ${extra}`}.` }])
    } catch (caught) {
      setOutcomes([{ key: keyOf(item), ok: false, text: explain(item, caught) }])
    }
    setVersion((v) => v + 1)
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
      setSearch(q.trim())
      resetPaging()
    }}>
      <label>Type
        <select value=${type} onChange=${(e: Event) => {
          setType((e.target as HTMLSelectElement).value as '' | EntityType)
          resetPaging()
        }}>
          <option value="">Everything</option>
          <option value="post">Posts</option>
          <option value="comment">Comments</option>
          <option value="user">Users</option>
        </select>
      </label>
      <label>Search <input type="search" value=${q} placeholder="Title, comment, username" onInput=${(e: Event) => setQ((e.target as HTMLInputElement).value)} /></label>
      <label>Sort
        <select value=${sort} onChange=${(e: Event) => {
          setSort((e.target as HTMLSelectElement).value)
          resetPaging()
        }}>
          <option value="deleted_desc">Deleted, newest first</option>
          <option value="deleted_asc">Deleted, oldest first</option>
          <option value="purge_asc">Purged soonest first</option>
          <option value="purge_desc">Purged latest first</option>
        </select>
      </label>
      <button type="submit">Search</button>
    </form>

    <div class="toolbar">
      <button type="button" disabled=${selected.size === 0} onClick=${() => restore(items.filter((item) => selected.has(keyOf(item))))}>
        Restore selected (${selected.size})
      </button>
    </div>

    <div aria-live="polite" class="outcomes">
      ${outcomes.length > 0 &&
      html`<ul>
        ${outcomes.map((outcome) => html`<li class=${outcome.ok ? 'ok' : 'error'}>${outcome.text}</li>`)}
      </ul>`}
    </div>

    ${error !== null
      ? html`<p class="notice error" role="alert">The trash could not be loaded: ${error} <button type="button" onClick=${() => setVersion((v) => v + 1)}>Try again</button></p>`
      : loading && page === null
        ? html`<p class="loading" role="status">Loading the trash…</p>`
        : items.length === 0
          ? html`<p class="empty">${search !== '' || type !== '' ? 'Nothing in the trash matches.' : 'The trash is empty: nothing deleted is waiting to be restored or purged.'}</p>`
          : html`<table class="trash" aria-busy=${loading}>
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

    <nav class="pager" aria-label="Pages">
      <button type="button" disabled=${cursors.length <= 1} onClick=${() => setCursors(cursors.slice(0, -1))}>Previous</button>
      <span>Page ${cursors.length}</span>
      <button type="button" disabled=${page?.next_cursor == null} onClick=${() => page?.next_cursor && setCursors([...cursors, page.next_cursor])}>Next</button>
    </nav>

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

function AuditView() {
  const [entity, setEntity] = useState('')
  const [entityId, setEntityId] = useState('')
  const [actorId, setActorId] = useState('')
  const [action, setAction] = useState('')
  const [filters, setFilters] = useState(new URLSearchParams())
  const [items, setItems] = useState<AuditItem[]>([])
  const [next, setNext] = useState<string | null>(null)
  const [loading, setLoading] = useState(true)
  const [error, setError] = useState<string | null>(null)

  const load = useCallback(
    (cursor: string | null) => {
      const query = new URLSearchParams(filters)
      query.set('limit', '50')
      if (cursor !== null) query.set('cursor', cursor)
      setLoading(true)
      setError(null)
      api
        .audit(query)
        .then((page) => {
          setItems((current) => (cursor === null ? page.items : [...current, ...page.items]))
          setNext(page.next_cursor)
        })
        .catch((caught: Error) => setError(caught.message))
        .finally(() => setLoading(false))
    },
    [filters],
  )
  useEffect(() => load(null), [load])

  const apply = (event: Event) => {
    event.preventDefault()
    const query = new URLSearchParams()
    if (entity !== '') query.set('entity', entity)
    if (entityId.trim() !== '') query.set('entity_id', entityId.trim())
    if (actorId.trim() !== '') query.set('actor_id', actorId.trim())
    if (action !== '') query.set('action', action)
    setFilters(query)
  }

  return html`<section aria-labelledby="audit-title">
    <h2 id="audit-title">Audit</h2>
    <form class="filters" onSubmit=${apply}>
      <label>Entity
        <select value=${entity} onChange=${(e: Event) => setEntity((e.target as HTMLSelectElement).value)}>
          <option value="">Any</option><option value="post">Posts</option><option value="comment">Comments</option><option value="user">Users</option>
        </select>
      </label>
      <label>Id <input inputmode="numeric" pattern="[0-9]*" size="6" value=${entityId} onInput=${(e: Event) => setEntityId((e.target as HTMLInputElement).value)} /></label>
      <label>Actor id <input inputmode="numeric" pattern="[0-9]*" size="6" value=${actorId} onInput=${(e: Event) => setActorId((e.target as HTMLInputElement).value)} /></label>
      <label>Action
        <select value=${action} onChange=${(e: Event) => setAction((e.target as HTMLSelectElement).value)}>
          <option value="">Any</option><option value="soft_delete">Deleted</option><option value="restore">Restored</option><option value="hard_delete">Deleted for good</option><option value="purge">Purged</option>
        </select>
      </label>
      <button type="submit">Filter</button>
    </form>
    ${error !== null && html`<p class="notice error" role="alert">The audit could not be loaded: ${error}</p>`}
    ${!loading && error === null && items.length === 0 && html`<p class="empty">No audit entries match.</p>`}
    <ol class="timeline">
      ${items.map(
        (item) => html`<li key=${item.id} class=${item.action}>
          <time datetime=${item.at} title=${exact(item.at)}>${relative(item.at)}</time>
          <span><strong>${noun(item.entity)} #${item.entity_id}</strong> ${ACTION_WORDS[item.action]}
            ${item.actor_id === null ? ' by the system' : ` by user #${item.actor_id}`}${item.reason ? html` — <em>${item.reason}</em>` : ''}</span>
        </li>`,
      )}
    </ol>
    ${loading && html`<p class="loading" role="status">Loading…</p>`}
    ${next !== null && !loading && html`<button type="button" onClick=${() => load(next)}>Load more</button>`}
  </section>`
}

function PurgeView() {
  const [days, setDays] = useState('')
  const [type, setType] = useState<'' | EntityType>('')
  const [preview, setPreview] = useState<PurgePreview | null>(null)
  const [done, setDone] = useState<string | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const [confirming, setConfirming] = useState(false)

  const body = () => ({
    ...(days.trim() === '' ? {} : { older_than_days: Number(days) }),
    ...(type === '' ? {} : { type }),
  })
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
    setDone(null)
    setConfirming(false)
    void run(async () => setPreview(await api.purgePreview(body())))
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

  return html`<section aria-labelledby="purge-title">
    <h2 id="purge-title">Purge</h2>
    <p>Erase for good what was deleted before a cutoff. First see what would go; nothing changes until you confirm.</p>
    <form class="filters" onSubmit=${dryRun}>
      <label>Deleted more than <input name="days" inputmode="numeric" pattern="[0-9]*" size="5" placeholder="retention" value=${days} onInput=${(e: Event) => setDays((e.target as HTMLInputElement).value)} /> days ago</label>
      <label>Only
        <select value=${type} onChange=${(e: Event) => setType((e.target as HTMLSelectElement).value as '' | EntityType)}>
          <option value="">Everything</option><option value="post">Posts</option><option value="comment">Comments</option><option value="user">Users</option>
        </select>
      </label>
      <button type="submit" disabled=${busy}>Preview (dry run)</button>
    </form>
    ${error !== null && html`<p class="notice error" role="alert">${error}</p>`}
    ${done !== null && html`<p class="notice ok" role="status">${done}</p>`}
    ${preview !== null &&
    html`<div class="preview" aria-live="polite">
      <p data-testid="purge-count"><strong>${plural(preview.purge_count, 'row')}</strong> deleted before ${exact(preview.cutoff)} would be erased.</p>
      ${preview.purge_sample.length > 0 &&
      html`<p class="muted" data-testid="purge-sample">Among them: ${preview.purge_sample.slice(0, 20).map((entry) => `${entry.type} “${entry.label}” (#${entry.id})`).join(', ')}${preview.purge_count > 20 ? ', …' : ''}</p>`}
      <p class="muted">Rows deleted after this preview are not part of it; rows restored since are kept.</p>
      ${preview.purge_count > 0 &&
      (confirming
        ? html`<div class="row" role="group" aria-label="Confirm the purge">
            <span>Erase ${plural(preview.purge_count, 'row')} for good? This cannot be undone.</span>
            <button type="button" onClick=${() => setConfirming(false)}>Cancel</button>
            <button type="button" class="danger" disabled=${busy} onClick=${purge}>Yes, purge ${plural(preview.purge_count, 'row')}</button>
          </div>`
        : html`<button type="button" class="danger" onClick=${() => setConfirming(true)}>Purge ${plural(preview.purge_count, 'row')}…</button>`)}
    </div>`}
  </section>`
}

render(html`<${App} />`, document.getElementById('app') as HTMLElement)
