/**
 * Operator identities (issue #5): IAM users, groups, roles and identity policies evaluated by the policy engine,
 * managed access keys, TOTP MFA (RFC 6238) with recovery codes, password sign-in (RFC 7914 scrypt), STS
 * temporary credentials (GetSessionToken, AssumeRole) and authentication throttling with lockout. No I/O: storage
 * and the keyring are reached through `ports.ts`.
 */
export * from './types.ts'
export type * from './ports.ts'
export * from './arns.ts'
export * from './builtin.ts'
export * from './password.ts'
export * from './totp.ts'
export * from './throttle.ts'
export * from './authorizer.ts'
export * from './trust.ts'
export * from './context.ts'
export * from './service.ts'
export * from './access-keys.ts'
export * from './sts.ts'
export * from './credentials.ts'

import type { AccessKeyService } from './access-keys.ts'
import type { IamAuthorizer } from './authorizer.ts'
import type { IamAuthenticator } from './credentials.ts'
import type { IamService } from './service.ts'
import type { StsService } from './sts.ts'

/** The IAM services the HTTP edge needs (built in app.ts). */
export interface IamServices {
  readonly users: IamService
  readonly accessKeys: AccessKeyService
  readonly sts: StsService
  readonly authorizer: IamAuthorizer
  readonly authenticator: IamAuthenticator
}
