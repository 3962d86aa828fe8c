/**
 * The pure shadow core: request validation, merge with `null` deletes, per-leaf metadata timestamps, the delta,
 * versions and limits, and the response documents — AWS IoT Device Shadow semantics (IoT DG
 * `device-shadow-document`, `device-shadow-mqtt`, `device-shadow-error-messages`). No I/O, no clock: callers pass
 * the time in.
 */
import { isUtf8 } from 'node:buffer'
import { ShadowError, ShadowErrorMessage, invalidRequest } from './errors.ts'

/** A JSON value as the Device Shadow service stores it. */
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject
/** A JSON object. Keys are own properties (a `__proto__` key from JSON.parse is data, never a prototype). */
export interface JsonObject { [key: string]: JsonValue }

/** Limits from the AWS IoT Device Shadow quotas (IoT DG `device-shadow-document`, service quotas). */
export interface ShadowLimits {
  /** Bytes of `desired` + `reported` after the update (metadata does not count). AWS: 8 KB. */
  readonly maxStateBytes: number
  /** Levels of nesting in `desired` or `reported`. AWS: 6. */
  readonly maxDepth: number
  /** Bytes of a request document on the wire. AWS caps MQTT payloads at 128 KB. */
  readonly maxRequestBytes: number
  /** `clientToken` bytes. AWS: 64. */
  readonly maxClientTokenBytes: number
  /** How long a deleted shadow's version is remembered (AWS: 48 hours), so a re-created shadow continues it. */
  readonly versionMemoryMs: number
}

/** The AWS defaults. */
export const DEFAULT_SHADOW_LIMITS: ShadowLimits = Object.freeze({
  maxStateBytes: 8192,
  maxDepth: 6,
  maxRequestBytes: 128 * 1024,
  maxClientTokenBytes: 64,
  versionMemoryMs: 48 * 3600_000,
})

/** The stored part of a shadow: both state sections and their metadata trees (timestamps in epoch seconds). */
export interface ShadowDocument {
  readonly desired?: JsonObject
  readonly reported?: JsonObject
  readonly metadata: { readonly desired?: JsonObject, readonly reported?: JsonObject }
}

/**
 * A parsed update request (IoT DG `device-shadow-document` "Request state document"). A section is absent when
 * the request did not name it, `null` when the request clears it.
 */
export interface UpdateRequest {
  /** `{ "state": null }`: clear both sections (the shadow itself remains). */
  readonly clearState: boolean
  readonly desired?: JsonObject | null
  readonly reported?: JsonObject | null
  readonly version?: number
  readonly clientToken?: string
}

// ---- small JSON helpers (own-property safe) ----------------------------------------------------------------

/** True for a JSON object (not null, not an array). */
export const isJsonObject = (v: unknown): v is JsonObject =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

const own = (o: JsonObject | undefined, k: string): JsonValue | undefined =>
  o !== undefined && Object.hasOwn(o, k) ? o[k] : undefined

/** Sets `o[k]` as an own data property, so a `__proto__` key stays data. */
function put (o: JsonObject, k: string, v: JsonValue): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true })
}

const copy = (o: JsonObject): JsonObject => {
  const out: JsonObject = {}
  for (const k of Object.keys(o)) put(out, k, o[k])
  return out
}

/** Structural equality of two JSON values (arrays in order, objects by key set). */
export function jsonEqual (a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  if (a === b) return true
  if (a === undefined || b === undefined || a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false
    return true
  }
  if (Array.isArray(b)) return false
  const ka = Object.keys(a)
  if (ka.length !== Object.keys(b).length) return false
  for (const k of ka) if (!Object.hasOwn(b, k) || !jsonEqual(a[k], b[k])) return false
  return true
}

const isEmpty = (o: JsonObject | undefined): boolean => o === undefined || Object.keys(o).length === 0

// ---- request validation -------------------------------------------------------------------------------------

/** Decodes a request payload: UTF-8 only (415), JSON (400), within the request size limit (413). */
export function decodeJson (payload: Uint8Array, limits: ShadowLimits = DEFAULT_SHADOW_LIMITS): unknown {
  if (payload.byteLength > limits.maxRequestBytes) throw new ShadowError('ERR_SHADOW_TOO_LARGE', ShadowErrorMessage.TooLarge)
  if (!isUtf8(payload)) throw new ShadowError('ERR_SHADOW_UNSUPPORTED_ENCODING', ShadowErrorMessage.Encoding)
  try {
    return JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8'))
  } catch {
    throw invalidRequest(ShadowErrorMessage.InvalidJson)
  }
}

/** Levels of nesting below a section: `{ "a": 1 }` is 1, `{ "a": { "b": 1 } }` is 2; arrays count as a level. */
function depthOf (v: JsonValue, max: number, level: number): number {
  if (v === null || typeof v !== 'object') return level
  if (level + 1 > max) return level + 1 // deep enough to refuse: stop walking a hostile document
  let deepest = level + 1
  const values = Array.isArray(v) ? v : Object.values(v)
  for (const c of values) {
    const d = depthOf(c, max, level + 1)
    if (d > deepest) deepest = d
    if (deepest > max) break
  }
  return deepest
}

/** IoT DG `device-shadow-document` "Arrays": arrays can't contain null values (at any depth). */
function hasNullInArray (v: JsonValue, inArray: boolean): boolean {
  if (v === null) return inArray
  if (typeof v !== 'object') return false
  if (Array.isArray(v)) { for (const c of v) if (hasNullInArray(c, true)) return true; return false }
  for (const k of Object.keys(v)) if (hasNullInArray(v[k], inArray)) return true
  return false
}

function checkSection (v: unknown, notObject: ShadowErrorMessage, limits: ShadowLimits): JsonObject | null | undefined {
  if (v === undefined || v === null) return v
  if (!isJsonObject(v)) throw invalidRequest(notObject)
  if (depthOf(v, limits.maxDepth, 0) > limits.maxDepth) throw invalidRequest(ShadowErrorMessage.TooDeep)
  if (hasNullInArray(v, false)) throw invalidRequest(ShadowErrorMessage.InvalidNode)
  return v
}

/** Validates `clientToken` (a string of at most 64 bytes). */
export function checkClientToken (v: unknown, limits: ShadowLimits = DEFAULT_SHADOW_LIMITS): string | undefined {
  if (v === undefined) return undefined
  if (typeof v !== 'string' || Buffer.byteLength(v, 'utf8') > limits.maxClientTokenBytes) throw invalidRequest(ShadowErrorMessage.InvalidClientToken)
  return v
}

/**
 * Parses and validates an update request with AWS's error texts: `state` required and an object (or null),
 * only `desired`/`reported` inside, each an object or null, nesting ≤ 6, no null in arrays, `version` a
 * non-negative integer, `clientToken` ≤ 64 bytes. Other top-level fields (`metadata`, `timestamp`) are ignored,
 * as devices often echo a received document back.
 */
export function parseUpdateRequest (payload: Uint8Array, limits: ShadowLimits = DEFAULT_SHADOW_LIMITS): UpdateRequest {
  const doc = decodeJson(payload, limits)
  if (!isJsonObject(doc)) throw invalidRequest(ShadowErrorMessage.InvalidJson)
  const clientToken = checkClientToken(own(doc, 'clientToken'), limits)
  const versionRaw = own(doc, 'version')
  if (versionRaw !== undefined && (typeof versionRaw !== 'number' || !Number.isSafeInteger(versionRaw) || versionRaw < 0)) {
    throw invalidRequest(ShadowErrorMessage.InvalidVersion)
  }
  const version = versionRaw as number | undefined
  if (!Object.hasOwn(doc, 'state')) throw invalidRequest(ShadowErrorMessage.MissingState)
  const state = doc.state
  const base = { ...(version === undefined ? {} : { version }), ...(clientToken === undefined ? {} : { clientToken }) }
  if (state === null) return { clearState: true, ...base }
  if (!isJsonObject(state)) throw invalidRequest(ShadowErrorMessage.StateNotObject)
  for (const k of Object.keys(state)) if (k !== 'desired' && k !== 'reported') throw invalidRequest(ShadowErrorMessage.InvalidNode, { node: k.slice(0, 64) })
  const desired = checkSection(own(state, 'desired'), ShadowErrorMessage.DesiredNotObject, limits)
  const reported = checkSection(own(state, 'reported'), ShadowErrorMessage.ReportedNotObject, limits)
  return {
    clearState: false,
    ...(desired === undefined ? {} : { desired }),
    ...(reported === undefined ? {} : { reported }),
    ...base,
  }
}

/** Parses the optional payload of a /get or /delete request: empty, or `{ "clientToken": …, "maxAgeSeconds": … }`. */
export function parseSimpleRequest (payload: Uint8Array, limits: ShadowLimits = DEFAULT_SHADOW_LIMITS): { clientToken?: string, maxAgeSeconds?: number } {
  if (payload.byteLength === 0) return {}
  const doc = decodeJson(payload, limits)
  if (!isJsonObject(doc)) throw invalidRequest(ShadowErrorMessage.InvalidJson)
  const clientToken = checkClientToken(own(doc, 'clientToken'), limits)
  const maxAge = own(doc, 'maxAgeSeconds')
  if (maxAge !== undefined && (typeof maxAge !== 'number' || !Number.isSafeInteger(maxAge) || maxAge < 0)) throw invalidRequest(ShadowErrorMessage.InvalidNode, { node: 'maxAgeSeconds' })
  return { ...(clientToken === undefined ? {} : { clientToken }), ...(maxAge === undefined ? {} : { maxAgeSeconds: maxAge as number }) }
}

// ---- merge, metadata, delta ---------------------------------------------------------------------------------

/** Metadata for a request section as AWS echoes it on /accepted: every leaf (nulls included) gets `{ timestamp }`. */
function requestMetadata (section: JsonObject, ts: number): JsonObject {
  const out: JsonObject = {}
  for (const k of Object.keys(section)) {
    const v = section[k]
    put(out, k, isJsonObject(v) && !isEmpty(v) ? requestMetadata(v, ts) : { timestamp: ts })
  }
  return out
}

/**
 * Merges `update` into `current` (IoT DG `device-shadow-document`): only the named fields change, `null` deletes
 * a key, objects merge recursively, arrays and scalars replace, and every written leaf gets `{ timestamp }` in the
 * metadata. An object emptied by deletes is removed. Returns new trees; the inputs are not modified.
 */
function mergeSection (current: JsonObject | undefined, meta: JsonObject | undefined, update: JsonObject, ts: number): { value: JsonObject, meta: JsonObject } {
  const value = current === undefined ? {} : copy(current)
  const m = meta === undefined ? {} : copy(meta)
  for (const k of Object.keys(update)) {
    const u = update[k]
    if (u === null) {
      delete value[k]
      delete m[k]
      continue
    }
    if (isJsonObject(u) && !isEmpty(u)) {
      const existing = own(value, k)
      const existingMeta = own(m, k)
      const sub = mergeSection(isJsonObject(existing) ? existing : undefined,
        isJsonObject(existing) && isJsonObject(existingMeta) ? existingMeta : undefined, u, ts)
      if (isEmpty(sub.value)) { delete value[k]; delete m[k]; continue }
      put(value, k, sub.value)
      put(m, k, sub.meta)
      continue
    }
    // Scalars, arrays (replaced whole: "an update to an array replaces the whole array") and `{}`.
    put(value, k, u)
    put(m, k, isJsonObject(u) ? {} : { timestamp: ts })
  }
  return { value, meta: m }
}

/**
 * The delta (IoT DG `device-shadow-document` "Delta state"): every field of `desired` that differs from
 * `reported`, with the path to the root for nested objects; a desired field missing from `reported` is included;
 * arrays compare as values. Its metadata is the desired metadata of those fields.
 */
export function computeDelta (desired: JsonObject | undefined, reported: JsonObject | undefined, desiredMeta: JsonObject | undefined): { state: JsonObject, metadata: JsonObject } | undefined {
  if (desired === undefined) return undefined
  const state: JsonObject = {}
  const metadata: JsonObject = {}
  for (const k of Object.keys(desired)) {
    const d = desired[k]
    const r = own(reported, k)
    const dm = own(desiredMeta, k)
    if (isJsonObject(d) && isJsonObject(r) && !isEmpty(d)) {
      const sub = computeDelta(d, r, isJsonObject(dm) ? dm : undefined)
      if (sub !== undefined) { put(state, k, sub.state); put(metadata, k, sub.metadata) }
      continue
    }
    if (!jsonEqual(d, r)) {
      put(state, k, d)
      if (dm !== undefined) put(metadata, k, dm)
    }
  }
  return isEmpty(state) ? undefined : { state, metadata }
}

/**
 * The age in seconds of every reported leaf, from its metadata timestamp (our staleness extension), and the
 * oldest. `oldest` is undefined when there is no reported leaf.
 */
export function reportedAges (doc: ShadowDocument, nowSec: number): { ages: JsonObject, oldest: number | undefined } {
  let oldest: number | undefined
  const walk = (value: JsonObject, meta: JsonObject | undefined): JsonObject => {
    const out: JsonObject = {}
    for (const k of Object.keys(value)) {
      const v = value[k]
      const m = own(meta, k)
      if (isJsonObject(v) && !isEmpty(v)) { put(out, k, walk(v, isJsonObject(m) ? m : undefined)); continue }
      const ts = isJsonObject(m) && typeof m.timestamp === 'number' ? m.timestamp : undefined
      if (ts === undefined) continue
      const age = Math.max(0, nowSec - ts)
      if (oldest === undefined || age > oldest) oldest = age
      put(out, k, age)
    }
    return out
  }
  const ages = doc.reported === undefined ? {} : walk(doc.reported, doc.metadata.reported)
  return { ages, oldest }
}

/** Byte size of the state that counts against the 8 KB limit: desired and reported, not metadata. */
export function stateBytes (doc: ShadowDocument): number {
  return (doc.desired === undefined ? 0 : Buffer.byteLength(JSON.stringify(doc.desired))) +
    (doc.reported === undefined ? 0 : Buffer.byteLength(JSON.stringify(doc.reported)))
}

/** The outcome of an accepted update: the new document and the messages AWS publishes for it. */
export interface UpdateOutcome {
  readonly document: ShadowDocument
  readonly version: number
  /** The /update/accepted document (also the UpdateThingShadow response). */
  readonly accepted: JsonObject
  /** The /update/delta document, when one is due. */
  readonly delta: JsonObject | undefined
  /** The /update/documents document. */
  readonly documents: JsonObject
}

const stateOf = (doc: ShadowDocument): JsonObject => {
  const s: JsonObject = {}
  if (doc.desired !== undefined) s.desired = doc.desired
  if (doc.reported !== undefined) s.reported = doc.reported
  return s
}
const metadataOf = (doc: ShadowDocument): JsonObject => {
  const m: JsonObject = {}
  if (doc.metadata.desired !== undefined) m.desired = doc.metadata.desired
  if (doc.metadata.reported !== undefined) m.reported = doc.metadata.reported
  return m
}
const withToken = (o: JsonObject, clientToken: string | undefined): JsonObject => {
  if (clientToken !== undefined) o.clientToken = clientToken
  return o
}

/**
 * Applies an update to the current document (undefined when the shadow does not exist), at `nowSec`. The caller
 * checked `request.version` against `currentVersion`. Throws 413 when the resulting state exceeds the limit.
 *
 * /update/delta is published (IoT DG `device-shadow-mqtt` "/update/delta") when the update wrote `desired` or
 * deleted a reported field, and desired and reported then differ; it carries the whole delta, "regardless of
 * whether these attributes were contained in the current update message".
 */
export function applyUpdate (current: ShadowDocument | undefined, currentVersion: number, request: UpdateRequest, nowSec: number,
  limits: ShadowLimits = DEFAULT_SHADOW_LIMITS): UpdateOutcome {
  let desired = request.clearState ? undefined : current?.desired
  let reported = request.clearState ? undefined : current?.reported
  let desiredMeta = request.clearState ? undefined : current?.metadata.desired
  let reportedMeta = request.clearState ? undefined : current?.metadata.reported
  let reportedDeleted = false
  if (request.desired === null) { desired = undefined; desiredMeta = undefined } else if (request.desired !== undefined) {
    const r = mergeSection(desired, desiredMeta, request.desired, nowSec)
    desired = r.value
    desiredMeta = r.meta
  }
  if (request.reported === null) { reported = undefined; reportedMeta = undefined; reportedDeleted = true } else if (request.reported !== undefined) {
    reportedDeleted = Object.values(request.reported).some(v => v === null)
    const r = mergeSection(reported, reportedMeta, request.reported, nowSec)
    reported = r.value
    reportedMeta = r.meta
  }
  // IoT DG `device-shadow-document` "Empty shadow document properties": an emptied section is removed.
  if (isEmpty(desired)) { desired = undefined; desiredMeta = undefined }
  if (isEmpty(reported)) { reported = undefined; reportedMeta = undefined }
  const document: ShadowDocument = {
    ...(desired === undefined ? {} : { desired }),
    ...(reported === undefined ? {} : { reported }),
    metadata: { ...(desiredMeta === undefined ? {} : { desired: desiredMeta }), ...(reportedMeta === undefined ? {} : { reported: reportedMeta }) },
  }
  if (stateBytes(document) > limits.maxStateBytes) throw new ShadowError('ERR_SHADOW_TOO_LARGE', ShadowErrorMessage.TooLarge)
  const version = currentVersion + 1

  // /update/accepted echoes the request's state (nulls included) with metadata for each leaf it named.
  const acceptedState: JsonObject = {}
  const acceptedMeta: JsonObject = {}
  if (request.desired !== undefined) {
    acceptedState.desired = request.desired
    acceptedMeta.desired = request.desired === null ? { timestamp: nowSec } : requestMetadata(request.desired, nowSec)
  }
  if (request.reported !== undefined) {
    acceptedState.reported = request.reported
    acceptedMeta.reported = request.reported === null ? { timestamp: nowSec } : requestMetadata(request.reported, nowSec)
  }
  const accepted = withToken({ state: request.clearState ? null : acceptedState, metadata: acceptedMeta, version, timestamp: nowSec }, request.clientToken)

  const d = computeDelta(document.desired, document.reported, document.metadata.desired)
  const desiredWritten = request.desired !== undefined && request.desired !== null && !isEmpty(request.desired)
  const delta = d !== undefined && (desiredWritten || reportedDeleted)
    ? withToken({ version, timestamp: nowSec, state: d.state, metadata: d.metadata }, request.clientToken)
    : undefined

  const documents = withToken({
    ...(current === undefined ? {} : { previous: { state: stateOf(current), metadata: metadataOf(current), version: currentVersion } }),
    current: { state: stateOf(document), metadata: metadataOf(document), version },
    timestamp: nowSec,
  }, request.clientToken)
  return { document, version, accepted, delta, documents }
}

/**
 * The /get/accepted document (also the GetThingShadow response): state with the delta, metadata with the
 * delta's, version and timestamp — plus our staleness extension under `thingward` (the age in seconds of each
 * reported leaf, and the oldest), which AWS clients ignore.
 */
export function getDocument (doc: ShadowDocument, version: number, nowSec: number, clientToken?: string): JsonObject {
  const state = stateOf(doc)
  const metadata = metadataOf(doc)
  const d = computeDelta(doc.desired, doc.reported, doc.metadata.desired)
  if (d !== undefined) { state.delta = d.state; metadata.delta = d.metadata }
  const out: JsonObject = { state, metadata, version, timestamp: nowSec }
  const { ages, oldest } = reportedAges(doc, nowSec)
  if (oldest !== undefined) out.thingward = { reportedAgeSeconds: ages, oldestReportedAgeSeconds: oldest }
  return withToken(out, clientToken)
}

/**
 * Our `maxAgeSeconds` extension: refuses (412) when any reported value is older than `maxAgeSeconds`, or when
 * there is no reported state at all, so a backend cannot act on stale state by accident.
 */
export function checkFreshness (doc: ShadowDocument, nowSec: number, maxAgeSeconds: number): void {
  const { oldest } = reportedAges(doc, nowSec)
  if (oldest === undefined) throw new ShadowError('ERR_SHADOW_STALE', ShadowErrorMessage.NoReportedState, { maxAgeSeconds })
  if (oldest > maxAgeSeconds) throw new ShadowError('ERR_SHADOW_STALE', ShadowErrorMessage.Stale, { maxAgeSeconds, oldestReportedAgeSeconds: oldest })
}

/** The /delete/accepted document (also the DeleteThingShadow response). */
export function deleteDocument (version: number, nowSec: number, clientToken?: string): JsonObject {
  return withToken({ version, timestamp: nowSec }, clientToken)
}

/** The /rejected error document: `{ code, message, timestamp, clientToken? }` (IoT DG `device-shadow-document`). */
export function errorDocument (status: number, message: string, nowSec: number, clientToken?: string): JsonObject {
  return withToken({ code: status, message, timestamp: nowSec }, clientToken)
}

/** Validates a stored document read back from storage (defence against a corrupted or foreign blob). */
export function isShadowDocument (v: unknown): v is ShadowDocument {
  if (!isJsonObject(v) || !isJsonObject(v.metadata)) return false
  for (const k of ['desired', 'reported'] as const) {
    if (own(v, k) !== undefined && !isJsonObject(v[k])) return false
    if (own(v.metadata, k) !== undefined && !isJsonObject(v.metadata[k])) return false
  }
  return true
}
