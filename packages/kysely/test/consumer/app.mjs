// ESM consumer: plain `node app.mjs`, no type stripping, no conditions.
import { main } from './scenario.mjs'

await main('esm')
