/**
 * The Undo toast: one message at a time at the bottom of the screen, after a delete or restore made
 * from the page, with an Undo button (a real button: Tab reaches it) and a Dismiss button. It goes
 * by itself after TOAST_MS, but never while the pointer or the focus is on it (time to read and to
 * reach it), nor while its undo runs. Escape dismisses it while focus is in it; Ctrl+Z (⌘Z), outside a
 * text field, presses its Undo from anywhere on the page.
 *
 * @example
 * showToast({ text: 'Post #3 is restored.', undo: async () => ({ text: 'Post #3 is deleted again.' }) })
 */
import { h } from 'preact'
import { useEffect, useRef, useState } from 'preact/hooks'
import htm from 'htm'

const html = htm.bind(h)

/** How long a toast stays, in milliseconds, unless the pointer or focus is on it. */
export const TOAST_MS = 10_000

export interface ToastSpec {
  text: string
  /** Undoes what the toast reports; answers the toast that follows (its own undo, if any). */
  undo?: () => Promise<ToastSpec>
}

const SHOW = 'tombstone:toast'
let counter = 0

/** Shows a toast in place of the current one. */
export function showToast(spec: ToastSpec): void {
  counter += 1
  window.dispatchEvent(new CustomEvent(SHOW, { detail: { ...spec, id: counter } }))
}

export function Toasts() {
  const [toast, setToast] = useState<(ToastSpec & { id: number; error?: boolean }) | null>(null)
  const [busy, setBusy] = useState(false)
  const [paused, setPaused] = useState(false)
  const box = useRef<HTMLDivElement>(null)

  useEffect(() => {
    const show = (event: Event) => {
      setBusy(false)
      setToast((event as CustomEvent).detail)
    }
    window.addEventListener(SHOW, show)
    return () => window.removeEventListener(SHOW, show)
  }, [])

  const undoRef = useRef<() => void>(() => undefined)
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.key.toLowerCase() !== 'z' || !(event.ctrlKey || event.metaKey) || event.shiftKey || event.altKey) return
      const target = event.target as HTMLElement | null
      if (target !== null && (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName))) return
      event.preventDefault()
      undoRef.current()
    }
    window.addEventListener('keydown', onKey)
    return () => window.removeEventListener('keydown', onKey)
  }, [])

  useEffect(() => {
    if (toast === null || paused || busy) return
    const timer = setTimeout(() => setToast(null), TOAST_MS)
    return () => clearTimeout(timer)
  }, [toast, paused, busy])

  const dismiss = () => {
    // Focus was in the toast: it must not fall to the body when the toast goes.
    if (box.current?.contains(document.activeElement)) document.querySelector<HTMLElement>('main[role=tabpanel]')?.focus()
    setPaused(false)
    setToast(null)
  }
  const undo = async () => {
    if (toast?.undo === undefined || busy) return
    setBusy(true)
    try {
      const next = await toast.undo()
      counter += 1
      setToast({ ...next, id: counter })
    } catch (caught) {
      counter += 1
      setToast({ id: counter, text: `Could not undo: ${(caught as Error).message}`, error: true })
    } finally {
      setBusy(false)
    }
  }

  undoRef.current = () => void undo()

  return html`<div class="toast-region" role="region" aria-label="Notifications">
    <div aria-live="polite" aria-atomic="true">
      ${toast !== null &&
      html`<div
        key=${toast.id}
        class=${toast.error === true ? 'toast error' : 'toast'}
        data-testid="toast"
        ref=${box}
        onMouseEnter=${() => setPaused(true)}
        onMouseLeave=${() => setPaused(false)}
        onFocusIn=${() => setPaused(true)}
        onFocusOut=${(event: FocusEvent) => !box.current?.contains(event.relatedTarget as Node) && setPaused(false)}
        onKeyDown=${(event: KeyboardEvent) => event.key === 'Escape' && dismiss()}
      >
        <span>${toast.text}</span>
        ${toast.undo !== undefined && html`<button type="button" class="undo" aria-keyshortcuts="Control+Z Meta+Z" title="Undo (Ctrl+Z)" disabled=${busy} onClick=${undo}>${busy ? 'Undoing…' : 'Undo'}</button>`}
        <button type="button" class="link dismiss" aria-label="Dismiss notification" onClick=${dismiss}>✕</button>
      </div>`}
    </div>
  </div>`
}
