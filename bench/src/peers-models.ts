/**
 * The blog's users, posts and comments as the peer ORMs declare them, mapped onto the same tables
 * (the blog's schema), with their own soft-delete support: TypeORM's `@DeleteDateColumn` with
 * cascading `softRemove`/`recover`, Sequelize's `paranoid` models with `onDelete: 'CASCADE'` hooks.
 */
import 'reflect-metadata'
import { DataSource, EntitySchema } from 'typeorm'
import { DataTypes, Model, Sequelize, type ModelStatic } from 'sequelize'

export interface OrmUser {
  id: number
  username: string
  deleted_at: Date | null
  posts?: OrmPost[]
  comments?: OrmComment[]
}
export interface OrmPost {
  id: number
  author_id: number
  title: string
  deleted_at: Date | null
  author?: OrmUser
  comments?: OrmComment[]
}
export interface OrmComment {
  id: number
  post_id: number
  author_id: number
  body: string
  deleted_at: Date | null
}

const UserEntity = new EntitySchema<OrmUser>({
  name: 'User',
  tableName: 'users',
  columns: {
    id: { type: 'integer', primary: true },
    username: { type: 'text' },
    deleted_at: { type: 'timestamptz', nullable: true, deleteDate: true },
  },
  relations: {
    posts: { type: 'one-to-many', target: 'Post', inverseSide: 'author', cascade: ['soft-remove', 'recover'] },
    comments: { type: 'one-to-many', target: 'Comment', inverseSide: 'author', cascade: ['soft-remove', 'recover'] },
  },
})

const PostEntity = new EntitySchema<OrmPost>({
  name: 'Post',
  tableName: 'posts',
  columns: {
    id: { type: 'integer', primary: true },
    author_id: { type: 'integer' },
    title: { type: 'text' },
    deleted_at: { type: 'timestamptz', nullable: true, deleteDate: true },
  },
  relations: {
    author: { type: 'many-to-one', target: 'User', joinColumn: { name: 'author_id' }, inverseSide: 'posts' },
    comments: { type: 'one-to-many', target: 'Comment', inverseSide: 'post', cascade: ['soft-remove', 'recover'] },
  },
})

const CommentEntity = new EntitySchema<OrmComment & { post?: OrmPost; author?: OrmUser }>({
  name: 'Comment',
  tableName: 'comments',
  columns: {
    id: { type: 'integer', primary: true },
    post_id: { type: 'integer' },
    author_id: { type: 'integer' },
    body: { type: 'text' },
    deleted_at: { type: 'timestamptz', nullable: true, deleteDate: true },
  },
  relations: {
    post: { type: 'many-to-one', target: 'Post', joinColumn: { name: 'post_id' }, inverseSide: 'comments' },
    author: { type: 'many-to-one', target: 'User', joinColumn: { name: 'author_id' }, inverseSide: 'comments' },
  },
})

export async function typeormDataSource(url: string): Promise<DataSource> {
  const source = new DataSource({ type: 'postgres', url, entities: [UserEntity, PostEntity, CommentEntity], synchronize: false, logging: false, poolSize: 4 })
  return source.initialize()
}

export interface SequelizeModels {
  readonly sequelize: Sequelize
  readonly User: ModelStatic<Model>
  readonly Post: ModelStatic<Model>
  readonly Comment: ModelStatic<Model>
}

export function sequelizeModels(url: string): SequelizeModels {
  const sequelize = new Sequelize(url, { logging: false, pool: { max: 4 } })
  const options = { paranoid: true, underscored: true, timestamps: true, createdAt: 'created_at', updatedAt: 'updated_at', deletedAt: 'deleted_at' }
  const User = sequelize.define('User', { id: { type: DataTypes.INTEGER, primaryKey: true }, username: DataTypes.TEXT }, { ...options, tableName: 'users' })
  const Post = sequelize.define(
    'Post',
    { id: { type: DataTypes.INTEGER, primaryKey: true }, author_id: DataTypes.INTEGER, title: DataTypes.TEXT },
    { ...options, tableName: 'posts' },
  )
  const Comment = sequelize.define(
    'Comment',
    { id: { type: DataTypes.INTEGER, primaryKey: true }, post_id: DataTypes.INTEGER, author_id: DataTypes.INTEGER, body: DataTypes.TEXT },
    { ...options, tableName: 'comments' },
  )
  // Sequelize's documented way to cascade a paranoid destroy: onDelete CASCADE with hooks.
  User.hasMany(Post, { foreignKey: 'author_id', as: 'posts', onDelete: 'CASCADE', hooks: true })
  User.hasMany(Comment, { foreignKey: 'author_id', as: 'comments', onDelete: 'CASCADE', hooks: true })
  Post.hasMany(Comment, { foreignKey: 'post_id', as: 'comments', onDelete: 'CASCADE', hooks: true })
  Post.belongsTo(User, { foreignKey: 'author_id', as: 'author' })
  Comment.belongsTo(Post, { foreignKey: 'post_id', as: 'post' })
  return { sequelize, User, Post, Comment }
}
