import { AppError } from '../core/index.ts'

/**
 * IAM and STS ARNs (IAM UG `reference_identifiers`: IAM ARNs have an empty region field) and name rules
 * (IAM UG `reference_iam-quotas`, "IAM name requirements").
 */

export type IamResourceType = 'user' | 'group' | 'role' | 'policy' | 'mfa'

/** `arn:aws:iam::<acct>:<type>/<name>`. */
export const iamArn = (accountId: string, type: IamResourceType, name: string): string => `arn:aws:iam::${accountId}:${type}/${name}`

/** `arn:aws:iam::<acct>:root`: the account as a principal in a trust policy. */
export const accountRootArn = (accountId: string): string => `arn:aws:iam::${accountId}:root`

/** IAM UG `id_roles_use_revoke-sessions` / STS AssumeRole `AssumedRoleUser.Arn`. */
export const assumedRoleArn = (accountId: string, roleName: string, sessionName: string): string =>
  `arn:aws:sts::${accountId}:assumed-role/${roleName}/${sessionName}`

/** Parses `arn:aws:iam::<acct>:role/<name>`; undefined for anything else. */
export function parseRoleArn (arn: string): { accountId: string, roleName: string } | undefined {
  const m = /^arn:aws:iam::(\d{12}|[0-9a-z-]{1,64}):role\/(?:[\w+=,.@/-]*\/)?([\w+=,.@-]{1,64})$/.exec(arn)
  return m === null ? undefined : { accountId: m[1], roleName: m[2] }
}

const NAME_RE = /^[\w+=,.@-]+$/

/** Maximum name lengths (IAM UG `reference_iam-quotas`). */
export const NAME_MAX = { user: 64, group: 128, role: 64, policy: 128 } as const

/** Validates a user, group, role or policy name. Throws ERR_IAM_INVALID_INPUT naming the field. */
export function checkName (v: unknown, kind: keyof typeof NAME_MAX, field: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > NAME_MAX[kind] || !NAME_RE.test(v)) {
    throw new AppError('ERR_IAM_INVALID_INPUT', 'names are 1 to 64 (users, roles) or 128 (groups, policies) characters of letters, digits and +=,.@_-', { field })
  }
  return v
}

/** STS `RoleSessionName`: 2 to 64 characters of `[\w+=,.@-]`. */
export function checkSessionName (v: unknown): string {
  if (typeof v !== 'string' || v.length < 2 || v.length > 64 || !NAME_RE.test(v)) {
    throw new AppError('ERR_IAM_INVALID_INPUT', 'RoleSessionName must be 2 to 64 characters of letters, digits and +=,.@_-', { field: 'RoleSessionName' })
  }
  return v
}

/** Tags: at most 50, keys 1-128 and values 0-256 characters (IAM UG `id_tags`, "Tagging rules"). */
export function checkTags (v: unknown): Record<string, string> {
  if (v === undefined || v === null) return {}
  if (typeof v !== 'object' || Array.isArray(v)) throw new AppError('ERR_IAM_INVALID_INPUT', 'tags must be an object of strings', { field: 'tags' })
  const out: Record<string, string> = {}
  const entries = Object.entries(v as Record<string, unknown>)
  if (entries.length > 50) throw new AppError('ERR_IAM_INVALID_INPUT', 'at most 50 tags', { field: 'tags' })
  for (const [k, val] of entries) {
    if (!/^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$/u.test(k) || k.startsWith('aws:')) throw new AppError('ERR_IAM_INVALID_INPUT', 'tag keys are 1 to 128 letters, digits, spaces and _.:/=+-@, not starting with aws:', { field: 'tags' })
    if (typeof val !== 'string' || !/^[\p{L}\p{Z}\p{N}_.:/=+\-@]{0,256}$/u.test(val)) throw new AppError('ERR_IAM_INVALID_INPUT', 'tag values are up to 256 letters, digits, spaces and _.:/=+-@', { field: 'tags' })
    out[k] = val
  }
  return out
}
