import type { AuditEventInput, AuditOutcome, AuditRecord, ChainHead, EventRow } from './chain.ts'
import type { AuditPublicKey, StoredDigest } from './digest.ts'

/**
 * Appends to the hash-chained audit log. Implementations append inside the caller's current transaction, so a
 * state change and its audit event commit together or not at all (DESIGN.md §5).
 */
export interface AuditAppender {
  append (event: AuditEventInput): Promise<AuditRecord>
}

/** Filter of the simple (pre-search) reader. */
export interface AuditQuery {
  readonly action?: string
  readonly actor?: string
  readonly outcome?: AuditEventInput['outcome']
  readonly afterSeq?: number
  readonly limit?: number
}

/** Read side of the log, for tests and tools that want every row. */
export interface AuditReader {
  query (q: AuditQuery): Promise<AuditRecord[]>
  /** Every stored row in sequence order, for verification. */
  rows (fromSeq?: number): Promise<Array<{ seq: number, body: string, hash: string }>>
}

/** A search over the log. Time bounds are half-open `[fromMs, toMs)` over record `timeMs`. */
export interface AuditSearch {
  readonly fromMs?: number
  readonly toMs?: number
  /** The record's `actor`. */
  readonly principal?: string
  /** The thing (see `thingOf`). */
  readonly thing?: string
  readonly action?: string
  readonly outcome?: AuditOutcome
  /** Pagination cursor: only records after this sequence number. */
  readonly afterSeq?: number
  readonly limit: number
}

/**
 * What verification reads. Implemented over the live database and over an investigator's read-only copy, which
 * is why it holds public keys only: verification never needs the keyring.
 */
export interface AuditLogSource {
  /** Every audit signing public key ever used, retired ones included. */
  publicKeys (): Promise<AuditPublicKey[]>
  /** Every digest, ascending `digestSeq`. Digests are never pruned. */
  digests (): Promise<StoredDigest[]>
  /** Lowest and highest stored record sequence numbers, or undefined for an empty log. */
  eventBounds (): Promise<{ readonly minSeq: number, readonly maxSeq: number } | undefined>
  /** Up to `limit` records with `afterSeq < seq <= throughSeq`, ascending. */
  readEvents (afterSeq: number, throughSeq: number, limit: number): Promise<EventRow[]>
  /** The most recent `limit` records whose action is `action` (index lookup), ascending; finds prune events. */
  findEvents (action: string, limit: number): Promise<EventRow[]>
}

/** A signing key as stored: the public half in clear, the private half sealed by the keyring. */
export interface SigningKeyRecord extends AuditPublicKey {
  /** PKCS#8 DER sealed with `keyring.encrypt(…, { purpose: 'audit-signing-key', keyId: fingerprint })`; absent once retired. */
  readonly sealedPrivateKey?: Buffer
}

/**
 * The audit log's storage (implemented in storage/sqlite/audit-store.ts). Besides the in-transaction
 * {@link AuditAppender}, it appends batches in a transaction of its own (group commit), stores digests, keys and
 * stream cursors, and prunes.
 */
export interface AuditLogStore extends AuditLogSource, AuditAppender {
  /** Appends events, in order, in one transaction of its own; all or none commit. */
  appendMany (events: readonly AuditEventInput[]): Promise<AuditRecord[]>
  /** The stored chain head (after every pending transaction). */
  head (): Promise<ChainHead | undefined>
  /**
   * The highest record this process knows to be committed, kept in memory. If the table ends below it, records
   * were removed behind the running process's back.
   */
  committedHead (): ChainHead | undefined
  /** Raw rows matching a search, ascending, at most `limit`. */
  search (q: AuditSearch): Promise<EventRow[]>
  /** Up to `limit` digests after `afterDigestSeq`, ascending (the stream reads them incrementally). */
  digestsAfter (afterDigestSeq: number, limit: number): Promise<StoredDigest[]>
  /** The newest digest. */
  lastDigest (): Promise<StoredDigest | undefined>
  /** Stores a digest; rejects if its `digestSeq` is taken (a digest is never replaced). */
  insertDigest (d: StoredDigest): Promise<void>
  signingKeys (): Promise<SigningKeyRecord[]>
  insertSigningKey (k: SigningKeyRecord): Promise<void>
  /** In one transaction: stores the rotation digest (signed by the old key), the new key, and retires the old one. */
  commitRotation (digest: StoredDigest, next: SigningKeyRecord, retiredFingerprint: string, retiredMs: number): Promise<void>
  /** In one transaction: appends `event` (which records the prune) and deletes every record with `seq <= throughSeq`. */
  pruneThrough (throughSeq: number, event: AuditEventInput): Promise<{ record: AuditRecord, deleted: number }>
  /** Stream cursors (opaque strings), by sink name. */
  getCursor (name: string): Promise<string | undefined>
  setCursor (name: string, value: string): Promise<void>
}

/** Seals the signing key. `LocalKeyring` satisfies it (AWS KMS-style encryption context as AAD). */
export interface KeySealer {
  encrypt (plaintext: Uint8Array, context: Readonly<Record<string, string>>): Buffer
  decrypt (blob: Uint8Array, context: Readonly<Record<string, string>>): Buffer
}

/** Runs `fn` every `ms` until the returned function is called. Implemented with timers in app.ts. */
export interface Scheduler {
  every (ms: number, fn: () => void): () => void
}

/** One line of an audit stream. */
export interface StreamItem {
  readonly type: 'event' | 'digest'
  /** Record seq for events; digestSeq for digests. */
  readonly seq: number
  readonly timeMs: number
  /** Event outcome, for the syslog severity (absent for digests). */
  readonly outcome?: AuditOutcome
  readonly action?: string
  /** The formatted line (JSON, no newline). */
  readonly line: string
}

/**
 * A destination for the audit stream (storage/audit-sinks.ts: file, RFC 5424 syslog over TLS, HTTPS webhook).
 * `deliver` resolves only once the items are acknowledged (file: fsync'd; webhook: 2xx; syslog: written to the
 * TLS socket); the streamer advances its persisted cursor only then, so delivery is at least once.
 */
export interface AuditSinkPort {
  /** Stable name; the stream cursor is stored under it. */
  readonly name: string
  deliver (items: readonly StreamItem[]): Promise<void>
  close (): Promise<void>
}
