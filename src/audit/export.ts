import { canonicalJson, InvalidRequestError, isRecord } from '../core/index.ts'
import { hashBody } from './chain.ts'
import type { StoredDigest } from './digest.ts'
import type { AuditAnchor } from './verify.ts'

/** Export formats: the stored records verbatim as JSON lines, or OCSF events. */
export const ExportFormat = { Jsonl: 'jsonl', Ocsf: 'ocsf' } as const
export type ExportFormat = (typeof ExportFormat)[keyof typeof ExportFormat]

/**
 * A digest as the API and the stream present it: `{ digest: {…}, digestSeq, hash, signature, type: 'digest' }`,
 * members in canonical order (the stored body is canonical already), so `JSON.stringify` of it is {@link digestLine}.
 */
export function digestEntry (d: StoredDigest): { readonly digest: unknown, readonly digestSeq: number, readonly hash: string, readonly signature: string, readonly type: 'digest' } {
  return { digest: JSON.parse(d.body) as unknown, digestSeq: d.digestSeq, hash: d.hash, signature: d.signature, type: 'digest' }
}

/**
 * A digest as a JSON line: `{"digest":{…},"digestSeq":n,"hash":…,"signature":…,"type":"digest"}` (canonical).
 * Event lines are the stored record bodies themselves (they start with `{"seq":`), so the two never mix up.
 */
export function digestLine (d: StoredDigest): string {
  return canonicalJson(digestEntry(d))
}

/**
 * Reads anchors from text held outside the database: a JSON-lines stream or export (event lines, digest lines,
 * OCSF lines carrying `unmapped.thingward.hash`) or the JSON printed by `thingward audit head`.
 * @throws InvalidRequestError for a line that is none of these.
 */
export function parseAnchors (text: string): AuditAnchor[] {
  const trimmed = text.trim()
  if (trimmed === '') return []
  const whole = tryParse(trimmed)
  if (isRecord(whole) && (isRecord(whole.lastDigest) || isRecord(whole.committedHead) || isRecord(whole.head))) return headAnchors(whole)
  const out: AuditAnchor[] = []
  const lines = trimmed.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, '')
    if (line === '') continue
    const v = tryParse(line)
    if (!isRecord(v)) throw new InvalidRequestError('anchor file line is not JSON', { line: i + 1 })
    if (v.type === 'digest' && typeof v.digestSeq === 'number' && typeof v.hash === 'string') { out.push({ type: 'digest', digestSeq: v.digestSeq, hash: v.hash }); continue }
    if (typeof v.seq === 'number' && typeof v.prevHash === 'string') { out.push({ type: 'event', seq: v.seq, hash: hashBody(line) }); continue }
    const tw = isRecord(v.unmapped) && isRecord(v.unmapped.thingward) ? v.unmapped.thingward : undefined
    if (tw !== undefined && typeof tw.seq === 'number' && typeof tw.hash === 'string') { out.push({ type: 'event', seq: tw.seq, hash: tw.hash }); continue }
    throw new InvalidRequestError('anchor file line is not an audit record, digest or OCSF event with a hash', { line: i + 1 })
  }
  return out
}

function headAnchors (h: Record<string, unknown>): AuditAnchor[] {
  const out: AuditAnchor[] = []
  for (const k of ['head', 'committedHead']) {
    const e = h[k]
    if (isRecord(e) && typeof e.seq === 'number' && typeof e.hash === 'string') out.push({ type: 'event', seq: e.seq, hash: e.hash })
  }
  const d = h.lastDigest
  if (isRecord(d) && isRecord(d.digest) && typeof d.digest.digestSeq === 'number' && typeof d.hash === 'string') out.push({ type: 'digest', digestSeq: d.digest.digestSeq, hash: d.hash })
  return out
}

function tryParse (s: string): unknown {
  try { return JSON.parse(s) } catch { return undefined }
}
