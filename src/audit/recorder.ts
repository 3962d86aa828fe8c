import { AppError } from '../core/index.ts'
import type { AuditEventInput, AuditRecord } from './chain.ts'
import type { AuditLogStore } from './ports.ts'

/** Options of {@link AuditRecorder}. */
export interface AuditRecorderOptions {
  readonly store: Pick<AuditLogStore, 'appendMany'>
  /** Queue length from which {@link AuditRecorder.saturated} is true (the gateway then refuses new connections). */
  readonly highWaterMark?: number
  /** Queue length from which `record`/`enqueue` refuse with ERR_AUDIT_OVERLOADED. `enqueueAlways` never refuses. */
  readonly hardLimit?: number
  /** Most events per transaction. */
  readonly maxBatch?: number
  /** Wait before retrying after a failed commit. */
  readonly retryMs?: number
  readonly onError?: (err: unknown) => void
  /**
   * Longest wait, in ms, before committing events nobody awaits (`enqueue`, `enqueueAlways`), so a trickle of
   * them (one gateway connect at a time) shares a commit instead of paying a WAL fsync each; PostgreSQL's
   * `commit_delay` in spirit. An awaited event (`record`), `flush`, `close` or `delayedBatch` queued events
   * commit at once. 0 (the default) commits on the next microtask.
   */
  readonly commitDelayMs?: number
  /** Queued events that end the wait early (default 1,000). */
  readonly delayedBatch?: number
}

interface Pending {
  readonly e: AuditEventInput
  readonly resolve?: (r: AuditRecord) => void
  readonly reject?: (err: unknown) => void
}

const DEFAULT_HIGH_WATER = 20_000
const DEFAULT_MAX_BATCH = 20_000
const DEFAULT_RETRY_MS = 100
/** Failed commits tolerated after `close()` before the remaining events are reported lost. */
const CLOSING_ATTEMPTS = 3

/**
 * Group commit for events that are not part of a state change (requests, gateway decisions, key uses): events
 * queue in memory and are appended in one transaction per batch, one commit (one WAL fsync) for up to
 * `maxBatch` events; while a commit runs, the next batch gathers. A per-event fsync manages a few thousand
 * events a second; a batch manages over a hundred thousand. A state change never uses this path: its event is
 * appended inside its own transaction (AuditAppender).
 *
 * No event is dropped for load. `record` resolves once the event is committed (callers that must not answer
 * before the event is durable await it); `enqueue` returns at once. When the queue passes `highWaterMark`,
 * {@link saturated} turns true and the gateway refuses new connections (backpressure) instead of shedding
 * events; past `hardLimit`, `record` and `enqueue` throw ERR_AUDIT_OVERLOADED, so callers fail closed.
 * `enqueueAlways` (for the gateway, whose sink must not throw) always queues. A commit that fails is retried
 * after `retryMs`; awaited events are then rejected (their caller fails) and queued ones retried.
 */
export class AuditRecorder {
  readonly #store: Pick<AuditLogStore, 'appendMany'>
  readonly #highWater: number
  readonly #hardLimit: number
  readonly #maxBatch: number
  readonly #retryMs: number
  readonly #onError: (err: unknown) => void
  #queue: Pending[] = []
  /** Events in the commit under way. */
  #inFlight = 0
  #running: Promise<void> | undefined = undefined
  #closed = false
  #closingFailures = 0
  readonly #commitDelayMs: number
  readonly #delayedBatch: number
  /** The pending delayed commit, while events nobody awaits wait for company. */
  #delay: NodeJS.Timeout | undefined = undefined

  constructor (opts: AuditRecorderOptions) {
    this.#store = opts.store
    this.#highWater = opts.highWaterMark ?? DEFAULT_HIGH_WATER
    this.#hardLimit = opts.hardLimit ?? this.#highWater * 10
    this.#maxBatch = opts.maxBatch ?? DEFAULT_MAX_BATCH
    this.#retryMs = opts.retryMs ?? DEFAULT_RETRY_MS
    this.#onError = opts.onError ?? (() => {})
    this.#commitDelayMs = opts.commitDelayMs ?? 0
    this.#delayedBatch = opts.delayedBatch ?? 1000
  }

  /** Events queued or being committed, not yet durable. */
  get pending (): number { return this.#queue.length + this.#inFlight }

  /** True while {@link pending} is at or above the high-water mark: refuse new work that would add events. */
  get saturated (): boolean { return this.pending >= this.#highWater }

  /** Queues an event and resolves with its record once committed (rejects with ERR_AUDIT_OVERLOADED past the hard limit). */
  record (e: AuditEventInput): Promise<AuditRecord> {
    try { this.#admit() } catch (err) { return Promise.reject(err) }
    return new Promise<AuditRecord>((resolve, reject) => {
      this.#queue.push({ e, resolve, reject })
      this.#kick()
    })
  }

  /** Queues an event without waiting; throws ERR_AUDIT_OVERLOADED past the hard limit (fail closed). */
  enqueue (e: AuditEventInput): void {
    this.#admit()
    this.#queue.push({ e })
    this.#kickLater()
  }

  /** Queues an event without waiting and never throws (gateway sink). Closed recorders report to onError. */
  enqueueAlways (e: AuditEventInput): void {
    if (this.#closed) { this.#onError(new AppError('ERR_INTERNAL', 'audit recorder is closed', { action: e.action })); return }
    this.#queue.push({ e })
    this.#kickLater()
  }

  /** Resolves when everything queued so far is committed (or rejected). */
  async flush (): Promise<void> {
    if (this.#delay !== undefined) this.#kick()
    while (this.#running !== undefined) await this.#running
  }

  /**
   * Refuses new events, then commits what is queued. If the store keeps failing during shutdown (3 attempts), the
   * events still queued are reported to onError as lost instead of blocking the shutdown forever.
   */
  async close (): Promise<void> {
    this.#closed = true
    await this.flush()
  }

  #admit (): void {
    if (this.#closed) throw new AppError('ERR_INTERNAL', 'audit recorder is closed')
    if (this.pending >= this.#hardLimit) throw new AppError('ERR_AUDIT_OVERLOADED', 'the audit log is overloaded', { pending: this.pending })
  }

  /** Commits soon: at once without a commit delay or with a full batch, else when the delay ends. */
  #kickLater (): void {
    if (this.#running !== undefined) return
    if (this.#commitDelayMs <= 0 || this.#queue.length >= this.#delayedBatch) { this.#kick(); return }
    if (this.#delay === undefined) {
      // Not unref'd: a process about to exit waits the few ms for its last events to be committed.
      this.#delay = setTimeout(() => { this.#kick() }, this.#commitDelayMs)
    }
  }

  #kick (): void {
    if (this.#delay !== undefined) { clearTimeout(this.#delay); this.#delay = undefined }
    if (this.#running !== undefined) return
    // A microtask, not a timer: everything queued by the current synchronous run joins the first batch.
    this.#running = Promise.resolve().then(() => this.#drain()).finally(() => {
      this.#running = undefined
      if (this.#queue.length > 0) this.#kick()
    })
  }

  async #drain (): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.length <= this.#maxBatch ? this.#queue : this.#queue.slice(0, this.#maxBatch)
      this.#queue = batch === this.#queue ? [] : this.#queue.slice(batch.length)
      let records: AuditRecord[]
      this.#inFlight = batch.length
      try {
        records = await this.#store.appendMany(batch.map(p => p.e))
      } catch (err) {
        this.#inFlight = 0
        this.#onError(err)
        if (this.#closed && ++this.#closingFailures >= CLOSING_ATTEMPTS) {
          // Shutting down and the store keeps failing: report what could not be written rather than hang forever.
          const lost = batch.length + this.#queue.length
          for (const p of [...batch, ...this.#queue]) p.reject?.(err)
          this.#queue = []
          this.#onError(new AppError('ERR_INTERNAL', 'audit events could not be committed before shutdown', { lost }, { cause: err }))
          return
        }
        const retry = this.#recover(batch, err)
        this.#queue = retry.concat(this.#queue)
        if (retry.length > 0) await new Promise<void>((resolve) => { setTimeout(resolve, this.#retryMs) })
        continue
      }
      this.#inFlight = 0
      for (let i = 0; i < batch.length; i++) batch[i].resolve?.(records[i])
    }
  }

  /**
   * After a failed commit: awaited events are rejected (their callers fail closed); queued ones are kept. An event
   * that cannot be encoded at all (a non-finite number, a BigInt) would block the queue forever, so it is kept in
   * a JSON-safe form instead (the event is never silently lost).
   */
  #recover (batch: Pending[], err: unknown): Pending[] {
    const keep: Pending[] = []
    for (const p of batch) {
      if (p.reject !== undefined) { p.reject(err); continue }
      keep.push(err instanceof TypeError || err instanceof RangeError ? { e: jsonSafe(p.e) } : p)
    }
    return keep
  }
}

/** A JSON-safe copy: BigInts become strings, non-finite numbers null, cycles '[cycle]'. */
function jsonSafe (e: AuditEventInput): AuditEventInput {
  const seen = new WeakSet<object>()
  const text = JSON.stringify(e, (_k, v: unknown) => {
    if (typeof v === 'bigint') return v.toString()
    if (typeof v === 'number' && !Number.isFinite(v)) return null
    if (typeof v === 'object' && v !== null) {
      if (seen.has(v)) return '[cycle]'
      seen.add(v)
    }
    return v
  })
  const parsed = JSON.parse(text) as AuditEventInput
  return { ...parsed, details: { ...parsed.details, sanitized: true } }
}

/**
 * Wraps a connection authenticator so new connections are refused while the audit queue is saturated
 * (issue #5: under load the gateway applies backpressure rather than drop audit events). Structural, so the
 * domain does not import the gateway: in app.ts,
 * `{ authenticate: refuseWhenSaturated(recorder, r => auth.authenticate(r), { ok: false, reason: 'audit-backpressure' }) }`.
 * The device sees the ordinary refusal (CONNACK 5 / 0x87); the refusal itself is audited by the gateway.
 */
export function refuseWhenSaturated<Req, Res> (recorder: { readonly saturated: boolean }, authenticate: (req: Req) => Res | Promise<Res>, refusal: Res): (req: Req) => Res | Promise<Res> {
  return (req: Req) => recorder.saturated ? refusal : authenticate(req)
}
