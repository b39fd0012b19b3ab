import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto'

const KEY_LENGTH = 64

/**
 * The scrypt cost, as log2 of N, that current OWASP guidance asks for (N = 2^17, r = 8, p = 1: about
 * 0.4 s and 128 MiB per hash on the reference machine). `PASSWORD_COST` may lower it for tests.
 */
export const DEFAULT_PASSWORD_COST = 17

function options(log2N: number): ScryptOptions {
  // scrypt needs 128 * N * r bytes; leave room.
  return { N: 2 ** log2N, r: 8, p: 1, maxmem: 2 * 128 * 2 ** log2N * 8 + 16 * 1024 * 1024 }
}

function derive(password: string, salt: Buffer, scryptOptions: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFKC'), salt, KEY_LENGTH, scryptOptions, (error, key) => (error ? reject(error) : resolve(key)))
  })
}

/**
 * Hashes a password with scrypt (node:crypto): `scrypt$N$r$p$salt$hash`, base64url parts, a fresh
 * 16-byte salt each time, at the given cost (log2 of N; defaults to {@link DEFAULT_PASSWORD_COST}).
 *
 * @example
 * ```ts
 * const stored = await hashPassword('correct horse')
 * await verifyPassword('correct horse', stored) // true
 * ```
 */
export async function hashPassword(password: string, cost = DEFAULT_PASSWORD_COST): Promise<string> {
  const salt = randomBytes(16)
  const scryptOptions = options(cost)
  const key = await derive(password, salt, scryptOptions)
  return ['scrypt', scryptOptions.N, 8, 1, salt.toString('base64url'), key.toString('base64url')].join('$')
}

/** Checks a password against a stored hash (at the cost it was made with) in constant time; false for a malformed hash. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$')
  if (scheme !== 'scrypt' || salt === undefined || hash === undefined) return false
  const log2N = Math.log2(Number(n))
  if (!Number.isInteger(log2N) || log2N < 10 || log2N > 22 || r !== '8' || p !== '1') return false
  const expected = Buffer.from(hash, 'base64url')
  const key = await derive(password, Buffer.from(salt, 'base64url'), options(log2N))
  return key.length === expected.length && timingSafeEqual(key, expected)
}

/** Whether a stored hash was made with other parameters than the current ones: rehash it at the next sign-in. */
export function needsRehash(stored: string, cost = DEFAULT_PASSWORD_COST): boolean {
  const [scheme, n, r, p] = stored.split('$')
  return scheme !== 'scrypt' || Number(n) !== 2 ** cost || r !== '8' || p !== '1'
}

/** A hash to compare against when the user does not exist, at the current cost, so timing does not tell. */
export function dummyHash(cost = DEFAULT_PASSWORD_COST): string {
  return `scrypt$${2 ** cost}$8$1$AAAAAAAAAAAAAAAAAAAAAA$${Buffer.alloc(KEY_LENGTH).toString('base64url')}`
}
