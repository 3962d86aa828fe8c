import type { AuditAppender } from '../audit/index.ts'
import type {
  AttachmentType, IamAccessKey, IamGroup, IamPolicy, IamRole, IamUser, MfaDevice, StsSession,
} from './types.ts'

/** Keyset pagination: `after` is the last name of the previous page; `limit` the page size. */
export interface IamListArgs { readonly after?: string, readonly limit: number }

/**
 * IAM persistence, as seen inside one unit of work. Implemented by storage/sqlite/iam-store.ts (and later
 * postgres); every implementation must pass storage/contract/iam-store.contract.ts. Getters resolve `undefined`
 * when absent and never reject for "not found". Writers assume the caller checked existence in the same
 * transaction. Lists are in name order.
 */
export interface IamStore {
  getUser (name: string): Promise<IamUser | undefined>
  /** Inserts or replaces (name is the key; `id` and `createdMs` never change). */
  putUser (u: IamUser): Promise<void>
  /** Deletes the user with its group memberships, role assignments, attachments, MFA device and recovery codes. */
  deleteUser (name: string): Promise<void>
  listUsers (page: IamListArgs): Promise<IamUser[]>
  countUsers (): Promise<number>

  getGroup (name: string): Promise<IamGroup | undefined>
  putGroup (g: IamGroup): Promise<void>
  /** Deletes the group with its memberships and attachments. */
  deleteGroup (name: string): Promise<void>
  listGroups (page: IamListArgs): Promise<IamGroup[]>
  addUserToGroup (groupName: string, userName: string): Promise<void>
  /** Resolves false when the user was not a member. */
  removeUserFromGroup (groupName: string, userName: string): Promise<boolean>
  listGroupsForUser (userName: string): Promise<string[]>
  listUsersInGroup (groupName: string): Promise<string[]>

  /** Stored (custom) roles only; built-in roles are code. */
  getRole (name: string): Promise<IamRole | undefined>
  putRole (r: IamRole): Promise<void>
  /** Deletes the role with its assignments and attachments. */
  deleteRole (name: string): Promise<void>
  listRoles (page: IamListArgs): Promise<IamRole[]>
  assignRole (userName: string, roleName: string): Promise<void>
  /** Resolves false when the role was not assigned. */
  unassignRole (userName: string, roleName: string): Promise<boolean>
  listRolesForUser (userName: string): Promise<string[]>
  listUsersWithRole (roleName: string): Promise<string[]>

  /** Stored (custom) policies only; built-in ones are code. */
  getPolicy (name: string): Promise<IamPolicy | undefined>
  putPolicy (p: IamPolicy): Promise<void>
  /** Deletes the policy and every attachment of it. */
  deletePolicy (name: string): Promise<void>
  listPolicies (page: IamListArgs): Promise<IamPolicy[]>
  /** Idempotent. */
  attachPolicy (policyName: string, type: AttachmentType, targetName: string): Promise<void>
  /** Resolves false when it was not attached. */
  detachPolicy (policyName: string, type: AttachmentType, targetName: string): Promise<boolean>
  /** Policy names attached to a user, group or role, in name order. */
  listAttachedPolicies (type: AttachmentType, targetName: string): Promise<string[]>
  /** Every attachment of a policy. */
  listPolicyAttachments (policyName: string): Promise<Array<{ type: AttachmentType, name: string }>>

  getAccessKey (id: string): Promise<IamAccessKey | undefined>
  putAccessKey (k: IamAccessKey): Promise<void>
  deleteAccessKey (id: string): Promise<void>
  /** A user's keys, in creation order. */
  listAccessKeys (userName: string): Promise<IamAccessKey[]>
  touchAccessKey (id: string, usedMs: number, service: string, region: string): Promise<void>

  getMfaDevice (userName: string): Promise<MfaDevice | undefined>
  putMfaDevice (d: MfaDevice): Promise<void>
  deleteMfaDevice (userName: string): Promise<void>
  /** Replaces the user's recovery codes (SHA-256 hex of each code). */
  putRecoveryCodes (userName: string, codeHashes: readonly string[], createdMs: number): Promise<void>
  /** Marks an unused code used; resolves false when there is no such unused code. */
  useRecoveryCode (userName: string, codeHash: string, usedMs: number): Promise<boolean>
  countUnusedRecoveryCodes (userName: string): Promise<number>

  getSession (accessKeyId: string): Promise<StsSession | undefined>
  putSession (s: StsSession): Promise<void>
  /** Deletes the sessions of a user (their own and the roles they assumed) or of a role; resolves how many. */
  deleteSessionsOf (principalType: 'user' | 'role', name: string): Promise<number>
  /** Deletes sessions that expired before `beforeMs`; resolves how many. */
  deleteExpiredSessions (beforeMs: number): Promise<number>
}

/** A unit of work: IAM writes and their audit events commit together. */
export interface IamUnit { readonly store: IamStore, readonly audit: AuditAppender }

/** Transactions over {@link IamStore}. */
export interface IamStorage {
  /** All-or-nothing: a throw rolls back every write and every audit event of `fn`. */
  transaction<T> (fn: (u: IamUnit) => Promise<T>): Promise<T>
  /** Read-only access (consistent snapshot). Never call it from inside `transaction`. */
  read<T> (fn: (s: IamStore) => Promise<T>): Promise<T>
}

/**
 * Seals secrets that must be recoverable (SigV4 secrets, TOTP seeds) with an encryption context bound as AAD.
 * `LocalKeyring` satisfies it.
 */
export interface SecretSealer {
  encrypt (plaintext: Uint8Array, context: Readonly<Record<string, string>>): Buffer
  decrypt (blob: Uint8Array, context: Readonly<Record<string, string>>): Buffer
}
