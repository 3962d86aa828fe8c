/**
 * The token buckets and the connect-rate counter that enforce the gateway's rate limits. The limits themselves
 * (names, AWS IoT's defaults, ranges) are in core (core/gateway-limits.ts), shared with the configuration.
 */
export { DEFAULT_LIMITS } from '../core/index.ts'
export type { GatewayLimits, OverflowPolicy } from '../core/index.ts'

/**
 * A token bucket that refills continuously at `ratePerSec` up to `burst` tokens. Rate and burst are passed in
 * by the caller (they live in the shared limits), so an instance is two numbers.
 */
export class TokenBucket {
  #tokens: number
  #lastMs: number

  constructor (burst: number, nowMs: number) {
    this.#tokens = burst
    this.#lastMs = nowMs
  }

  /** Takes `n` tokens if available; returns false (taking none) otherwise. */
  take (n: number, nowMs: number, ratePerSec: number, burst: number): boolean {
    const elapsed = nowMs - this.#lastMs
    if (elapsed > 0) {
      this.#tokens = Math.min(burst, this.#tokens + (elapsed * ratePerSec) / 1000)
      this.#lastMs = nowMs
    }
    if (this.#tokens < n) return false
    this.#tokens -= n
    return true
  }
}

/** Counts CONNECT attempts per client id in one-second windows (AWS: 1 per second per client id). */
export class ConnectRateLimiter {
  readonly #windows = new Map<string, { startMs: number, count: number }>()

  /** Records an attempt; returns false when the client id exceeded its rate. */
  attempt (clientId: string, nowMs: number, perSecond: number): boolean {
    const w = this.#windows.get(clientId)
    if (w === undefined || nowMs - w.startMs >= 1000) {
      this.#windows.set(clientId, { startMs: nowMs, count: 1 })
      return true
    }
    w.count++
    return w.count <= perSecond
  }

  /** Drops windows older than a second (called from the housekeeping sweep). */
  prune (nowMs: number): void {
    for (const [id, w] of this.#windows) if (nowMs - w.startMs >= 1000) this.#windows.delete(id)
  }
}
