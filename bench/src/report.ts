import { cpus, totalmem } from 'node:os'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { format, spread, type Measurement } from './stats.ts'

export interface Ratio {
  readonly name: string
  /** Toolkit value / baseline value (times: > 1 is slower; throughputs: < 1 is slower). */
  readonly value: number
  readonly baseline: string
}

export interface Target {
  readonly description: string
  readonly met: boolean
}

export interface ScenarioResult {
  readonly scenario: string
  readonly description: string
  readonly sizes: Record<string, number>
  readonly measurements: readonly Measurement[]
  readonly ratios: readonly Ratio[]
  readonly targets: readonly Target[]
  readonly notes: readonly string[]
}

export function machine(postgres: string) {
  const cpu = cpus()
  return {
    cpus: cpu.length,
    cpu_model: cpu[0]?.model ?? 'unknown',
    memory_gib: Number((totalmem() / 1024 ** 3).toFixed(1)),
    node: process.version,
    postgres,
    platform: `${process.platform}-${process.arch}`,
  }
}

export function write(directory: string, result: ScenarioResult, context: { quick: boolean; machine: ReturnType<typeof machine>; repetitions: number }) {
  mkdirSync(directory, { recursive: true })
  const file = join(directory, `${result.scenario}${context.quick ? '.quick' : ''}.json`)
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        ...result,
        date: new Date().toISOString(),
        quick: context.quick,
        repetitions: context.repetitions,
        machine: context.machine,
        measurements: result.measurements.map((m) => ({ ...m, spread_pct: Number(spread(m).toFixed(1)) })),
      },
      null,
      2,
    )}\n`,
  )
  return file
}

export function print(result: ScenarioResult): string {
  const lines = [`\n## ${result.scenario}: ${result.description}`, `sizes: ${Object.entries(result.sizes).map(([k, v]) => `${k}=${v}`).join(', ')}`]
  const width = Math.max(...result.measurements.map((m) => m.name.length), 10)
  for (const m of result.measurements) {
    lines.push(`  ${m.name.padEnd(width)}  ${format(m.median).padStart(10)} ${m.unit.padEnd(8)} ±${format(spread(m), 1)}%  (min ${format(m.min)}, max ${format(m.max)})`)
  }
  for (const ratio of result.ratios) lines.push(`  ratio ${ratio.name}: ${ratio.value.toFixed(3)}x (baseline: ${ratio.baseline})`)
  for (const target of result.targets) lines.push(`  target ${target.met ? 'MET   ' : 'MISSED'} ${target.description}`)
  for (const note of result.notes) lines.push(`  note: ${note}`)
  return lines.join('\n')
}
