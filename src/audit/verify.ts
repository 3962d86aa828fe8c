import { createPublicKey, hash } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { isRecord } from '../core/index.ts'
import { ChainWalker, GENESIS_HASH, ProblemKind, recordTimeMs } from './chain.ts'
import type { ChainHead } from './chain.ts'
import { DigestReason, keyFingerprint, parseDigest, verifyDigestSignature } from './digest.ts'
import type { Digest, StoredDigest } from './digest.ts'
import type { AuditLogSource } from './ports.ts'

/** The action of the event a prune appends (in the transaction that deletes the records). */
export const PRUNE_ACTION = 'audit.Prune'

/** A copy of the log's state held outside the database: from a stream sink, `audit head`, or a witness. */
export type AuditAnchor =
  | { readonly type: 'event', readonly seq: number, readonly hash: string }
  | { readonly type: 'digest', readonly digestSeq: number, readonly hash: string }

/** Options of {@link verifyLog}. */
export interface VerifyOptions {
  /** Verify records from this seq (the walk starts at the signed digest boundary before it). */
  readonly fromSeq?: number
  /** Verify records through this seq (the walk continues to the digest that covers it). */
  readonly toSeq?: number
  /**
   * Fingerprints of signing keys the investigator obtained out of band. When given, the first digest must be
   * signed by one of them; without it the first key is taken from the database (trust on first use) and the
   * report says so.
   */
  readonly trustedKeys?: readonly string[]
  /** External copies to compare with; a record or digest they hold that the database lacks is a truncation. */
  readonly anchors?: readonly AuditAnchor[]
  /**
   * Require the log to end with a shutdown digest that covers its last record (default false). Offline checks of a
   * stopped server use it: without it, records after the last digest can be removed without a trace.
   */
  readonly requireClosed?: boolean
  /** The running server's committed head (live checks): the table must reach it. */
  readonly expectedHead?: ChainHead
  /** Records per read. */
  readonly pageSize?: number
}

/** The first integrity problem: the record or digest it is at and what is wrong. */
export interface VerifyProblem {
  readonly kind: ProblemKind
  /** The first bad record, when the problem is about records. */
  readonly seq?: number
  /** The digest concerned, when the problem is about a digest. */
  readonly digestSeq?: number
  readonly message: string
}

/** What `audit verify` found. `ok` is false exactly when `firstBad` is set. */
export interface VerifyReport {
  readonly ok: boolean
  readonly firstBad?: VerifyProblem
  /** Records whose hash and link were checked. */
  readonly checkedEvents: number
  readonly firstSeq?: number
  readonly lastSeq?: number
  /** Records up to here were removed by a recorded prune (0: none). */
  readonly prunedThroughSeq: number
  readonly digests: number
  readonly signaturesChecked: number
  readonly lastDigest?: { readonly digestSeq: number, readonly toSeq: number, readonly signedAtMs: number, readonly reason: string }
  /** The highest record a valid signature covers. */
  readonly coveredThroughSeq: number
  /** The log ends with a shutdown digest that covers its last record. */
  readonly closed: boolean
  /** Records after the last digest: hash-linked but not signed. */
  readonly unsignedTail?: { readonly fromSeq: number, readonly toSeq: number, readonly count: number }
  /** Fingerprints of the keys that signed the digests, in order of use. */
  readonly signingKeys: readonly string[]
  readonly keysPinned: boolean
  /** Stretches with no digest for more than twice the cadence (the service was down, or digests are missing). */
  readonly gaps: ReadonlyArray<{ readonly afterDigestSeq: number, readonly fromMs: number, readonly toMs: number }>
  /** Startup digests that follow a digest other than a shutdown one (the service had stopped uncleanly). */
  readonly uncleanStops: readonly number[]
  readonly warnings: readonly string[]
}

class Failed extends Error {
  readonly p: VerifyProblem
  constructor (p: VerifyProblem) { super(p.message); this.p = p }
}
function fail (p: VerifyProblem): never { throw new Failed(p) }

/**
 * Verifies the log: the digest chain (hashes, links, signatures, key continuity), then the records (each hash,
 * each link, and at every digest boundary the hash the digest signed), then the ends (prune boundary, unsigned
 * tail, expected head, external anchors). Stops at the first problem and names it.
 *
 * What it proves (see README "Audit log"): every record up to `coveredThroughSeq` is exactly what the signing
 * key signed, in order, none missing (except a recorded prune of a prefix); every earlier digest is intact.
 * Records after the last digest (`unsignedTail`) are only hash-linked: anyone with write access to the
 * database can remove or replace them without a trace, unless a copy outside the database (a stream sink, an
 * `audit head` anchor, or the running server's memory) says otherwise, or the log is required to be closed by a
 * shutdown digest. Likewise the newest digests can be removed along with their records; `gaps` and the
 * shutdown requirement expose that only if the investigator knows when the log should have ended.
 */
export async function verifyLog (source: AuditLogSource, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const state = {
    checkedEvents: 0, signaturesChecked: 0, signingKeys: [] as string[], gaps: [] as Array<{ afterDigestSeq: number, fromMs: number, toMs: number }>,
    uncleanStops: [] as number[], warnings: [] as string[], prunedThroughSeq: 0,
  }
  const stored = await source.digests()
  const bounds = await source.eventBounds()
  let digests: Digest[] = []
  let firstBad: VerifyProblem | undefined
  try {
    digests = await checkDigests(source, stored, opts, state)
    await checkEvents(source, stored, digests, bounds, opts, state)
  } catch (err) {
    if (!(err instanceof Failed)) throw err
    firstBad = err.p
  }
  const last = digests.length > 0 ? digests[digests.length - 1] : undefined
  const coveredThroughSeq = last?.toSeq ?? 0
  const maxSeq = bounds?.maxSeq ?? 0
  const closed = last !== undefined && last.reason === DigestReason.Shutdown && last.toSeq >= maxSeq
  if (firstBad === undefined && opts.requireClosed === true && !closed) {
    firstBad = maxSeq > coveredThroughSeq
      ? { kind: ProblemKind.OpenEnd, seq: coveredThroughSeq + 1, message: `records ${coveredThroughSeq + 1} to ${maxSeq} are not covered by any signature and the log does not end with a shutdown digest: they cannot be verified` }
      : { kind: ProblemKind.OpenEnd, seq: coveredThroughSeq + 1, message: `the log does not end with a shutdown digest (last: ${last === undefined ? 'none' : `#${last.digestSeq}, ${last.reason}`}): records after ${coveredThroughSeq} may have been removed with the digests that covered them` }
  }
  return {
    ok: firstBad === undefined,
    ...(firstBad === undefined ? {} : { firstBad }),
    checkedEvents: state.checkedEvents,
    ...(bounds === undefined ? {} : { firstSeq: bounds.minSeq, lastSeq: bounds.maxSeq }),
    prunedThroughSeq: state.prunedThroughSeq,
    digests: stored.length,
    signaturesChecked: state.signaturesChecked,
    ...(last === undefined ? {} : { lastDigest: { digestSeq: last.digestSeq, toSeq: last.toSeq, signedAtMs: last.signedAtMs, reason: last.reason } }),
    coveredThroughSeq,
    closed,
    ...(maxSeq > coveredThroughSeq ? { unsignedTail: { fromSeq: coveredThroughSeq + 1, toSeq: maxSeq, count: maxSeq - Math.max(coveredThroughSeq, (bounds?.minSeq ?? 1) - 1) } } : {}),
    signingKeys: state.signingKeys,
    keysPinned: opts.trustedKeys !== undefined && opts.trustedKeys.length > 0,
    gaps: state.gaps,
    uncleanStops: state.uncleanStops,
    warnings: state.warnings,
  }
}

interface State {
  checkedEvents: number
  signaturesChecked: number
  signingKeys: string[]
  gaps: Array<{ afterDigestSeq: number, fromMs: number, toMs: number }>
  uncleanStops: number[]
  warnings: string[]
  prunedThroughSeq: number
}

async function checkDigests (source: AuditLogSource, stored: readonly StoredDigest[], opts: VerifyOptions, st: State): Promise<Digest[]> {
  const keys = new Map<string, KeyObject>()
  for (const k of await source.publicKeys()) {
    try {
      const key = createPublicKey(k.publicKeyPem)
      // The fingerprint is recomputed, not read: a key row cannot claim another key's name.
      keys.set(keyFingerprint(key), key)
    } catch {
      st.warnings.push(`a stored public key (${k.fingerprint}) cannot be parsed`)
    }
  }
  const pinned = opts.trustedKeys !== undefined && opts.trustedKeys.length > 0 ? new Set(opts.trustedKeys.map(k => k.toLowerCase())) : undefined
  const digestAnchors = new Map<number, string>()
  for (const a of opts.anchors ?? []) if (a.type === 'digest') digestAnchors.set(a.digestSeq, a.hash)
  const out: Digest[] = []
  let prev: { hash: string, signature: string, d?: Digest } = { hash: GENESIS_HASH, signature: '' }
  const inRange = (d: Digest): boolean =>
    (opts.fromSeq === undefined || d.toSeq >= opts.fromSeq) && (opts.toSeq === undefined || d.fromSeq <= opts.toSeq + 1)
  for (let i = 0; i < stored.length; i++) {
    const s = stored[i]
    const expectedSeq = i + 1
    if (s.digestSeq !== expectedSeq) {
      fail({ kind: ProblemKind.DigestInvalid, digestSeq: expectedSeq, message: s.digestSeq > expectedSeq ? `digest #${expectedSeq} is missing` : `digest #${s.digestSeq} is out of order` })
    }
    if (hash('sha256', s.body, 'hex') !== s.hash) fail({ kind: ProblemKind.DigestInvalid, digestSeq: s.digestSeq, message: `digest #${s.digestSeq} was altered: its content does not match its hash` })
    const d = parseDigest(s.body)
    if (typeof d === 'string') fail({ kind: ProblemKind.DigestInvalid, digestSeq: s.digestSeq, message: `digest #${s.digestSeq}: ${d}` })
    if (d.digestSeq !== s.digestSeq || d.toSeq !== s.toSeq || d.signedAtMs !== s.signedAtMs) fail({ kind: ProblemKind.DigestInvalid, digestSeq: s.digestSeq, message: `digest #${s.digestSeq} was moved: its stored position does not match its content` })
    if (d.prevDigestHash !== prev.hash || d.prevDigestSignature !== prev.signature) {
      fail({ kind: ProblemKind.DigestInvalid, digestSeq: s.digestSeq, message: `digest #${s.digestSeq} does not link to digest #${s.digestSeq - 1}` })
    }
    const prevTo = prev.d?.toSeq ?? 0
    if (d.fromSeq !== prevTo + 1 || d.toSeq < prevTo) {
      fail({ kind: ProblemKind.DigestInvalid, digestSeq: s.digestSeq, message: `digest #${s.digestSeq} covers records ${d.fromSeq} to ${d.toSeq}, not from ${prevTo + 1}` })
    }
    if (prev.d !== undefined && d.toSeq === prevTo && d.lastHash !== prev.d.lastHash) {
      fail({ kind: ProblemKind.DigestInvalid, digestSeq: s.digestSeq, message: `digest #${s.digestSeq} covers no new record but signs a different head` })
    }
    // Key continuity: a key change must be announced by the previous digest, signed by the previous key.
    const expectedKey = prev.d === undefined ? undefined : (prev.d.nextKeyFingerprint ?? prev.d.keyFingerprint)
    if (expectedKey !== undefined && d.keyFingerprint !== expectedKey) {
      fail({ kind: ProblemKind.DigestInvalid, digestSeq: s.digestSeq, message: `digest #${s.digestSeq} is signed by a key no earlier digest announced` })
    }
    if (expectedKey === undefined && pinned !== undefined && !pinned.has(d.keyFingerprint)) {
      fail({ kind: ProblemKind.DigestInvalid, digestSeq: s.digestSeq, message: `digest #${s.digestSeq} is signed by a key that is not among the trusted keys` })
    }
    if (st.signingKeys[st.signingKeys.length - 1] !== d.keyFingerprint) st.signingKeys.push(d.keyFingerprint)
    // Signatures: every digest, or with a range every digest it touches plus the first, the last and rotations
    // (the unchecked ones in between are still bound by the hash links of the checked ones after them).
    const mustSign = i === 0 || i === stored.length - 1 || d.nextKeyFingerprint !== undefined || inRange(d)
    if (mustSign) {
      const key = keys.get(d.keyFingerprint)
      if (key === undefined) fail({ kind: ProblemKind.DigestInvalid, digestSeq: s.digestSeq, message: `digest #${s.digestSeq} names a signing key whose public key is not stored` })
      if (!verifyDigestSignature(s, key)) fail({ kind: ProblemKind.DigestInvalid, digestSeq: s.digestSeq, message: `digest #${s.digestSeq} has an invalid signature` })
      st.signaturesChecked++
    }
    const anchored = digestAnchors.get(d.digestSeq)
    if (anchored !== undefined && anchored !== s.hash) fail({ kind: ProblemKind.DigestInvalid, digestSeq: s.digestSeq, message: `digest #${s.digestSeq} differs from the copy held outside the database` })
    if (prev.d !== undefined) {
      if (d.signedAtMs - prev.d.signedAtMs > 2 * Math.max(prev.d.intervalMs, 1)) st.gaps.push({ afterDigestSeq: prev.d.digestSeq, fromMs: prev.d.signedAtMs, toMs: d.signedAtMs })
      if (d.reason === DigestReason.Startup && prev.d.reason !== DigestReason.Shutdown) st.uncleanStops.push(d.digestSeq)
    }
    out.push(d)
    prev = { hash: s.hash, signature: s.signature, d }
  }
  for (const [seq] of digestAnchors) {
    if (seq > stored.length) fail({ kind: ProblemKind.Truncated, digestSeq: stored.length + 1, message: `digest #${seq}, held outside the database, is missing: the digest chain was truncated after #${stored.length}` })
  }
  return out
}

async function checkEvents (source: AuditLogSource, stored: readonly StoredDigest[], digests: readonly Digest[], bounds: { minSeq: number, maxSeq: number } | undefined,
  opts: VerifyOptions, st: State): Promise<void> {
  const maxSeq = bounds?.maxSeq ?? 0
  const minSeq = bounds?.minSeq ?? maxSeq + 1
  const covered = digests.length > 0 ? digests[digests.length - 1].toSeq : 0
  // Watched records: external anchors and the running server's head must be present with the same hash.
  const watch = new Map<number, string>()
  const external: Array<{ seq: number, hash: string, what: string }> = []
  for (const a of opts.anchors ?? []) if (a.type === 'event') external.push({ seq: a.seq, hash: a.hash, what: 'held outside the database' })
  if (opts.expectedHead !== undefined && opts.expectedHead.seq > 0) external.push({ seq: opts.expectedHead.seq, hash: opts.expectedHead.hash, what: 'committed by the running server' })
  for (const e of external) {
    if (e.seq > maxSeq) {
      fail({ kind: ProblemKind.Truncated, seq: maxSeq + 1, message: `records ${maxSeq + 1} to ${e.seq} are missing: record ${e.seq} was ${e.what}` })
    }
    if (e.seq >= minSeq) watch.set(e.seq, e.hash)
  }

  // A log that starts after record 1 must have been pruned: at a digest boundary, by a recorded prune.
  let start: ChainHead = { seq: 0, hash: GENESIS_HASH }
  if (bounds !== undefined && minSeq > 1) {
    const boundary = digests.find(d => d.toSeq === minSeq - 1)
    if (boundary === undefined) {
      fail({ kind: ProblemKind.Deleted, seq: Math.max(1, ...digests.filter(d => d.toSeq < minSeq).map(d => d.toSeq + 1)), message: `records before ${minSeq} are missing and no digest ends where they stop` })
    }
    const prunes = await source.findEvents(PRUNE_ACTION, 1000)
    const justified = prunes.some(([seq, body]) => seq >= minSeq && prunedThrough(body) === minSeq - 1)
    if (!justified) fail({ kind: ProblemKind.Deleted, seq: 1, message: `records 1 to ${minSeq - 1} are missing and no recorded prune removed them` })
    st.prunedThroughSeq = minSeq - 1
    start = { seq: minSeq - 1, hash: boundary.lastHash }
  } else if (bounds === undefined && covered > 0) {
    fail({ kind: ProblemKind.Truncated, seq: 1, message: `every record is missing: digest #${digests[digests.length - 1].digestSeq} covers records up to ${covered}` })
  }
  if (bounds === undefined) return

  // The walk starts at the signed boundary at or before `fromSeq` and ends at the signed boundary at or after `toSeq`.
  const from = Math.max(opts.fromSeq ?? minSeq, minSeq)
  for (const d of digests) if (d.toSeq < from && d.toSeq >= start.seq) start = { seq: d.toSeq, hash: d.lastHash }
  let end = Math.min(opts.toSeq ?? maxSeq, maxSeq)
  const covering = digests.find(d => d.toSeq >= end)
  if (covering !== undefined) end = covering.toSeq
  if (opts.toSeq === undefined) end = Math.max(end, maxSeq)

  const walker = new ChainWalker(start, watch)
  const page = opts.pageSize ?? 20_000
  const segmentEnds: Array<{ toSeq: number, lastHash: string, digestSeq: number, fromSeq: number }> = []
  for (const d of digests) if (d.toSeq > start.seq && d.count > 0 && d.toSeq <= end) segmentEnds.push({ toSeq: d.toSeq, lastHash: d.lastHash, digestSeq: d.digestSeq, fromSeq: d.fromSeq })
  if (end > covered) segmentEnds.push({ toSeq: end, lastHash: '', digestSeq: 0, fromSeq: covered + 1 })
  for (const seg of segmentEnds) {
    let cursor = walker.head.seq
    while (cursor < seg.toSeq) {
      const rows = await source.readEvents(cursor, seg.toSeq, page)
      if (rows.length === 0) break
      const p = walker.push(rows)
      if (p !== undefined) {
        st.checkedEvents += walker.count
        fail({ kind: p.kind, seq: p.seq, message: p.problem })
      }
      cursor = rows[rows.length - 1][0]
    }
    if (seg.digestSeq === 0) continue
    const head = walker.head
    if (head.seq < seg.toSeq) {
      st.checkedEvents += walker.count
      fail({ kind: ProblemKind.Truncated, seq: head.seq + 1, message: `records ${head.seq + 1} to ${seg.toSeq} are missing: digest #${seg.digestSeq} covers records up to ${seg.toSeq}` })
    }
    if (head.hash !== seg.lastHash) {
      st.checkedEvents += walker.count
      fail({ kind: ProblemKind.Rewritten, seq: Math.max(seg.fromSeq, start.seq + 1), message: `records ${seg.fromSeq} to ${seg.toSeq} were rewritten: their chain does not end at the hash digest #${seg.digestSeq} signed` })
    }
  }
  st.checkedEvents += walker.count
  if (opts.fromSeq !== undefined || opts.toSeq !== undefined) {
    for (const [seq] of watch) if (seq <= start.seq || seq > end) st.warnings.push(`record ${seq} (anchor) is outside the verified range`)
  }
}

function prunedThrough (body: string): number | undefined {
  try {
    const r: unknown = JSON.parse(body)
    if (!isRecord(r) || r.action !== PRUNE_ACTION || !isRecord(r.details)) return undefined
    const t = r.details.throughSeq
    return typeof t === 'number' ? t : undefined
  } catch {
    return undefined
  }
}

/**
 * Maps a time range to a record range by binary search over the log (record times never decrease): `fromSeq` is
 * the first record at or after `fromMs`, `toSeq` the last one before `toMs`. Works on any source, offline too.
 */
export async function resolveTimeRange (source: AuditLogSource, fromMs?: number, toMs?: number): Promise<{ fromSeq?: number, toSeq?: number }> {
  const bounds = await source.eventBounds()
  if (bounds === undefined) return {}
  const firstAtOrAfter = async (ms: number): Promise<number> => {
    let lo = bounds.minSeq
    let hi = bounds.maxSeq + 1
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2)
      const [row] = await source.readEvents(mid - 1, bounds.maxSeq, 1)
      const t = row === undefined ? undefined : recordTimeMs(row[1])
      if (row === undefined || t === undefined) return hi
      if (t >= ms) hi = Math.min(mid, row[0]); else lo = row[0] + 1
    }
    return lo
  }
  return {
    ...(fromMs === undefined ? {} : { fromSeq: await firstAtOrAfter(fromMs) }),
    ...(toMs === undefined ? {} : { toSeq: (await firstAtOrAfter(toMs)) - 1 }),
  }
}
