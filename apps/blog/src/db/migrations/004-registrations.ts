import { sql, type Kysely } from 'kysely'

/** Registrations per address, for the registration throttle (kept a day). */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create table registrations (
    id integer generated always as identity primary key,
    address text not null,
    at timestamptz not null default now()
  )`.execute(db)
  await sql`create index registrations_address_at_idx on registrations (address, at)`.execute(db)
}
