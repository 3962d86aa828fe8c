import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto'
import { AppError } from '../core/index.ts'

/**
 * Password hashing with scrypt (RFC 7914). Parameters follow the OWASP Password Storage Cheat Sheet minimum for
 * scrypt (N = 2^17, r = 8, p = 1: 128 MiB and about 0.3 s here). They are stored in the hash, so a later
 * increase applies to new hashes while old ones still verify (until the password is next set; sign-in does not
 * re-hash).
 *
 * Format: `$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt base64>$<key base64>` (the PHC string shape).
 */

/** Default cost: log2 of the RFC 7914 CPU/memory parameter N. */
export const SCRYPT_LOG_N = 17
const R = 8
const P = 1
const KEY_BYTES = 32
const SALT_BYTES = 16

/** Password rules (IAM UG `id_credentials_passwords_account-policy`; NIST SP 800-63B §5.1.1.2: length over complexity). */
export const PASSWORD_MIN_LENGTH = 12
export const PASSWORD_MAX_LENGTH = 256

const HASH_RE = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/

function derive (password: string, salt: Buffer, logN: number, r: number, p: number): Promise<Buffer> {
  // RFC 7914 §2: memory is 128 * N * r * p bytes; Node's default maxmem (32 MiB) is below the N = 2^17 need.
  const maxmem = 128 * (2 ** logN) * r * p + 16 * 1024 * 1024
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, KEY_BYTES, { N: 2 ** logN, r, p, maxmem }, (err, key) => {
      if (err !== null) reject(err); else resolve(key)
    })
  })
}

/**
 * Checks a new password against the policy: 12 to 256 characters and not the user name. NIST SP 800-63B §5.1.1.2
 * advises length and screening over composition rules. Throws ERR_IAM_PASSWORD_POLICY.
 */
export function checkPasswordPolicy (password: unknown, userName: string): string {
  if (typeof password !== 'string') throw new AppError('ERR_IAM_PASSWORD_POLICY', 'the password must be a string')
  const n = [...password].length
  if (n < PASSWORD_MIN_LENGTH) throw new AppError('ERR_IAM_PASSWORD_POLICY', 'the password must have at least 12 characters', { minLength: PASSWORD_MIN_LENGTH })
  if (n > PASSWORD_MAX_LENGTH) throw new AppError('ERR_IAM_PASSWORD_POLICY', 'the password must have at most 256 characters', { maxLength: PASSWORD_MAX_LENGTH })
  if (userName.length >= 3 && password.toLowerCase().includes(userName.toLowerCase())) throw new AppError('ERR_IAM_PASSWORD_POLICY', 'the password must not contain the user name')
  return password
}

/** Hashes a password with a fresh 128-bit salt. */
export async function hashPassword (password: string, logN = SCRYPT_LOG_N): Promise<string> {
  const salt = randomBytes(SALT_BYTES)
  const key = await derive(password, salt, logN, R, P)
  return `$scrypt$ln=${logN},r=${R},p=${P}$${salt.toString('base64')}$${key.toString('base64')}`
}

/** The cost parameter of a stored hash, or undefined when it is not one of ours. */
export function hashCost (encoded: string): number | undefined {
  const m = HASH_RE.exec(encoded)
  return m === null ? undefined : Number(m[1])
}

/**
 * Verifies a password against a stored hash in constant time. A malformed hash never verifies. Parameters are
 * bounded so that a tampered row cannot make verification allocate without limit.
 */
export async function verifyPassword (password: string, encoded: string): Promise<boolean> {
  const m = HASH_RE.exec(encoded)
  if (m === null) return false
  const [logN, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])]
  if (logN < 10 || logN > 20 || r < 1 || r > 16 || p < 1 || p > 4) return false
  const expected = Buffer.from(m[5], 'base64')
  const key = await derive(password, Buffer.from(m[4], 'base64'), logN, r, p)
  return key.length === expected.length && timingSafeEqual(key, expected)
}

/** A valid hash of a random, discarded password at the default cost: verifying against it costs what a real check costs. */
const DUMMY_HASH = '$scrypt$ln=17,r=8,p=1$uIuHiMyb3bH/Yar7mMaBHQ==$/Fu0/oh5r9L/JzminMybfTE37hzFiKr4nuIOTkeUCfI='
let dummyOther: { logN: number, hash: Promise<string> } | undefined

/**
 * Burns the same time as a real verification, for sign-in attempts naming an unknown user or a user without a
 * password, so response time does not reveal which user names exist.
 */
export async function verifyDummy (password: string, logN = SCRYPT_LOG_N): Promise<false> {
  if (logN === hashCost(DUMMY_HASH)) {
    await verifyPassword(password, DUMMY_HASH)
    return false
  }
  if (dummyOther?.logN !== logN) dummyOther = { logN, hash: hashPassword('thingward-dummy-password', logN) }
  await verifyPassword(password, await dummyOther.hash)
  return false
}
