#!/usr/bin/env -S node --conditions=source
// The blog's command line; see `tombstone-blog --help`.
const { run } = await import('../src/cli/main.ts')
process.exitCode = await run(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env })
