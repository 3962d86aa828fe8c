/**
 * The shadow module's seams (DESIGN.md §4): persistence, envelope encryption and message publication come in
 * through these interfaces; app.ts wires SQLite, the keyring and the gateway.
 */
import type { AuditAppender } from '../audit/index.ts'

/**
 * One stored shadow row. The document (state and metadata) is only ever stored sealed; the version is in clear
 * because optimistic concurrency compares it in storage. A deleted shadow stays as a tombstone (`sealed`
 * absent, `deletedMs` set) so that a shadow re-created within 48 hours continues its version (IoT DG
 * `device-shadow-data-flow`).
 */
export interface StoredShadow {
  readonly thingName: string
  /** `''` for the classic (unnamed) shadow. */
  readonly shadowName: string
  readonly version: number
  /** Envelope-encrypted document; absent for a tombstone. */
  readonly sealed?: Buffer
  readonly updatedMs: number
  readonly deletedMs?: number
}

/**
 * Shadow persistence inside one unit of work. Implemented in storage/sqlite/shadow-store.ts; every
 * implementation must pass storage/contract/shadow-store.contract.ts.
 *
 * Contract: getters resolve `undefined` when absent and never reject for "not found"; `put` inserts or replaces
 * the row for (thing, shadow); returned buffers are fresh copies; names compare byte for byte (case-sensitive).
 */
export interface ShadowStore {
  /** Whether the registry has a thing of this name (shadows belong to registered things). */
  thingExists (thingName: string): Promise<boolean>
  /** The row, tombstones included. */
  get (thingName: string, shadowName: string): Promise<StoredShadow | undefined>
  put (shadow: StoredShadow): Promise<void>
  /** Names of the thing's live named shadows (never the classic one, never tombstones), ascending, after `after`. */
  listNamed (thingName: string, after: string | undefined, limit: number): Promise<string[]>
}

/** A unit of work: a shadow change and its audit event commit together (DESIGN.md §5). */
export interface ShadowUnit { readonly store: ShadowStore, readonly audit: AuditAppender }

/** Transactions over {@link ShadowStore}. Units run one at a time, in the order they were started. */
export interface ShadowStorage {
  /** All-or-nothing: a throw rolls back every write and every audit event of `fn`. */
  transaction<T> (fn: (u: ShadowUnit) => Promise<T>): Promise<T>
  /** Read-only access (consistent snapshot). */
  read<T> (fn: (s: ShadowStore) => Promise<T>): Promise<T>
}

/**
 * Envelope encryption bound to a context (AWS KMS semantics): the keyring. Shadows are sealed under
 * `{ purpose: 'shadow', thingName, shadowName }`, so a blob moved to another shadow does not decrypt.
 */
export interface ShadowCipher {
  encrypt (plaintext: Uint8Array, context: Readonly<Record<string, string>>): Buffer
  decrypt (blob: Uint8Array, context: Readonly<Record<string, string>>): Buffer
}

/**
 * Publishes a message the shadow service emits (/accepted, /rejected, /delta, /documents) to MQTT subscribers,
 * each subject to its own iot:Receive. Must not throw and must not block; without a gateway it drops.
 */
export interface ShadowPublisher {
  publish (topic: string, payload: Buffer): void
}

/** A payload schema as stored. `schemaJson` is the JSON Schema text exactly as it was accepted. */
export interface StoredPayloadSchema {
  readonly name: string
  readonly topicFilter: string
  readonly schemaJson: string
  readonly description?: string
  readonly version: number
  readonly createdMs: number
  readonly updatedMs: number
}

/**
 * Payload schema persistence. Implemented in storage/sqlite/shadow-store.ts; must pass
 * storage/contract/shadow-store.contract.ts. Same conventions as {@link ShadowStore}.
 */
export interface PayloadSchemaStore {
  /** Every schema, ascending by name. */
  list (): Promise<StoredPayloadSchema[]>
  /** How many schemas are stored (the MAX_SCHEMAS check, without reading every schema document). */
  count (): Promise<number>
  get (name: string): Promise<StoredPayloadSchema | undefined>
  put (schema: StoredPayloadSchema): Promise<void>
  /** Resolves whether a schema was removed. */
  delete (name: string): Promise<boolean>
}

/** Transactions over {@link PayloadSchemaStore}, with the audit appender of the same unit. */
export interface PayloadSchemaStorage {
  transaction<T> (fn: (u: { readonly store: PayloadSchemaStore, readonly audit: AuditAppender }) => Promise<T>): Promise<T>
  read<T> (fn: (s: PayloadSchemaStore) => Promise<T>): Promise<T>
}
