/**
 * One peer ORM's cascade in its own process (a peer that runs out of memory must not take the
 * benchmark down): `node --conditions=source peer-cascade.ts <typeorm|sequelize> <url> <user id>`.
 * Prints `{"delete_ms":…, "restore_ms":…}` (restore_ms null when the ORM has no cascading restore), or
 * `{"refused": …}` when the database refused its delete.
 */
import { sequelizeModels, typeormDataSource, type OrmUser } from './peers-models.ts'

const [orm, url, id] = process.argv.slice(2) as ['typeorm' | 'sequelize', string, string]
const userId = Number(id)
if (orm === 'typeorm') {
  const source = await typeormDataSource(url)
  const repository = source.getRepository<OrmUser>('User')
  let started = performance.now()
  const user = await repository.findOneOrFail({ where: { id: userId }, relations: { posts: { comments: true }, comments: true } })
  await repository.softRemove(user)
  const deleteMs = performance.now() - started
  started = performance.now()
  const deleted = await repository.findOneOrFail({ where: { id: userId }, relations: { posts: { comments: true }, comments: true }, withDeleted: true })
  await repository.recover(deleted)
  const restoreMs = performance.now() - started
  await source.destroy()
  process.stdout.write(`${JSON.stringify({ delete_ms: deleteMs, restore_ms: restoreMs })}\n`)
} else {
  const models = sequelizeModels(url)
  const started = performance.now()
  const user = await models.User.findByPk(userId)
  try {
    await user?.destroy()
    const deleteMs = performance.now() - started
    process.stdout.write(`${JSON.stringify({ delete_ms: deleteMs, restore_ms: null })}\n`)
  } catch (error) {
    // Its paranoid destroy stamps the user alone, leaving the posts and comments active under it:
    // the database refuses that commit (TB003, the parent side of the relations' check).
    const cause = (error as { parent?: { code?: string; message?: string } }).parent
    if (cause?.code !== 'TB003') throw error
    process.stdout.write(`${JSON.stringify({ refused: cause.message })}\n`)
  } finally {
    await models.sequelize.close()
  }
}
