// CommonJS consumer: require() of the ESM-only packages (Node >= 22.12 loads ES modules with require).
const kysely = require('@tombstone/kysely')
const { PGliteDialect } = require('@tombstone/kysely/pglite')
const { problemDetails } = require('@tombstone/fastify')

if (typeof kysely.softDelete !== 'function' || typeof PGliteDialect !== 'function' || typeof problemDetails !== 'function') {
  throw new Error('require() did not give the packages\' exports')
}
// The scenario is an ES module too; require() loads it like the packages.
require('./scenario.mjs').main('cjs').catch((error) => {
  console.error(error)
  process.exitCode = 1
})
