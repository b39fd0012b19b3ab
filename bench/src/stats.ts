/** Medians, spreads and timing helpers. Every figure is a median of repetitions, with its spread. */

export interface Measurement {
  readonly name: string
  /** Median of the repetitions, in the unit given. */
  readonly median: number
  readonly min: number
  readonly max: number
  readonly samples: readonly number[]
  readonly unit: string
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2
}

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[index] as number
}

export function measurement(name: string, samples: readonly number[], unit: string): Measurement {
  return { name, median: median(samples), min: Math.min(...samples), max: Math.max(...samples), samples, unit }
}

/** Spread as ±% of the median (half the min–max range). */
export function spread(m: Measurement): number {
  return m.median === 0 ? 0 : ((m.max - m.min) / 2 / m.median) * 100
}

/** Milliseconds taken by `work`. */
export async function time(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now()
  await work()
  return performance.now() - started
}

/**
 * Runs each variant `repetitions` times, interleaved (A B A B …, the order rotated each round) so
 * that drift of the machine hits every variant alike. Returns per-variant samples.
 */
export async function interleaved<K extends string>(
  repetitions: number,
  variants: Record<K, () => Promise<number>>,
): Promise<Record<K, number[]>> {
  const names = Object.keys(variants) as K[]
  const samples = Object.fromEntries(names.map((name) => [name, [] as number[]])) as Record<K, number[]>
  for (let round = 0; round < repetitions; round++) {
    const order = names.map((_, index) => names[(index + round) % names.length] as K)
    for (const name of order) samples[name].push(await variants[name]())
  }
  return samples
}

export function format(value: number, digits = 2): string {
  return value >= 100 ? value.toFixed(0) : value.toFixed(digits)
}

/**
 * Paired timing for fast operations: each iteration runs every variant once, in a rotating order,
 * timing each call alone, so that drift and noise hit all variants alike. Returns, per repetition
 * and variant, the mean time per call in microseconds.
 */
export async function paired<K extends string>(
  repetitions: number,
  iterations: number,
  variants: Record<K, (i: number) => Promise<unknown>>,
): Promise<Record<K, number[]>> {
  const names = Object.keys(variants) as K[]
  const samples = Object.fromEntries(names.map((name) => [name, [] as number[]])) as Record<K, number[]>
  // Warm-up, untimed.
  for (let i = 0; i < Math.min(500, iterations); i++) for (const name of names) await variants[name](i)
  for (let round = 0; round < repetitions; round++) {
    const totals = Object.fromEntries(names.map((name) => [name, 0])) as Record<K, number>
    for (let i = 0; i < iterations; i++) {
      for (let k = 0; k < names.length; k++) {
        const name = names[(i + k) % names.length] as K
        const started = performance.now()
        await variants[name](i)
        totals[name] += performance.now() - started
      }
    }
    for (const name of names) samples[name].push((totals[name] * 1000) / iterations)
  }
  return samples
}
