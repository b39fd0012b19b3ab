/**
 * `npm run bench [-- --quick] [-- --scenario <name>…] [-- --repetitions N]`
 *
 * Starts a throwaway PostgreSQL on 127.0.0.1 (or uses DATABASE_URL), runs each scenario with its
 * baseline side by side in the same run, prints a table, and writes bench/results/<scenario>.json.
 */
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { startPostgres, type Server } from './postgres.ts'
import { machine, print, write, type ScenarioResult } from './report.ts'
import { cascade } from './scenarios/cascade.ts'
import { dialects } from './scenarios/dialects.ts'
import { http } from './scenarios/http.ts'
import { invariants } from './scenarios/invariants.ts'
import { peers } from './scenarios/peers.ts'
import { pluginOverhead } from './scenarios/plugin-overhead.ts'
import { purgeScenario } from './scenarios/purge.ts'
import { reads } from './scenarios/reads.ts'

type Scenario = (server: Server, options: { quick: boolean; repetitions: number }) => Promise<ScenarioResult>

const SCENARIOS: Record<string, Scenario> = {
  'plugin-overhead': pluginOverhead,
  reads,
  cascade,
  invariants,
  purge: purgeScenario,
  http,
  peers,
  dialects,
}

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    scenario: { type: 'string', multiple: true },
    repetitions: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
})

if (values.help) {
  process.stdout.write(`npm run bench [-- --quick] [-- --scenario <${Object.keys(SCENARIOS).join('|')}>] [-- --repetitions N]\n`)
  process.exit(0)
}
const names = values.scenario ?? Object.keys(SCENARIOS)
for (const name of names) {
  if (!(name in SCENARIOS)) {
    process.stderr.write(`unknown scenario "${name}"; one of ${Object.keys(SCENARIOS).join(', ')}\n`)
    process.exit(2)
  }
}
const repetitions = values.repetitions === undefined ? (values.quick ? 3 : 5) : Number(values.repetitions)
if (!Number.isInteger(repetitions) || repetitions < 1) {
  process.stderr.write('--repetitions must be a positive integer\n')
  process.exit(2)
}

const server = await startPostgres()
const info = machine(server.version)
process.stdout.write(`# Tombstone benchmarks${values.quick ? ' (quick)' : ''}\n${JSON.stringify(info)}\nrepetitions: ${repetitions}\n`)
const started = performance.now()
let failed = false
try {
  for (const name of names) {
    const scenarioStarted = performance.now()
    try {
      const result = await (SCENARIOS[name] as Scenario)(server, { quick: values.quick, repetitions })
      process.stdout.write(`${print(result)}\n  (${((performance.now() - scenarioStarted) / 1000).toFixed(1)} s)\n`)
      const file = write(resolve(import.meta.dirname, '../results'), result, { quick: values.quick, machine: info, repetitions })
      process.stdout.write(`  -> ${file}\n`)
    } catch (error) {
      failed = true
      process.stderr.write(`scenario ${name} failed: ${(error as Error).stack ?? String(error)}\n`)
    }
  }
} finally {
  await server.stop()
}
process.stdout.write(`\ntotal ${((performance.now() - started) / 1000).toFixed(1)} s\n`)
process.exitCode = failed ? 1 : 0
