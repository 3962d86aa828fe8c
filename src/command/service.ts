import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, sign, verify } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { AppError, InvalidRequestError, canonicalJson, filterSyntaxProblem, levelsMatch } from '../core/index.ts'
import type { Clock } from '../core/index.ts'
import type { LocalKeyring } from '../kms/index.ts'
import type { Caller, RegistryStorage } from '../registry/index.ts'

/** The reserved topic on which the gateway publishes (retained) the command verification keys as a JWKS. */
export const COMMAND_KEYS_TOPIC = '$thingward/command-keys'
/** MQTT 5 user property carrying the command token (MQTT 5 §3.3.2.3.7). */
export const COMMAND_TOKEN_PROPERTY = 'thingward-command-token'
/** Longest lifetime of a command token: a captured command cannot be replayed for long. */
export const MAX_COMMAND_TOKEN_TTL_SEC = 60

const META_FILTERS = 'command.sensitive_filters'
const META_KEY = 'command.signing_key'
const keyContext = { purpose: 'command-signing-key' }

/** The claims of a command token (JWS ES256, RFC 7515 compact serialization, RFC 7518 §3.4). */
export interface CommandClaims {
  /** The operator who sent the command (after MFA). */
  readonly sub: string
  readonly topic: string
  /** base64url SHA-256 of the payload bytes. */
  readonly payloadSha256: string
  readonly iat: number
  readonly exp: number
  readonly jti: string
  readonly mfa: true
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url')

/** Checks one filter: non-empty, `#` only last and alone in its level, `+` alone in its level (MQTT 5 §4.7.1). */
function checkFilter (f: unknown, i: number): string {
  if (typeof f !== 'string' || f.length === 0 || f.length > 256) throw new InvalidRequestError('each topic filter must be a string of 1-256 characters', { field: `filters[${i}]` })
  const problem = filterSyntaxProblem(f)
  if (problem === 'null-char') throw new InvalidRequestError('invalid topic filter: no NUL character', { field: `filters[${i}]` })
  if (problem !== undefined) throw new InvalidRequestError('invalid topic filter: # must be a whole last level and + a whole level', { field: `filters[${i}]` })
  return f
}

/**
 * MFA-gated commands (the seed's door locks). Topic filters marked sensitive can be published to only through the
 * data plane, by an operator whose credentials carry MFA; the gateway then attaches a short-lived command token
 * signed with an ECDSA P-256 key held sealed by the keyring, and devices verify it with the public key published
 * on {@link COMMAND_KEYS_TOPIC}. Devices can never publish to sensitive topics, whatever their policy says.
 */
export class CommandService {
  readonly #storage: RegistryStorage
  readonly #keyring: LocalKeyring
  readonly #clock: Clock
  #filters: string[] | undefined
  #compiled: Array<readonly string[]> = []
  #key: { kid: string, privateKey: KeyObject, publicKey: KeyObject } | undefined
  #generation = 0

  constructor (deps: { storage: RegistryStorage, keyring: LocalKeyring, clock: Clock }) {
    this.#storage = deps.storage
    this.#keyring = deps.keyring
    this.#clock = deps.clock
  }

  /** Loads the filters and the signing key (creating the key, sealed, on first use). */
  async load (): Promise<void> {
    const stored = await this.#storage.read(async s => ({ filters: await s.getMeta(META_FILTERS), key: await s.getMeta(META_KEY) }))
    this.#filters = stored.filters === undefined ? [] : JSON.parse(stored.filters) as string[]
    this.#compiled = this.#filters.map(f => f.split('/'))
    this.#generation++
    if (stored.key !== undefined) { this.#key = this.#unseal(stored.key); return }
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const kid = randomUUID()
    const sealed = JSON.stringify({ kid, key: this.#keyring.encrypt(privateKey.export({ type: 'pkcs8', format: 'der' }), { ...keyContext, kid }).toString('base64') })
    const winner = await this.#storage.transaction(async (u) => {
      const existing = await u.store.getMeta(META_KEY)
      if (existing !== undefined) return existing
      await u.store.putMeta(META_KEY, sealed)
      await u.audit.append({ action: 'thingward.CreateCommandSigningKey', actor: 'system', outcome: 'success', details: { kid } })
      return sealed
    })
    this.#key = this.#unseal(winner)
  }

  #unseal (stored: string): { kid: string, privateKey: KeyObject, publicKey: KeyObject } {
    const { kid, key } = JSON.parse(stored) as { kid: string, key: string }
    const privateKey = createPrivateKey({ key: this.#keyring.decrypt(Buffer.from(key, 'base64'), { ...keyContext, kid }), format: 'der', type: 'pkcs8' })
    return { kid, privateKey, publicKey: createPublicKey(privateKey) }
  }

  #loaded (): { filters: string[], key: { kid: string, privateKey: KeyObject, publicKey: KeyObject } } {
    if (this.#filters === undefined || this.#key === undefined) throw new AppError('ERR_INTERNAL', 'command service used before load()')
    return { filters: this.#filters, key: this.#key }
  }

  /** Topic filters marked sensitive. */
  get sensitiveFilters (): readonly string[] { return this.#loaded().filters }

  /** Bumped whenever the sensitive filters change, so that decisions remembered under the old ones are dropped. */
  get sensitiveGeneration (): number { return this.#generation }

  /** True when `topic` falls under a sensitive filter. Hot path for device publishes: no allocation. */
  isSensitive (topic: string): boolean {
    const compiled = this.#compiled
    for (let i = 0; i < compiled.length; i++) if (levelsMatch(compiled[i], topic)) return true
    return false
  }

  /** Replaces the sensitive filters (audited). */
  async setSensitiveFilters (caller: Caller, input: unknown): Promise<string[]> {
    if (!Array.isArray(input) || input.length > 100) throw new InvalidRequestError('filters must be a list of at most 100 topic filters', { field: 'filters' })
    const filters = [...new Set(input.map((f, i) => checkFilter(f, i)))]
    await this.#storage.transaction(async (u) => {
      await u.store.putMeta(META_FILTERS, JSON.stringify(filters))
      await u.audit.append({ action: 'thingward.SetSensitiveTopics', actor: caller.actor, outcome: 'success', sourceIp: caller.sourceIp, requestId: caller.requestId, details: { filters } })
    })
    this.#filters = filters
    this.#compiled = filters.map(f => f.split('/'))
    this.#generation++
    return filters
  }

  /** The public verification keys as a JWKS (RFC 7517), for devices. */
  jwks (): { keys: Array<Record<string, string>> } {
    const { key } = this.#loaded()
    const jwk = key.publicKey.export({ format: 'jwk' }) as Record<string, string>
    return { keys: [{ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, kid: key.kid, alg: 'ES256', use: 'sig' }] }
  }

  /** Signs a command token for `operator` publishing `payload` to `topic`, valid `ttlSec` (≤ 60) seconds. */
  issueToken (operator: string, topic: string, payload: Buffer, ttlSec = MAX_COMMAND_TOKEN_TTL_SEC): string {
    const { key } = this.#loaded()
    const iat = Math.floor(this.#clock.nowMs() / 1000)
    const claims: CommandClaims = {
      sub: operator, topic, payloadSha256: b64url(createHash('sha256').update(payload).digest()), iat,
      exp: iat + Math.min(MAX_COMMAND_TOKEN_TTL_SEC, Math.max(1, ttlSec)), jti: randomUUID(), mfa: true,
    }
    const signingInput = `${b64url(canonicalJson({ alg: 'ES256', kid: key.kid, typ: 'JWT' }))}.${b64url(canonicalJson(claims))}`
    // RFC 7518 §3.4: ES256 signatures are R||S (64 bytes), not DER.
    const sig = sign('sha256', Buffer.from(signingInput), { key: key.privateKey, dsaEncoding: 'ieee-p1363' })
    return `${signingInput}.${b64url(sig)}`
  }
}

/**
 * What a device does with a command: verifies the token's ES256 signature against the JWKS, its expiry, and
 * that it covers exactly this topic and these payload bytes. Returns the claims, or a reason for refusing.
 */
export function verifyCommandToken (token: string, jwks: { keys: Array<Record<string, string>> }, topic: string, payload: Buffer, nowMs: number): { ok: true, claims: CommandClaims } | { ok: false, reason: string } {
  const parts = token.split('.')
  if (parts.length !== 3) return { ok: false, reason: 'malformed' }
  let header: { alg?: string, kid?: string }
  let claims: CommandClaims
  try {
    header = JSON.parse(Buffer.from(parts[0], 'base64url').toString()) as { alg?: string, kid?: string }
    claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString()) as CommandClaims
  } catch { return { ok: false, reason: 'malformed' } }
  if (header.alg !== 'ES256') return { ok: false, reason: 'algorithm' }
  const jwk = jwks.keys.find(k => k.kid === header.kid)
  if (jwk === undefined) return { ok: false, reason: 'unknown-key' }
  const publicKey = createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, format: 'jwk' })
  if (!verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), { key: publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(parts[2], 'base64url'))) return { ok: false, reason: 'signature' }
  const now = Math.floor(nowMs / 1000)
  if (typeof claims.exp !== 'number' || now > claims.exp) return { ok: false, reason: 'expired' }
  if (claims.exp - claims.iat > MAX_COMMAND_TOKEN_TTL_SEC) return { ok: false, reason: 'lifetime' }
  if (claims.topic !== topic) return { ok: false, reason: 'topic' }
  if (claims.payloadSha256 !== createHash('sha256').update(payload).digest('base64url')) return { ok: false, reason: 'payload' }
  return { ok: true, claims }
}
