import { randomBytes } from 'node:crypto'
import { AppError } from '../core/index.ts'
import { checkName, checkTags, iamArn } from './arns.ts'
import { parseIdentityPolicy } from './authorizer.ts'
import {
  accountTrustPolicy, BUILTIN_POLICY_NAMES, BUILTIN_ROLE_NAMES, BUILTIN_ROLES, builtinPolicy, builtinRole, findRole, isBuiltinPolicy, isBuiltinRole,
} from './builtin.ts'
import type { IamDeps } from './context.ts'
import { auditChange, commit } from './context.ts'
import { entityExists as exists, noSuchEntity as noSuch, unmodifiable } from './errors.ts'
import { checkPasswordPolicy, hashPassword, verifyPassword } from './password.ts'
import type { IamStore } from './ports.ts'
import { parseTrustPolicy } from './trust.ts'
import type { AttachmentType, IamCaller, IamGroup, IamPolicy, IamRole, IamUser, Page } from './types.ts'

/** AWS-shaped unique ids: a 4-letter type prefix and 17 upper-case base32 characters (IAM UG `reference_identifiers`, "Unique identifiers"). */
export function newIamId (prefix: 'AIDA' | 'AGPA' | 'AROA' | 'ANPA'): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  const b = randomBytes(17)
  let out = prefix
  for (let i = 0; i < 17; i++) out += alphabet[b[i] & 31]
  return out
}

/** IAM UG `reference_iam-quotas`: managed policies attached to a user, group or role (default 10, maximum 20). */
export const MAX_ATTACHED_POLICIES = 20
/** IAM UG `reference_iam-quotas`: groups a user belongs to. */
export const MAX_GROUPS_PER_USER = 10
/** IAM UG `id_roles_use`: role maximum session duration, 1 to 12 hours. */
export const ROLE_SESSION_MIN_SEC = 3600
export const ROLE_SESSION_MAX_SEC = 43_200

/** A user as listed and described: never the password hash. */
export interface UserSummary {
  readonly userName: string
  readonly userId: string
  readonly arn: string
  readonly createDate: number
  readonly passwordEnabled: boolean
  readonly passwordLastChanged: number | undefined
  readonly tags: Readonly<Record<string, string>>
}

/** A user with its memberships, policies and credential state. */
export interface UserDetail extends UserSummary {
  readonly groups: string[]
  readonly roles: string[]
  readonly attachedPolicies: string[]
  readonly mfa: 'none' | 'pending' | 'active'
  readonly accessKeys: Array<{ accessKeyId: string, status: string, createDate: number, lastUsedDate: number | undefined }>
}

/**
 * Users, groups, roles, identity policies and their attachments (issue #5). Every change and its audit event
 * commit in one transaction; every committed change invalidates the compiled authorizers. Built-in roles and
 * policies come from code and cannot be changed.
 */
export class IamService {
  readonly #d: IamDeps
  constructor (deps: IamDeps) { this.#d = deps }

  userArn (name: string): string { return iamArn(this.#d.arn.accountId, 'user', name) }
  groupArn (name: string): string { return iamArn(this.#d.arn.accountId, 'group', name) }
  roleArn (name: string): string { return iamArn(this.#d.arn.accountId, 'role', name) }
  policyArn (name: string): string { return iamArn(this.#d.arn.accountId, 'policy', name) }

  summary (u: IamUser): UserSummary {
    return {
      userName: u.name, userId: u.id, arn: this.userArn(u.name), createDate: u.createdMs, passwordEnabled: u.passwordHash !== undefined,
      passwordLastChanged: u.passwordChangedMs, tags: u.tags,
    }
  }

  // ---- Users ------------------------------------------------------------------------------------------------

  /** IAM CreateUser. Optionally assigns roles in the same transaction (used by `thingward init`). */
  async createUser (caller: IamCaller, input: { userName: unknown, tags?: unknown, roles?: readonly string[] }): Promise<IamUser> {
    const name = checkName(input.userName, 'user', 'userName')
    const tags = checkTags(input.tags)
    const user: IamUser = { name, id: newIamId('AIDA'), createdMs: this.#d.clock.nowMs(), tags, passwordHash: undefined, passwordChangedMs: undefined }
    return commit(this.#d, async (u) => {
      if (await u.store.getUser(name) !== undefined) throw exists('user', name)
      await u.store.putUser(user)
      await auditChange(u, caller, 'iam.CreateUser', this.userArn(name), { userId: user.id })
      for (const r of input.roles ?? []) await this.#assign(u.store, name, r)
      if ((input.roles ?? []).length > 0) await auditChange(u, caller, 'iam.AssignRole', this.userArn(name), { roles: [...(input.roles ?? [])] })
      return user
    })
  }

  async getUserRecord (name: string): Promise<IamUser | undefined> {
    return this.#d.storage.read(s => s.getUser(name))
  }

  /** IAM GetUser with memberships, attached policies, MFA state and access keys. */
  async getUser (name: string): Promise<UserDetail> {
    return this.#d.storage.read(async (s) => {
      const u = await s.getUser(name)
      if (u === undefined) throw noSuch('user', name)
      const mfa = await s.getMfaDevice(name)
      return {
        ...this.summary(u),
        groups: await s.listGroupsForUser(name),
        roles: await s.listRolesForUser(name),
        attachedPolicies: await s.listAttachedPolicies('user', name),
        mfa: mfa === undefined ? 'none' : mfa.status,
        accessKeys: (await s.listAccessKeys(name)).map(k => ({ accessKeyId: k.id, status: k.status, createDate: k.createdMs, lastUsedDate: k.lastUsedMs })),
      }
    })
  }

  async listUsers (marker: string | undefined, max: number | undefined): Promise<Page<UserSummary>> {
    const limit = pageSize(max)
    const rows = await this.#d.storage.read(s => s.listUsers({ after: marker, limit: limit + 1 }))
    return page(rows.map(u => this.summary(u)), limit, x => x.userName)
  }

  /**
   * IAM DeleteUser. Unlike AWS (which refuses with DeleteConflict until credentials are removed), the user's
   * access keys, MFA device, recovery codes, sessions and memberships are removed in the same transaction, each
   * removal recorded. The last user holding the admin role cannot be deleted (no lock-out of the platform).
   */
  async deleteUser (caller: IamCaller, name: string): Promise<void> {
    await commit(this.#d, async (u) => {
      const user = await u.store.getUser(name)
      if (user === undefined) throw noSuch('user', name)
      await this.#guardLastAdmin(u.store, name)
      const keys = await u.store.listAccessKeys(name)
      for (const k of keys) await u.store.deleteAccessKey(k.id)
      const sessions = await u.store.deleteSessionsOf('user', name)
      await u.store.deleteUser(name)
      await auditChange(u, caller, 'iam.DeleteUser', this.userArn(name), { userId: user.id, deletedAccessKeys: keys.map(k => k.id), revokedSessions: sessions })
    })
  }

  async #guardLastAdmin (s: IamStore, userName: string): Promise<void> {
    const roles = await s.listRolesForUser(userName)
    if (!roles.includes('admin')) return
    const admins = await s.listUsersWithRole('admin')
    if (admins.length <= 1) throw new AppError('ERR_IAM_DELETE_CONFLICT', 'the last user with the admin role cannot be removed', { userName })
  }

  /** IAM CreateLoginProfile / UpdateLoginProfile: sets a user's password (administrators). */
  async setPassword (caller: IamCaller, userName: string, password: unknown): Promise<void> {
    const pw = checkPasswordPolicy(password, userName)
    const hash = await hashPassword(pw, this.#d.scryptLogN)
    await commit(this.#d, async (u) => {
      const user = await u.store.getUser(userName)
      if (user === undefined) throw noSuch('user', userName)
      await u.store.putUser({ ...user, passwordHash: hash, passwordChangedMs: this.#d.clock.nowMs() })
      await auditChange(u, caller, user.passwordHash === undefined ? 'iam.CreateLoginProfile' : 'iam.UpdateLoginProfile', this.userArn(userName))
    })
  }

  /** IAM ChangePassword: a user changes their own password, proving the current one. */
  async changePassword (caller: IamCaller, userName: string, oldPassword: unknown, newPassword: unknown): Promise<void> {
    const user = await this.getUserRecord(userName)
    if (user === undefined) throw noSuch('user', userName)
    if (typeof oldPassword !== 'string' || user.passwordHash === undefined || !await verifyPassword(oldPassword, user.passwordHash)) {
      throw new AppError('ERR_AUTH_ACCESS_DENIED', 'the current password is not valid')
    }
    await this.setPassword(caller, userName, newPassword)
  }

  /** IAM DeleteLoginProfile: removes password sign-in (access keys keep working). */
  async deletePassword (caller: IamCaller, userName: string): Promise<void> {
    await commit(this.#d, async (u) => {
      const user = await u.store.getUser(userName)
      if (user === undefined) throw noSuch('user', userName)
      if (user.passwordHash === undefined) throw noSuch('login profile', userName)
      await u.store.putUser({ ...user, passwordHash: undefined, passwordChangedMs: undefined })
      await auditChange(u, caller, 'iam.DeleteLoginProfile', this.userArn(userName))
    })
  }

  /** IAM DeactivateMFADevice: removes a user's MFA device and recovery codes (the next password sign-in enrolls again). */
  async deactivateMfa (caller: IamCaller, userName: string): Promise<void> {
    await commit(this.#d, async (u) => {
      if (await u.store.getUser(userName) === undefined) throw noSuch('user', userName)
      if (await u.store.getMfaDevice(userName) === undefined) throw noSuch('MFA device', userName)
      await u.store.deleteMfaDevice(userName)
      await u.store.putRecoveryCodes(userName, [], this.#d.clock.nowMs())
      await auditChange(u, caller, 'iam.DeactivateMFADevice', this.userArn(userName))
    })
  }

  /** Revokes every temporary session of a user (theirs and the roles they assumed). */
  async revokeSessions (caller: IamCaller, userName: string): Promise<number> {
    return commit(this.#d, async (u) => {
      if (await u.store.getUser(userName) === undefined) throw noSuch('user', userName)
      const n = await u.store.deleteSessionsOf('user', userName)
      await auditChange(u, caller, 'iam.RevokeSessions', this.userArn(userName), { revokedSessions: n })
      return n
    })
  }

  // ---- Groups -----------------------------------------------------------------------------------------------

  async createGroup (caller: IamCaller, groupName: unknown): Promise<IamGroup> {
    const name = checkName(groupName, 'group', 'groupName')
    const g: IamGroup = { name, id: newIamId('AGPA'), createdMs: this.#d.clock.nowMs() }
    return commit(this.#d, async (u) => {
      if (await u.store.getGroup(name) !== undefined) throw exists('group', name)
      await u.store.putGroup(g)
      await auditChange(u, caller, 'iam.CreateGroup', this.groupArn(name), { groupId: g.id })
      return g
    })
  }

  async getGroup (name: string): Promise<{ group: IamGroup, users: string[], attachedPolicies: string[] }> {
    return this.#d.storage.read(async (s) => {
      const group = await s.getGroup(name)
      if (group === undefined) throw noSuch('group', name)
      return { group, users: await s.listUsersInGroup(name), attachedPolicies: await s.listAttachedPolicies('group', name) }
    })
  }

  async listGroups (marker: string | undefined, max: number | undefined): Promise<Page<IamGroup>> {
    const limit = pageSize(max)
    return page(await this.#d.storage.read(s => s.listGroups({ after: marker, limit: limit + 1 })), limit, g => g.name)
  }

  async deleteGroup (caller: IamCaller, name: string): Promise<void> {
    await commit(this.#d, async (u) => {
      if (await u.store.getGroup(name) === undefined) throw noSuch('group', name)
      await u.store.deleteGroup(name)
      await auditChange(u, caller, 'iam.DeleteGroup', this.groupArn(name))
    })
  }

  async addUserToGroup (caller: IamCaller, groupName: string, userName: string): Promise<void> {
    await commit(this.#d, async (u) => {
      if (await u.store.getGroup(groupName) === undefined) throw noSuch('group', groupName)
      if (await u.store.getUser(userName) === undefined) throw noSuch('user', userName)
      const groups = await u.store.listGroupsForUser(userName)
      if (groups.includes(groupName)) return
      if (groups.length >= MAX_GROUPS_PER_USER) throw new AppError('ERR_IAM_LIMIT_EXCEEDED', 'a user belongs to at most 10 groups', { userName })
      await u.store.addUserToGroup(groupName, userName)
      await auditChange(u, caller, 'iam.AddUserToGroup', this.groupArn(groupName), { userName })
    })
  }

  async removeUserFromGroup (caller: IamCaller, groupName: string, userName: string): Promise<void> {
    await commit(this.#d, async (u) => {
      if (!await u.store.removeUserFromGroup(groupName, userName)) throw noSuch('group membership', `${groupName}/${userName}`)
      await auditChange(u, caller, 'iam.RemoveUserFromGroup', this.groupArn(groupName), { userName })
    })
  }

  // ---- Roles ------------------------------------------------------------------------------------------------

  /**
   * IAM CreateRole. The trust policy defaults to the account (any principal here whose identity policy allows
   * sts:AssumeRole on the role); the maximum session duration to 1 hour (1 to 12 hours).
   */
  async createRole (caller: IamCaller, input: { roleName: unknown, trustPolicy?: unknown, description?: unknown, maxSessionDuration?: unknown, tags?: unknown }): Promise<IamRole> {
    const name = checkName(input.roleName, 'role', 'roleName')
    if (isBuiltinRole(name)) throw exists('role', name)
    const trust = input.trustPolicy === undefined ? accountTrustPolicy(this.#d.arn.accountId) : trustText(input.trustPolicy)
    parseTrustPolicy(trust)
    const max = input.maxSessionDuration ?? ROLE_SESSION_MIN_SEC
    if (typeof max !== 'number' || !Number.isInteger(max) || max < ROLE_SESSION_MIN_SEC || max > ROLE_SESSION_MAX_SEC) {
      throw new AppError('ERR_IAM_INVALID_INPUT', 'maxSessionDuration must be 3600 to 43200 seconds', { field: 'maxSessionDuration' })
    }
    const description = checkDescription(input.description)
    const role: IamRole = {
      name, id: newIamId('AROA'), description, trustPolicy: trust, maxSessionSec: max, createdMs: this.#d.clock.nowMs(),
      tags: checkTags(input.tags), builtin: false,
    }
    return commit(this.#d, async (u) => {
      if (await u.store.getRole(name) !== undefined) throw exists('role', name)
      await u.store.putRole(role)
      await auditChange(u, caller, 'iam.CreateRole', this.roleArn(name), { roleId: role.id })
      return role
    })
  }

  async getRole (name: string): Promise<{ role: IamRole, attachedPolicies: string[], users: string[] }> {
    return this.#d.storage.read(async (s) => {
      const role = await findRole(s, name, this.#d.arn.accountId)
      if (role === undefined) throw noSuch('role', name)
      const attachedPolicies = isBuiltinRole(name) ? [BUILTIN_ROLES[name]] : await s.listAttachedPolicies('role', name)
      return { role, attachedPolicies, users: await s.listUsersWithRole(name) }
    })
  }

  /** Built-in roles first, then stored ones in name order (one page: roles are few). */
  async listRoles (): Promise<IamRole[]> {
    const stored = await this.#d.storage.read(s => s.listRoles({ limit: 1000 }))
    return [...BUILTIN_ROLE_NAMES.map(n => builtinRole(n, this.#d.arn.accountId)), ...stored]
  }

  async deleteRole (caller: IamCaller, name: string): Promise<void> {
    if (isBuiltinRole(name)) throw unmodifiable('role', name)
    await commit(this.#d, async (u) => {
      if (await u.store.getRole(name) === undefined) throw noSuch('role', name)
      const users = await u.store.listUsersWithRole(name)
      if (users.length > 0) throw new AppError('ERR_IAM_DELETE_CONFLICT', 'the role is assigned to users: unassign it first', { roleName: name })
      const sessions = await u.store.deleteSessionsOf('role', name)
      await u.store.deleteRole(name)
      await auditChange(u, caller, 'iam.DeleteRole', this.roleArn(name), { revokedSessions: sessions })
    })
  }

  /** IAM UpdateAssumeRolePolicy. */
  async updateTrustPolicy (caller: IamCaller, name: string, trustPolicy: unknown): Promise<void> {
    if (isBuiltinRole(name)) throw unmodifiable('role', name)
    const text = trustText(trustPolicy)
    parseTrustPolicy(text)
    await commit(this.#d, async (u) => {
      const role = await u.store.getRole(name)
      if (role === undefined) throw noSuch('role', name)
      await u.store.putRole({ ...role, trustPolicy: text })
      await auditChange(u, caller, 'iam.UpdateAssumeRolePolicy', this.roleArn(name))
    })
  }

  /** Assigns a role to a user: the user holds the role's policies (role-based access control). */
  async assignRole (caller: IamCaller, userName: string, roleName: string): Promise<void> {
    await commit(this.#d, async (u) => {
      if (await this.#assign(u.store, userName, roleName)) await auditChange(u, caller, 'iam.AssignRole', this.userArn(userName), { roleName })
    })
  }

  async #assign (s: IamStore, userName: string, roleName: string): Promise<boolean> {
    if (await s.getUser(userName) === undefined) throw noSuch('user', userName)
    if (!isBuiltinRole(roleName) && await s.getRole(roleName) === undefined) throw noSuch('role', roleName)
    if ((await s.listRolesForUser(userName)).includes(roleName)) return false
    await s.assignRole(userName, roleName)
    return true
  }

  async unassignRole (caller: IamCaller, userName: string, roleName: string): Promise<void> {
    await commit(this.#d, async (u) => {
      if (roleName === 'admin') await this.#guardLastAdmin(u.store, userName)
      if (!await u.store.unassignRole(userName, roleName)) throw noSuch('role assignment', `${userName}/${roleName}`)
      await auditChange(u, caller, 'iam.UnassignRole', this.userArn(userName), { roleName })
    })
  }

  // ---- Policies ---------------------------------------------------------------------------------------------

  /** IAM CreatePolicy. The document is validated by the policy engine (IAM size limit 6,144 characters). */
  async createPolicy (caller: IamCaller, policyName: unknown, document: unknown, description?: unknown): Promise<IamPolicy> {
    const name = checkName(policyName, 'policy', 'policyName')
    if (isBuiltinPolicy(name)) throw exists('policy', name)
    const text = documentText(document)
    parseIdentityPolicy(text)
    const now = this.#d.clock.nowMs()
    const p: IamPolicy = { name, id: newIamId('ANPA'), description: checkDescription(description), document: text, version: 1, createdMs: now, updatedMs: now, builtin: false }
    return commit(this.#d, async (u) => {
      if (await u.store.getPolicy(name) !== undefined) throw exists('policy', name)
      await u.store.putPolicy(p)
      await auditChange(u, caller, 'iam.CreatePolicy', this.policyArn(name), { policyId: p.id })
      return p
    })
  }

  /** Replaces a policy's document (IAM CreatePolicyVersion with SetAsDefault); takes effect on the next request. */
  async updatePolicy (caller: IamCaller, name: string, document: unknown): Promise<IamPolicy> {
    if (isBuiltinPolicy(name)) throw unmodifiable('policy', name)
    const text = documentText(document)
    parseIdentityPolicy(text)
    return commit(this.#d, async (u) => {
      const p = await u.store.getPolicy(name)
      if (p === undefined) throw noSuch('policy', name)
      const next: IamPolicy = { ...p, document: text, version: p.version + 1, updatedMs: this.#d.clock.nowMs() }
      await u.store.putPolicy(next)
      await auditChange(u, caller, 'iam.CreatePolicyVersion', this.policyArn(name), { version: next.version })
      return next
    })
  }

  async getPolicy (name: string): Promise<{ policy: IamPolicy, attachments: Array<{ type: AttachmentType, name: string }> }> {
    return this.#d.storage.read(async (s) => {
      const policy = isBuiltinPolicy(name) ? builtinPolicy(name) : await s.getPolicy(name)
      if (policy === undefined) throw noSuch('policy', name)
      const attachments = await s.listPolicyAttachments(name)
      if (isBuiltinPolicy(name)) for (const [role, pol] of Object.entries(BUILTIN_ROLES)) if (pol === name) attachments.unshift({ type: 'role', name: role })
      return { policy, attachments }
    })
  }

  /** Built-in policies first, then stored ones (one page). */
  async listPolicies (): Promise<IamPolicy[]> {
    const stored = await this.#d.storage.read(s => s.listPolicies({ limit: 1000 }))
    return [...BUILTIN_POLICY_NAMES.map(builtinPolicy), ...stored]
  }

  /** IAM DeletePolicy: refused while attached (DeleteConflict, as in AWS). */
  async deletePolicy (caller: IamCaller, name: string): Promise<void> {
    if (isBuiltinPolicy(name)) throw unmodifiable('policy', name)
    await commit(this.#d, async (u) => {
      if (await u.store.getPolicy(name) === undefined) throw noSuch('policy', name)
      if ((await u.store.listPolicyAttachments(name)).length > 0) throw new AppError('ERR_IAM_DELETE_CONFLICT', 'the policy is attached: detach it first', { policyName: name })
      await u.store.deletePolicy(name)
      await auditChange(u, caller, 'iam.DeletePolicy', this.policyArn(name))
    })
  }

  /** IAM AttachUserPolicy / AttachGroupPolicy / AttachRolePolicy. Idempotent. */
  async attachPolicy (caller: IamCaller, type: AttachmentType, targetName: string, policyName: string): Promise<void> {
    if (type === 'role' && isBuiltinRole(targetName)) throw unmodifiable('role', targetName)
    await commit(this.#d, async (u) => {
      await this.#requireTarget(u.store, type, targetName)
      if (!isBuiltinPolicy(policyName) && await u.store.getPolicy(policyName) === undefined) throw noSuch('policy', policyName)
      const attached = await u.store.listAttachedPolicies(type, targetName)
      if (attached.includes(policyName)) return
      if (attached.length >= MAX_ATTACHED_POLICIES) throw new AppError('ERR_IAM_LIMIT_EXCEEDED', 'at most 20 policies are attached to a user, group or role', { policyName })
      await u.store.attachPolicy(policyName, type, targetName)
      await auditChange(u, caller, `iam.Attach${cap(type)}Policy`, iamArn(this.#d.arn.accountId, type, targetName), { policyName })
    })
  }

  async detachPolicy (caller: IamCaller, type: AttachmentType, targetName: string, policyName: string): Promise<void> {
    await commit(this.#d, async (u) => {
      if (!await u.store.detachPolicy(policyName, type, targetName)) throw noSuch('policy attachment', `${policyName}/${type}/${targetName}`)
      await auditChange(u, caller, `iam.Detach${cap(type)}Policy`, iamArn(this.#d.arn.accountId, type, targetName), { policyName })
    })
  }

  async #requireTarget (s: IamStore, type: AttachmentType, name: string): Promise<void> {
    const found = type === 'user' ? await s.getUser(name) : type === 'group' ? await s.getGroup(name) : await s.getRole(name)
    if (found === undefined) throw noSuch(type, name)
  }
}

const cap = (s: string): string => s[0].toUpperCase() + s.slice(1)

/** A JSON document given as a string or as an object; `message` names the field's rule. */
function jsonText (v: unknown, field: string, message: string): string {
  if (typeof v === 'string') return v
  if (typeof v === 'object' && v !== null) return JSON.stringify(v)
  throw new AppError('ERR_IAM_INVALID_INPUT', message, { field })
}

const documentText = (v: unknown): string => jsonText(v, 'policyDocument', 'policyDocument is required (a JSON policy document)')
const trustText = (v: unknown): string => jsonText(v, 'trustPolicy', 'trustPolicy must be a JSON trust policy document')

/** Role and policy descriptions: at most 1000 characters (IAM API CreateRole / CreatePolicy `Description`). */
function checkDescription (v: unknown): string | undefined {
  if (v !== undefined && (typeof v !== 'string' || v.length > 1000)) {
    throw new AppError('ERR_IAM_INVALID_INPUT', 'description must be a string of at most 1000 characters', { field: 'description' })
  }
  return v
}

/** AWS IAM MaxItems: 1 to 1000, default 100. */
export function pageSize (max: number | undefined): number {
  if (max === undefined || !Number.isFinite(max)) return 100
  return Math.max(1, Math.min(1000, Math.trunc(max)))
}

function page<T> (rows: T[], limit: number, keyOf: (t: T) => string): Page<T> {
  if (rows.length <= limit) return { items: rows, marker: undefined }
  const items = rows.slice(0, limit)
  return { items, marker: keyOf(items[items.length - 1]) }
}
