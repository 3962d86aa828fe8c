import { NotFoundError, newAccessKeyId, newSecretAccessKey } from '../core/index.ts'
import type { LocalKeyring } from '../kms/index.ts'
import type { Caller, RegistryDeps } from './context.ts'
import type { AccessKey } from './types.ts'

export interface AccessKeyDeps extends RegistryDeps { readonly keyring: LocalKeyring }

const secretContext = (accessKeyId: string): Record<string, string> => ({ purpose: 'access-key-secret', accessKeyId })

/** How often last-used is written back per key; a signature check must not be a write every time. */
const TOUCH_INTERVAL_MS = 60_000

/**
 * Operator access keys for SigV4. Secrets are stored only sealed by the keyring (SigV4 needs the secret itself,
 * as AWS does, so it cannot be a one-way hash); unsealed secrets are cached in memory.
 */
export class AccessKeyService {
  readonly #d: AccessKeyDeps
  readonly #cache = new Map<string, { secret: string, userName: string, active: boolean, touchedMs: number }>()
  constructor (deps: AccessKeyDeps) { this.#d = deps }

  /** Creates a key; the secret is in the result only. */
  async create (caller: Caller, userName: string): Promise<{ accessKeyId: string, secretAccessKey: string }> {
    const accessKeyId = newAccessKeyId()
    const secretAccessKey = newSecretAccessKey()
    await this.#d.storage.transaction(async (u) => {
      const rec: AccessKey = {
        id: accessKeyId, userName, sealedSecret: this.#d.keyring.encrypt(Buffer.from(secretAccessKey), secretContext(accessKeyId)),
        status: 'Active', createdMs: this.#d.clock.nowMs(), lastUsedMs: undefined,
      }
      await u.store.putAccessKey(rec)
      await u.audit.append({ action: 'iam.CreateAccessKey', actor: caller.actor, outcome: 'success', target: `user/${userName}`, details: { accessKeyId }, sourceIp: caller.sourceIp, requestId: caller.requestId })
    })
    return { accessKeyId, secretAccessKey }
  }

  async setStatus (caller: Caller, accessKeyId: string, status: 'Active' | 'Inactive'): Promise<void> {
    await this.#d.storage.transaction(async (u) => {
      const k = await u.store.getAccessKey(accessKeyId)
      if (k === undefined) throw new NotFoundError('access key', accessKeyId)
      await u.store.putAccessKey({ ...k, status })
      await u.audit.append({ action: 'iam.UpdateAccessKey', actor: caller.actor, outcome: 'success', target: `user/${k.userName}`, details: { accessKeyId, status } })
    })
    this.#cache.delete(accessKeyId)
  }

  /** Resolves an active key's secret and owner, or undefined for unknown and inactive keys. */
  async resolve (accessKeyId: string): Promise<{ secretAccessKey: string, userName: string } | undefined> {
    let c = this.#cache.get(accessKeyId)
    if (c === undefined) {
      const k = await this.#d.storage.read(s => s.getAccessKey(accessKeyId))
      if (k === undefined) return undefined
      c = { secret: this.#d.keyring.decrypt(k.sealedSecret, secretContext(k.id)).toString(), userName: k.userName, active: k.status === 'Active', touchedMs: k.lastUsedMs ?? 0 }
      this.#cache.set(accessKeyId, c)
    }
    if (!c.active) return undefined
    return { secretAccessKey: c.secret, userName: c.userName }
  }

  /** Records last use, at most once a minute per key. */
  async touch (accessKeyId: string): Promise<void> {
    const c = this.#cache.get(accessKeyId)
    const now = this.#d.clock.nowMs()
    if (c === undefined || now - c.touchedMs < TOUCH_INTERVAL_MS) return
    c.touchedMs = now
    await this.#d.storage.transaction(async (u) => { await u.store.touchAccessKey(accessKeyId, now) })
  }
}
