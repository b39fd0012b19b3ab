// Where each entry point resolves, and that it loads: run with and without --conditions=source.
const specifiers = ['@tombstone/kysely', '@tombstone/kysely/pglite', '@tombstone/kysely/sqlite', '@tombstone/fastify']
for (const specifier of specifiers) {
  const module = await import(specifier)
  console.log(JSON.stringify({ specifier, url: import.meta.resolve(specifier), exports: Object.keys(module).length }))
}
