/**
 * Payload schemas: JSON Schemas attached to MQTT topic filters. A PUBLISH (MQTT or HTTPS) whose topic matches a
 * filter must carry a UTF-8 JSON payload that validates against every matching schema, or it is refused and
 * delivered to nobody. Each schema is compiled once when it is stored or loaded, and the hot path (a cached topic
 * lookup plus validation) is timed.
 *
 * Two paths, because JSON.parse dominated the cost (issue #6): every schema is compiled with Ajv (draft-07), the
 * judge, and, when it uses only the supported subset, into a byte-level accelerator (json-fast.ts) that checks
 * grammar and schema on the payload bytes without building objects. The accelerator only ever ACCEPTS: when every
 * matching schema's accelerator says yes, the payload is accepted; otherwise the full path (JSON.parse + Ajv)
 * decides, so every refusal, with its schemaPath, instancePath and message, is Ajv's.
 *
 * Lives in the shadow module (the device data plane) because check-deps.ts knows no `schemas` module yet.
 */
import { isUtf8 } from 'node:buffer'
import { Ajv } from 'ajv'
import type { ValidateFunction } from 'ajv'
import { compileFastAccept } from './json-fast.ts'
import type { FastValidator } from './json-fast.ts'
import { AppError, NotFoundError, filterSyntaxProblem, iotArn, isRecord, levelsMatch } from '../core/index.ts'
import type { ArnContext, Clock, FilterSyntaxProblem } from '../core/index.ts'
import type { PayloadSchemaStorage, StoredPayloadSchema } from './ports.ts'

/** Payload schema names: like thing names. */
export const PAYLOAD_SCHEMA_NAME_RE = /^[a-zA-Z0-9:_-]{1,128}$/
/** Largest schema document accepted (bytes of JSON). */
export const MAX_SCHEMA_BYTES = 64 * 1024
/** Most schemas one platform holds. */
export const MAX_SCHEMAS = 1000
/** Topics whose matching schemas are remembered (the cache is dropped when a schema changes). */
const CACHE_TOPICS = 10_000
/** MQTT topic filters: ≤ 256 bytes as AWS topics. */
const MAX_FILTER_BYTES = 256

/** A payload accepted by every matching schema (a shared frozen object: the hot path allocates nothing). */
export interface PayloadAccepted { readonly allowed: true }
/** A payload refused: which schema, where in the schema and where in the payload (for the audit log). */
export interface PayloadRejected {
  readonly allowed: false
  readonly schemaName: string
  /** JSON Schema path of the failed keyword, e.g. `#/properties/temp/type`. */
  readonly schemaPath: string
  /** JSON Pointer into the payload, e.g. `/temp` (`''` for the whole payload). */
  readonly instancePath: string
  /** Ajv's message, e.g. `must be number`, or `payload is not UTF-8 JSON`. */
  readonly message: string
}
/** The outcome of checking one payload. */
export type PayloadVerdict = PayloadAccepted | PayloadRejected

/** The verdict for a payload no schema objects to. */
export const PAYLOAD_ACCEPTED: PayloadAccepted = Object.freeze({ allowed: true })

/** Validation counters since start (for /metrics). */
export interface PayloadValidationStats {
  /** Payloads checked against at least one schema. */
  readonly validations: number
  /** Of those, refused. */
  readonly failures: number
  /** Total time spent parsing and validating, in seconds. */
  readonly seconds: number
  /** Schemas loaded. */
  readonly schemas: number
}

/** A schema as the API shows it. */
export interface PayloadSchemaView {
  readonly schemaName: string
  readonly topicFilter: string
  readonly schema: Record<string, unknown>
  readonly description?: string
  readonly version: number
  /** Epoch seconds. */
  readonly creationDate: number
  readonly lastModifiedDate: number
}

interface Entry {
  readonly name: string
  readonly filter: string
  readonly levels: readonly string[]
  /** Ajv's compiled validator: the judge of every refusal. */
  readonly validate: ValidateFunction
  /** The byte-level accelerator (accepts only), or undefined when the schema is outside its subset. */
  readonly fast: FastValidator | undefined
}

const FILTER_SYNTAX: Record<FilterSyntaxProblem, string> = {
  'empty': 'a topic filter has 1 to 256 bytes',
  'null-char': 'a topic filter has no NUL character',
  'syntax': '# must be the whole last level and + a whole level',
}

/**
 * Checks a payload schema's topic filter: MQTT syntax (core `filterSyntaxProblem`), at most 256 bytes, and no
 * shared-subscription prefix. Returns the problem or undefined.
 */
export function topicFilterProblem (filter: string): string | undefined {
  if (Buffer.byteLength(filter) > MAX_FILTER_BYTES) return FILTER_SYNTAX.empty
  if (filter.startsWith('$share/')) return 'a payload schema cannot use a shared-subscription filter'
  const problem = filterSyntaxProblem(filter)
  return problem === undefined ? undefined : FILTER_SYNTAX[problem]
}

/** The cached answer for a topic no schema matches: one shared array, not one per cached topic. */
const NO_ENTRIES: readonly Entry[] = Object.freeze([])

/**
 * The compiled schema set and the hot-path check. Synchronous and in memory: the gateway calls `validate` on
 * every PUBLISH. Not persistent by itself (see {@link PayloadSchemaService}).
 */
export class PayloadSchemaRegistry {
  #entries: Entry[] = []
  readonly #cache = new Map<string, readonly Entry[]>()
  #validations = 0
  #failures = 0
  #seconds = 0

  /** Number of schemas. */
  get size (): number { return this.#entries.length }

  get stats (): PayloadValidationStats {
    return { validations: this.#validations, failures: this.#failures, seconds: this.#seconds, schemas: this.#entries.length }
  }

  /**
   * Compiles a schema (throws ERR_SCHEMA_INVALID with Ajv's first complaint) without installing it. One Ajv
   * instance per schema, so `$id`s of different schemas never collide.
   */
  static compile (name: string, topicFilter: string, schema: unknown): Entry {
    const problem = topicFilterProblem(topicFilter)
    if (problem !== undefined) throw new AppError('ERR_SCHEMA_INVALID', 'invalid topic filter', { field: 'topicFilter', problem })
    if (!isRecord(schema)) throw new AppError('ERR_SCHEMA_INVALID', 'the schema must be a JSON object', { field: 'schema' })
    // Strict schema mode refuses unknown keywords (typos would otherwise validate everything); no logger: the
    // library must not write to the console.
    const ajv = new Ajv({ strict: true, strictTypes: false, strictTuples: false, strictRequired: false, allErrors: false, logger: false, validateFormats: false })
    let validate: ValidateFunction
    try {
      validate = ajv.compile(schema)
    } catch (err) {
      const problemText = err instanceof Error ? err.message.slice(0, 200) : 'not a valid JSON Schema'
      throw new AppError('ERR_SCHEMA_INVALID', 'the schema is not a valid JSON Schema (draft-07)', { field: 'schema', problem: problemText })
    }
    return { name, filter: topicFilter, levels: Object.freeze(topicFilter.split('/')), validate, fast: compileFastAccept(schema) }
  }

  /** Installs (or replaces, by name) a compiled schema. */
  set (entry: Entry): void {
    this.#entries = [...this.#entries.filter(e => e.name !== entry.name), entry]
    this.#cache.clear()
  }

  /** Removes a schema; returns whether it was there. */
  remove (name: string): boolean {
    const before = this.#entries.length
    this.#entries = this.#entries.filter(e => e.name !== name)
    this.#cache.clear()
    return this.#entries.length !== before
  }

  #matching (topic: string): readonly Entry[] {
    let m = this.#cache.get(topic)
    if (m === undefined) {
      // Schema filters are split once, at compile; matching a topic against them allocates nothing.
      const hits = this.#entries.filter(e => levelsMatch(e.levels, topic))
      m = hits.length === 0 ? NO_ENTRIES : hits
      if (this.#cache.size >= CACHE_TOPICS) this.#cache.clear()
      this.#cache.set(topic, m)
    }
    return m
  }

  /**
   * The hot-path check: no schema on the topic costs one Map lookup and allocates nothing; otherwise the payload
   * is checked by the matching schemas' byte-level accelerators or, when one of them is not sure, parsed once and
   * run through each matching Ajv validator; the time is accounted.
   */
  validate (topic: string, payload: Uint8Array): PayloadVerdict {
    if (this.#entries.length === 0) return PAYLOAD_ACCEPTED
    const matching = this.#matching(topic)
    if (matching.length === 0) return PAYLOAD_ACCEPTED
    const t0 = performance.now()
    this.#validations++
    const verdict = this.#check(matching, payload)
    this.#seconds += (performance.now() - t0) / 1000
    if (!verdict.allowed) this.#failures++
    return verdict
  }

  /** Checks a payload against one named schema (the API's dry run); undefined when there is no such schema. */
  check (name: string, payload: Uint8Array): PayloadVerdict | undefined {
    const e = this.#entries.find(x => x.name === name)
    return e === undefined ? undefined : this.#check([e], payload)
  }

  #check (entries: readonly Entry[], payload: Uint8Array): PayloadVerdict {
    if (!isUtf8(payload)) return notJson(entries[0].name)
    // Fast path: accepted when every matching schema's accelerator accepts (it never refuses).
    let fast = true
    for (let i = 0; i < entries.length && fast; i++) {
      const f = entries[i].fast
      fast = f !== undefined && f.acceptUtf8(payload)
    }
    if (fast) return PAYLOAD_ACCEPTED
    // Full path: Ajv decides and explains.
    let data: unknown
    try {
      const b = Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)
      data = JSON.parse(b.toString('utf8'))
    } catch {
      return notJson(entries[0].name)
    }
    for (const e of entries) {
      if (e.validate(data)) continue
      const first = e.validate.errors?.[0]
      return {
        allowed: false,
        schemaName: e.name,
        schemaPath: first?.schemaPath ?? '#',
        instancePath: first?.instancePath ?? '',
        message: first?.message ?? 'does not match the schema',
      }
    }
    return PAYLOAD_ACCEPTED
  }
}

const notJson = (schemaName: string): PayloadRejected => ({ allowed: false, schemaName, schemaPath: '#', instancePath: '', message: 'payload is not UTF-8 JSON' })

/** Dependencies of {@link PayloadSchemaService}. */
export interface PayloadSchemaServiceDeps {
  readonly storage: PayloadSchemaStorage
  readonly clock: Clock
  /** For the audit events' target, `arn:aws:iot:{region}:{account}:payloadschema/{name}` (the IAM resource). */
  readonly arn: ArnContext
}

const view = (s: StoredPayloadSchema): PayloadSchemaView => ({
  schemaName: s.name,
  topicFilter: s.topicFilter,
  schema: JSON.parse(s.schemaJson) as Record<string, unknown>,
  ...(s.description === undefined ? {} : { description: s.description }),
  version: s.version,
  creationDate: Math.floor(s.createdMs / 1000),
  lastModifiedDate: Math.floor(s.updatedMs / 1000),
})

function checkName (name: string): void {
  if (!PAYLOAD_SCHEMA_NAME_RE.test(name)) throw new AppError('ERR_SCHEMA_INVALID', 'invalid schema name: 1-128 characters of [a-zA-Z0-9:_-]', { field: 'schemaName' })
}

/**
 * Payload schemas as a managed resource: stored (with an audit event per change, in the same transaction),
 * compiled once, and served to the gateway and the HTTPS publish route through {@link validate}.
 */
export class PayloadSchemaService {
  readonly #d: PayloadSchemaServiceDeps
  readonly #registry = new PayloadSchemaRegistry()

  constructor (deps: PayloadSchemaServiceDeps) { this.#d = deps }

  /** The compiled set (for the gateway hook and benchmarks). */
  get registry (): PayloadSchemaRegistry { return this.#registry }

  /** Loads and compiles every stored schema (once, at start). A stored schema that no longer compiles is skipped and returned. */
  async load (): Promise<{ loaded: number, failed: string[] }> {
    const all = await this.#d.storage.read(s => s.list())
    const failed: string[] = []
    for (const s of all) {
      try {
        this.#registry.set(PayloadSchemaRegistry.compile(s.name, s.topicFilter, JSON.parse(s.schemaJson)))
      } catch {
        failed.push(s.name)
      }
    }
    return { loaded: all.length - failed.length, failed }
  }

  /** Creates or replaces a schema. The schema must compile before anything is stored. */
  async put (caller: { readonly actor: string, readonly sourceIp?: string, readonly requestId?: string }, name: string,
    input: { readonly topicFilter: unknown, readonly schema: unknown, readonly description?: unknown }): Promise<PayloadSchemaView> {
    checkName(name)
    if (typeof input.topicFilter !== 'string') throw new AppError('ERR_SCHEMA_INVALID', 'topicFilter is required', { field: 'topicFilter' })
    if (input.description !== undefined && (typeof input.description !== 'string' || input.description.length > 1024)) {
      throw new AppError('ERR_SCHEMA_INVALID', 'description must be a string of at most 1024 characters', { field: 'description' })
    }
    const schemaJson = JSON.stringify(input.schema) ?? ''
    if (Buffer.byteLength(schemaJson) > MAX_SCHEMA_BYTES) throw new AppError('ERR_SCHEMA_INVALID', 'the schema exceeds 64 KiB', { field: 'schema' })
    const entry = PayloadSchemaRegistry.compile(name, input.topicFilter, input.schema)
    const topicFilter = input.topicFilter
    const description = input.description as string | undefined
    const nowMs = this.#d.clock.nowMs()
    const stored = await this.#d.storage.transaction(async ({ store, audit }) => {
      const existing = await store.get(name)
      if (existing === undefined && await store.count() >= MAX_SCHEMAS) {
        throw new AppError('ERR_REGISTRY_LIMIT_EXCEEDED', 'too many payload schemas', { limit: MAX_SCHEMAS })
      }
      const s: StoredPayloadSchema = {
        name, topicFilter, schemaJson, ...(description === undefined ? {} : { description }),
        version: (existing?.version ?? 0) + 1, createdMs: existing?.createdMs ?? nowMs, updatedMs: nowMs,
      }
      await store.put(s)
      await audit.append({
        action: 'thingward.PutPayloadSchema', actor: caller.actor, outcome: 'success', target: iotArn(this.#d.arn, 'payloadschema', name),
        sourceIp: caller.sourceIp, requestId: caller.requestId, details: { topicFilter, version: s.version },
      })
      return s
    })
    this.#registry.set(entry)
    return view(stored)
  }

  async get (name: string): Promise<PayloadSchemaView> {
    checkName(name)
    const s = await this.#d.storage.read(st => st.get(name))
    if (s === undefined) throw new NotFoundError('payload schema', name)
    return view(s)
  }

  async list (): Promise<PayloadSchemaView[]> {
    return (await this.#d.storage.read(s => s.list())).map(view)
  }

  async delete (caller: { readonly actor: string, readonly sourceIp?: string, readonly requestId?: string }, name: string): Promise<void> {
    checkName(name)
    await this.#d.storage.transaction(async ({ store, audit }) => {
      if (!await store.delete(name)) throw new NotFoundError('payload schema', name)
      await audit.append({
        action: 'thingward.DeletePayloadSchema', actor: caller.actor, outcome: 'success', target: iotArn(this.#d.arn, 'payloadschema', name),
        sourceIp: caller.sourceIp, requestId: caller.requestId,
      })
    })
    this.#registry.remove(name)
  }

  /** The hot-path check (see {@link PayloadSchemaRegistry.validate}). */
  validate (topic: string, payload: Uint8Array): PayloadVerdict { return this.#registry.validate(topic, payload) }

  /** Dry run of one schema against a payload (404 for an unknown schema). */
  test (name: string, payload: Uint8Array): PayloadVerdict {
    checkName(name)
    const v = this.#registry.check(name, payload)
    if (v === undefined) throw new NotFoundError('payload schema', name)
    return v
  }
}

/** `schema {name} {schemaPath} at {instancePath}`: how a refusal is named in audit events and reason strings. */
export function describeRejection (r: PayloadRejected): string {
  return `schema ${r.schemaName} ${r.schemaPath} at ${r.instancePath === '' ? '/' : r.instancePath}: ${r.message}`
}
