import type { AuditEventInput } from '../audit/index.ts'
import type { ArnContext, Clock } from '../core/index.ts'
import type { IamCacheState } from './authorizer.ts'
import type { IamStorage, IamUnit, SecretSealer } from './ports.ts'
import type { IamCaller } from './types.ts'

/** Dependencies every IAM service receives (EXAMPLES.md #3). */
export interface IamDeps {
  readonly storage: IamStorage
  readonly clock: Clock
  readonly arn: ArnContext
  /** Seals access key secrets, session secrets and TOTP seeds. */
  readonly sealer: SecretSealer
  readonly cache: IamCacheState
  /** Records an event that is not part of a state change (refused sign-ins, lockouts). */
  readonly record: (e: AuditEventInput) => Promise<void>
  /** scrypt cost (log2 N) for new password hashes; default SCRYPT_LOG_N. */
  readonly scryptLogN?: number
  /** The issuer shown in authenticator apps. */
  readonly totpIssuer?: string
}

/** Appends the audit event of an IAM change inside its transaction. */
export async function auditChange (u: IamUnit, caller: IamCaller, action: string, target: string, details?: Record<string, unknown>): Promise<void> {
  await u.audit.append({
    action, actor: caller.actor, outcome: 'success', target,
    ...(caller.sourceIp === undefined ? {} : { sourceIp: caller.sourceIp }),
    ...(caller.requestId === undefined ? {} : { requestId: caller.requestId }),
    ...(details === undefined ? {} : { details }),
  })
}

/**
 * Commits an IAM change, then invalidates every IAM cache (so the next request sees it). For anything a cache
 * holds: users, groups, roles, policies and their attachments, access keys, removed sessions.
 */
export async function commit<T> (deps: IamDeps, fn: (u: IamUnit) => Promise<T>): Promise<T> {
  try {
    return await deps.storage.transaction(fn)
  } finally {
    deps.cache.bump()
  }
}

/**
 * Commits writes that no IAM cache holds, and keeps the caches: new sessions (with the sweep of long-expired
 * ones), MFA devices and their last accepted step, recovery codes. Sign-in, GetSessionToken and AssumeRole are
 * frequent; invalidating there would make every principal's next request re-read storage, unseal its secret and
 * recompile its policies.
 */
export function commitKeepingCaches<T> (deps: IamDeps, fn: (u: IamUnit) => Promise<T>): Promise<T> {
  return deps.storage.transaction(fn)
}
