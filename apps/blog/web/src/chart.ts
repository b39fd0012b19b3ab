/**
 * The audit's chart: rows deleted, restored and purged per day over the last 30 days, as plain SVG
 * (no chart library). Accessible: a title, an aria-label with the totals, and the numbers in a
 * table (under "Show the numbers").
 */
import { h } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import htm from 'htm'
import { api, plural, type DailyAudit } from './api.ts'

const html = htm.bind(h)

const SERIES = [
  { key: 'soft_delete', label: 'Deleted', color: '#d28b00' },
  { key: 'restore', label: 'Restored', color: '#1e6b3a' },
  { key: 'purge', label: 'Purged', color: '#b3261e' },
] as const

const WIDTH = 600
const HEIGHT = 150
const AXIS = 18

/** "2 Dec" for "2026-12-02". */
function dayLabel(date: string): string {
  return new Date(`${date}T00:00:00Z`).toLocaleDateString('en-GB', { day: 'numeric', month: 'short', timeZone: 'UTC' })
}

export function AuditChart({ days = 30, version = 0 }: { days?: number; version?: number }) {
  const [data, setData] = useState<DailyAudit[] | null>(null)
  const [error, setError] = useState<string | null>(null)
  useEffect(() => {
    let current = true
    api
      .auditDaily(days)
      .then((result) => current && setData(result.days))
      .catch((caught: Error) => current && setError(caught.message))
    return () => {
      current = false
    }
  }, [days, version])

  if (error !== null) return html`<p class="notice error" role="alert">The chart could not be loaded: ${error}</p>`
  if (data === null) return html`<p class="loading" role="status">Loading the chart…</p>`
  const totals = Object.fromEntries(SERIES.map((series) => [series.key, data.reduce((sum, day) => sum + day[series.key], 0)])) as Record<(typeof SERIES)[number]['key'], number>
  const max = Math.max(1, ...data.flatMap((day) => SERIES.map((series) => day[series.key])))
  const slot = WIDTH / data.length
  const bar = Math.max(1, (slot - 2) / SERIES.length)
  const plot = HEIGHT - AXIS
  const summary = `Last ${data.length} days: ${plural(totals.soft_delete, 'row')} deleted, ${totals.restore} restored, ${totals.purge} purged.`
  const first = data[0]
  const last = data.at(-1)
  return html`<figure class="chart" data-testid="audit-chart">
    <figcaption id="chart-title"><strong>Deleted, restored and purged rows per day</strong> <span class="muted small">last ${data.length} days (UTC)</span></figcaption>
    <ul class="legend">
      ${SERIES.map((series) => html`<li><span class="swatch" style=${`background:${series.color}`}></span>${series.label}: ${totals[series.key]}</li>`)}
    </ul>
    <svg viewBox=${`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-labelledby="chart-title chart-desc">
      <title>Deleted, restored and purged rows per day</title>
      <desc id="chart-desc">${summary}</desc>
      <line x1="0" y1=${plot} x2=${WIDTH} y2=${plot} stroke="#c9ced6" />
      <text x="0" y="10" class="axis">${max}</text>
      ${data.map((day, index) =>
        SERIES.map((series, s) => {
          const value = day[series.key]
          const height = value === 0 ? 0 : Math.max(2, (value / max) * (plot - 12))
          return html`<rect x=${index * slot + 1 + s * bar} y=${plot - height} width=${bar} height=${height} fill=${series.color}><title>${`${dayLabel(day.date)}: ${value} ${series.label.toLowerCase()}`}</title></rect>`
        }),
      )}
      ${first !== undefined && html`<text x="0" y=${HEIGHT - 4} class="axis">${dayLabel(first.date)}</text>`}
      ${last !== undefined && html`<text x=${WIDTH} y=${HEIGHT - 4} text-anchor="end" class="axis">${dayLabel(last.date)}</text>`}
    </svg>
    <details>
      <summary>Show the numbers</summary>
      <table class="numbers" data-testid="chart-table">
        <caption class="visually-hidden">Rows per day</caption>
        <thead><tr><th scope="col">Day</th>${SERIES.map((series) => html`<th scope="col">${series.label}</th>`)}</tr></thead>
        <tbody>
          ${data.map((day) => html`<tr><th scope="row">${dayLabel(day.date)}</th>${SERIES.map((series) => html`<td>${day[series.key]}</td>`)}</tr>`)}
        </tbody>
      </table>
    </details>
  </figure>`
}
