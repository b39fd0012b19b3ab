// A Fastify app on @tombstone/fastify: a toolkit error thrown by a route answers problem+json.
import Fastify from 'fastify'
import { NotFoundError } from '@tombstone/kysely'
import { problemDetails } from '@tombstone/fastify'

const app = Fastify()
await app.register(problemDetails)
app.get('/posts/:id', async (request) => {
  throw new NotFoundError('posts', [Number(request.params.id)])
})
await app.ready()
const response = await app.inject({ method: 'GET', url: '/posts/7' })
console.log(JSON.stringify({ app: 'fastify', status: response.statusCode, type: response.headers['content-type'], body: response.json() }))
await app.close()
