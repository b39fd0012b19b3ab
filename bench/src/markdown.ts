/**
 * Renders bench/results/*.json (the full run, or `--quick`) as Markdown tables, for BENCHMARKS.md:
 * `node --conditions=source bench/src/markdown.ts [--quick]`.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'

const quick = process.argv.includes('--quick')
const directory = resolve(import.meta.dirname, '../results')
const order = ['plugin-overhead', 'reads', 'cascade', 'purge', 'http', 'peers', 'dialects']
const files = readdirSync(directory).filter((file) => file.endsWith(quick ? '.quick.json' : '.json') && (quick || !file.endsWith('.quick.json')))
const results = files
  .map((file) => JSON.parse(readFileSync(resolve(directory, file), 'utf8')))
  .sort((a, b) => order.indexOf(a.scenario) - order.indexOf(b.scenario))

const number = (value: number | null) => (value === null || !Number.isFinite(value) ? '—' : Math.abs(value) >= 100 ? value.toFixed(0) : value.toFixed(2))
for (const result of results) {
  process.stdout.write(`\n### ${result.scenario}\n\n${result.description}. Sizes: ${Object.entries(result.sizes).map(([k, v]) => `${k} ${v}`).join(', ')}. ${result.repetitions} repetitions, ${result.date.slice(0, 10)}.\n\n`)
  process.stdout.write('| measurement | median | unit | spread (± half range) | min | max |\n|---|---:|---|---:|---:|---:|\n')
  for (const m of result.measurements.filter((entry: { median: number | null }) => entry.median !== null)) {
    process.stdout.write(`| ${m.name} | ${number(m.median)} | ${m.unit} | ${m.spread_pct}% | ${number(m.min)} | ${number(m.max)} |\n`)
  }
  if (result.ratios.length > 0) {
    process.stdout.write('\n| ratio | value | baseline |\n|---|---:|---|\n')
    for (const r of result.ratios.filter((entry: { value: number | null }) => entry.value !== null)) process.stdout.write(`| ${r.name} | ${r.value === null ? '—' : `${r.value.toFixed(3)}x`} | ${r.baseline} |\n`)
  }
  if (result.targets.length > 0) {
    process.stdout.write('\n| target | |\n|---|---|\n')
    for (const t of result.targets) process.stdout.write(`| ${t.description} | ${t.met ? 'met' : '**missed**'} |\n`)
  }
  for (const note of result.notes) process.stdout.write(`\n- ${note}`)
  process.stdout.write('\n')
}
