import type { AuditAppender, AuditEventInput, AuditQuery, AuditReader, AuditRecord } from '../../audit/index.ts'
import { chainEvent } from '../../audit/index.ts'
import type { Clock } from '../../core/index.ts'
import { AppError } from '../../core/index.ts'
import type { SqliteDb } from './db.ts'

/**
 * Hash-chained audit log in the `audit_events` table. `append` must run inside a SqliteDb transaction: the event
 * commits with the state change it describes, and the chain head is re-read from the table inside that
 * transaction so a rolled-back append never leaves a stale head behind.
 */
export class SqliteAuditStore implements AuditAppender, AuditReader {
  readonly #db: SqliteDb
  readonly #clock: Clock
  constructor (db: SqliteDb, clock: Clock) { this.#db = db; this.#clock = clock }

  async append (event: AuditEventInput): Promise<AuditRecord> {
    if (!this.#db.inTransaction) throw new AppError('ERR_INTERNAL', 'audit append outside a transaction')
    const head = this.#db.get<{ seq: number, hash: string }>('SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1')
    const { record, body, hash } = chainEvent(head, this.#clock.nowMs(), event)
    this.#db.run('INSERT INTO audit_events (seq, time_ms, body, hash) VALUES (?, ?, ?, ?)', record.seq, record.timeMs, body, hash)
    return record
  }

  /** Appends outside any caller transaction (e.g. a denied request that changed nothing). */
  async appendStandalone (event: AuditEventInput): Promise<AuditRecord> {
    return this.#db.transaction(async () => this.append(event))
  }

  async query (q: AuditQuery): Promise<AuditRecord[]> {
    return this.#db.read(() => {
      const where: string[] = ['seq > ?']
      const params: Array<string | number> = [q.afterSeq ?? 0]
      if (q.action !== undefined) { where.push("json_extract(body, '$.action') = ?"); params.push(q.action) }
      if (q.actor !== undefined) { where.push("json_extract(body, '$.actor') = ?"); params.push(q.actor) }
      if (q.outcome !== undefined) { where.push("json_extract(body, '$.outcome') = ?"); params.push(q.outcome) }
      params.push(Math.min(q.limit ?? 1000, 10_000))
      return this.#db.all<{ body: string }>(`SELECT body FROM audit_events WHERE ${where.join(' AND ')} ORDER BY seq LIMIT ?`, ...params)
        .map(r => JSON.parse(r.body) as AuditRecord)
    })
  }

  async rows (fromSeq = 1): Promise<Array<{ seq: number, body: string, hash: string }>> {
    return this.#db.read(() => this.#db.all<{ seq: number, body: string, hash: string }>('SELECT seq, body, hash FROM audit_events WHERE seq >= ? ORDER BY seq', fromSeq))
  }
}
