import type { AuditEventInput } from '../audit/index.ts'
import type { ArnContext, ErrorCode } from '../core/index.ts'
import { AppError } from '../core/index.ts'
import type { AccessKeyService } from './access-keys.ts'
import { iamArn } from './arns.ts'
import type { IamAuthorizer } from './authorizer.ts'
import type { StsService } from './sts.ts'
import type { AuthThrottle } from './throttle.ts'
import type { Principal } from './types.ts'

/** Dependencies of {@link IamAuthenticator}. */
export interface IamAuthenticatorDeps {
  readonly accessKeys: AccessKeyService
  readonly sts: StsService
  readonly authorizer: IamAuthorizer
  /** Signature failures, per access key and per address. */
  readonly throttle: AuthThrottle
  readonly arn: ArnContext
  readonly record: (e: AuditEventInput) => Promise<void>
}

/** Failures that count towards a lockout: wrong signatures, unknown keys, wrong session tokens (guessing). */
const COUNTED: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['ERR_AUTH_SIGNATURE_MISMATCH', 'ERR_AUTH_UNKNOWN_KEY', 'ERR_AUTH_INVALID_TOKEN'])

const lockedOut = (): AppError => new AppError('ERR_AUTH_LOCKED_OUT', 'too many failed authentication attempts: try again later')

/**
 * Turns SigV4 credentials into a {@link Principal}: long-term keys (`AKIA…`, the user; aws:MultiFactorAuthPresent
 * absent, as in AWS) and temporary ones (`ASIA…`, which require their session token). Signature failures are
 * throttled per access key and per source address with lockout (issue #5); a lockout is audited.
 */
export class IamAuthenticator {
  readonly #d: IamAuthenticatorDeps
  constructor (deps: IamAuthenticatorDeps) { this.#d = deps }

  /** Refuses a request from a locked-out address before any work. */
  checkAddress (sourceIp: string | undefined): void {
    if (this.#d.throttle.locked(undefined, sourceIp) !== undefined) throw lockedOut()
  }

  /** The signing secret of a key (SigV4 lookup); undefined for unknown and inactive keys. */
  async secret (accessKeyId: string): Promise<string | undefined> {
    if (this.#d.throttle.locked(`key:${accessKeyId}`, undefined) !== undefined) throw lockedOut()
    if (accessKeyId.startsWith('ASIA')) return this.#d.sts.sessionSecret(accessKeyId)
    return (await this.#d.accessKeys.resolve(accessKeyId))?.secretAccessKey
  }

  /** The principal behind a key whose signature was verified. */
  async principal (accessKeyId: string, sessionToken: string | undefined): Promise<Principal> {
    if (accessKeyId.startsWith('ASIA')) return this.#d.sts.sessionPrincipal(accessKeyId, sessionToken)
    // A long-term key never carries a session token (AWS: "The security token included in the request is invalid").
    if (sessionToken !== undefined) throw new AppError('ERR_AUTH_INVALID_TOKEN', 'the security token included in the request is invalid', { accessKeyId })
    const key = await this.#d.accessKeys.resolve(accessKeyId)
    const view = key === undefined ? undefined : await this.#d.authorizer.view('user', key.userName)
    if (key === undefined || view === undefined) throw new AppError('ERR_AUTH_UNKNOWN_KEY', 'the security token included in the request is invalid: unknown access key', { accessKeyId })
    return {
      type: 'User', arn: iamArn(this.#d.arn.accountId, 'user', key.userName), name: key.userName, userId: view.id, actor: `user/${key.userName}`,
      accessKeyId, temporary: false, mfa: undefined, mfaMs: undefined, tokenIssueMs: undefined, expiresMs: undefined, sourceUser: key.userName, tags: view.tags,
    }
  }

  /** Ends the signature lockouts of some access keys early (administrators; address lockouts run their course). */
  unlock (accessKeyIds: readonly string[]): void {
    for (const id of accessKeyIds) this.#d.throttle.unlock(`key:${id}`)
  }

  /** Counts a failed authentication; audits a lockout when it starts one. */
  async failed (code: ErrorCode, accessKeyId: string | undefined, sourceIp: string | undefined, requestId: string | undefined): Promise<void> {
    if (!COUNTED.has(code)) return
    const outcome = this.#d.throttle.fail(accessKeyId === undefined ? undefined : `key:${accessKeyId}`, sourceIp)
    if (outcome.lockedPrincipalUntilMs === undefined && outcome.lockedAddressUntilMs === undefined) return
    await this.#d.record({
      action: 'iam.Lockout', actor: 'system', outcome: 'denied', kind: 'request', sourceIp, requestId, reason: 'too-many-failures',
      ...(accessKeyId === undefined ? {} : { target: `accessKey/${accessKeyId}` }),
      details: { credential: 'signature', ...outcome },
    })
  }
}
