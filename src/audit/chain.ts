import { hash } from 'node:crypto'
import { canonicalJson, isRecord, parseIotArn } from '../core/index.ts'

/** How an audited action ended. */
export const AuditOutcome = { Success: 'success', Denied: 'denied', Failure: 'failure' } as const
export type AuditOutcome = (typeof AuditOutcome)[keyof typeof AuditOutcome]

/**
 * What sort of event a record is. Absent means a state change recorded in the transaction that made it (the
 * registry's events); the others are recorded by the edges: `request` (a control-plane request that changed
 * nothing: a read, a refusal or a failure), `connection` (gateway connect/disconnect/session close),
 * `authorization` (a per-message decision or limit in the gateway), `key-use` (a keyring operation),
 * `mitigation` (a response to a detection), `audit` (the log's own maintenance: prune, key rotation).
 */
export const AuditKind = {
  Request: 'request',
  Connection: 'connection',
  Authorization: 'authorization',
  KeyUse: 'key-use',
  Mitigation: 'mitigation',
  Audit: 'audit',
} as const
export type AuditKind = (typeof AuditKind)[keyof typeof AuditKind]

/** What a caller records. Nothing in it may be secret (DESIGN.md §5): it is stored and exported in clear. */
export interface AuditEventInput {
  /** Dotted verb, e.g. `iot.CreateThing`, `mqtt.connect`, `kms.decrypt`. */
  readonly action: string
  /** Who: an operator (`user/admin`), an access key, a certificate/principal id, or `system`. */
  readonly actor: string
  readonly outcome: AuditOutcome
  /** Absent for a state change; see {@link AuditKind}. */
  readonly kind?: AuditKind
  /** The main resource acted on (an ARN, `client/{id}`, a topic …). */
  readonly target?: string
  /** Further resources the action touched, when there is more than one. */
  readonly resources?: readonly string[]
  /** The thing concerned, when known; otherwise derived from `target` (see {@link thingOf}). */
  readonly thing?: string
  readonly sourceIp?: string
  readonly requestId?: string
  /** The `ERR_*` code (or MQTT reason) of a refusal or failure. */
  readonly errorCode?: string
  /** Machine-friendly reason of a denial, close or limit (`not-authorized`, `keep-alive-timeout` …). */
  readonly reason?: string
  /** The policy statement that decided an authorization (policy, version, statement id), when one did. */
  readonly statement?: string
  /** When the event happened, if earlier than its append (gateway events are written behind). */
  readonly occurredMs?: number
  readonly details?: Readonly<Record<string, unknown>>
}

/** A chained record: the event plus its position, append time and predecessor's hash. */
export interface AuditRecord extends AuditEventInput {
  readonly seq: number
  /** Append time; never earlier than the predecessor's (the store keeps the log time-ordered). */
  readonly timeMs: number
  /** Hash of the previous record (64 zeros for the first). */
  readonly prevHash: string
}

/** The last record of a chain, as the next append and the verifier need it. */
export interface ChainHead {
  readonly seq: number
  readonly hash: string
  readonly timeMs?: number
}

/** A stored record as the verifier reads it: `[seq, body, hash]` (arrays: the fastest row shape node:sqlite returns). */
export type EventRow = readonly [seq: number, body: string, hash: string]

/** The `prevHash` of record 1 (and the lastHash of an empty log): 64 zeros. */
export const GENESIS_HASH = '0'.repeat(64)

const RESERVED = new Set(['seq', 'prevHash', 'timeMs'])

/**
 * The record encoding (format 1): `{"seq":N,"prevHash":"<64 hex>","timeMs":T,` followed by the event's other
 * members in canonical JSON (RFC 8785 ordering: keys sorted by UTF-16 code units, no whitespace). The chain
 * members come first in a fixed order so a verifier can check the link with one prefix comparison instead of
 * parsing: a nested object can never sit at the very start of the text. The text is plain JSON; `JSON.parse`
 * yields the {@link AuditRecord}. The record's hash is SHA-256 over these UTF-8 bytes, so an exported line
 * can be checked with any SHA-256 tool: the next line's `prevHash` is the hash of this line.
 */
export function encodeRecord (seq: number, prevHash: string, timeMs: number, e: AuditEventInput): string {
  if (!Number.isSafeInteger(seq) || seq < 1) throw new TypeError('audit seq must be a positive integer')
  if (!Number.isSafeInteger(timeMs)) throw new TypeError('audit timeMs must be an integer')
  // Length only: every prevHash comes from hashBody; a malformed one could not verify anyway (a full pattern
  // test here costs a measurable share of the append path).
  if (prevHash.length !== 64) throw new TypeError('audit prevHash must be 64 hex digits')
  return `{"seq":${seq},"prevHash":"${prevHash}","timeMs":${timeMs}${encodeEvent(e)}}`
}

/** The event members of {@link AuditEventInput}, in canonical (UTF-16 code unit) order. */
const EVENT_KEYS = ['action', 'actor', 'details', 'errorCode', 'kind', 'occurredMs', 'outcome', 'reason', 'requestId', 'resources', 'sourceIp', 'statement', 'target', 'thing'] as const
const EVENT_KEY_SET = new Set<string>(EVENT_KEYS)

/**
 * `,"k":v…` for the event's members in canonical order: the known members are emitted in their fixed sorted
 * order without sorting (this runs for every appended event); anything else goes through the generic encoder.
 * Output is identical to `canonicalJson` of the event without its chain members (tested).
 */
function encodeEvent (e: AuditEventInput): string {
  const obj = e as unknown as Record<string, unknown>
  for (const k in obj) {
    if (!EVENT_KEY_SET.has(k) && !RESERVED.has(k)) {
      const rest: Record<string, unknown> = {}
      for (const [key, v] of Object.entries(obj)) if (!RESERVED.has(key)) rest[key] = v
      const tail = canonicalJson(rest)
      return tail === '{}' ? '' : `,${tail.slice(1, -1)}`
    }
  }
  let out = ''
  for (let i = 0; i < EVENT_KEYS.length; i++) {
    const k = EVENT_KEYS[i]
    const v = obj[k]
    if (v === undefined) continue
    out += `,"${k}":${fastCanonical(v)}`
  }
  return out
}

/** Printable ASCII without `"` and `\\`: such a string is its own JSON text between quotes. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/

/** Canonical JSON (same rules as core `canonicalJson`) written for speed: no intermediate arrays. */
function fastCanonical (v: unknown): string {
  if (typeof v === 'string') return PLAIN.test(v) ? `"${v}"` : JSON.stringify(v)
  if (v === null || typeof v !== 'object') return canonicalJson(v)
  if (Array.isArray(v)) {
    let out = '['
    for (let i = 0; i < v.length; i++) out += (i === 0 ? '' : ',') + fastCanonical(v[i])
    return `${out}]`
  }
  const o = v as Record<string, unknown>
  const keys = Object.keys(o).sort()
  let out = '{'
  let first = true
  for (let i = 0; i < keys.length; i++) {
    const val = o[keys[i]]
    if (val === undefined) continue
    out += `${first ? '' : ','}${JSON.stringify(keys[i])}:${fastCanonical(val)}`
    first = false
  }
  return `${out}}`
}

/** SHA-256 of a stored record body, hex. */
export const hashBody = (body: string): string => hash('sha256', body, 'hex')

/**
 * Links one event into the chain: the record embeds its predecessor's hash, so any edit, deletion, insertion or
 * reordering changes every later hash (CloudTrail log-file integrity and RFC 6962 logs, in linear form).
 * `record` is the event with its chain members (built, not parsed back from `body`: this runs for every append).
 */
export function chainEvent (prev: ChainHead | undefined, timeMs: number, e: AuditEventInput): { record: AuditRecord, body: string, hash: string } {
  const seq = (prev?.seq ?? 0) + 1
  const prevHash = prev?.hash ?? GENESIS_HASH
  const body = encodeRecord(seq, prevHash, timeMs, e)
  return { record: { ...e, seq, timeMs, prevHash }, body, hash: hashBody(body) }
}

/** `{"seq":N,"prevHash":"<64 hex>","timeMs":T`: the format-1 prefix up to the record time. */
const TIME_PREFIX = /^\{"seq":\d+,"prevHash":"[0-9a-f]{64}","timeMs":(-?\d+)/

/** `timeMs` of a stored record body: read from the format-1 prefix, else (an older record) parsed; undefined if neither. */
export function recordTimeMs (body: string): number | undefined {
  const m = TIME_PREFIX.exec(body)
  if (m !== null) return Number(m[1])
  try {
    const r: unknown = JSON.parse(body)
    return isRecord(r) && typeof r.timeMs === 'number' ? r.timeMs : undefined
  } catch {
    return undefined
  }
}

/**
 * The thing an event concerns, for queries: `thing` when set, else the name in a `…:thing/NAME` target ARN, else
 * `details.thingName`. MQTT events set `thing` to the client id (AWS IoT convention: client id = thing name, which
 * the role templates enforce with `client/${iot:Connection.Thing.ThingName}`).
 */
export function thingOf (e: AuditEventInput): string | undefined {
  if (e.thing !== undefined) return e.thing
  if (e.target !== undefined) {
    const arn = parseIotArn(e.target)
    if (arn?.type === 'thing') return arn.name
  }
  const n = e.details?.thingName
  return typeof n === 'string' ? n : undefined
}

/** Kinds of integrity problems `verify` reports. */
export const ProblemKind = {
  /** A record's content does not match its hash, or its successor was chained to other content. */
  Altered: 'altered',
  /** Records are missing from the middle or the start of the log. */
  Deleted: 'deleted',
  /** A record that is not part of the chain was inserted. */
  Inserted: 'inserted',
  /** Records hold another position's content (swapped or renumbered). */
  Reordered: 'reordered',
  /** Records at the end of the log are missing (or the digest chain ends early). */
  Truncated: 'truncated',
  /** A run of records was rewritten with recomputed hashes: the chain no longer ends at the signed hash. */
  Rewritten: 'rewritten',
  /** A record does not link to the signed digest before it. */
  Unlinked: 'unlinked',
  /** A digest is malformed, unsigned, signed by an untrusted key, or out of chain. */
  DigestInvalid: 'digest-invalid',
  /** The log does not end with a shutdown digest: what follows the last signature cannot be verified. */
  OpenEnd: 'open-end',
} as const
export type ProblemKind = (typeof ProblemKind)[keyof typeof ProblemKind]

/** The first integrity problem found: the record (or digest) it is at, and what is wrong. */
export interface ChainProblem {
  readonly seq: number
  readonly kind: ProblemKind
  readonly problem: string
}

/**
 * Incremental verifier of the record chain: feed rows in sequence order (any number of pages) and it reports the
 * first problem. Per row it recomputes one SHA-256 and compares one prefix, so it runs at hundreds of thousands
 * of records a second. Records written before format 1 (keys all sorted) are checked by parsing, just as
 * exactly, only slower.
 *
 * Diagnosis names the first bad record: a gap in sequence numbers is a deletion; a record whose content is
 * another position's is a reorder; a record that links past its predecessor exposes the predecessor as an
 * insertion; a record chained to content other than its predecessor's exposes an alteration with a recomputed
 * hash. A rewrite of a whole run of records with every hash recomputed is chain-consistent and is caught only
 * at the next signed digest (see verify.ts).
 */
export class ChainWalker {
  #seq: number
  #hash: string
  #prevHash: string | undefined
  /** True while the current head is the start anchor (a digest's hash), not a row this walker read. */
  #atAnchor: boolean
  #watch: ReadonlyMap<number, string> | undefined
  #count = 0

  /** Starts after `start` (a signed digest's end, or genesis when omitted). */
  constructor (start?: ChainHead, watch?: ReadonlyMap<number, string>) {
    this.#seq = start?.seq ?? 0
    this.#hash = start?.hash ?? GENESIS_HASH
    this.#prevHash = undefined
    this.#atAnchor = true
    this.#watch = watch !== undefined && watch.size > 0 ? watch : undefined
  }

  /** The last record accepted. */
  get head (): ChainHead { return { seq: this.#seq, hash: this.#hash } }
  /** Records accepted so far. */
  get count (): number { return this.#count }

  /** Checks rows in order; returns the first problem (the walker must not be used after one). */
  push (rows: readonly EventRow[]): ChainProblem | undefined {
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]
      const seq = row[0]
      const body = row[1]
      const expected = this.#seq + 1
      if (seq !== expected) {
        return seq > expected
          ? { seq: expected, kind: ProblemKind.Deleted, problem: seq - 1 === expected ? `record ${expected} is missing` : `records ${expected} to ${seq - 1} are missing` }
          : { seq, kind: ProblemKind.Reordered, problem: `record ${seq} appears after record ${this.#seq}` }
      }
      const h = hash('sha256', body, 'hex')
      if (h !== row[2]) return { seq, kind: ProblemKind.Altered, problem: `record ${seq} was altered: its content does not match its hash` }
      // `{"seq":<seq>,"prevHash":"<64 hex>",` compared in place (no string built per record).
      const seqText = String(seq)
      const at = 7 + seqText.length + 13
      if (!(body.startsWith('{"seq":') && body.startsWith(seqText, 7) && body.startsWith(',"prevHash":"', 7 + seqText.length) &&
        body.startsWith(this.#hash, at) && body.charCodeAt(at + 64) === 34 && body.charCodeAt(at + 65) === 44)) {
        const p = this.#diagnose(seq, body, rows[i + 1])
        if (p !== undefined) return p
      }
      if (this.#watch !== undefined) {
        const w = this.#watch.get(seq)
        if (w !== undefined && w !== h) return { seq, kind: ProblemKind.Altered, problem: `record ${seq} differs from the copy held outside the database` }
      }
      this.#prevHash = this.#hash
      this.#hash = h
      this.#seq = seq
      this.#atAnchor = false
      this.#count++
    }
    return undefined
  }

  /** Slow path: a legacy record, or a broken link. Returns undefined when the record is in fact fine. */
  #diagnose (seq: number, body: string, next: EventRow | undefined): ChainProblem | undefined {
    let rec: unknown
    try { rec = JSON.parse(body) } catch { return { seq, kind: ProblemKind.Altered, problem: `record ${seq} is not JSON` } }
    if (!isRecord(rec)) return { seq, kind: ProblemKind.Altered, problem: `record ${seq} is not a JSON object` }
    const bodySeq = rec.seq
    const bodyPrev = rec.prevHash
    if (bodySeq === seq && bodyPrev === this.#hash) return undefined // a record written before format 1
    const prevSeq = seq - 1
    if (bodySeq !== seq) {
      if (bodySeq === prevSeq && bodyPrev === this.#prevHash) {
        return { seq: prevSeq, kind: ProblemKind.Inserted, problem: `record ${prevSeq} was inserted: the record after it was chained to record ${prevSeq - 1} and renumbered` }
      }
      // Look one row ahead: after a deletion with renumbering the next row is shifted too; after a swap it is not.
      if (typeof bodySeq === 'number' && bodySeq > seq && next !== undefined && next[0] === seq + 1 && seqOf(next[1]) === bodySeq + 1) {
        return { seq, kind: ProblemKind.Deleted, problem: `record ${seq} holds record ${bodySeq}: records were deleted and later ones renumbered` }
      }
      return { seq, kind: ProblemKind.Reordered, problem: `record ${seq} holds the content of record ${String(bodySeq)}: records were swapped or renumbered` }
    }
    if (this.#atAnchor) {
      return { seq, kind: ProblemKind.Unlinked, problem: `record ${seq} does not link to ${prevSeq === 0 ? 'the start of the log' : `the signed hash of record ${prevSeq}`}` }
    }
    if (bodyPrev === this.#prevHash) {
      return { seq: prevSeq, kind: ProblemKind.Inserted, problem: `record ${prevSeq} was inserted or replaced: record ${seq} links past it` }
    }
    return { seq: prevSeq, kind: ProblemKind.Altered, problem: `record ${prevSeq} was altered and its hash recomputed: record ${seq} was chained to different content` }
  }
}

/** The `seq` member of a stored body, or undefined. */
function seqOf (body: string): unknown {
  const m = /^\{"seq":(\d+),/.exec(body)
  if (m !== null) return Number(m[1])
  try {
    const r: unknown = JSON.parse(body)
    return isRecord(r) ? r.seq : undefined
  } catch {
    return undefined
  }
}

/**
 * Walks stored records in order and returns the first problem, or undefined when the chain is intact (a
 * convenience over {@link ChainWalker} for whole in-memory logs).
 */
export function verifyChain (rows: Iterable<{ seq: number, body: string, hash: string }>, start?: ChainHead): ChainProblem | undefined {
  const walker = new ChainWalker(start)
  const batch: EventRow[] = []
  for (const r of rows) {
    batch.push([r.seq, r.body, r.hash])
    if (batch.length === 4096) {
      const p = walker.push(batch)
      if (p !== undefined) return p
      batch.length = 0
    }
  }
  return walker.push(batch)
}
