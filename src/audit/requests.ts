import type { AuditRecord } from './chain.ts'

/** Most requests tracked at once; beyond it the oldest is forgotten (it then gets a request event: never fewer). */
const MAX_OPEN = 100_000

/**
 * Counts the change events each in-flight request appended, so the HTTP edge records a request event only for
 * requests that left no other trace (reads, refusals, failures) and never records a mutation twice: a successful
 * mutation is already in the log as its change event(s), which carry its request id.
 */
export class RequestTracker {
  readonly #open = new Map<string, number>()

  /** Starts counting for a request id. */
  begin (requestId: string): void {
    if (this.#open.size >= MAX_OPEN) {
      const oldest = this.#open.keys().next()
      if (oldest.done !== true) this.#open.delete(oldest.value)
    }
    this.#open.set(requestId, 0)
  }

  /** Notes an appended record (the store's onAppend hook). */
  observe (r: AuditRecord): void {
    if (r.requestId === undefined) return
    const n = this.#open.get(r.requestId)
    if (n !== undefined) this.#open.set(r.requestId, n + 1)
  }

  /** Stops counting; returns how many records the request appended. */
  end (requestId: string): number {
    const n = this.#open.get(requestId) ?? 0
    this.#open.delete(requestId)
    return n
  }
}
