import { isRecord } from '../core/index.ts'
import type { AuditRecord } from './chain.ts'
import { digestLine, ExportFormat } from './export.ts'
import { toOcsf } from './ocsf.ts'
import type { AuditLogStore, AuditSinkPort, Scheduler, StreamItem } from './ports.ts'

/** Options of {@link AuditStreamer}. */
export interface AuditStreamerOptions {
  readonly store: Pick<AuditLogStore, 'readEvents' | 'digestsAfter' | 'eventBounds' | 'getCursor' | 'setCursor'>
  readonly sink: AuditSinkPort
  readonly format: ExportFormat
  /**
   * JSON lines only: interleave digest lines after the record they end on (default true). The sink's copy then
   * carries signed heads, so it can anchor an offline verification (`audit verify --anchor`).
   */
  readonly includeDigests?: boolean
  /** Records per delivery. */
  readonly batchSize?: number
  readonly productVersion?: string
  readonly onError?: (err: unknown) => void
}

interface Cursor { seq: number, digestSeq: number }

/**
 * Streams the log to a sink, resuming from a cursor persisted in the database after every acknowledged batch:
 * a restart (of the streamer or the server) loses nothing and repeats at most the batch that was in flight
 * (at-least-once; each line carries its seq, so receivers can drop repeats).
 */
export class AuditStreamer {
  readonly #o: AuditStreamerOptions
  readonly #name: string
  #running: Promise<{ events: number, digests: number }> | undefined = undefined
  #stopTimer: (() => void) | undefined = undefined

  constructor (opts: AuditStreamerOptions) {
    this.#o = opts
    this.#name = `${opts.sink.name}|${opts.format}`
  }

  /** The cursor's name in the database: sink name and format. */
  get cursorName (): string { return this.#name }

  /** Delivers everything not yet delivered; resolves with what was sent. One run at a time. */
  runOnce (): Promise<{ events: number, digests: number }> {
    if (this.#running !== undefined) return this.#running
    const run = this.#run().finally(() => { this.#running = undefined })
    this.#running = run
    return run
  }

  /** Polls every `pollMs`. */
  start (scheduler: Scheduler, pollMs: number): void {
    this.#stopTimer ??= scheduler.every(pollMs, () => { this.runOnce().catch(this.#o.onError ?? (() => {})) })
  }

  /** Stops polling, waits for a delivery in flight, closes the sink. */
  async stop (): Promise<void> {
    this.#stopTimer?.()
    this.#stopTimer = undefined
    if (this.#running !== undefined) await this.#running.catch(() => undefined)
    await this.#o.sink.close()
  }

  async #run (): Promise<{ events: number, digests: number }> {
    const { store, sink, format } = this.#o
    const batch = this.#o.batchSize ?? 1000
    const withDigests = format === ExportFormat.Jsonl && this.#o.includeDigests !== false
    const cur = parseCursor(await store.getCursor(this.#name))
    let events = 0
    let digests = 0
    for (;;) {
      const bounds = await store.eventBounds()
      if (bounds !== undefined && cur.seq < bounds.minSeq - 1) {
        this.#o.onError?.(new Error(`audit records ${cur.seq + 1} to ${bounds.minSeq - 1} were pruned before they were streamed to ${sink.name}`))
        cur.seq = bounds.minSeq - 1
      }
      const rows = await store.readEvents(cur.seq, Number.MAX_SAFE_INTEGER, batch)
      const pending = withDigests ? await store.digestsAfter(cur.digestSeq, batch) : []
      const lastSeq = rows.length > 0 ? rows[rows.length - 1][0] : cur.seq
      const items: StreamItem[] = []
      let di = 0
      let lastDigest = cur.digestSeq
      const pushDigests = (beforeSeq: number): void => {
        while (di < pending.length && pending[di].toSeq < beforeSeq) {
          const d = pending[di++]
          items.push({ type: 'digest', seq: d.digestSeq, timeMs: d.signedAtMs, line: digestLine(d) })
          lastDigest = d.digestSeq
        }
      }
      for (const [seq, body, hash] of rows) {
        pushDigests(seq)
        const r = JSON.parse(body) as AuditRecord
        items.push({ type: 'event', seq, timeMs: r.timeMs, outcome: r.outcome, action: r.action, line: format === ExportFormat.Ocsf ? JSON.stringify(toOcsf(r, { hash, productVersion: this.#o.productVersion })) : body })
      }
      pushDigests(lastSeq + 1)
      if (items.length === 0) break
      await sink.deliver(items)
      digests += lastDigest - cur.digestSeq
      events += rows.length
      cur.seq = lastSeq
      cur.digestSeq = lastDigest
      await store.setCursor(this.#name, JSON.stringify(cur))
    }
    return { events, digests }
  }
}

function parseCursor (s: string | undefined): Cursor {
  if (s === undefined) return { seq: 0, digestSeq: 0 }
  try {
    const v: unknown = JSON.parse(s)
    if (isRecord(v) && typeof v.seq === 'number' && typeof v.digestSeq === 'number') return { seq: v.seq, digestSeq: v.digestSeq }
  } catch { /* a malformed cursor restarts from the beginning: duplicates, never gaps */ }
  return { seq: 0, digestSeq: 0 }
}
