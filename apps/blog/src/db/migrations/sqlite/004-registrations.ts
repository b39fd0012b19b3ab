import { sql, type Kysely } from 'kysely'

/** SQLite's form of ../004-registrations.ts. */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create table registrations (
    id integer primary key autoincrement,
    address text not null,
    at text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
  )`.execute(db)
  await sql`create index registrations_address_at_idx on registrations (address, at)`.execute(db)
}
