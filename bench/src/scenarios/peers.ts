import type { Server } from '../postgres.ts'
import type { ScenarioResult } from '../report.ts'

export async function peers(_server: Server, _options: { quick: boolean; repetitions: number }): Promise<ScenarioResult> {
  throw new Error('not written yet')
}
