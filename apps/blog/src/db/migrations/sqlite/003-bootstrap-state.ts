import { sql, type Kysely } from 'kysely'

/** SQLite's form of ../003-bootstrap-state.ts (a boolean is 0/1). */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create table bootstrap_state (
    id integer primary key default 1 check (id = 1),
    admin_id integer not null references users (id),
    password_shown boolean not null default 0 check (password_shown in (0, 1))
  )`.execute(db)
}
