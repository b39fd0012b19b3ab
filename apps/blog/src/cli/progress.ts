import cliProgress from 'cli-progress'
import type { CliIO } from './io.ts'

/** A progress bar on stderr (only when it is a terminal): rows, rows/s and ETA. */
export function progressBar(io: CliIO, label: string) {
  const bar = new cliProgress.SingleBar(
    {
      stream: io.stderr as NodeJS.WriteStream,
      format: `${label} {bar} {percentage}% | {value}/{total} rows | {rate} rows/s | ETA {eta_formatted}`,
      etaBuffer: 20,
      hideCursor: true,
      noTTYOutput: false,
    },
    cliProgress.Presets.shades_classic,
  )
  let started = false
  const startedAt = performance.now()
  return {
    update(done: number, total: number) {
      const rate = Math.round((done * 1000) / Math.max(1, performance.now() - startedAt))
      if (!started) {
        bar.start(Math.max(total, 1), done, { rate })
        started = true
      } else {
        bar.setTotal(Math.max(total, done, 1))
        bar.update(done, { rate })
      }
    },
    stop() {
      if (started) bar.stop()
    },
  }
}
