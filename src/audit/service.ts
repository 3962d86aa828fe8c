import type { KeyObject } from 'node:crypto'
import { AppError, InvalidRequestError } from '../core/index.ts'
import type { Clock } from '../core/index.ts'
import { AuditKind, AuditOutcome, GENESIS_HASH, recordTimeMs, thingOf } from './chain.ts'
import type { AuditEventInput, AuditRecord, ChainHead, EventRow } from './chain.ts'
import {
  DIGEST_ALGORITHM, DigestReason, generateSigningKey, keyFingerprint, parseDigest, privateKeyFromPkcs8, signDigest,
} from './digest.ts'
import type { AuditPublicKey, Digest, StoredDigest } from './digest.ts'
import type { AuditLogStore, AuditSearch, KeySealer, Scheduler, SigningKeyRecord } from './ports.ts'
import type { AuditRecorder } from './recorder.ts'
import { RequestTracker } from './requests.ts'
import { PRUNE_ACTION, resolveTimeRange, verifyLog } from './verify.ts'
import type { VerifyOptions, VerifyReport } from './verify.ts'

/** Who asks (same shape as the registry's Caller). */
export interface AuditCaller {
  readonly actor: string
  readonly sourceIp?: string
  readonly requestId?: string
}

/** Options of {@link AuditService.open}. */
export interface AuditServiceOptions {
  readonly store: AuditLogStore
  readonly recorder: AuditRecorder
  /** Seals the signing key's private half (the keyring). */
  readonly sealer: KeySealer
  readonly clock: Clock
  /** Drives the digest cadence; without it call {@link AuditService.tick} yourself. */
  readonly scheduler?: Scheduler
  /** Digest cadence (CloudTrail: hourly). Default 60 s. */
  readonly digestIntervalMs?: number
  readonly onError?: (err: unknown) => void
  /** Counts change events per in-flight request (wire the same tracker to the store's onAppend). */
  readonly requests?: RequestTracker
}

/** A page of search results. `rows` are the stored bodies, verbatim (for JSON-lines export). */
export interface AuditPage {
  readonly records: AuditRecord[]
  readonly rows: EventRow[]
  /** Pass back as `afterSeq` (it is the last seq of this page) for the next page; absent on the last page. */
  readonly nextToken?: string
}

/** What an external witness saves to anchor the log (`thingward audit head`). */
export interface AuditHead {
  /** The stored chain head. */
  readonly head?: ChainHead
  /** The highest record this server process committed (kept in memory). */
  readonly committedHead?: ChainHead
  readonly lastDigest?: { readonly digest: Digest, readonly hash: string, readonly signature: string }
}

const SIGNING_KEY_PURPOSE = 'audit-signing-key'
const DEFAULT_INTERVAL_MS = 60_000
const MAX_PAGE = 10_000

interface ActiveKey { readonly fingerprint: string, readonly privateKey: KeyObject }

/**
 * The audit log: group-committed recording, signed digests on a cadence (and at startup, shutdown, rotation and
 * on demand), verification, search and pruning. The signing key is ECDSA P-256, generated here once; its PKCS#8
 * private key is stored only sealed by the keyring (context `{ purpose: 'audit-signing-key', keyId: <fingerprint> }`),
 * its public key in clear so that a copy of the database can be verified without the keyring.
 *
 * Digests sign the head this process committed (kept in memory), not whatever the table holds when the timer
 * fires: if records were removed or rewritten behind the running server's back, the next digest still signs
 * the true head, and verification then reports the damage instead of the signature laundering it.
 */
export class AuditService {
  readonly #store: AuditLogStore
  readonly #recorder: AuditRecorder
  readonly #sealer: KeySealer
  readonly #clock: Clock
  readonly #intervalMs: number
  readonly #onError: (err: unknown) => void
  readonly #requests: RequestTracker
  #key: ActiveKey | undefined = undefined
  #last: { readonly stored: StoredDigest, readonly digest: Digest } | undefined = undefined
  /** Serializes digest signing, rotation and pruning. */
  #chain: Promise<unknown> = Promise.resolve()
  #stopTimer: (() => void) | undefined = undefined
  #closed = false

  private constructor (opts: AuditServiceOptions) {
    this.#store = opts.store
    this.#recorder = opts.recorder
    this.#sealer = opts.sealer
    this.#clock = opts.clock
    this.#intervalMs = opts.digestIntervalMs ?? DEFAULT_INTERVAL_MS
    this.#onError = opts.onError ?? (() => {})
    this.#requests = opts.requests ?? new RequestTracker()
  }

  /**
   * Loads (or creates) the signing key, then signs a startup digest: it covers whatever an unclean stop left
   * unsigned, and its reason records the restart (a startup digest that does not follow a shutdown digest
   * marks an unclean stop).
   */
  static async open (opts: AuditServiceOptions): Promise<AuditService> {
    const svc = new AuditService(opts)
    await svc.#loadKey()
    const last = await opts.store.lastDigest()
    if (last !== undefined) {
      const d = parseDigest(last.body)
      if (typeof d === 'string') throw new AppError('ERR_AUDIT_CHAIN_BROKEN', 'the last audit digest is malformed', { digestSeq: last.digestSeq })
      svc.#last = { stored: last, digest: d }
    }
    await svc.signDigest(DigestReason.Startup)
    if (opts.scheduler !== undefined) {
      svc.#stopTimer = opts.scheduler.every(Math.min(svc.#intervalMs, 1000), () => { svc.tick().catch(svc.#onError) })
    }
    return svc
  }

  /** The group-commit recorder (for the gateway sink and the keyring hook). */
  get recorder (): AuditRecorder { return this.#recorder }

  /** Change events per in-flight request (for the HTTP edge). */
  get requests (): RequestTracker { return this.#requests }

  /** Digest cadence in force. */
  get digestIntervalMs (): number { return this.#intervalMs }

  /** Records an event that is not part of a state change; resolves once it is committed. */
  async record (e: AuditEventInput): Promise<AuditRecord> {
    return this.#recorder.record(e)
  }

  /** Signs a digest if the cadence is due. Called by the scheduler. */
  async tick (): Promise<void> {
    if (this.#closed) return
    const lastMs = this.#last?.digest.signedAtMs ?? 0
    if (this.#clock.nowMs() - lastMs >= this.#intervalMs) await this.signDigest(DigestReason.Interval)
  }

  /**
   * Signs a digest over everything committed since the previous one (possibly nothing). Another process on the
   * same database (a CLI command while the server runs) may have signed meanwhile: the digest is then rebuilt
   * on the newer one.
   */
  signDigest (reason: DigestReason = DigestReason.Manual): Promise<StoredDigest> {
    return this.#serial(async () => {
      for (let attempt = 0; ; attempt++) {
        await this.#sync()
        const built = await this.#build(reason)
        try {
          await this.#store.insertDigest(built.stored)
        } catch (err) {
          if (attempt < 3) continue
          throw err
        }
        this.#last = built
        return built.stored
      }
    })
  }

  /**
   * Catches up with digests and key changes made by another process: re-reads the last digest, and reloads the
   * signing key if that digest hands over to a key this process does not hold.
   */
  async #sync (): Promise<void> {
    const last = await this.#store.lastDigest()
    if (last === undefined || last.digestSeq === this.#last?.digest.digestSeq) return
    const d = parseDigest(last.body)
    if (typeof d === 'string') throw new AppError('ERR_AUDIT_CHAIN_BROKEN', 'the last audit digest is malformed', { digestSeq: last.digestSeq })
    this.#last = { stored: last, digest: d }
    if ((d.nextKeyFingerprint ?? d.keyFingerprint) !== this.#key?.fingerprint) await this.#loadKey()
  }

  /**
   * Replaces the signing key: the current key signs a rotation digest naming the next key, then the new key
   * signs from the next digest on; the old private key is destroyed, its public key kept for verification. The
   * rotation is audited.
   */
  rotateSigningKey (caller: AuditCaller): Promise<{ readonly previous: string, readonly current: string }> {
    return this.#serial(async () => {
      await this.#sync()
      const old = this.#requireKey()
      const next = this.#newKeyRecord()
      await this.#recorder.record({
        action: 'audit.RotateSigningKey', actor: caller.actor, outcome: AuditOutcome.Success, kind: AuditKind.Audit,
        target: `audit-key/${old.fingerprint}`, sourceIp: caller.sourceIp, requestId: caller.requestId,
        details: { previousKey: old.fingerprint, nextKey: next.record.fingerprint },
      })
      const built = await this.#build(DigestReason.Rotation, next.record.fingerprint)
      await this.#store.commitRotation(built.stored, next.record, old.fingerprint, this.#clock.nowMs())
      this.#last = built
      this.#key = { fingerprint: next.record.fingerprint, privateKey: next.privateKey }
      return { previous: old.fingerprint, current: next.record.fingerprint }
    })
  }

  /** Every signing public key, retired ones included (CloudTrail ListPublicKeys). */
  async publicKeys (): Promise<AuditPublicKey[]> {
    return (await this.#store.publicKeys()).map(k => ({ fingerprint: k.fingerprint, publicKeyPem: k.publicKeyPem, createdMs: k.createdMs, ...(k.retiredMs === undefined ? {} : { retiredMs: k.retiredMs }) }))
  }

  /** Up to `limit` digests after `afterDigestSeq`. */
  async digestsAfter (afterDigestSeq: number, limit: number): Promise<StoredDigest[]> {
    return this.#store.digestsAfter(afterDigestSeq, limit)
  }

  /** The current head and last digest: what a witness stores outside the database as an anchor. */
  async head (): Promise<AuditHead> {
    const head = await this.#store.head()
    const committedHead = this.#store.committedHead()
    const last = this.#last
    return {
      ...(head === undefined ? {} : { head }),
      ...(committedHead === undefined ? {} : { committedHead }),
      ...(last === undefined ? {} : { lastDigest: { digest: last.digest, hash: last.stored.hash, signature: last.stored.signature } }),
    }
  }

  /**
   * Verifies the live log; the running process's committed head must be present (tail truncation check). A
   * time range (`fromMs`, `toMs`) is mapped to records first.
   */
  async verify (opts: Omit<VerifyOptions, 'expectedHead'> & { readonly fromMs?: number, readonly toMs?: number } = {}): Promise<VerifyReport> {
    const committed = this.#store.committedHead()
    const { fromMs, toMs, ...rest } = opts
    const range = fromMs !== undefined || toMs !== undefined ? await resolveTimeRange(this.#store, fromMs, toMs) : {}
    return verifyLog(this.#store, { ...rest, ...range, ...(committed === undefined ? {} : { expectedHead: committed }) })
  }

  /** Searches by time range, principal, thing, action and outcome; pages by sequence number. */
  async search (q: Omit<AuditSearch, 'limit'> & { readonly limit?: number }): Promise<AuditPage> {
    const limit = Math.max(1, Math.min(Math.trunc(q.limit ?? 100), MAX_PAGE))
    if (q.fromMs !== undefined && q.toMs !== undefined && q.toMs < q.fromMs) throw new InvalidRequestError('the end of the time range is before its start')
    const raw = await this.#store.search({ ...q, limit: limit + 1 })
    const page = raw.length > limit ? raw.slice(0, limit) : raw
    const rows: EventRow[] = []
    const records: AuditRecord[] = []
    // Index columns hold 53-bit name hashes: re-check every match against the record itself.
    for (const row of page) {
      const r = JSON.parse(row[1]) as AuditRecord
      if (q.principal !== undefined && r.actor !== q.principal) continue
      if (q.action !== undefined && r.action !== q.action) continue
      if (q.outcome !== undefined && r.outcome !== q.outcome) continue
      if (q.thing !== undefined && thingOf(r) !== q.thing) continue
      rows.push(row)
      records.push(r)
    }
    return { records, rows, ...(raw.length > limit ? { nextToken: String(page[page.length - 1][0]) } : {}) }
  }

  /**
   * Deletes records older than `beforeMs`, up to the end of the newest digest whose records are all older, so
   * what remains starts at a signed boundary. The prune is itself an audit event, appended in the transaction
   * that deletes: verification accepts a log that starts after record 1 only with that event. Digests are kept.
   */
  prune (caller: AuditCaller, beforeMs: number): Promise<{ readonly throughSeq: number, readonly deleted: number, readonly digestSeq?: number }> {
    return this.#serial(async () => {
      const bounds = await this.#store.eventBounds()
      const digests = await this.#store.digests()
      let boundary: Digest | undefined
      for (const s of digests) {
        const d = parseDigest(s.body)
        if (typeof d === 'string') throw new AppError('ERR_AUDIT_CHAIN_BROKEN', 'an audit digest is malformed', { digestSeq: s.digestSeq })
        if (d.count > 0 && d.endTimeMs !== undefined && d.endTimeMs < beforeMs) boundary = d
      }
      const already = bounds === undefined ? 0 : bounds.minSeq - 1
      if (boundary === undefined || bounds === undefined || boundary.toSeq <= already) return { throughSeq: already, deleted: 0 }
      const { deleted } = await this.#store.pruneThrough(boundary.toSeq, {
        action: PRUNE_ACTION, actor: caller.actor, outcome: AuditOutcome.Success, kind: AuditKind.Audit, sourceIp: caller.sourceIp, requestId: caller.requestId,
        details: { throughSeq: boundary.toSeq, digestSeq: boundary.digestSeq, beforeMs },
      })
      return { throughSeq: boundary.toSeq, deleted, digestSeq: boundary.digestSeq }
    })
  }

  /** Stops the cadence, commits queued events and signs the shutdown digest. */
  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#stopTimer?.()
    await this.#recorder.close()
    await this.signDigest(DigestReason.Shutdown)
    this.#key = undefined
  }

  #serial<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn)
    this.#chain = run.catch(() => undefined)
    return run
  }

  #requireKey (): ActiveKey {
    if (this.#key === undefined) throw new AppError('ERR_INTERNAL', 'audit signing key not loaded')
    return this.#key
  }

  async #build (reason: DigestReason, nextKeyFingerprint?: string): Promise<{ stored: StoredDigest, digest: Digest }> {
    const key = this.#requireKey()
    // Queued events first, so a shutdown digest covers everything the process recorded.
    if (reason !== DigestReason.Shutdown) await this.#recorder.flush()
    const last = this.#last
    const prevTo = last?.digest.toSeq ?? 0
    const table = await this.#store.head()
    const mine = this.#store.committedHead()
    let head: ChainHead | undefined = table
    if (mine !== undefined && (table === undefined || table.seq < mine.seq)) {
      // Records this process committed are gone: sign what was committed, so verification shows the truncation.
      this.#onError(new AppError('ERR_AUDIT_CHAIN_BROKEN', 'audit records committed by this process are missing from the database', { committedSeq: mine.seq, storedSeq: table?.seq ?? 0 }))
      head = mine
    } else if (mine !== undefined && mine.seq > prevTo) {
      const [row] = await this.#store.readEvents(mine.seq - 1, mine.seq, 1)
      if (row === undefined || row[2] !== mine.hash) {
        this.#onError(new AppError('ERR_AUDIT_CHAIN_BROKEN', 'an audit record committed by this process was changed in the database', { seq: mine.seq }))
        head = mine
      }
    }
    let toSeq = Math.max(head?.seq ?? 0, prevTo)
    let lastHash = toSeq > prevTo && head !== undefined ? head.hash : (last?.digest.lastHash ?? GENESIS_HASH)
    if (head !== undefined && head.seq < prevTo) {
      this.#onError(new AppError('ERR_AUDIT_CHAIN_BROKEN', 'audit records covered by a signed digest are missing from the database', { coveredSeq: prevTo, storedSeq: head.seq }))
      toSeq = prevTo
      lastHash = last?.digest.lastHash ?? GENESIS_HASH
    }
    let startTimeMs: number | undefined
    let endTimeMs: number | undefined
    if (toSeq > prevTo) {
      const [first] = await this.#store.readEvents(prevTo, toSeq, 1)
      const [end] = await this.#store.readEvents(toSeq - 1, toSeq, 1)
      startTimeMs = first === undefined ? undefined : recordTimeMs(first[1])
      endTimeMs = end === undefined ? head?.timeMs : recordTimeMs(end[1])
    }
    const digest: Digest = {
      v: 1,
      digestSeq: (last?.digest.digestSeq ?? 0) + 1,
      fromSeq: prevTo + 1,
      toSeq,
      count: toSeq - prevTo,
      lastHash,
      ...(startTimeMs === undefined ? {} : { startTimeMs }),
      ...(endTimeMs === undefined ? {} : { endTimeMs }),
      signedAtMs: this.#clock.nowMs(),
      reason,
      intervalMs: this.#intervalMs,
      prevDigestHash: last?.stored.hash ?? GENESIS_HASH,
      prevDigestSignature: last?.stored.signature ?? '',
      algorithm: DIGEST_ALGORITHM,
      keyFingerprint: key.fingerprint,
      ...(nextKeyFingerprint === undefined ? {} : { nextKeyFingerprint }),
    }
    return { stored: signDigest(digest, key.privateKey), digest }
  }

  async #loadKey (): Promise<void> {
    const keys = (await this.#store.signingKeys()).filter(k => k.retiredMs === undefined && k.sealedPrivateKey !== undefined)
    keys.sort((a, b) => b.createdMs - a.createdMs)
    const current = keys[0]
    if (current === undefined) {
      const next = this.#newKeyRecord()
      await this.#store.insertSigningKey(next.record)
      this.#key = { fingerprint: next.record.fingerprint, privateKey: next.privateKey }
      return
    }
    const der = this.#sealer.decrypt(current.sealedPrivateKey as Buffer, { purpose: SIGNING_KEY_PURPOSE, keyId: current.fingerprint })
    try {
      const privateKey = privateKeyFromPkcs8(der)
      const fp = keyFingerprint(privateKey)
      if (fp !== current.fingerprint) throw new AppError('ERR_AUDIT_CHAIN_BROKEN', 'the stored audit signing key does not match its fingerprint', { fingerprint: current.fingerprint })
      this.#key = { fingerprint: fp, privateKey }
    } finally {
      der.fill(0)
    }
  }

  #newKeyRecord (): { record: SigningKeyRecord, privateKey: KeyObject } {
    const k = generateSigningKey()
    try {
      const sealed = this.#sealer.encrypt(k.privateKeyPkcs8, { purpose: SIGNING_KEY_PURPOSE, keyId: k.fingerprint })
      return {
        record: { fingerprint: k.fingerprint, publicKeyPem: k.publicKeyPem, createdMs: this.#clock.nowMs(), sealedPrivateKey: sealed },
        privateKey: privateKeyFromPkcs8(k.privateKeyPkcs8),
      }
    } finally {
      k.privateKeyPkcs8.fill(0)
    }
  }
}
