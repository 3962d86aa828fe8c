import { DatabaseSync } from 'node:sqlite'
import type { StatementSync } from 'node:sqlite'
import type {
  AuditAppender, AuditEventInput, AuditLogSource, AuditLogStore, AuditPublicKey, AuditQuery, AuditReader, AuditRecord, AuditSearch,
  ChainHead, EventRow, SigningKeyRecord, StoredDigest,
} from '../../audit/index.ts'
import { chainEvent, thingOf } from '../../audit/index.ts'
import type { Clock } from '../../core/index.ts'
import { AppError, isRecord } from '../../core/index.ts'
import type { SqliteDb } from './db.ts'

/**
 * 53-bit hash of a name (cyrb53, public domain), for the search index columns. Stored, so it must never change.
 * Collisions only cost an extra candidate row: every match is re-checked against the record itself.
 */
export function key53 (s: string): number {
  let h1 = 0xdeadbeef
  let h2 = 0x41c6ce57
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    h1 = Math.imul(h1 ^ c, 2654435761)
    h2 = Math.imul(h2 ^ c, 1597334677)
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909)
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909)
  return 4294967296 * (2097151 & h2) + (h1 >>> 0)
}

/** Records per block of the actor and thing indexes (migration 3: `seq >> 16`). */
const BLOCK = 65_536
const INSERT = 'INSERT INTO audit_events (seq, time_ms, body, hash, actor_k, action_k, thing_k, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'
const HEAD = 'SELECT seq, hash, time_ms FROM audit_events ORDER BY seq DESC LIMIT 1'
/** Used only here, with array rows (node:sqlite setReturnArrays): the verifier's hot read. */
const READ_EVENTS = 'SELECT seq, body, hash FROM audit_events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ? /* audit rows */'
const DIGEST_COLS = 'digest_seq AS digestSeq, to_seq AS toSeq, signed_ms AS signedAtMs, body, hash, signature'

/** Options of {@link SqliteAuditStore}. */
export interface SqliteAuditStoreOptions {
  /** Called after each append (in or out of a caller's transaction), e.g. to note change events per request. */
  readonly onAppend?: (r: AuditRecord) => void
}

type HeadRow = { seq: number, hash: string, time_ms: number }

/**
 * The audit log in SQLite: `audit_events` (the hash chain), `audit_digests`, `audit_keys`, `audit_cursors`.
 *
 * `append` runs inside a SqliteDb transaction the caller opened: the event commits with the state change it
 * describes, and the chain head is re-read inside that transaction so a rolled-back append never leaves a stale
 * head behind. `appendMany` is the group-commit path (one transaction for a batch). Record times never go
 * backwards (`timeMs` = max(clock, previous)), so a time range maps to a sequence range.
 *
 * The store keeps in memory the highest record it knows committed (`committedHead`): appends in its own
 * transactions are known at commit; appends in a caller's transaction are confirmed by a read queued behind that
 * transaction (the SqliteDb queue is FIFO).
 */
export class SqliteAuditStore implements AuditLogStore, AuditAppender, AuditReader {
  readonly #db: SqliteDb
  readonly #clock: Clock
  readonly #onAppend: ((r: AuditRecord) => void) | undefined
  readonly #readStmt: StatementSync
  #committed: ChainHead | undefined
  #pendingConfirm: ChainHead | undefined = undefined
  #confirmQueued = false

  constructor (db: SqliteDb, clock: Clock, opts: SqliteAuditStoreOptions = {}) {
    this.#db = db
    this.#clock = clock
    this.#onAppend = opts.onAppend
    this.#readStmt = db.stmt(READ_EVENTS)
    this.#readStmt.setReturnArrays(true)
    this.#backfillKeys()
    const h = this.#headRow()
    this.#committed = h === undefined ? undefined : { seq: h.seq, hash: h.hash, timeMs: h.time_ms }
  }

  /** Appends inside the caller's transaction. */
  async append (event: AuditEventInput): Promise<AuditRecord> {
    if (!this.#db.inTransaction) throw new AppError('ERR_INTERNAL', 'audit append outside a transaction')
    const r = this.#insert(this.#base(), event)
    this.#confirmLater({ seq: r.record.seq, hash: r.hash, timeMs: r.record.timeMs })
    this.#onAppend?.(r.record)
    return r.record
  }

  /** Appends outside any caller transaction (e.g. a denied request that changed nothing). */
  async appendStandalone (event: AuditEventInput): Promise<AuditRecord> {
    const [r] = await this.appendMany([event])
    return r
  }

  async appendMany (events: readonly AuditEventInput[]): Promise<AuditRecord[]> {
    if (events.length === 0) return []
    let last: ChainHead | undefined
    const records = await this.#db.transaction(() => {
      let head = this.#base()
      const out: AuditRecord[] = new Array<AuditRecord>(events.length)
      for (let i = 0; i < events.length; i++) {
        const r = this.#insert(head, events[i])
        out[i] = r.record
        head = { seq: r.record.seq, hash: r.hash, timeMs: r.record.timeMs }
      }
      last = head
      return out
    })
    if (last !== undefined) this.#advance(last)
    if (this.#onAppend !== undefined) for (const r of records) this.#onAppend(r)
    return records
  }

  #insert (head: ChainHead | undefined, e: AuditEventInput): { record: AuditRecord, hash: string } {
    const now = this.#clock.nowMs()
    const timeMs = head?.timeMs !== undefined && head.timeMs > now ? head.timeMs : now
    const { record, body, hash } = chainEvent(head, timeMs, e)
    const thing = thingOf(e)
    this.#db.stmt(INSERT).run(record.seq, timeMs, body, hash, key53(e.actor), key53(e.action), thing === undefined ? null : key53(thing), e.outcome)
    return { record, hash }
  }

  #headRow (): HeadRow | undefined { return this.#db.get<HeadRow>(HEAD) }

  /**
   * Where the next record chains on: the stored head, unless records this process committed are missing from the
   * table or the head record was replaced (both only by tampering: another writer appends after our records).
   * Then the chain continues from the head we committed, leaving the damage as a visible gap or broken link
   * instead of writing over it.
   */
  #base (): ChainHead | undefined {
    const h = this.#headRow()
    const mine = this.#committed
    if (mine !== undefined && (h === undefined || h.seq < mine.seq || (h.seq === mine.seq && h.hash !== mine.hash))) return mine
    return h === undefined ? undefined : { seq: h.seq, hash: h.hash, timeMs: h.time_ms }
  }

  #advance (h: ChainHead): void {
    if (this.#committed === undefined || h.seq > this.#committed.seq) this.#committed = h
  }

  #confirmLater (h: ChainHead): void {
    this.#pendingConfirm = h
    if (this.#confirmQueued) return
    this.#confirmQueued = true
    // Queued behind the caller's transaction: by the time it runs, that transaction committed or rolled back.
    this.#db.read(() => {
      this.#confirmQueued = false
      const c = this.#pendingConfirm
      this.#pendingConfirm = undefined
      if (c === undefined) return
      const row = this.#db.get<{ hash: string }>('SELECT hash FROM audit_events WHERE seq = ?', c.seq)
      if (row?.hash === c.hash) this.#advance(c)
    }).catch(() => { this.#confirmQueued = false })
  }

  /** Fills the search columns of rows written before migration 3 (once; nothing to do afterwards). */
  #backfillKeys (): void {
    const rows = this.#db.all<{ seq: number, body: string }>('SELECT seq, body FROM audit_events WHERE action_k IS NULL')
    if (rows.length === 0) return
    this.#db.exec('BEGIN IMMEDIATE')
    try {
      for (const { seq, body } of rows) {
        const r = JSON.parse(body) as AuditRecord
        const thing = thingOf(r)
        this.#db.run('UPDATE audit_events SET actor_k = ?, action_k = ?, thing_k = ?, outcome = ? WHERE seq = ?',
          key53(String(r.actor)), key53(String(r.action)), thing === undefined ? null : key53(thing), String(r.outcome), seq)
      }
      this.#db.exec('COMMIT')
    } catch (err) {
      this.#db.exec('ROLLBACK')
      throw err
    }
  }

  committedHead (): ChainHead | undefined { return this.#committed }

  async head (): Promise<ChainHead | undefined> {
    return this.#db.read(() => {
      const h = this.#headRow()
      return h === undefined ? undefined : { seq: h.seq, hash: h.hash, timeMs: h.time_ms }
    })
  }

  async eventBounds (): Promise<{ minSeq: number, maxSeq: number } | undefined> {
    return this.#db.read(() => this.#bounds())
  }

  async readEvents (afterSeq: number, throughSeq: number, limit: number): Promise<EventRow[]> {
    return this.#db.read(() => this.#readStmt.all(afterSeq, throughSeq, limit) as unknown as EventRow[])
  }

  async findEvents (action: string, limit: number): Promise<EventRow[]> {
    return this.#db.read(() => {
      const rows = this.#db.all<{ seq: number, body: string, hash: string }>('SELECT seq, body, hash FROM audit_events WHERE action_k = ? ORDER BY seq DESC LIMIT ?', key53(action), limit)
      return rows.reverse().map(r => [r.seq, r.body, r.hash] as const)
    })
  }

  async search (q: AuditSearch): Promise<EventRow[]> {
    return this.#db.read(() => {
      // One bounds read per search: the time lookups and the per-block walk below all need it.
      const b = this.#bounds()
      if (b === undefined) return []
      const where: string[] = ['seq > ?']
      const params: Array<string | number> = [q.afterSeq ?? 0]
      let firstSeq = (q.afterSeq ?? 0) + 1
      let endSeq = Number.MAX_SAFE_INTEGER
      // Times never decrease along seq: a time bound becomes a seq bound (binary search on the primary key), and
      // stays as a filter for records written before times were kept monotonic.
      if (q.fromMs !== undefined) {
        const lo = this.#firstAtOrAfter(q.fromMs, b)
        if (lo === undefined) return []
        where.push('seq >= ?', 'time_ms >= ?')
        params.push(lo, q.fromMs)
        firstSeq = Math.max(firstSeq, lo)
      }
      if (q.toMs !== undefined) {
        const hi = this.#firstAtOrAfter(q.toMs, b)
        if (hi !== undefined) { where.push('seq < ?'); params.push(hi); endSeq = hi }
        where.push('time_ms < ?')
        params.push(q.toMs)
      }
      if (q.principal !== undefined && q.thing !== undefined) { where.push('actor_k = ?'); params.push(key53(q.principal)) }
      if (q.action !== undefined) { where.push('action_k = ?'); params.push(key53(q.action)) }
      if (q.outcome !== undefined) {
        where.push('outcome = ?')
        params.push(q.outcome)
        // Restating the partial index's condition lets SQLite use it (partial-index implication rule).
        if (q.outcome !== 'success') where.push("outcome <> 'success'")
      }
      type R = { seq: number, body: string, hash: string }
      const toRows = (rows: R[]): EventRow[] => rows.map(r => [r.seq, r.body, r.hash] as const)
      const by = q.thing !== undefined ? { col: 'thing_k', key: key53(q.thing) } : q.principal !== undefined ? { col: 'actor_k', key: key53(q.principal) } : undefined
      if (by === undefined) {
        return toRows(this.#db.all<R>(`SELECT seq, body, hash FROM audit_events WHERE ${where.join(' AND ')} ORDER BY seq LIMIT ?`, ...params, q.limit))
      }
      // Thing and principal indexes lead with the block number (seq >> 16): one index seek per block, in order.
      const sql = `SELECT seq, body, hash FROM audit_events WHERE (seq >> 16) = ? AND ${by.col} = ? AND ${where.join(' AND ')} ORDER BY seq LIMIT ?`
      const out: EventRow[] = []
      const lastBlock = Math.floor(Math.min(b.maxSeq, endSeq) / BLOCK)
      for (let block = Math.floor(firstSeq / BLOCK); block <= lastBlock && out.length < q.limit; block++) {
        out.push(...toRows(this.#db.all<R>(sql, block, by.key, ...params, q.limit - out.length)))
      }
      return out
    })
  }

  /** Lowest and highest stored seq (synchronous: call inside a read or transaction), or undefined for an empty log. */
  #bounds (): { minSeq: number, maxSeq: number } | undefined {
    const r = this.#db.get<{ lo: number | null, hi: number | null }>('SELECT MIN(seq) AS lo, MAX(seq) AS hi FROM audit_events')
    return r === undefined || r.lo === null || r.hi === null ? undefined : { minSeq: r.lo, maxSeq: r.hi }
  }

  /** The first seq within `b` whose time is at or after `ms` (binary search over the primary key), or undefined. */
  #firstAtOrAfter (ms: number, b: { minSeq: number, maxSeq: number }): number | undefined {
    let lo = b.minSeq
    let hi = b.maxSeq + 1
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2)
      const r = this.#db.get<{ seq: number, time_ms: number }>('SELECT seq, time_ms FROM audit_events WHERE seq >= ? ORDER BY seq LIMIT 1', mid)
      if (r === undefined) { hi = mid; continue }
      if (r.time_ms >= ms) hi = mid; else lo = r.seq + 1
    }
    return lo > b.maxSeq ? undefined : lo
  }

  async digests (): Promise<StoredDigest[]> {
    return this.#db.read(() => this.#db.all<StoredDigest>(`SELECT ${DIGEST_COLS} FROM audit_digests ORDER BY digest_seq`))
  }

  async digestsAfter (afterDigestSeq: number, limit: number): Promise<StoredDigest[]> {
    return this.#db.read(() => this.#db.all<StoredDigest>(`SELECT ${DIGEST_COLS} FROM audit_digests WHERE digest_seq > ? ORDER BY digest_seq LIMIT ?`, afterDigestSeq, limit))
  }

  async lastDigest (): Promise<StoredDigest | undefined> {
    return this.#db.read(() => this.#db.get<StoredDigest>(`SELECT ${DIGEST_COLS} FROM audit_digests ORDER BY digest_seq DESC LIMIT 1`))
  }

  async insertDigest (d: StoredDigest): Promise<void> {
    await this.#db.transaction(() => { this.#insertDigest(d) })
  }

  #insertDigest (d: StoredDigest): void {
    this.#db.run('INSERT INTO audit_digests (digest_seq, to_seq, signed_ms, body, hash, signature) VALUES (?, ?, ?, ?, ?, ?)', d.digestSeq, d.toSeq, d.signedAtMs, d.body, d.hash, d.signature)
  }

  async publicKeys (): Promise<AuditPublicKey[]> {
    return (await this.signingKeys()).map(({ sealedPrivateKey: _sealed, ...k }) => k)
  }

  async signingKeys (): Promise<SigningKeyRecord[]> {
    return this.#db.read(() => this.#db.all<{ fingerprint: string, public_key_pem: string, sealed_private: Uint8Array | null, created_ms: number, retired_ms: number | null }>(
      'SELECT fingerprint, public_key_pem, sealed_private, created_ms, retired_ms FROM audit_keys ORDER BY created_ms, fingerprint').map(r => ({
      fingerprint: r.fingerprint, publicKeyPem: r.public_key_pem, createdMs: r.created_ms,
      ...(r.retired_ms === null ? {} : { retiredMs: r.retired_ms }),
      ...(r.sealed_private === null ? {} : { sealedPrivateKey: Buffer.from(r.sealed_private) }),
    })))
  }

  async insertSigningKey (k: SigningKeyRecord): Promise<void> {
    await this.#db.transaction(() => { this.#insertKey(k) })
  }

  #insertKey (k: SigningKeyRecord): void {
    this.#db.run('INSERT INTO audit_keys (fingerprint, public_key_pem, sealed_private, created_ms, retired_ms) VALUES (?, ?, ?, ?, ?)',
      k.fingerprint, k.publicKeyPem, k.sealedPrivateKey ?? null, k.createdMs, k.retiredMs ?? null)
  }

  async commitRotation (digest: StoredDigest, next: SigningKeyRecord, retiredFingerprint: string, retiredMs: number): Promise<void> {
    await this.#db.transaction(() => {
      this.#insertDigest(digest)
      this.#insertKey(next)
      // The retired private key is destroyed; its public key stays for verification.
      this.#db.run('UPDATE audit_keys SET retired_ms = ?, sealed_private = NULL WHERE fingerprint = ?', retiredMs, retiredFingerprint)
    })
  }

  async pruneThrough (throughSeq: number, event: AuditEventInput): Promise<{ record: AuditRecord, deleted: number }> {
    let head: ChainHead | undefined
    const out = await this.#db.transaction(() => {
      const r = this.#insert(this.#base(), event)
      head = { seq: r.record.seq, hash: r.hash, timeMs: r.record.timeMs }
      const { changes } = this.#db.run('DELETE FROM audit_events WHERE seq <= ?', throughSeq)
      return { record: r.record, deleted: changes }
    })
    if (head !== undefined) this.#advance(head)
    this.#onAppend?.(out.record)
    return out
  }

  async getCursor (name: string): Promise<string | undefined> {
    return this.#db.read(() => this.#db.get<{ cursor: string }>('SELECT cursor FROM audit_cursors WHERE name = ?', name)?.cursor)
  }

  async setCursor (name: string, value: string): Promise<void> {
    await this.#db.transaction(() => {
      this.#db.run('INSERT INTO audit_cursors (name, cursor, updated_ms) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET cursor = excluded.cursor, updated_ms = excluded.updated_ms',
        name, value, this.#clock.nowMs())
    })
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

/**
 * A read-only view of a data directory's audit log for offline verification (`thingward audit verify --data`,
 * server stopped): opens the database file read-only, runs no migration, needs no master key. Tables a database
 * written before the audit migration lacks read as empty.
 */
export class SqliteAuditReader implements AuditLogSource {
  readonly #db: DatabaseSync
  readonly #has: (table: string) => boolean
  readonly #read: StatementSync

  constructor (path: string) {
    try {
      this.#db = new DatabaseSync(path, { readOnly: true })
      this.#db.prepare('SELECT 1 FROM audit_events LIMIT 1').get()
    } catch (err) {
      throw new AppError('ERR_STORAGE_CORRUPT', 'the audit log cannot be read: not a Thingward database, or its -wal/-shm files are missing', { path }, { cause: err })
    }
    const tables = new Set((this.#db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: unknown }>).map(r => String(r.name)))
    const cols = new Set((this.#db.prepare('PRAGMA table_info(audit_events)').all() as Array<{ name: unknown }>).map(r => String(r.name)))
    this.#has = (t) => t === 'action_k' ? cols.has('action_k') : tables.has(t)
    this.#read = this.#db.prepare(READ_EVENTS)
    this.#read.setReturnArrays(true)
  }

  async publicKeys (): Promise<AuditPublicKey[]> {
    if (!this.#has('audit_keys')) return []
    return (this.#db.prepare('SELECT fingerprint, public_key_pem, created_ms, retired_ms FROM audit_keys ORDER BY created_ms').all() as Array<Record<string, unknown>>)
      .map(r => ({ fingerprint: String(r.fingerprint), publicKeyPem: String(r.public_key_pem), createdMs: Number(r.created_ms), ...(r.retired_ms === null ? {} : { retiredMs: Number(r.retired_ms) }) }))
  }

  async digests (): Promise<StoredDigest[]> {
    if (!this.#has('audit_digests')) return []
    return (this.#db.prepare(`SELECT ${DIGEST_COLS} FROM audit_digests ORDER BY digest_seq`).all() as Array<Record<string, unknown>>).map(toDigest)
  }

  async eventBounds (): Promise<{ minSeq: number, maxSeq: number } | undefined> {
    const r = this.#db.prepare('SELECT MIN(seq) AS lo, MAX(seq) AS hi FROM audit_events').get() as { lo: number | null, hi: number | null }
    return r.lo === null || r.hi === null ? undefined : { minSeq: r.lo, maxSeq: r.hi }
  }

  async readEvents (afterSeq: number, throughSeq: number, limit: number): Promise<EventRow[]> {
    return this.#read.all(afterSeq, throughSeq, limit) as unknown as EventRow[]
  }

  async findEvents (action: string, limit: number): Promise<EventRow[]> {
    const rows = (this.#has('action_k')
      ? this.#db.prepare('SELECT seq, body, hash FROM audit_events WHERE action_k = ? ORDER BY seq DESC LIMIT ?').all(key53(action), limit)
      : this.#db.prepare("SELECT seq, body, hash FROM audit_events WHERE json_extract(body, '$.action') = ? ORDER BY seq DESC LIMIT ?").all(action, limit)) as Array<Record<string, unknown>>
    return rows.reverse().map(r => [Number(r.seq), String(r.body), String(r.hash)] as const)
  }

  close (): void { if (this.#db.isOpen) this.#db.close() }
}

function toDigest (r: Record<string, unknown>): StoredDigest {
  if (!isRecord(r)) throw new AppError('ERR_STORAGE_CORRUPT', 'malformed audit digest row')
  return { digestSeq: Number(r.digestSeq), toSeq: Number(r.toSeq), signedAtMs: Number(r.signedAtMs), body: String(r.body), hash: String(r.hash), signature: String(r.signature) }
}
