import type { IamListArgs, IamStorage, IamStore, IamUnit } from '../../iam/ports.ts'
import type {
  AccessKeyStatus, AttachmentType, IamAccessKey, IamGroup, IamPolicy, IamRole, IamUser, MfaDevice, SessionOrigin, StsSession, Tags,
} from '../../iam/types.ts'
import { AppError } from '../../core/index.ts'
import { SqliteUnits, num, optNum, optStr, str } from './db.ts'
import type { Row as R, SqliteDb, SqlValue } from './db.ts'
import type { SqliteAuditStore } from './audit-store.ts'

const blob = (v: SqlValue): Buffer => Buffer.from(v as Uint8Array)

/** Parses a JSON tags column written by us; a bad value means the file was edited or corrupted. */
function tagsCol (v: SqlValue, column: string): Tags {
  try {
    const t: unknown = JSON.parse(str(v))
    if (typeof t !== 'object' || t === null || Array.isArray(t) || Object.values(t).some(x => typeof x !== 'string')) throw new TypeError('not a tag map')
    return t as Tags
  } catch (err) {
    throw new AppError('ERR_STORAGE_CORRUPT', 'stored record is not valid JSON', { column }, { cause: err })
  }
}

const userRow = (r: R): IamUser => ({
  name: str(r.name), id: str(r.id), createdMs: num(r.created_ms), tags: tagsCol(r.tags, 'iam_users.tags'),
  passwordHash: optStr(r.password_hash), passwordChangedMs: optNum(r.password_changed_ms),
})
const groupRow = (r: R): IamGroup => ({ name: str(r.name), id: str(r.id), createdMs: num(r.created_ms) })
const roleRow = (r: R): IamRole => ({
  name: str(r.name), id: str(r.id), description: optStr(r.description), trustPolicy: str(r.trust_policy), maxSessionSec: num(r.max_session_sec),
  createdMs: num(r.created_ms), tags: tagsCol(r.tags, 'iam_roles.tags'), builtin: false,
})
const policyRow = (r: R): IamPolicy => ({
  name: str(r.name), id: str(r.id), description: optStr(r.description), document: str(r.document), version: num(r.version),
  createdMs: num(r.created_ms), updatedMs: num(r.updated_ms), builtin: false,
})
const keyRow = (r: R): IamAccessKey => ({
  id: str(r.id), userName: str(r.user_name), sealedSecret: blob(r.sealed_secret), status: str(r.status) as AccessKeyStatus, createdMs: num(r.created_ms),
  lastUsedMs: optNum(r.last_used_ms), lastUsedService: optStr(r.last_used_service), lastUsedRegion: optStr(r.last_used_region),
})
const mfaRow = (r: R): MfaDevice => ({
  userName: str(r.user_name), sealedSecret: blob(r.sealed_secret), status: str(r.status) === 'active' ? 'active' : 'pending', lastStep: num(r.last_step),
  createdMs: num(r.created_ms), enabledMs: optNum(r.enabled_ms),
})
const sessionRow = (r: R): StsSession => ({
  accessKeyId: str(r.access_key_id), sealedSecret: blob(r.sealed_secret), tokenHash: str(r.token_hash),
  principalType: str(r.principal_type) === 'role' ? 'role' : 'user', principalName: str(r.principal_name), sessionName: optStr(r.session_name),
  sourceUser: optStr(r.source_user), mfa: num(r.mfa) === 1, mfaMs: optNum(r.mfa_ms), origin: str(r.origin) as SessionOrigin,
  createdMs: num(r.created_ms), expiresMs: num(r.expires_ms), sourceIp: optStr(r.source_ip),
})

/** SQLite implementation of {@link IamStore} (tables from migration "IAM" in migrations.ts). */
export class SqliteIamStore implements IamStore {
  readonly #db: SqliteDb
  constructor (db: SqliteDb) { this.#db = db }

  // ---- users
  async getUser (name: string): Promise<IamUser | undefined> {
    const r = this.#db.get('SELECT * FROM iam_users WHERE name = ?', name)
    return r === undefined ? undefined : userRow(r)
  }

  async putUser (u: IamUser): Promise<void> {
    this.#db.run(`INSERT INTO iam_users (name, id, created_ms, tags, password_hash, password_changed_ms) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT(name) DO UPDATE SET tags = excluded.tags, password_hash = excluded.password_hash, password_changed_ms = excluded.password_changed_ms`,
    u.name, u.id, u.createdMs, JSON.stringify(u.tags), u.passwordHash ?? null, u.passwordChangedMs ?? null)
  }

  async deleteUser (name: string): Promise<void> {
    // Memberships, role assignments, the MFA device and recovery codes go by ON DELETE CASCADE; attachments have
    // no foreign key (their target may be a group or role too).
    this.#db.run("DELETE FROM iam_attachments WHERE target_type = 'user' AND target_name = ?", name)
    this.#db.run('DELETE FROM iam_users WHERE name = ?', name)
  }

  async listUsers (page: IamListArgs): Promise<IamUser[]> {
    return this.#db.all('SELECT * FROM iam_users WHERE name > ? ORDER BY name LIMIT ?', page.after ?? '', page.limit).map(userRow)
  }

  async countUsers (): Promise<number> {
    return num(this.#db.get('SELECT COUNT(*) AS n FROM iam_users')?.n ?? 0)
  }

  // ---- groups
  async getGroup (name: string): Promise<IamGroup | undefined> {
    const r = this.#db.get('SELECT * FROM iam_groups WHERE name = ?', name)
    return r === undefined ? undefined : groupRow(r)
  }

  async putGroup (g: IamGroup): Promise<void> {
    this.#db.run('INSERT INTO iam_groups (name, id, created_ms) VALUES (?, ?, ?) ON CONFLICT(name) DO NOTHING', g.name, g.id, g.createdMs)
  }

  async deleteGroup (name: string): Promise<void> {
    this.#db.run("DELETE FROM iam_attachments WHERE target_type = 'group' AND target_name = ?", name)
    this.#db.run('DELETE FROM iam_groups WHERE name = ?', name)
  }

  async listGroups (page: IamListArgs): Promise<IamGroup[]> {
    return this.#db.all('SELECT * FROM iam_groups WHERE name > ? ORDER BY name LIMIT ?', page.after ?? '', page.limit).map(groupRow)
  }

  async addUserToGroup (groupName: string, userName: string): Promise<void> {
    this.#db.run('INSERT OR IGNORE INTO iam_group_members (group_name, user_name) VALUES (?, ?)', groupName, userName)
  }

  async removeUserFromGroup (groupName: string, userName: string): Promise<boolean> {
    return this.#db.run('DELETE FROM iam_group_members WHERE group_name = ? AND user_name = ?', groupName, userName).changes > 0
  }

  async listGroupsForUser (userName: string): Promise<string[]> {
    return this.#db.all('SELECT group_name FROM iam_group_members WHERE user_name = ? ORDER BY group_name', userName).map(r => str(r.group_name))
  }

  async listUsersInGroup (groupName: string): Promise<string[]> {
    return this.#db.all('SELECT user_name FROM iam_group_members WHERE group_name = ? ORDER BY user_name', groupName).map(r => str(r.user_name))
  }

  // ---- roles
  async getRole (name: string): Promise<IamRole | undefined> {
    const r = this.#db.get('SELECT * FROM iam_roles WHERE name = ?', name)
    return r === undefined ? undefined : roleRow(r)
  }

  async putRole (r: IamRole): Promise<void> {
    this.#db.run(`INSERT INTO iam_roles (name, id, description, trust_policy, max_session_sec, created_ms, tags) VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT(name) DO UPDATE SET description = excluded.description, trust_policy = excluded.trust_policy,
      max_session_sec = excluded.max_session_sec, tags = excluded.tags`,
    r.name, r.id, r.description ?? null, r.trustPolicy, r.maxSessionSec, r.createdMs, JSON.stringify(r.tags))
  }

  async deleteRole (name: string): Promise<void> {
    this.#db.run('DELETE FROM iam_user_roles WHERE role_name = ?', name)
    this.#db.run("DELETE FROM iam_attachments WHERE target_type = 'role' AND target_name = ?", name)
    this.#db.run('DELETE FROM iam_roles WHERE name = ?', name)
  }

  async listRoles (page: IamListArgs): Promise<IamRole[]> {
    return this.#db.all('SELECT * FROM iam_roles WHERE name > ? ORDER BY name LIMIT ?', page.after ?? '', page.limit).map(roleRow)
  }

  async assignRole (userName: string, roleName: string): Promise<void> {
    this.#db.run('INSERT OR IGNORE INTO iam_user_roles (user_name, role_name) VALUES (?, ?)', userName, roleName)
  }

  async unassignRole (userName: string, roleName: string): Promise<boolean> {
    return this.#db.run('DELETE FROM iam_user_roles WHERE user_name = ? AND role_name = ?', userName, roleName).changes > 0
  }

  async listRolesForUser (userName: string): Promise<string[]> {
    return this.#db.all('SELECT role_name FROM iam_user_roles WHERE user_name = ? ORDER BY role_name', userName).map(r => str(r.role_name))
  }

  async listUsersWithRole (roleName: string): Promise<string[]> {
    return this.#db.all('SELECT user_name FROM iam_user_roles WHERE role_name = ? ORDER BY user_name', roleName).map(r => str(r.user_name))
  }

  // ---- policies
  async getPolicy (name: string): Promise<IamPolicy | undefined> {
    const r = this.#db.get('SELECT * FROM iam_policies WHERE name = ?', name)
    return r === undefined ? undefined : policyRow(r)
  }

  async putPolicy (p: IamPolicy): Promise<void> {
    this.#db.run(`INSERT INTO iam_policies (name, id, description, document, version, created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT(name) DO UPDATE SET description = excluded.description, document = excluded.document, version = excluded.version,
      updated_ms = excluded.updated_ms`,
    p.name, p.id, p.description ?? null, p.document, p.version, p.createdMs, p.updatedMs)
  }

  async deletePolicy (name: string): Promise<void> {
    this.#db.run('DELETE FROM iam_attachments WHERE policy_name = ?', name)
    this.#db.run('DELETE FROM iam_policies WHERE name = ?', name)
  }

  async listPolicies (page: IamListArgs): Promise<IamPolicy[]> {
    return this.#db.all('SELECT * FROM iam_policies WHERE name > ? ORDER BY name LIMIT ?', page.after ?? '', page.limit).map(policyRow)
  }

  async attachPolicy (policyName: string, type: AttachmentType, targetName: string): Promise<void> {
    this.#db.run('INSERT OR IGNORE INTO iam_attachments (policy_name, target_type, target_name) VALUES (?, ?, ?)', policyName, type, targetName)
  }

  async detachPolicy (policyName: string, type: AttachmentType, targetName: string): Promise<boolean> {
    return this.#db.run('DELETE FROM iam_attachments WHERE policy_name = ? AND target_type = ? AND target_name = ?', policyName, type, targetName).changes > 0
  }

  async listAttachedPolicies (type: AttachmentType, targetName: string): Promise<string[]> {
    return this.#db.all('SELECT policy_name FROM iam_attachments WHERE target_type = ? AND target_name = ? ORDER BY policy_name', type, targetName).map(r => str(r.policy_name))
  }

  async listPolicyAttachments (policyName: string): Promise<Array<{ type: AttachmentType, name: string }>> {
    return this.#db.all('SELECT target_type, target_name FROM iam_attachments WHERE policy_name = ? ORDER BY target_type, target_name', policyName)
      .map(r => ({ type: str(r.target_type) as AttachmentType, name: str(r.target_name) }))
  }

  // ---- access keys
  async getAccessKey (id: string): Promise<IamAccessKey | undefined> {
    const r = this.#db.get('SELECT * FROM access_keys WHERE id = ?', id)
    return r === undefined ? undefined : keyRow(r)
  }

  async putAccessKey (k: IamAccessKey): Promise<void> {
    this.#db.run(`INSERT INTO access_keys (id, user_name, sealed_secret, status, created_ms, last_used_ms, last_used_service, last_used_region)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET status = excluded.status, last_used_ms = excluded.last_used_ms,
      last_used_service = excluded.last_used_service, last_used_region = excluded.last_used_region`,
    k.id, k.userName, k.sealedSecret, k.status, k.createdMs, k.lastUsedMs ?? null, k.lastUsedService ?? null, k.lastUsedRegion ?? null)
  }

  async deleteAccessKey (id: string): Promise<void> { this.#db.run('DELETE FROM access_keys WHERE id = ?', id) }

  async listAccessKeys (userName: string): Promise<IamAccessKey[]> {
    return this.#db.all('SELECT * FROM access_keys WHERE user_name = ? ORDER BY created_ms, id', userName).map(keyRow)
  }

  async touchAccessKey (id: string, usedMs: number, service: string, region: string): Promise<void> {
    this.#db.run('UPDATE access_keys SET last_used_ms = ?, last_used_service = ?, last_used_region = ? WHERE id = ?', usedMs, service, region, id)
  }

  // ---- MFA
  async getMfaDevice (userName: string): Promise<MfaDevice | undefined> {
    const r = this.#db.get('SELECT * FROM iam_mfa_devices WHERE user_name = ?', userName)
    return r === undefined ? undefined : mfaRow(r)
  }

  async putMfaDevice (d: MfaDevice): Promise<void> {
    this.#db.run(`INSERT INTO iam_mfa_devices (user_name, sealed_secret, status, last_step, created_ms, enabled_ms) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT(user_name) DO UPDATE SET sealed_secret = excluded.sealed_secret, status = excluded.status, last_step = excluded.last_step,
      created_ms = excluded.created_ms, enabled_ms = excluded.enabled_ms`,
    d.userName, d.sealedSecret, d.status, d.lastStep, d.createdMs, d.enabledMs ?? null)
  }

  async deleteMfaDevice (userName: string): Promise<void> { this.#db.run('DELETE FROM iam_mfa_devices WHERE user_name = ?', userName) }

  async putRecoveryCodes (userName: string, codeHashes: readonly string[], createdMs: number): Promise<void> {
    this.#db.run('DELETE FROM iam_recovery_codes WHERE user_name = ?', userName)
    for (const h of codeHashes) this.#db.run('INSERT OR IGNORE INTO iam_recovery_codes (user_name, code_hash, created_ms) VALUES (?, ?, ?)', userName, h, createdMs)
  }

  async useRecoveryCode (userName: string, codeHash: string, usedMs: number): Promise<boolean> {
    return this.#db.run('UPDATE iam_recovery_codes SET used_ms = ? WHERE user_name = ? AND code_hash = ? AND used_ms IS NULL', usedMs, userName, codeHash).changes > 0
  }

  async countUnusedRecoveryCodes (userName: string): Promise<number> {
    return num(this.#db.get('SELECT COUNT(*) AS n FROM iam_recovery_codes WHERE user_name = ? AND used_ms IS NULL', userName)?.n ?? 0)
  }

  // ---- sessions
  async getSession (accessKeyId: string): Promise<StsSession | undefined> {
    const r = this.#db.get('SELECT * FROM iam_sessions WHERE access_key_id = ?', accessKeyId)
    return r === undefined ? undefined : sessionRow(r)
  }

  async putSession (s: StsSession): Promise<void> {
    this.#db.run(`INSERT INTO iam_sessions (access_key_id, sealed_secret, token_hash, principal_type, principal_name, session_name, source_user,
      mfa, mfa_ms, origin, created_ms, expires_ms, source_ip) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    s.accessKeyId, s.sealedSecret, s.tokenHash, s.principalType, s.principalName, s.sessionName ?? null, s.sourceUser ?? null,
    s.mfa ? 1 : 0, s.mfaMs ?? null, s.origin, s.createdMs, s.expiresMs, s.sourceIp ?? null)
  }

  async deleteSessionsOf (principalType: 'user' | 'role', name: string): Promise<number> {
    if (principalType === 'role') return this.#db.run("DELETE FROM iam_sessions WHERE principal_type = 'role' AND principal_name = ?", name).changes
    return this.#db.run("DELETE FROM iam_sessions WHERE (principal_type = 'user' AND principal_name = ?) OR source_user = ?", name, name).changes
  }

  async deleteExpiredSessions (beforeMs: number): Promise<number> {
    return this.#db.run('DELETE FROM iam_sessions WHERE expires_ms < ?', beforeMs).changes
  }
}

/** {@link IamStorage} over one SqliteDb: units of work are SQLite transactions. */
export class SqliteIamStorage extends SqliteUnits<IamStore, IamUnit> implements IamStorage {
  constructor (db: SqliteDb, audit: SqliteAuditStore) { super(db, { store: new SqliteIamStore(db), audit }) }
}
