import { createHmac, hash, randomBytes, timingSafeEqual } from 'node:crypto'

/**
 * One-time passwords: HOTP (RFC 4226) and TOTP (RFC 6238) with the parameters every authenticator app supports
 * (HMAC-SHA-1, 6 digits, 30-second steps), base32 secrets (RFC 4648 §6) and `otpauth://` URIs (Google
 * Authenticator Key Uri Format). Pure functions.
 */

/** RFC 6238 §4.1: X, the time step, default 30 seconds. */
export const TOTP_STEP_SECONDS = 30
export const TOTP_DIGITS = 6
/**
 * RFC 6238 §5.2 recommends accepting at most one step of drift backwards ("at most one time step is allowed as the
 * network delay"); we accept one step either side to absorb phone clock drift.
 */
export const TOTP_WINDOW_STEPS = 1
/** RFC 4226 §4 R6: the shared secret should be at least 128 bits, 160 recommended. */
export const TOTP_SECRET_BYTES = 20

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

/** RFC 4648 §6 base32, without padding (authenticator apps accept and emit it unpadded). */
export function base32Encode (buf: Uint8Array): string {
  let out = ''
  let bits = 0
  let value = 0
  for (const b of buf) {
    value = (value << 8) | b
    bits += 8
    while (bits >= 5) {
      out += B32[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  if (bits > 0) out += B32[(value << (5 - bits)) & 31]
  return out
}

/** Decodes RFC 4648 base32, ignoring case, spaces and padding; undefined for other characters. */
export function base32Decode (s: string): Buffer | undefined {
  const clean = s.replace(/[\s=]/g, '').toUpperCase()
  const out: number[] = []
  let bits = 0
  let value = 0
  for (const c of clean) {
    const v = B32.indexOf(c)
    if (v < 0) return undefined
    value = (value << 5) | v
    bits += 5
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 255)
      bits -= 8
    }
  }
  return Buffer.from(out)
}

/** RFC 4226 §5.3: HOTP(K, C) = Truncate(HMAC-SHA-1(K, C)) mod 10^Digit, C an 8-byte big-endian counter. */
export function hotp (secret: Uint8Array, counter: number, digits = TOTP_DIGITS): string {
  const c = Buffer.alloc(8)
  c.writeBigUInt64BE(BigInt(counter))
  const h = createHmac('sha1', secret).update(c).digest()
  // RFC 4226 §5.4 dynamic truncation: the low 4 bits of the last byte select 4 bytes; the top bit is masked.
  const o = h[h.length - 1] & 0x0f
  const bin = ((h[o] & 0x7f) << 24) | (h[o + 1] << 16) | (h[o + 2] << 8) | h[o + 3]
  return String(bin % 10 ** digits).padStart(digits, '0')
}

/** RFC 6238 §4.2: T = floor((Current Unix time - T0) / X), T0 = 0. */
export function totpStep (nowMs: number, stepSeconds = TOTP_STEP_SECONDS): number {
  return Math.floor(nowMs / 1000 / stepSeconds)
}

/** The TOTP code for a time. */
export function totp (secret: Uint8Array, nowMs: number, digits = TOTP_DIGITS): string {
  return hotp(secret, totpStep(nowMs), digits)
}

/**
 * Verifies a TOTP code: the steps within {@link TOTP_WINDOW_STEPS} of now are tried, and only steps after
 * `lastStep` (RFC 6238 §5.2: a code is accepted once). Resolves the matching step, or undefined. Comparison is
 * constant-time.
 */
export function verifyTotp (secret: Uint8Array, code: string, nowMs: number, lastStep: number): number | undefined {
  if (!/^\d{6}$/.test(code)) return undefined
  const now = totpStep(nowMs)
  const given = Buffer.from(code)
  let matched: number | undefined
  for (let step = now - TOTP_WINDOW_STEPS; step <= now + TOTP_WINDOW_STEPS; step++) {
    const ok = timingSafeEqual(Buffer.from(hotp(secret, step)), given)
    if (ok && step > lastStep && matched === undefined) matched = step
  }
  return matched
}

/** A new random TOTP secret. */
export function newTotpSecret (): Buffer {
  return randomBytes(TOTP_SECRET_BYTES)
}

/**
 * The provisioning URI authenticator apps scan (Google Authenticator Key Uri Format):
 * `otpauth://totp/<issuer>:<account>?secret=<base32>&issuer=<issuer>&algorithm=SHA1&digits=6&period=30`.
 */
export function otpauthUri (issuer: string, account: string, secret: Uint8Array): string {
  const label = `${encodeURIComponent(issuer)}:${encodeURIComponent(account)}`
  const q = new URLSearchParams({ secret: base32Encode(secret), issuer, algorithm: 'SHA1', digits: String(TOTP_DIGITS), period: String(TOTP_STEP_SECONDS) })
  return `otpauth://totp/${label}?${q.toString()}`
}

/** Recovery codes per enrollment. */
export const RECOVERY_CODE_COUNT = 10

/**
 * New single-use recovery codes: 16 base32 characters (80 bits) in four groups, e.g. `K3QF-7XMA-2PLD-Q9ZT`. At
 * 80 bits a SHA-256 digest is enough protection for the stored form (no offline guessing is feasible).
 */
export function newRecoveryCodes (count = RECOVERY_CODE_COUNT): string[] {
  return Array.from({ length: count }, () => base32Encode(randomBytes(10)).match(/.{4}/g)?.join('-') ?? '')
}

/** The stored form of a recovery code: SHA-256 of its normalized text (case, spaces and dashes ignored). */
export function hashRecoveryCode (code: string): string {
  return hash('sha256', code.replace(/[\s-]/g, '').toUpperCase(), 'hex')
}
