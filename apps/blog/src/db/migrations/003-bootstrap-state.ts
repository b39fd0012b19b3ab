import { sql, type Kysely } from 'kysely'

/**
 * Remembers whether the generated password of the bootstrap admin was ever shown: a process killed
 * between creating the admin and printing its password must not leave an admin nobody can sign in
 * as. While it was not shown, the next start makes a new one and shows it.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create table bootstrap_state (
    id integer primary key default 1 check (id = 1),
    admin_id integer not null references users (id),
    password_shown boolean not null default false
  )`.execute(db)
}
