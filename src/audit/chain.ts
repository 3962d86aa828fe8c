import { createHash } from 'node:crypto'
import { canonicalJson } from '../core/index.ts'

/** What a caller records. `details` must hold no secrets (DESIGN.md §5). */
export interface AuditEventInput {
  /** Dotted verb, e.g. `iot.CreateThing`, `mqtt.connect`, `kms.decrypt`. */
  readonly action: string
  /** Who: an operator (`user/admin`), an access key, a certificate id, or `system`. */
  readonly actor: string
  readonly outcome: 'success' | 'denied' | 'failure'
  readonly target?: string
  readonly sourceIp?: string
  readonly requestId?: string
  readonly errorCode?: string
  readonly details?: Readonly<Record<string, unknown>>
}

export interface AuditRecord extends AuditEventInput {
  readonly seq: number
  readonly timeMs: number
  /** Hash of the previous record (64 zeros for the first). */
  readonly prevHash: string
}

export const GENESIS_HASH = '0'.repeat(64)

/**
 * Links one event into the chain: hash = SHA-256(canonical JSON of the record, which embeds seq and prevHash).
 * Embedding the predecessor's hash makes any edit, deletion, insertion or reordering change every later hash
 * (the construction of CloudTrail log-file integrity and RFC 6962-style logs, in linear form).
 */
export function chainEvent (prev: { seq: number, hash: string } | undefined, timeMs: number, e: AuditEventInput): { record: AuditRecord, body: string, hash: string } {
  const record: AuditRecord = { ...e, seq: (prev?.seq ?? 0) + 1, timeMs, prevHash: prev?.hash ?? GENESIS_HASH }
  const body = canonicalJson(record)
  const hash = createHash('sha256').update(body).digest('hex')
  return { record, body, hash }
}

/** Recomputes a stored record's hash. */
export const hashBody = (body: string): string => createHash('sha256').update(body).digest('hex')

/**
 * Walks stored records in order and returns the first problem, or undefined when the chain is intact.
 * Detects altered bodies (hash mismatch), deletions/insertions/reorders (seq gaps and prevHash mismatches).
 */
export function verifyChain (rows: Iterable<{ seq: number, body: string, hash: string }>, start?: { seq: number, hash: string }): { seq: number, problem: string } | undefined {
  let prev = start
  for (const row of rows) {
    if (hashBody(row.body) !== row.hash) return { seq: row.seq, problem: 'record altered: hash does not match its content' }
    let rec: { seq?: unknown, prevHash?: unknown }
    try { rec = JSON.parse(row.body) as { seq?: unknown, prevHash?: unknown } } catch { return { seq: row.seq, problem: 'record is not JSON' } }
    if (rec.seq !== row.seq) return { seq: row.seq, problem: 'record sequence number does not match its position' }
    const expectedSeq = (prev?.seq ?? 0) + 1
    if (row.seq !== expectedSeq) return { seq: row.seq, problem: `records missing or reordered: expected sequence ${expectedSeq}` }
    if (rec.prevHash !== (prev?.hash ?? GENESIS_HASH)) return { seq: row.seq, problem: 'record does not link to its predecessor' }
    prev = { seq: row.seq, hash: row.hash }
  }
  return undefined
}
