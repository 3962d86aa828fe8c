/**
 * Operator identities (issue #5): IAM users, groups, roles, identity policies, access keys, MFA devices and
 * temporary (STS) sessions. Plain immutable data; the services in this module own every rule about them.
 */

/** Who asked, for the audit record (the same shape as the registry's `Caller`). */
export interface IamCaller {
  readonly actor: string
  readonly sourceIp?: string
  readonly requestId?: string
}

/** The system itself (`thingward init`, migrations). */
export const IAM_SYSTEM_CALLER: IamCaller = { actor: 'system' }

/** Tags of a user or role, visible to policies as `aws:PrincipalTag/<key>` (IAM UG `reference_policies_condition-keys`). */
export type Tags = Readonly<Record<string, string>>

/**
 * An IAM user: a person or automation. `passwordHash` is the RFC 7914 scrypt hash of its console/CLI password
 * (AWS calls it the "login profile"); a user without one can sign in only with access keys. There is no default
 * password anywhere.
 */
export interface IamUser {
  readonly name: string
  /** AWS-shaped unique id (`AIDA…`), stable across renames and reported as `aws:userid`. */
  readonly id: string
  readonly createdMs: number
  readonly tags: Tags
  readonly passwordHash: string | undefined
  readonly passwordChangedMs: number | undefined
}

/** A group of users; policies attached to it apply to every member. */
export interface IamGroup {
  readonly name: string
  readonly id: string
  readonly createdMs: number
}

/**
 * A role: a set of policies that users are assigned (role-based access) or that principals assume through STS
 * AssumeRole when its trust policy allows them. Built-in roles (admin, operator, provisioner, auditor) are not
 * stored: they come from code, like AWS managed policies, so upgrades can refine them.
 */
export interface IamRole {
  readonly name: string
  /** `AROA…`. */
  readonly id: string
  readonly description: string | undefined
  /** The trust policy (IAM UG `id_roles_terms-and-concepts`: "role trust policy"), a JSON document with `Principal`. */
  readonly trustPolicy: string
  /** Upper bound of AssumeRole `DurationSeconds` (IAM UG `id_roles_use`: 1 h default, 12 h maximum). */
  readonly maxSessionSec: number
  readonly createdMs: number
  readonly tags: Tags
  readonly builtin: boolean
}

/** An identity policy (AWS "customer managed policy"); built-in ones are code and cannot be changed or deleted. */
export interface IamPolicy {
  readonly name: string
  /** `ANPA…`. */
  readonly id: string
  readonly description: string | undefined
  readonly document: string
  /** Incremented by every update. */
  readonly version: number
  readonly createdMs: number
  readonly updatedMs: number
  readonly builtin: boolean
}

/** What a policy is attached to. */
export const AttachmentType = { User: 'user', Group: 'group', Role: 'role' } as const
export type AttachmentType = (typeof AttachmentType)[keyof typeof AttachmentType]

/** AWS access key status values (IAM API `statusType`). */
export const AccessKeyStatus = { Active: 'Active', Inactive: 'Inactive' } as const
export type AccessKeyStatus = (typeof AccessKeyStatus)[keyof typeof AccessKeyStatus]

/**
 * A long-term access key (`AKIA…`) for SigV4. The secret is stored only sealed by the keyring: SigV4 verification
 * needs the secret itself (HMAC), so it cannot be a one-way hash (as in AWS).
 */
export interface IamAccessKey {
  readonly id: string
  readonly userName: string
  readonly sealedSecret: Buffer
  readonly status: AccessKeyStatus
  readonly createdMs: number
  /** AWS GetAccessKeyLastUsed: date, service signing name and region of the last authenticated request. */
  readonly lastUsedMs: number | undefined
  readonly lastUsedService: string | undefined
  readonly lastUsedRegion: string | undefined
}

/** A virtual MFA device (RFC 6238 TOTP). `pending` until the user proves possession with a valid code. */
export interface MfaDevice {
  readonly userName: string
  /** The shared secret, sealed by the keyring (TOTP needs the secret itself). */
  readonly sealedSecret: Buffer
  readonly status: 'pending' | 'active'
  /**
   * The last accepted RFC 6238 time step; codes of this step and earlier are refused, so an observed code cannot
   * be replayed (RFC 6238 §5.2: "the verifier MUST NOT accept the second attempt of the OTP").
   */
  readonly lastStep: number
  readonly createdMs: number
  readonly enabledMs: number | undefined
}

/** Where a temporary session came from. */
export const SessionOrigin = { GetSessionToken: 'GetSessionToken', AssumeRole: 'AssumeRole', Login: 'Login' } as const
export type SessionOrigin = (typeof SessionOrigin)[keyof typeof SessionOrigin]

/**
 * Temporary credentials (STS): an `ASIA…` key id, a sealed secret and the SHA-256 of the session token. The
 * token itself is 256 random bits given to the client once; it is compared by hash, so the database never holds
 * a usable token.
 */
export interface StsSession {
  readonly accessKeyId: string
  readonly sealedSecret: Buffer
  readonly tokenHash: string
  readonly principalType: 'user' | 'role'
  /** The user name, or the role name for an assumed role. */
  readonly principalName: string
  /** AssumeRole `RoleSessionName`. */
  readonly sessionName: string | undefined
  /** The user on whose authority the session exists (the caller of GetSessionToken/AssumeRole, the signed-in user). */
  readonly sourceUser: string | undefined
  /** True only when a valid MFA code was given for this session (or the session it was derived from). */
  readonly mfa: boolean
  readonly mfaMs: number | undefined
  readonly origin: SessionOrigin
  readonly createdMs: number
  readonly expiresMs: number
  readonly sourceIp: string | undefined
}

/** An authenticated operator principal, as the HTTP edge and the authorizer see it. */
export interface Principal {
  /** IAM UG `reference_policies_condition-keys` aws:PrincipalType values. */
  readonly type: 'User' | 'AssumedRole'
  /** User ARN, or the assumed-role session ARN (`arn:aws:sts::<acct>:assumed-role/<role>/<session>`). */
  readonly arn: string
  /** The user or role name. */
  readonly name: string
  /** aws:userid: the user id, or `<role id>:<session name>`. */
  readonly userId: string
  /** The audit actor: `user/<name>` or `assumed-role/<role>/<session>`. */
  readonly actor: string
  readonly accessKeyId: string
  /** True for temporary credentials. */
  readonly temporary: boolean
  /**
   * aws:MultiFactorAuthPresent. Undefined for long-term access keys: AWS does not set the key for requests
   * signed with them (IAM UG `reference_policies_condition-keys`, aws:MultiFactorAuthPresent).
   */
  readonly mfa: boolean | undefined
  readonly mfaMs: number | undefined
  readonly tokenIssueMs: number | undefined
  readonly expiresMs: number | undefined
  /** The user behind the principal (the user itself, or the user that assumed the role). */
  readonly sourceUser: string | undefined
  readonly tags: Tags
}

/** A page of results with an opaque continuation marker (AWS IAM `Marker`). */
export interface Page<T> {
  readonly items: T[]
  readonly marker: string | undefined
}
