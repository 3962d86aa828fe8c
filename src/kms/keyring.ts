import { createCipheriv, createDecipheriv, createHmac, createSecretKey, randomBytes, randomFillSync } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { AppError, canonicalJson } from '../core/index.ts'
import type { Clock } from '../core/index.ts'
import { KeyVersionState } from './ports.ts'
import type { KeyringStore, KeyVersionRecord } from './ports.ts'

/** An encryption context: a non-secret string→string map bound to a ciphertext as AAD (AWS KMS semantics). */
export type EncryptionContext = Readonly<Record<string, string>>

/** The operations reported to {@link LocalKeyringOptions.onUse}. */
export const KeyringOperation = {
  Encrypt: 'encrypt',
  Decrypt: 'decrypt',
  GenerateDataKey: 'generateDataKey',
  DecryptDataKey: 'decryptDataKey',
  ReEncrypt: 'reEncrypt',
  Rotate: 'rotate',
  DisableVersion: 'disableVersion',
  EnableVersion: 'enableVersion',
} as const
export type KeyringOperation = (typeof KeyringOperation)[keyof typeof KeyringOperation]

/** One successful keyring operation, for the audit log. Never carries key material or plaintext. */
export interface KeyringUseEvent {
  readonly operation: KeyringOperation
  readonly keyId: string
  /** The master key version used: the blob's version for decrypt, the new version for rotate/reEncrypt. */
  readonly version: number
  /** A frozen copy of the encryption context (`{}` for rotate, enable and disable). */
  readonly context: EncryptionContext
}

export interface LocalKeyringOptions {
  readonly store: KeyringStore
  /**
   * The 32-byte key-encryption key (from `loadKek`). The keyring keeps its own copy, so the caller may zero
   * this buffer once `open()` resolves.
   */
  readonly kek: Buffer
  readonly clock: Clock
  /** Default `master`. Letters, digits and `._:/-`, at most 128 characters. */
  readonly keyId?: string
  /**
   * Called once after each successful operation, before its result is returned. A throw propagates to the
   * caller (fail closed: an operation that cannot be audited does not hand out its result). For `rotate`,
   * `disableVersion` and `enableVersion` the change is already stored when the hook runs.
   */
  readonly onUse?: (e: KeyringUseEvent) => void
}

/** Public facts about one master key version; never the material. */
export interface KeyVersionInfo {
  readonly version: number
  readonly state: KeyVersionState
  readonly createdMs: number
}

/** Data key returned by {@link LocalKeyring.generateDataKey}. */
export interface DataKey {
  /** The 32-byte AES-256 key in clear. The caller owns it and should `fill(0)` it when done. */
  readonly plaintext: Buffer
  /** The same key wrapped under the master key; store this and pass it to `decryptDataKey`. */
  readonly ciphertextBlob: Buffer
}

const FORMAT_ENVELOPE = 0x01
const FORMAT_DATA_KEY = 0x02
const FORMAT_SEALED = 0x03

const KEY_BYTES = 32
const IV_BYTES = 12
const TAG_BYTES = 16
const NONCE_BYTES = 32
const MAX_VERSION = 0xffff_ffff
/** Wrapped data key: nonce ‖ tag ‖ encrypted key. */
const WRAPPED_BYTES = NONCE_BYTES + TAG_BYTES + KEY_BYTES
/** Envelope blob up to (not including) the payload ciphertext. */
const ENV_WRAP_AT = 7
const ENV_IV_AT = ENV_WRAP_AT + WRAPPED_BYTES
const ENV_TAG_AT = ENV_IV_AT + IV_BYTES
const ENV_CT_AT = ENV_TAG_AT + TAG_BYTES
const DATA_KEY_BLOB_BYTES = 5 + WRAPPED_BYTES
const SEALED_BYTES = 1 + IV_BYTES + TAG_BYTES + KEY_BYTES

/** The wrapping key is used once per derived key, so a constant IV is safe (NIST SP 800-38D §8.2: unique key/IV pair). */
const ZERO_IV = Buffer.alloc(IV_BYTES)
/** NIST SP 800-108 counter-mode KDF, one block: [i]₄ ‖ Label ‖ 0x00 (Context follows) … ‖ [L]₄ with L = 256. */
const KDF_PREFIX = Buffer.concat([Buffer.from([0, 0, 0, 1]), Buffer.from('thingward.kms.wrap', 'utf8'), Buffer.from([0])])
const KDF_SUFFIX = Buffer.from([0, 0, 1, 0])

const KEY_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/
const GCM = 'aes-256-gcm'
const GCM_OPTS = { authTagLength: TAG_BYTES } as const
const OPEN_TOKEN = Symbol('LocalKeyring.open')
const EMPTY = Buffer.alloc(0)
const NO_CONTEXT: Ctx = { map: Object.freeze({}), json: '{}' }

/** A validated encryption context: a frozen copy and its canonical JSON, computed once per operation. */
interface Ctx {
  readonly map: EncryptionContext
  readonly json: string
}

interface LoadedVersion {
  readonly version: number
  readonly key: KeyObject
  state: KeyVersionState
  readonly createdMs: number
}

/**
 * The default keyring: master key versions generated here, kept in memory as `KeyObject`s and stored only sealed
 * under a key-encryption key (KEK) from the environment or a key file. Envelope encryption follows AWS KMS:
 * a fresh data key per `encrypt`, and the encryption context is AAD of BOTH the payload and the data-key wrap
 * (unlike Tink's KmsEnvelopeAead, which wraps with empty AAD), so a wrapped key cannot be replayed under another
 * context. Rotation adds a version; all previous versions keep decrypting (AWS KMS: "all previous versions …
 * remain available"; Vault transit `rotate`/`rewrap`).
 *
 * Every multi-byte integer is big-endian. JSON below is `canonicalJson` (sorted keys, no whitespace) in UTF-8,
 * with `<ctx>` the encryption context and `<kid>` the key id.
 *
 * **Envelope blob** (`encrypt`), format 1:
 * ```
 * 0      1 byte   0x01 (format)
 * 1      4 bytes  master key version (uint32)
 * 5      2 bytes  wrapped-key length (uint16; 80 in format 1)
 * 7      80 bytes wrapped data key (see below)
 * 87     12 bytes payload IV (random)
 * 99     16 bytes payload GCM tag
 * 115    …        payload ciphertext (same length as the plaintext)
 * ```
 * Payload = AES-256-GCM under the data key, AAD `{"c":<ctx>,"f":1,"k":<kid>,"p":"thingward.kms.payload"}`.
 * The payload AAD leaves out the master version, so `reEncrypt` swaps the wrapped key and keeps the ciphertext.
 *
 * **Wrapped data key** (80 bytes): `nonce(32) ‖ tag(16) ‖ encryptedKey(32)`. The wrapping key is derived per wrap
 * (as AWS KMS derives a key per request from its HBK) with the NIST SP 800-108 counter-mode KDF over
 * HMAC-SHA256: `HMAC(masterKey, 00000001 ‖ "thingward.kms.wrap" ‖ 00 ‖ nonce ‖ 00000100)`, then AES-256-GCM
 * with a zero IV. Reusing one GCM key with random 96-bit IVs is capped at 2^32 messages (SP 800-38D §8.3),
 * which a hot path could reach in hours; a single-use derived key has no such cap. AAD:
 * `{"c":<ctx>,"f":<format>,"k":<kid>,"p":<purpose>,"v":<version>}` with purpose `thingward.kms.dek` (format 1)
 * or `thingward.kms.data-key` (format 2), so the two kinds of blob cannot be swapped.
 *
 * **Data key blob** (`generateDataKey`), format 2, 85 bytes: `0x02 ‖ version(4) ‖ wrapped data key(80)`.
 *
 * **Sealed master key version** (stored by the {@link KeyringStore}), 61 bytes:
 * `0x03 ‖ iv(12, random) ‖ tag(16) ‖ encryptedKey(32)`, AES-256-GCM under the KEK with AAD
 * `{"f":3,"k":<kid>,"p":"thingward.kms.master-key","v":<version>}`, so a sealed version cannot be moved to
 * another key id or version number.
 *
 * Crypto operations are synchronous (keys are in memory); only `open`, `rotate`, `refresh`, `disableVersion`
 * and `enableVersion` touch the store. In a cluster, a node learns of another node's rotation or state change
 * only through `refresh()` (call it on the control-bus event); until then it cannot decrypt newer blobs.
 */
export class LocalKeyring {
  readonly #store: KeyringStore
  readonly #kek: KeyObject
  readonly #clock: Clock
  readonly #keyId: string
  readonly #keyIdJson: string
  readonly #onUse: ((e: KeyringUseEvent) => void) | undefined
  readonly #versions = new Map<number, LoadedVersion>()
  #current: LoadedVersion
  /** Scratch space for the per-call data key of `encrypt`, zeroed after each use. */
  readonly #dek = Buffer.alloc(KEY_BYTES)

  /** Use {@link LocalKeyring.open}. */
  constructor (token: typeof OPEN_TOKEN, opts: LocalKeyringOptions, kek: KeyObject, keyId: string, versions: LoadedVersion[]) {
    if (token !== OPEN_TOKEN) throw new AppError('ERR_INTERNAL', 'use LocalKeyring.open()')
    this.#store = opts.store
    this.#kek = kek
    this.#clock = opts.clock
    this.#keyId = keyId
    this.#keyIdJson = JSON.stringify(keyId)
    this.#onUse = opts.onUse
    for (const v of versions) this.#versions.set(v.version, v)
    this.#current = this.#latest()
  }

  /**
   * Loads (and unseals) every version of the key, creating version 1 on first use.
   * @throws AppError ERR_KMS_MASTER_KEY_INVALID when the KEK is not 32 bytes or cannot unseal a stored version;
   *   ERR_STORAGE_CORRUPT when a stored version is malformed; ERR_CONFIG_INVALID for a malformed key id.
   */
  static async open (opts: LocalKeyringOptions): Promise<LocalKeyring> {
    const keyId = opts.keyId ?? 'master'
    if (!KEY_ID_RE.test(keyId)) throw new AppError('ERR_CONFIG_INVALID', 'keyring key id is malformed', { setting: 'keyId' })
    if (!(opts.kek instanceof Uint8Array) || opts.kek.length !== KEY_BYTES) {
      throw new AppError('ERR_KMS_MASTER_KEY_INVALID', 'key-encryption key must be exactly 32 bytes')
    }
    const kek = createSecretKey(opts.kek) // copies into a KeyObject; the caller may zero its buffer
    let records = await opts.store.listVersions(keyId)
    if (records.length === 0) {
      const first = createVersionRecord(kek, keyId, 1, opts.clock.nowMs())
      try {
        // Insert-if-absent: if another process created version 1 first, use its key, not ours.
        if (!await opts.store.insertVersion(first.record)) records = await opts.store.listVersions(keyId)
        else return new LocalKeyring(OPEN_TOKEN, opts, kek, keyId, [first.loaded])
      } finally {
        first.material.fill(0)
      }
    }
    return new LocalKeyring(OPEN_TOKEN, opts, kek, keyId, records.map(r => unsealRecord(kek, keyId, r)))
  }

  /** The master key id this keyring serves. */
  get keyId (): string { return this.#keyId }

  /** The version new encryptions use (the highest one). */
  get currentVersion (): number { return this.#current.version }

  /** Every version, ascending, without material. */
  versions (): KeyVersionInfo[] {
    return [...this.#versions.values()].sort((a, b) => a.version - b.version)
      .map(v => ({ version: v.version, state: v.state, createdMs: v.createdMs }))
  }

  /**
   * Envelope-encrypts `plaintext` under a fresh data key wrapped by the current master key version.
   * @throws AppError ERR_KMS_CONTEXT_INVALID for a malformed context; ERR_KMS_KEY_DISABLED when the current
   *   version is disabled.
   */
  encrypt (plaintext: Uint8Array, context: EncryptionContext): Buffer {
    const ctx = checkContext(context)
    if (!(plaintext instanceof Uint8Array)) throw new TypeError('plaintext must be a Uint8Array')
    const cur = this.#usable(this.#current)
    const blob = Buffer.allocUnsafe(ENV_CT_AT + plaintext.length)
    const dek = this.#dek
    randomFillSync(dek)
    try {
      blob[0] = FORMAT_ENVELOPE
      blob.writeUInt32BE(cur.version, 1)
      blob.writeUInt16BE(WRAPPED_BYTES, 5)
      this.#wrap(cur, dek, this.#aad('thingward.kms.dek', FORMAT_ENVELOPE, ctx, cur.version), blob, ENV_WRAP_AT)
      const iv = blob.subarray(ENV_IV_AT, ENV_TAG_AT)
      randomFillSync(iv)
      const cipher = createCipheriv(GCM, createSecretKey(dek), iv, GCM_OPTS)
      cipher.setAAD(this.#payloadAad(ctx))
      const ct = cipher.update(plaintext)
      cipher.final()
      ct.copy(blob, ENV_CT_AT)
      cipher.getAuthTag().copy(blob, ENV_TAG_AT)
    } finally {
      dek.fill(0)
    }
    this.#used(KeyringOperation.Encrypt, cur.version, ctx)
    return blob
  }

  /**
   * Decrypts an envelope blob from `encrypt` (any version of this key) under the same context.
   * @throws AppError ERR_KMS_DECRYPT_FAILED (fixed text, no reason) for tampering, truncation, a wrong context,
   *   another key's blob or an unknown version; ERR_KMS_KEY_DISABLED when the blob's version is disabled;
   *   ERR_KMS_CONTEXT_INVALID for a malformed context.
   */
  decrypt (blob: Uint8Array, context: EncryptionContext): Buffer {
    const ctx = checkContext(context)
    const { version, plaintext } = this.#openEnvelope(blob, ctx)
    this.#used(KeyringOperation.Decrypt, version, ctx)
    return plaintext
  }

  /**
   * A fresh 256-bit data key in clear plus the same key wrapped under the current version (AWS KMS
   * GenerateDataKey), for callers that encrypt large or streamed data themselves.
   */
  generateDataKey (context: EncryptionContext): DataKey {
    const ctx = checkContext(context)
    const cur = this.#usable(this.#current)
    const plaintext = randomBytes(KEY_BYTES)
    const ciphertextBlob = this.#dataKeyBlob(cur, plaintext, ctx)
    this.#used(KeyringOperation.GenerateDataKey, cur.version, ctx)
    return { plaintext, ciphertextBlob }
  }

  /**
   * Unwraps a `generateDataKey` blob. Errors as for {@link LocalKeyring.decrypt}. The caller owns the returned
   * key and should `fill(0)` it when done.
   */
  decryptDataKey (blob: Uint8Array, context: EncryptionContext): Buffer {
    const ctx = checkContext(context)
    const b = asBuffer(blob)
    if (b[0] !== FORMAT_DATA_KEY || b.length !== DATA_KEY_BLOB_BYTES) throw decryptFailed(this.#keyId)
    const v = this.#versionOf(b)
    const key = this.#unwrap(v, b.subarray(5), this.#aad('thingward.kms.data-key', FORMAT_DATA_KEY, ctx, v.version))
    this.#used(KeyringOperation.DecryptDataKey, v.version, ctx)
    return key
  }

  /**
   * Rewraps an envelope or data-key blob under the current version without returning any plaintext (Vault
   * `rewrap`, AWS ReEncrypt). For an envelope the payload is authenticated first and its ciphertext kept as is,
   * so a tampered blob is refused here rather than laundered into a fresh-looking one.
   * Errors as for {@link LocalKeyring.decrypt}.
   */
  reEncrypt (blob: Uint8Array, context: EncryptionContext): Buffer {
    const ctx = checkContext(context)
    const b = asBuffer(blob)
    const cur = this.#usable(this.#current)
    let out: Buffer
    if (b[0] === FORMAT_DATA_KEY && b.length === DATA_KEY_BLOB_BYTES) {
      const v = this.#versionOf(b)
      const key = this.#unwrap(v, b.subarray(5), this.#aad('thingward.kms.data-key', FORMAT_DATA_KEY, ctx, v.version))
      try { out = this.#dataKeyBlob(cur, key, ctx) } finally { key.fill(0) }
    } else {
      const { plaintext, dek } = this.#openEnvelope(b, ctx, true)
      plaintext.fill(0)
      try {
        out = Buffer.allocUnsafe(b.length)
        b.copy(out)
        out.writeUInt32BE(cur.version, 1)
        this.#wrap(cur, dek, this.#aad('thingward.kms.dek', FORMAT_ENVELOPE, ctx, cur.version), out, ENV_WRAP_AT)
      } finally {
        dek.fill(0)
      }
    }
    this.#used(KeyringOperation.ReEncrypt, cur.version, ctx)
    return out
  }

  /**
   * Adds a new master key version and makes it current; earlier versions keep decrypting. If another process
   * stored the same version number first, reloads and tries the next number.
   * @returns the new version number.
   */
  async rotate (): Promise<number> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const next = this.#latest().version + 1
      if (next > MAX_VERSION) break
      const created = createVersionRecord(this.#kek, this.#keyId, next, this.#clock.nowMs())
      try {
        if (await this.#store.insertVersion(created.record)) {
          if (!this.#versions.has(next)) this.#versions.set(next, created.loaded)
          this.#current = this.#latest()
          this.#used(KeyringOperation.Rotate, next, NO_CONTEXT)
          return next
        }
      } finally {
        created.material.fill(0)
      }
      await this.refresh()
    }
    throw new AppError('ERR_INTERNAL', 'key rotation could not store a new version', { keyId: this.#keyId })
  }

  /**
   * Reloads versions and states from the store: picks up versions and state changes made by other processes.
   * @throws as {@link LocalKeyring.open} when a new version cannot be unsealed.
   */
  async refresh (): Promise<void> {
    const records = await this.#store.listVersions(this.#keyId)
    const fresh = records.filter(r => !this.#versions.has(r.version)).map(r => unsealRecord(this.#kek, this.#keyId, r))
    for (const v of fresh) this.#versions.set(v.version, v)
    for (const r of records) {
      const v = this.#versions.get(r.version)
      if (v !== undefined) v.state = r.state
    }
    this.#current = this.#latest()
  }

  /**
   * Disables one version: every operation that needs it fails with ERR_KMS_KEY_DISABLED until it is enabled
   * again. Disabling the current version stops all new encryption (AWS KMS DisableKey) until `rotate` or
   * `enableVersion`; there is deliberately no fallback to an older version.
   * @throws AppError ERR_KMS_KEY_NOT_FOUND for an unknown version.
   */
  async disableVersion (version: number): Promise<void> {
    await this.#setState(version, KeyVersionState.Disabled)
    this.#used(KeyringOperation.DisableVersion, version, NO_CONTEXT)
  }

  /** Re-enables a disabled version. @throws AppError ERR_KMS_KEY_NOT_FOUND for an unknown version. */
  async enableVersion (version: number): Promise<void> {
    await this.#setState(version, KeyVersionState.Enabled)
    this.#used(KeyringOperation.EnableVersion, version, NO_CONTEXT)
  }

  async #setState (version: number, state: KeyVersionState): Promise<void> {
    const v = this.#versions.get(version)
    if (v === undefined || !await this.#store.updateState(this.#keyId, version, state)) {
      throw new AppError('ERR_KMS_KEY_NOT_FOUND', 'key version not found', { keyId: this.#keyId, version })
    }
    v.state = state
  }

  #latest (): LoadedVersion {
    let best: LoadedVersion | undefined
    for (const v of this.#versions.values()) if (best === undefined || v.version > best.version) best = v
    if (best === undefined) throw new AppError('ERR_KMS_KEY_NOT_FOUND', 'key has no versions', { keyId: this.#keyId })
    return best
  }

  #usable (v: LoadedVersion): LoadedVersion {
    if (v.state !== KeyVersionState.Enabled) {
      throw new AppError('ERR_KMS_KEY_DISABLED', 'key version is disabled', { keyId: this.#keyId, version: v.version })
    }
    return v
  }

  /** The enabled version named in bytes 1–4 of a blob; an unknown version is indistinguishable from tampering. */
  #versionOf (b: Buffer): LoadedVersion {
    const v = this.#versions.get(b.readUInt32BE(1))
    if (v === undefined) throw decryptFailed(this.#keyId)
    return this.#usable(v)
  }

  /** Parses and authenticates an envelope; returns the plaintext and, when asked, the data key (caller zeroes). */
  #openEnvelope (blob: Uint8Array, ctx: Ctx, keepDek = false): { version: number, plaintext: Buffer, dek: Buffer } {
    const b = asBuffer(blob)
    if (b.length < ENV_CT_AT || b[0] !== FORMAT_ENVELOPE || b.readUInt16BE(5) !== WRAPPED_BYTES) throw decryptFailed(this.#keyId)
    const v = this.#versionOf(b)
    const dek = this.#unwrap(v, b.subarray(ENV_WRAP_AT, ENV_IV_AT), this.#aad('thingward.kms.dek', FORMAT_ENVELOPE, ctx, v.version))
    let plaintext: Buffer | undefined
    try {
      const decipher = createDecipheriv(GCM, createSecretKey(dek), b.subarray(ENV_IV_AT, ENV_TAG_AT), GCM_OPTS)
      decipher.setAAD(this.#payloadAad(ctx))
      decipher.setAuthTag(b.subarray(ENV_TAG_AT, ENV_CT_AT))
      plaintext = decipher.update(b.subarray(ENV_CT_AT))
      decipher.final()
      return { version: v.version, plaintext, dek: keepDek ? dek : EMPTY }
    } catch {
      plaintext?.fill(0)
      dek.fill(0)
      throw decryptFailed(this.#keyId)
    } finally {
      if (!keepDek) dek.fill(0)
    }
  }

  #dataKeyBlob (v: LoadedVersion, key: Buffer, ctx: Ctx): Buffer {
    const blob = Buffer.allocUnsafe(DATA_KEY_BLOB_BYTES)
    blob[0] = FORMAT_DATA_KEY
    blob.writeUInt32BE(v.version, 1)
    this.#wrap(v, key, this.#aad('thingward.kms.data-key', FORMAT_DATA_KEY, ctx, v.version), blob, 5)
    return blob
  }

  /** Writes `nonce ‖ tag ‖ E(key)` (WRAPPED_BYTES) into `out` at `at`. */
  #wrap (v: LoadedVersion, key: Buffer, aad: Buffer, out: Buffer, at: number): void {
    const nonce = out.subarray(at, at + NONCE_BYTES)
    randomFillSync(nonce)
    const wrapKey = deriveWrapKey(v.key, nonce)
    try {
      const cipher = createCipheriv(GCM, createSecretKey(wrapKey), ZERO_IV, GCM_OPTS)
      cipher.setAAD(aad)
      const ct = cipher.update(key)
      cipher.final()
      ct.copy(out, at + NONCE_BYTES + TAG_BYTES)
      cipher.getAuthTag().copy(out, at + NONCE_BYTES)
    } finally {
      wrapKey.fill(0)
    }
  }

  /** Inverse of #wrap; the caller zeroes the returned key. */
  #unwrap (v: LoadedVersion, wrapped: Buffer, aad: Buffer): Buffer {
    const wrapKey = deriveWrapKey(v.key, wrapped.subarray(0, NONCE_BYTES))
    let key: Buffer | undefined
    try {
      const decipher = createDecipheriv(GCM, createSecretKey(wrapKey), ZERO_IV, GCM_OPTS)
      decipher.setAAD(aad)
      decipher.setAuthTag(wrapped.subarray(NONCE_BYTES, NONCE_BYTES + TAG_BYTES))
      key = decipher.update(wrapped.subarray(NONCE_BYTES + TAG_BYTES, WRAPPED_BYTES))
      decipher.final()
      return key
    } catch {
      key?.fill(0)
      throw decryptFailed(this.#keyId)
    } finally {
      wrapKey.fill(0)
    }
  }

  // Both builders produce exactly canonicalJson({ c, f, k, p[, v] }) (keys already in sorted order; the purpose
  // strings need no escaping), without re-serialising the context for every AAD. keyring.test.ts checks the
  // bytes against canonicalJson through the documented format.
  #aad (purpose: string, format: number, ctx: Ctx, version: number): Buffer {
    return Buffer.from(`{"c":${ctx.json},"f":${format},"k":${this.#keyIdJson},"p":"${purpose}","v":${version}}`, 'utf8')
  }

  #payloadAad (ctx: Ctx): Buffer {
    return Buffer.from(`{"c":${ctx.json},"f":${FORMAT_ENVELOPE},"k":${this.#keyIdJson},"p":"thingward.kms.payload"}`, 'utf8')
  }

  #used (operation: KeyringOperation, version: number, ctx: Ctx): void {
    this.#onUse?.({ operation, keyId: this.#keyId, version, context: ctx.map })
  }
}

/**
 * Validates an encryption context and returns a frozen copy (so later mutation by the caller cannot split what
 * was bound from what is reported). Plain objects only, string keys and string values (AWS KMS: string→string).
 */
function checkContext (context: unknown): Ctx {
  if (typeof context !== 'object' || context === null || Array.isArray(context)) {
    throw new AppError('ERR_KMS_CONTEXT_INVALID', 'encryption context must be an object of string values')
  }
  const proto: unknown = Object.getPrototypeOf(context)
  if ((proto !== Object.prototype && proto !== null) || Object.getOwnPropertySymbols(context).length > 0) {
    throw new AppError('ERR_KMS_CONTEXT_INVALID', 'encryption context must be an object of string values')
  }
  const entries = Object.entries(context)
  for (const [k, v] of entries) {
    if (typeof v !== 'string') {
      throw new AppError('ERR_KMS_CONTEXT_INVALID', 'encryption context values must be strings', { key: k })
    }
  }
  // fromEntries defines own properties, so a `__proto__` key (e.g. from JSON.parse) is kept and bound, where
  // `copy[k] = v` would silently drop it and let a context with and without it decrypt alike.
  const copy = Object.fromEntries(entries) as Record<string, string>
  return { map: Object.freeze(copy), json: canonicalJson(copy) }
}

function asBuffer (blob: Uint8Array): Buffer {
  if (Buffer.isBuffer(blob)) return blob
  if (blob instanceof Uint8Array) return Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength)
  return EMPTY // not bytes at all: parses as a truncated blob and fails like one
}

function decryptFailed (keyId: string): AppError {
  return new AppError('ERR_KMS_DECRYPT_FAILED', 'ciphertext could not be decrypted', { keyId })
}

function deriveWrapKey (master: KeyObject, nonce: Buffer): Buffer {
  return createHmac('sha256', master).update(KDF_PREFIX).update(nonce).update(KDF_SUFFIX).digest()
}

function sealAad (keyId: string, version: number): Buffer {
  return Buffer.from(canonicalJson({ f: FORMAT_SEALED, k: keyId, p: 'thingward.kms.master-key', v: version }), 'utf8')
}

/** New random material for `version`, sealed under the KEK. The caller zeroes `material`. */
function createVersionRecord (kek: KeyObject, keyId: string, version: number, nowMs: number):
{ record: KeyVersionRecord, loaded: LoadedVersion, material: Buffer } {
  const material = randomBytes(KEY_BYTES)
  const sealed = Buffer.allocUnsafe(SEALED_BYTES)
  sealed[0] = FORMAT_SEALED
  const iv = sealed.subarray(1, 1 + IV_BYTES)
  randomFillSync(iv)
  const cipher = createCipheriv(GCM, kek, iv, GCM_OPTS)
  cipher.setAAD(sealAad(keyId, version))
  const ct = cipher.update(material)
  cipher.final()
  ct.copy(sealed, 1 + IV_BYTES + TAG_BYTES)
  cipher.getAuthTag().copy(sealed, 1 + IV_BYTES)
  const state = KeyVersionState.Enabled
  return {
    record: { keyId, version, sealed, state, createdMs: nowMs },
    loaded: { version, key: createSecretKey(material), state, createdMs: nowMs },
    material,
  }
}

function unsealRecord (kek: KeyObject, keyId: string, r: KeyVersionRecord): LoadedVersion {
  const s = r.sealed
  if (r.keyId !== keyId || !Number.isSafeInteger(r.version) || r.version < 1 || r.version > MAX_VERSION ||
    s.length !== SEALED_BYTES || s[0] !== FORMAT_SEALED) {
    throw new AppError('ERR_STORAGE_CORRUPT', 'sealed master key is malformed', { keyId, version: r.version })
  }
  let material: Buffer | undefined
  try {
    const decipher = createDecipheriv(GCM, kek, s.subarray(1, 1 + IV_BYTES), GCM_OPTS)
    decipher.setAAD(sealAad(keyId, r.version))
    decipher.setAuthTag(s.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES))
    material = decipher.update(s.subarray(1 + IV_BYTES + TAG_BYTES))
    decipher.final()
    return { version: r.version, key: createSecretKey(material), state: r.state, createdMs: r.createdMs }
  } catch {
    throw new AppError('ERR_KMS_MASTER_KEY_INVALID',
      'master key could not be unsealed: the key-encryption key (THINGWARD_MASTER_KEY or the key file) is not the one it was sealed with',
      { keyId, version: r.version })
  } finally {
    material?.fill(0)
  }
}
