/**
 * Where the admin page is, in its URL: the tab, each tab's filters and its page (as the stack of
 * cursors that leads there), so that reload, Back and a copied link all land on the same screen.
 */
import { useEffect, useRef, useState } from 'preact/hooks'

export type Tab = 'trash' | 'deletions' | 'audit' | 'purge'
export const TABS: readonly Tab[] = ['trash', 'deletions', 'audit', 'purge']

const NAVIGATED = 'tombstone:navigate'

/** The tab a URL shows (the trash unless it names another). */
export function tabOf(params: URLSearchParams): Tab {
  const tab = params.get('tab')
  return (TABS as readonly string[]).includes(tab ?? '') ? (tab as Tab) : 'trash'
}

/** `params` with `changes` applied: `null` or `''` removes a parameter, an array repeats it. */
export function withParams(params: URLSearchParams, changes: Record<string, string | readonly string[] | null>): URLSearchParams {
  const next = new URLSearchParams(params)
  for (const [name, value] of Object.entries(changes)) {
    next.delete(name)
    if (typeof value === 'string') {
      if (value !== '') next.set(name, value)
    } else if (value !== null) {
      for (const each of value) next.append(name, each)
    }
  }
  return next
}

/** The page's own address with these parameters (for links and history). */
export function hrefOf(params: URLSearchParams): string {
  const query = params.toString()
  return `${location.pathname}${query === '' ? '' : `?${query}`}`
}

/** Goes to `params`: a new history entry (Back returns to this one), or in place of it. */
export function navigate(params: URLSearchParams, options: { replace?: boolean } = {}): void {
  const href = hrefOf(params)
  if (href === `${location.pathname}${location.search}`) return
  if (options.replace === true) history.replaceState(null, '', href)
  else history.pushState(null, '', href)
  window.dispatchEvent(new Event(NAVIGATED))
}

/** The URL's parameters, kept current through navigate(), Back and Forward. */
export function useParams(): URLSearchParams {
  const [params, setParams] = useState(() => new URLSearchParams(location.search))
  useEffect(() => {
    const update = () => setParams(new URLSearchParams(location.search))
    window.addEventListener('popstate', update)
    window.addEventListener(NAVIGATED, update)
    return () => {
      window.removeEventListener('popstate', update)
      window.removeEventListener(NAVIGATED, update)
    }
  }, [])
  return params
}

/** A click on an in-page link: navigate without reloading (a modified click opens a tab as usual). */
export function followLink(event: MouseEvent, params: URLSearchParams): void {
  if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return
  event.preventDefault()
  navigate(params)
}

/**
 * A filter box's text: what the URL applies, until someone types; when the applied value changes
 * (Back, Forward, a link, Clear filters) the box shows it again. Decided while rendering, not in an
 * effect: Preact runs effects after the next frame, and an effect that copied the URL's value into
 * the box on the view's first render wiped whatever was typed in the frame before it (a browser
 * test caught `Deleted by` emptied between its fill and its Filter click).
 *
 * @example
 * const [actor, setActor] = useDraft(params.get('d_actor') ?? '')
 * // <input value=${actor} onInput=${(e) => setActor(e.target.value)} />
 */
export function useDraft(applied: string): [string, (typed: string) => void] {
  const state = useRef({ applied, draft: applied })
  const [, rerender] = useState(0)
  if (state.current.applied !== applied) state.current = { applied, draft: applied }
  const set = (typed: string) => {
    state.current = { applied: state.current.applied, draft: typed }
    rerender((n) => n + 1)
  }
  return [state.current.draft, set]
}
