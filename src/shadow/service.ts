import { AppError } from '../core/index.ts'
import type { ArnContext, Clock } from '../core/index.ts'
import {
  DEFAULT_SHADOW_LIMITS, applyUpdate, checkFreshness, deleteDocument, errorDocument, getDocument, isShadowDocument,
  parseSimpleRequest, parseUpdateRequest,
} from './document.ts'
import type { JsonObject, ShadowDocument, ShadowLimits, UpdateOutcome } from './document.ts'
import { SHADOW_ERROR_STATUS, ShadowError, ShadowErrorMessage } from './errors.ts'
import type { ShadowErrorCode } from './errors.ts'
import type { ShadowCipher, ShadowPublisher, ShadowStorage, StoredShadow } from './ports.ts'
import { SHADOW_NAME_RE, THING_NAME_RE, shadowArn, shadowTopicPrefix } from './topics.ts'
import type { ShadowOperation, ShadowTarget, ShadowTopicRequest } from './topics.ts'

/** Who asks, for the audit log. */
export interface ShadowCaller {
  /** `user/{name}` for operators, the certificate principal for devices. */
  readonly actor: string
  /** The transport the request came in on. */
  readonly via: 'mqtt' | 'https'
  readonly sourceIp?: string
  readonly requestId?: string
}

/** Dependencies of {@link ShadowService}. */
export interface ShadowServiceDeps {
  readonly storage: ShadowStorage
  readonly cipher: ShadowCipher
  readonly clock: Clock
  readonly arn: ArnContext
  /** Where /accepted, /delta, /documents and /rejected go. */
  readonly publisher: ShadowPublisher
  readonly limits?: Partial<ShadowLimits>
  /** Unexpected failures answered with 500 on /rejected (storage, keyring, audit), for the operator's log. */
  readonly onError?: (err: unknown) => void
}

/** A counter snapshot of shadow operations, keyed `{operation}:{outcome}` (`outcome`: `accepted` or the status). */
export type ShadowMetricsSnapshot = Readonly<Record<string, number>>

/** The answer to ListNamedShadowsForThing (iot-data shape). */
export interface NamedShadowPage {
  readonly results: string[]
  readonly nextToken?: string
  /** Epoch seconds. */
  readonly timestamp: number
}

const CLASSIC = ''

function shadowKey (t: ShadowTarget): string { return t.shadowName ?? CLASSIC }

/** Validates the names of a target (400 InvalidRequest; the registry's thing-name rule, AWS's shadow-name rule). */
export function checkTarget (t: ShadowTarget): ShadowTarget {
  if (!THING_NAME_RE.test(t.thingName)) throw new AppError('ERR_SHADOW_INVALID_REQUEST', 'invalid thing name', { field: 'thingName' })
  if (t.shadowName !== undefined && !SHADOW_NAME_RE.test(t.shadowName)) throw new AppError('ERR_SHADOW_INVALID_REQUEST', 'invalid shadow name', { field: 'shadowName' })
  return t
}

/**
 * Device shadows, classic and named (AWS IoT Device Shadow service): get, update with optimistic concurrency,
 * delete, list; documents sealed with the keyring under `{ purpose: 'shadow', thingName, shadowName }`; every
 * change committed with its audit event; /accepted, /delta and /documents published after the commit. The
 * MQTT and HTTPS adapters share it, so both behave alike.
 */
export class ShadowService {
  readonly #d: ShadowServiceDeps
  readonly #limits: ShadowLimits
  readonly #counts = new Map<string, number>()

  constructor (deps: ShadowServiceDeps) {
    this.#d = deps
    this.#limits = Object.freeze({ ...DEFAULT_SHADOW_LIMITS, ...deps.limits })
  }

  get limits (): ShadowLimits { return this.#limits }

  /** Operation counters since start. */
  get metrics (): ShadowMetricsSnapshot { return Object.fromEntries(this.#counts) }

  #count (op: string, outcome: string): void {
    const k = `${op}:${outcome}`
    this.#counts.set(k, (this.#counts.get(k) ?? 0) + 1)
  }

  #nowSec (): number { return Math.floor(this.#d.clock.nowMs() / 1000) }

  #context (t: ShadowTarget): Record<string, string> {
    return { purpose: 'shadow', thingName: t.thingName, shadowName: shadowKey(t) }
  }

  #seal (t: ShadowTarget, version: number, doc: ShadowDocument): Buffer {
    return this.#d.cipher.encrypt(Buffer.from(JSON.stringify({ version, document: doc }), 'utf8'), this.#context(t))
  }

  #open (t: ShadowTarget, row: StoredShadow & { sealed: Buffer }): ShadowDocument {
    const plain = this.#d.cipher.decrypt(row.sealed, this.#context(t))
    let v: unknown
    try { v = JSON.parse(plain.toString('utf8')) } catch { v = undefined }
    const body = typeof v === 'object' && v !== null ? v as { version?: unknown, document?: unknown } : {}
    // The version is sealed with the document: a blob swapped in from an older version of the row is refused.
    if (body.version !== row.version || !isShadowDocument(body.document)) {
      throw new AppError('ERR_STORAGE_CORRUPT', 'stored shadow does not match its row', { thingName: t.thingName })
    }
    return body.document
  }

  #notFound (t: ShadowTarget): ShadowError {
    return new ShadowError('ERR_SHADOW_NOT_FOUND', ShadowErrorMessage.NoShadow, { thingName: t.thingName, shadowName: t.shadowName ?? t.thingName })
  }

  #live (row: StoredShadow | undefined): row is StoredShadow & { sealed: Buffer } { return row?.sealed !== undefined }

  /**
   * GetThingShadow: the full document with its delta and our staleness extension. With `maxAgeSeconds`, refuses
   * (412) when a reported value is older (see `checkFreshness`).
   */
  async get (target: ShadowTarget, opts: { clientToken?: string, maxAgeSeconds?: number } = {}): Promise<JsonObject> {
    checkTarget(target)
    try {
      const { row, doc } = await this.#d.storage.read(async (s) => {
        if (!await s.thingExists(target.thingName)) throw new ShadowError('ERR_SHADOW_NOT_FOUND', ShadowErrorMessage.ThingNotFound, { thingName: target.thingName })
        const r = await s.get(target.thingName, shadowKey(target))
        if (!this.#live(r)) throw this.#notFound(target)
        return { row: r, doc: this.#open(target, r) }
      })
      const nowSec = this.#nowSec()
      if (opts.maxAgeSeconds !== undefined) checkFreshness(doc, nowSec, opts.maxAgeSeconds)
      this.#count('get', 'accepted')
      return getDocument(doc, row.version, nowSec, opts.clientToken)
    } catch (err) {
      this.#count('get', outcomeOf(err))
      throw err
    }
  }

  /**
   * UpdateThingShadow: validates the request (AWS's 400s), checks the version (409), merges, checks the 8 KB
   * limit (413), seals and stores the document with its audit event in one transaction, then publishes
   * /update/accepted, /update/delta (when due) and /update/documents. Resolves the /accepted document.
   */
  async update (target: ShadowTarget, payload: Uint8Array, caller: ShadowCaller): Promise<JsonObject> {
    checkTarget(target)
    try {
      const request = parseUpdateRequest(payload, this.#limits)
      const nowMs = this.#d.clock.nowMs()
      const nowSec = Math.floor(nowMs / 1000)
      const outcome = await this.#d.storage.transaction(async ({ store, audit }): Promise<UpdateOutcome> => {
        if (!await store.thingExists(target.thingName)) throw new ShadowError('ERR_SHADOW_NOT_FOUND', ShadowErrorMessage.ThingNotFound, { thingName: target.thingName })
        const row = await store.get(target.thingName, shadowKey(target))
        const live = this.#live(row)
        const current = live ? this.#open(target, row) : undefined
        // A tombstone younger than 48 hours keeps its version; an older one starts again from 0.
        const base = row === undefined ? 0 : live || nowMs - (row.deletedMs ?? 0) < this.#limits.versionMemoryMs ? row.version : 0
        if (request.version !== undefined && request.version !== base) {
          throw new ShadowError('ERR_SHADOW_VERSION_CONFLICT', ShadowErrorMessage.VersionConflict, { version: base })
        }
        const out = applyUpdate(current, base, request, nowSec, this.#limits)
        await store.put({ thingName: target.thingName, shadowName: shadowKey(target), version: out.version, sealed: this.#seal(target, out.version, out.document), updatedMs: nowMs })
        await audit.append({
          action: 'iot.UpdateThingShadow', actor: caller.actor, outcome: 'success', target: shadowArn(this.#d.arn, target.thingName, target.shadowName), thing: target.thingName,
          sourceIp: caller.sourceIp, requestId: caller.requestId,
          details: { shadowName: target.shadowName ?? '', version: out.version, via: caller.via },
        })
        return out
      })
      this.#count('update', 'accepted')
      const prefix = shadowTopicPrefix(target)
      this.#publish(`${prefix}/update/accepted`, outcome.accepted)
      if (outcome.delta !== undefined) this.#publish(`${prefix}/update/delta`, outcome.delta)
      this.#publish(`${prefix}/update/documents`, outcome.documents)
      return outcome.accepted
    } catch (err) {
      this.#count('update', outcomeOf(err))
      throw err
    }
  }

  /**
   * DeleteThingShadow: removes the document (keeping its version for 48 hours, as AWS does), audited in the
   * same transaction; publishes /delete/accepted.
   */
  async delete (target: ShadowTarget, caller: ShadowCaller, clientToken?: string): Promise<JsonObject> {
    checkTarget(target)
    try {
      const nowMs = this.#d.clock.nowMs()
      const version = await this.#d.storage.transaction(async ({ store, audit }) => {
        if (!await store.thingExists(target.thingName)) throw new ShadowError('ERR_SHADOW_NOT_FOUND', ShadowErrorMessage.ThingNotFound, { thingName: target.thingName })
        const row = await store.get(target.thingName, shadowKey(target))
        if (!this.#live(row)) throw this.#notFound(target)
        await store.put({ thingName: target.thingName, shadowName: shadowKey(target), version: row.version, updatedMs: nowMs, deletedMs: nowMs })
        await audit.append({
          action: 'iot.DeleteThingShadow', actor: caller.actor, outcome: 'success', target: shadowArn(this.#d.arn, target.thingName, target.shadowName), thing: target.thingName,
          sourceIp: caller.sourceIp, requestId: caller.requestId,
          details: { shadowName: target.shadowName ?? '', version: row.version, via: caller.via },
        })
        return row.version
      })
      this.#count('delete', 'accepted')
      const doc = deleteDocument(version, Math.floor(nowMs / 1000), clientToken)
      this.#publish(`${shadowTopicPrefix(target)}/delete/accepted`, doc)
      return doc
    } catch (err) {
      this.#count('delete', outcomeOf(err))
      throw err
    }
  }

  /** ListNamedShadowsForThing: live named shadows, ascending; `nextToken` is opaque (base64url of the last name). */
  async listNamedShadows (thingName: string, nextToken?: string, pageSize?: number): Promise<NamedShadowPage> {
    checkTarget({ thingName })
    const size = pageSize ?? 25
    if (!Number.isInteger(size) || size < 1 || size > 100) throw new AppError('ERR_SHADOW_INVALID_REQUEST', 'pageSize must be an integer from 1 to 100', { field: 'pageSize' })
    let after: string | undefined
    if (nextToken !== undefined) {
      after = Buffer.from(nextToken, 'base64url').toString('utf8')
      if (!SHADOW_NAME_RE.test(after)) throw new AppError('ERR_SHADOW_INVALID_REQUEST', 'invalid nextToken', { field: 'nextToken' })
    }
    const names = await this.#d.storage.read(async (s) => {
      if (!await s.thingExists(thingName)) throw new ShadowError('ERR_SHADOW_NOT_FOUND', ShadowErrorMessage.ThingNotFound, { thingName })
      return s.listNamed(thingName, after, size + 1)
    })
    this.#count('list', 'accepted')
    const more = names.length > size
    const results = more ? names.slice(0, size) : names
    return { results, ...(more ? { nextToken: Buffer.from(results[results.length - 1], 'utf8').toString('base64url') } : {}), timestamp: this.#nowSec() }
  }

  /**
   * Serves a request a device published on a reserved topic (`…/get`, `…/update`, `…/delete`): the answer goes to
   * the matching /accepted or /rejected topic (IoT DG `device-shadow-mqtt`), never back as an exception. The
   * caller already checked iot:Publish on the request topic; subscribers' iot:Receive applies to the answers.
   */
  async handleRequest (request: ShadowTopicRequest, payload: Uint8Array, caller: ShadowCaller): Promise<void> {
    const prefix = shadowTopicPrefix(request.target)
    let clientToken: string | undefined
    try {
      if (request.operation === 'update') {
        try {
          await this.update(request.target, payload, caller)
        } catch (err) {
          clientToken = peekClientToken(payload)
          throw err
        }
        return
      }
      const simple = parseSimpleRequest(payload, this.#limits)
      clientToken = simple.clientToken
      if (request.operation === 'get') {
        this.#publish(`${prefix}/get/accepted`, await this.get(request.target, simple))
      } else {
        await this.delete(request.target, caller, clientToken)
      }
    } catch (err) {
      this.reject(request.target, request.operation, err, clientToken)
    }
  }

  /** Publishes the /rejected document for a failed request (AWS's status and text; 500 for anything unexpected). */
  reject (target: ShadowTarget, operation: ShadowOperation, err: unknown, clientToken?: string): void {
    const { status, message } = wireError(err)
    if (status >= 500) this.#d.onError?.(err)
    this.#publish(`${shadowTopicPrefix(target)}/${operation}/rejected`, errorDocument(status, message, this.#nowSec(), clientToken))
  }

  #publish (topic: string, doc: JsonObject): void {
    this.#d.publisher.publish(topic, Buffer.from(JSON.stringify(doc), 'utf8'))
  }
}

/** The status and text AWS would send for an error; anything that is not a shadow error is a 500. */
export function wireError (err: unknown): { status: number, message: string } {
  // Any error with a shadow code (a ShadowError with AWS's text, or a name/paging refusal of ours) maps through
  // the one code → status table; everything else is a 500.
  if (err instanceof AppError && Object.hasOwn(SHADOW_ERROR_STATUS, err.code)) {
    // IoT DG `device-shadow-error-messages`: "No shadow exists with name: shadowName".
    const message = err.message === ShadowErrorMessage.NoShadow && typeof err.details.shadowName === 'string'
      ? `${err.message}: '${err.details.shadowName}'`
      : err.message
    return { status: SHADOW_ERROR_STATUS[err.code as ShadowErrorCode], message }
  }
  return { status: 500, message: ShadowErrorMessage.Internal }
}

function outcomeOf (err: unknown): string {
  return String(wireError(err).status)
}

/** The clientToken of an update request, to echo on /rejected even when the rest of the request is invalid. */
function peekClientToken (payload: Uint8Array): string | undefined {
  try {
    const v: unknown = JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8'))
    if (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.hasOwn(v, 'clientToken')) {
      const t = (v as { clientToken?: unknown }).clientToken
      if (typeof t === 'string' && Buffer.byteLength(t) <= DEFAULT_SHADOW_LIMITS.maxClientTokenBytes) return t
    }
  } catch {
    return undefined
  }
  return undefined
}
