import type { AuditEventInput, AuditRecord } from './chain.ts'

/**
 * Appends to the hash-chained audit log. Implementations append inside the caller's current transaction, so a
 * state change and its audit event commit together or not at all (DESIGN.md §5).
 */
export interface AuditAppender {
  append (event: AuditEventInput): Promise<AuditRecord>
}

export interface AuditQuery {
  readonly action?: string
  readonly actor?: string
  readonly outcome?: AuditEventInput['outcome']
  readonly afterSeq?: number
  readonly limit?: number
}

/** Read side of the log. */
export interface AuditReader {
  query (q: AuditQuery): Promise<AuditRecord[]>
  /** Every stored row in sequence order, for verification. */
  rows (fromSeq?: number): Promise<Array<{ seq: number, body: string, hash: string }>>
}
