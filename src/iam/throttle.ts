import type { Clock } from '../core/index.ts'

/**
 * Failed-authentication throttling with lockout (issue #5; OWASP Authentication Cheat Sheet "Account lockout";
 * NIST SP 800-63B §5.2.2 "Rate Limiting (Throttling)"). Failures are counted per key (a principal, an address) in
 * a sliding window; reaching the limit locks the key for the lockout period, during which even correct
 * credentials are refused. State is in memory: one node's view (see README: a restart clears it).
 */
export interface ThrottlePolicy {
  /** Failures within `windowMs` that trigger a lockout. */
  readonly maxFailures: number
  readonly windowMs: number
  readonly lockoutMs: number
}

/** Defaults: 10 failures in 15 minutes lock a principal for 15 minutes; an address gets 50. */
export const PRINCIPAL_THROTTLE: ThrottlePolicy = Object.freeze({ maxFailures: 10, windowMs: 15 * 60_000, lockoutMs: 15 * 60_000 })
export const ADDRESS_THROTTLE: ThrottlePolicy = Object.freeze({ maxFailures: 50, windowMs: 15 * 60_000, lockoutMs: 15 * 60_000 })

interface Entry { failures: number[], lockedUntilMs: number }

/** Most keys remembered; the least recently failed are forgotten first, so an address flood cannot exhaust memory. */
const MAX_KEYS = 100_000

/** One sliding-window counter set. */
export class FailureThrottle {
  readonly #clock: Clock
  readonly #policy: ThrottlePolicy
  readonly #entries = new Map<string, Entry>()
  constructor (clock: Clock, policy: ThrottlePolicy) {
    this.#clock = clock
    this.#policy = policy
  }

  /** When the key is locked, the time the lockout ends; else undefined. */
  lockedUntil (key: string): number | undefined {
    const e = this.#entries.get(key)
    if (e === undefined) return undefined
    return e.lockedUntilMs > this.#clock.nowMs() ? e.lockedUntilMs : undefined
  }

  /** Counts a failure. Resolves the lockout end when this failure started a lockout, else undefined. */
  fail (key: string): number | undefined {
    const now = this.#clock.nowMs()
    let e = this.#entries.get(key)
    if (e === undefined) {
      if (this.#entries.size >= MAX_KEYS) {
        const oldest = this.#entries.keys().next()
        if (oldest.done !== true) this.#entries.delete(oldest.value)
      }
      e = { failures: [], lockedUntilMs: 0 }
    } else {
      this.#entries.delete(key)
    }
    this.#entries.set(key, e)
    if (e.lockedUntilMs > now) return undefined
    const from = now - this.#policy.windowMs
    e.failures = e.failures.filter(t => t > from)
    e.failures.push(now)
    if (e.failures.length < this.#policy.maxFailures) return undefined
    e.failures = []
    e.lockedUntilMs = now + this.#policy.lockoutMs
    return e.lockedUntilMs
  }

  /** Forgets a key's failures (a successful password sign-in). A running lockout is kept. */
  succeed (key: string): void {
    const e = this.#entries.get(key)
    if (e !== undefined && e.lockedUntilMs <= this.#clock.nowMs()) this.#entries.delete(key)
  }

  /** Ends a lockout early (an administrator unlocking a user). */
  clear (key: string): void { this.#entries.delete(key) }
}

/** What a failure did: which keys it locked. */
export interface ThrottleOutcome { readonly lockedPrincipalUntilMs?: number, readonly lockedAddressUntilMs?: number }

/** Per-principal and per-address throttles for one kind of credential (passwords, signatures). */
export class AuthThrottle {
  readonly #principals: FailureThrottle
  readonly #addresses: FailureThrottle
  constructor (clock: Clock, principal: ThrottlePolicy = PRINCIPAL_THROTTLE, address: ThrottlePolicy = ADDRESS_THROTTLE) {
    this.#principals = new FailureThrottle(clock, principal)
    this.#addresses = new FailureThrottle(clock, address)
  }

  /** The lockout that applies to an attempt, if any: the principal's first, then the address's. */
  locked (principal: string | undefined, address: string | undefined): { scope: 'principal' | 'address', untilMs: number } | undefined {
    const p = principal === undefined ? undefined : this.#principals.lockedUntil(principal)
    if (p !== undefined) return { scope: 'principal', untilMs: p }
    const a = address === undefined ? undefined : this.#addresses.lockedUntil(address)
    if (a !== undefined) return { scope: 'address', untilMs: a }
    return undefined
  }

  fail (principal: string | undefined, address: string | undefined): ThrottleOutcome {
    const p = principal === undefined ? undefined : this.#principals.fail(principal)
    const a = address === undefined ? undefined : this.#addresses.fail(address)
    return { ...(p === undefined ? {} : { lockedPrincipalUntilMs: p }), ...(a === undefined ? {} : { lockedAddressUntilMs: a }) }
  }

  succeed (principal: string): void { this.#principals.succeed(principal) }

  unlock (principal: string): void { this.#principals.clear(principal) }
}
