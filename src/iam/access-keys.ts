import { AppError, newAccessKeyId, newSecretAccessKey } from '../core/index.ts'
import { iamArn } from './arns.ts'
import { IAM_CACHE_MAX_AGE_MS } from './authorizer.ts'
import type { IamDeps } from './context.ts'
import { auditChange, commit } from './context.ts'
import { noSuchEntity } from './errors.ts'
import type { IamUnit } from './ports.ts'
import type { AccessKeyStatus, IamAccessKey, IamCaller } from './types.ts'

const secretContext = (accessKeyId: string): Record<string, string> => ({ purpose: 'access-key-secret', accessKeyId })

/** How often last-used is written back per key: a signature check must not be a write every time. */
const TOUCH_INTERVAL_MS = 60_000

/** IAM UG `reference_iam-quotas`: access keys per user. */
export const MAX_ACCESS_KEYS_PER_USER = 2

/** An access key as listed: never the secret. */
export interface AccessKeyMetadata {
  readonly accessKeyId: string
  readonly userName: string
  readonly status: AccessKeyStatus
  readonly createDate: number
  /** AWS GetAccessKeyLastUsed. */
  readonly lastUsed: { readonly date: number | undefined, readonly serviceName: string, readonly region: string }
}

/** The listable view of a key (no secret). */
export const keyMetadata = (k: IamAccessKey): AccessKeyMetadata => ({
  accessKeyId: k.id, userName: k.userName, status: k.status, createDate: k.createdMs,
  // AWS reports "N/A" for a key never used.
  lastUsed: { date: k.lastUsedMs, serviceName: k.lastUsedService ?? 'N/A', region: k.lastUsedRegion ?? 'N/A' },
})

interface Cached { secret: string, userName: string, active: boolean, touchedMs: number, generation: number, loadedMs: number }

/**
 * Managed long-term access keys (`AKIA…`) for SigV4 (issue #5): create, rotate, activate/deactivate, delete,
 * last used. Secrets are stored only sealed by the keyring (SigV4 needs the secret itself, as in AWS, so it
 * cannot be a one-way hash); the secret is returned once, at creation. Unsealed secrets are cached in memory and
 * dropped when IAM changes.
 */
export class AccessKeyService {
  readonly #d: IamDeps
  readonly #cache = new Map<string, Cached>()
  constructor (deps: IamDeps) { this.#d = deps }

  /** IAM CreateAccessKey: the secret is in the result only. At most two keys per user (AWS quota). */
  async create (caller: IamCaller, userName: string): Promise<{ accessKeyId: string, secretAccessKey: string }> {
    return commit(this.#d, async (u) => {
      if (await u.store.getUser(userName) === undefined) throw noSuchEntity('user', userName)
      if ((await u.store.listAccessKeys(userName)).length >= MAX_ACCESS_KEYS_PER_USER) {
        throw new AppError('ERR_IAM_LIMIT_EXCEEDED', 'a user has at most 2 access keys: delete one first', { userName })
      }
      return this.#insert(u, caller, userName)
    })
  }

  async #insert (u: IamUnit, caller: IamCaller, userName: string): Promise<{ accessKeyId: string, secretAccessKey: string }> {
    const accessKeyId = newAccessKeyId('AKIA')
    const secretAccessKey = newSecretAccessKey()
    const rec: IamAccessKey = {
      id: accessKeyId, userName, sealedSecret: this.#d.sealer.encrypt(Buffer.from(secretAccessKey), secretContext(accessKeyId)),
      status: 'Active', createdMs: this.#d.clock.nowMs(), lastUsedMs: undefined, lastUsedService: undefined, lastUsedRegion: undefined,
    }
    await u.store.putAccessKey(rec)
    await auditChange(u, caller, 'iam.CreateAccessKey', iamArn(this.#d.arn.accountId, 'user', userName), { accessKeyId })
    return { accessKeyId, secretAccessKey }
  }

  /**
   * Rotation in one step (IAM UG `id_credentials_access-keys_rotate`: create the second key, switch, deactivate the
   * first): a new key is created and the old one deactivated in the same transaction. The old key stays, inactive,
   * so it can be re-activated if something still used it, then deleted.
   */
  async rotate (caller: IamCaller, userName: string, accessKeyId: string): Promise<{ accessKeyId: string, secretAccessKey: string }> {
    return commit(this.#d, async (u) => {
      const old = await u.store.getAccessKey(accessKeyId)
      if (old === undefined || old.userName !== userName) throw this.#noSuch(accessKeyId)
      const keys = await u.store.listAccessKeys(userName)
      if (keys.length >= MAX_ACCESS_KEYS_PER_USER) throw new AppError('ERR_IAM_LIMIT_EXCEEDED', 'a user has at most 2 access keys: delete the other key before rotating', { userName })
      const fresh = await this.#insert(u, caller, userName)
      await u.store.putAccessKey({ ...old, status: 'Inactive' })
      await auditChange(u, caller, 'iam.UpdateAccessKey', iamArn(this.#d.arn.accountId, 'user', userName), { accessKeyId, status: 'Inactive', rotatedTo: fresh.accessKeyId })
      return fresh
    })
  }

  /** IAM UpdateAccessKey (Active / Inactive). `userName`, when given, must own the key. */
  async setStatus (caller: IamCaller, accessKeyId: string, status: unknown, userName?: string): Promise<void> {
    if (status !== 'Active' && status !== 'Inactive') throw new AppError('ERR_IAM_INVALID_INPUT', 'status must be Active or Inactive', { field: 'status' })
    await commit(this.#d, async (u) => {
      const k = await u.store.getAccessKey(accessKeyId)
      if (k === undefined || (userName !== undefined && k.userName !== userName)) throw this.#noSuch(accessKeyId)
      await u.store.putAccessKey({ ...k, status })
      await auditChange(u, caller, 'iam.UpdateAccessKey', iamArn(this.#d.arn.accountId, 'user', k.userName), { accessKeyId, status })
    })
  }

  /** IAM DeleteAccessKey. */
  async delete (caller: IamCaller, accessKeyId: string, userName?: string): Promise<void> {
    await commit(this.#d, async (u) => {
      const k = await u.store.getAccessKey(accessKeyId)
      if (k === undefined || (userName !== undefined && k.userName !== userName)) throw this.#noSuch(accessKeyId)
      await u.store.deleteAccessKey(accessKeyId)
      await auditChange(u, caller, 'iam.DeleteAccessKey', iamArn(this.#d.arn.accountId, 'user', k.userName), { accessKeyId })
    })
  }

  /** IAM ListAccessKeys, with last-used data. */
  async list (userName: string): Promise<AccessKeyMetadata[]> {
    return this.#d.storage.read(async (s) => {
      if (await s.getUser(userName) === undefined) throw noSuchEntity('user', userName)
      return (await s.listAccessKeys(userName)).map(keyMetadata)
    })
  }

  /** IAM GetAccessKeyLastUsed. */
  async describe (accessKeyId: string, userName?: string): Promise<AccessKeyMetadata> {
    const k = await this.#d.storage.read(s => s.getAccessKey(accessKeyId))
    if (k === undefined || (userName !== undefined && k.userName !== userName)) throw this.#noSuch(accessKeyId)
    return keyMetadata(k)
  }

  #noSuch (accessKeyId: string): AppError {
    return noSuchEntity('access key', accessKeyId)
  }

  /** Resolves an active key's secret and owner, or undefined for unknown and inactive keys. */
  async resolve (accessKeyId: string): Promise<{ secretAccessKey: string, userName: string } | undefined> {
    const now = this.#d.clock.nowMs()
    let c = this.#cache.get(accessKeyId)
    if (c === undefined || c.generation !== this.#d.cache.generation || now - c.loadedMs > IAM_CACHE_MAX_AGE_MS) {
      const generation = this.#d.cache.generation
      const k = await this.#d.storage.read(s => s.getAccessKey(accessKeyId))
      if (k === undefined) { this.#cache.delete(accessKeyId); return undefined }
      c = {
        secret: this.#d.sealer.decrypt(k.sealedSecret, secretContext(k.id)).toString(), userName: k.userName, active: k.status === 'Active',
        touchedMs: Math.max(c?.touchedMs ?? 0, k.lastUsedMs ?? 0), generation, loadedMs: now,
      }
      if (this.#cache.size > 10_000) this.#cache.clear()
      this.#cache.set(accessKeyId, c)
    }
    if (!c.active) return undefined
    return { secretAccessKey: c.secret, userName: c.userName }
  }

  /** Records last use (time, signing service, region), at most once a minute per key. Not audited: not a change. */
  async touch (accessKeyId: string, service = 'iot', region = this.#d.arn.region): Promise<void> {
    const c = this.#cache.get(accessKeyId)
    const now = this.#d.clock.nowMs()
    if (c === undefined || now - c.touchedMs < TOUCH_INTERVAL_MS) return
    c.touchedMs = now
    await this.#d.storage.transaction(async (u) => { await u.store.touchAccessKey(accessKeyId, now, service, region) })
  }
}
