import type { ListArgs, RegistryStorage, RegistryStore, RegistryUnit, ThingFilter } from '../../registry/ports.ts'
import type {
  CaCertificate, CaStatus, Certificate, CertificateMode, CertificateStatus, Policy, PolicyVersion, Thing, ThingGroup,
  ThingPrincipal, ThingPrincipalType, ThingType,
} from '../../registry/types.ts'
import { AppError } from '../../core/index.ts'
import { SqliteUnits, num, optNum, optStr, str } from './db.ts'
import type { Row, SqliteDb, SqlValue } from './db.ts'
import type { SqliteAuditStore } from './audit-store.ts'

type R = Row

/** Parses a JSON column written by us; a bad value means the file was edited or corrupted. */
function jsonCol<T> (v: SqlValue, column: string): T {
  try { return JSON.parse(str(v)) as T } catch (err) {
    throw new AppError('ERR_STORAGE_CORRUPT', 'stored record is not valid JSON', { column }, { cause: err })
  }
}

const thingRow = (r: R): Thing => ({
  name: str(r.name), id: str(r.id), typeName: optStr(r.type_name), attributes: jsonCol(r.attributes, 'things.attributes'),
  version: num(r.version), createdMs: num(r.created_ms), updatedMs: num(r.updated_ms),
})
const thingTypeRow = (r: R): ThingType => ({
  name: str(r.name), id: str(r.id), description: optStr(r.description),
  searchableAttributes: jsonCol(r.searchable_attributes, 'thing_types.searchable_attributes'),
  deprecated: num(r.deprecated) === 1, deprecationMs: optNum(r.deprecation_ms), createdMs: num(r.created_ms),
})
const groupRow = (r: R): ThingGroup => ({
  name: str(r.name), id: str(r.id), parentName: optStr(r.parent_name), description: optStr(r.description),
  attributes: jsonCol(r.attributes, 'thing_groups.attributes'), version: num(r.version), createdMs: num(r.created_ms),
})
const certRow = (r: R): Certificate => ({
  id: str(r.id), pem: str(r.pem), caId: optStr(r.ca_id), serialHex: str(r.serial), status: str(r.status) as CertificateStatus,
  mode: str(r.mode) as CertificateMode, notBeforeMs: num(r.not_before_ms), notAfterMs: num(r.not_after_ms),
  revokedMs: optNum(r.revoked_ms), revocationReason: optNum(r.revocation_reason), createdMs: num(r.created_ms),
  updatedMs: num(r.updated_ms), generation: num(r.generation),
})
const caRow = (r: R): CaCertificate => ({
  id: str(r.id), pem: str(r.pem), subject: str(r.subject), status: str(r.status) as CaCertificate['status'],
  autoRegistration: str(r.auto_registration) as CaCertificate['autoRegistration'], mode: str(r.mode) as CertificateMode,
  own: num(r.own) === 1, sealedKey: r.sealed_key === null ? undefined : Buffer.from(r.sealed_key as Uint8Array),
  notBeforeMs: num(r.not_before_ms), notAfterMs: num(r.not_after_ms), createdMs: num(r.created_ms), updatedMs: num(r.updated_ms),
  generation: num(r.generation),
})
const policyRow = (r: R): Policy => ({
  name: str(r.name), defaultVersion: num(r.default_version), nextVersion: num(r.next_version), createdMs: num(r.created_ms),
  updatedMs: num(r.updated_ms), generation: num(r.generation),
})
const policyVersionRow = (r: R): PolicyVersion => ({
  policyName: str(r.policy_name), version: num(r.version), document: str(r.document), createdMs: num(r.created_ms),
})
const principalRow = (r: R): ThingPrincipal => ({
  thingName: str(r.thing_name), principal: str(r.principal), type: str(r.type) as ThingPrincipalType, createdMs: num(r.created_ms),
})
/** Escapes LIKE wildcards so a user's prefix is matched literally. */
const likePrefix = (s: string): string => `${s.replace(/[\\%_]/g, c => `\\${c}`)}%`

/** SQLite implementation of {@link RegistryStore}. All methods are synchronous underneath; see SqliteDb. */
export class SqliteRegistryStore implements RegistryStore {
  readonly #db: SqliteDb
  constructor (db: SqliteDb) { this.#db = db }

  async getThing (name: string): Promise<Thing | undefined> {
    const r = this.#db.get('SELECT * FROM things WHERE name = ?', name)
    return r === undefined ? undefined : thingRow(r)
  }

  async putThing (t: Thing): Promise<void> {
    this.#db.run(`INSERT INTO things (name, id, type_name, attributes, version, created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT(name) DO UPDATE SET type_name = excluded.type_name, attributes = excluded.attributes, version = excluded.version,
      updated_ms = excluded.updated_ms`, t.name, t.id, t.typeName ?? null, JSON.stringify(t.attributes), t.version, t.createdMs, t.updatedMs)
  }

  async deleteThing (name: string): Promise<void> { this.#db.run('DELETE FROM things WHERE name = ?', name) }

  async listThings (f: ThingFilter, page: ListArgs): Promise<Thing[]> {
    const where = ['name > ?']
    const params: SqlValue[] = [page.after ?? '']
    if (f.typeName !== undefined) { where.push('type_name = ?'); params.push(f.typeName) }
    if (f.attributeName !== undefined) {
      const path = `$.${JSON.stringify(f.attributeName)}`
      if (f.attributeValue === undefined) { where.push('json_extract(attributes, ?) IS NOT NULL'); params.push(path) } else if (f.usePrefixAttributeValue === true) {
        where.push("json_extract(attributes, ?) LIKE ? ESCAPE '\\'"); params.push(path, likePrefix(f.attributeValue))
      } else { where.push('json_extract(attributes, ?) = ?'); params.push(path, f.attributeValue) }
    }
    params.push(page.limit)
    return this.#db.all(`SELECT * FROM things WHERE ${where.join(' AND ')} ORDER BY name LIMIT ?`, ...params).map(thingRow)
  }

  async countThingsOfType (typeName: string): Promise<number> {
    return num(this.#db.get('SELECT COUNT(*) AS n FROM things WHERE type_name = ?', typeName)?.n ?? 0)
  }

  async getThingType (name: string): Promise<ThingType | undefined> {
    const r = this.#db.get('SELECT * FROM thing_types WHERE name = ?', name)
    return r === undefined ? undefined : thingTypeRow(r)
  }

  async putThingType (t: ThingType): Promise<void> {
    this.#db.run(`INSERT INTO thing_types (name, id, description, searchable_attributes, deprecated, deprecation_ms, created_ms)
      VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET description = excluded.description,
      deprecated = excluded.deprecated, deprecation_ms = excluded.deprecation_ms`,
    t.name, t.id, t.description ?? null, JSON.stringify(t.searchableAttributes), t.deprecated ? 1 : 0, t.deprecationMs ?? null, t.createdMs)
  }

  async deleteThingType (name: string): Promise<void> { this.#db.run('DELETE FROM thing_types WHERE name = ?', name) }

  async listThingTypes (page: ListArgs): Promise<ThingType[]> {
    return this.#db.all('SELECT * FROM thing_types WHERE name > ? ORDER BY name LIMIT ?', page.after ?? '', page.limit).map(thingTypeRow)
  }

  async getThingGroup (name: string): Promise<ThingGroup | undefined> {
    const r = this.#db.get('SELECT * FROM thing_groups WHERE name = ?', name)
    return r === undefined ? undefined : groupRow(r)
  }

  async putThingGroup (g: ThingGroup): Promise<void> {
    this.#db.run(`INSERT INTO thing_groups (name, id, parent_name, description, attributes, version, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT(name) DO UPDATE SET description = excluded.description, attributes = excluded.attributes, version = excluded.version`,
    g.name, g.id, g.parentName ?? null, g.description ?? null, JSON.stringify(g.attributes), g.version, g.createdMs)
  }

  async deleteThingGroup (name: string): Promise<void> { this.#db.run('DELETE FROM thing_groups WHERE name = ?', name) }

  async listThingGroups (f: { parentName?: string, namePrefix?: string }, page: ListArgs): Promise<ThingGroup[]> {
    const where = ['name > ?']
    const params: SqlValue[] = [page.after ?? '']
    if (f.parentName !== undefined) { where.push('parent_name = ?'); params.push(f.parentName) }
    if (f.namePrefix !== undefined) { where.push("name LIKE ? ESCAPE '\\'"); params.push(likePrefix(f.namePrefix)) }
    params.push(page.limit)
    return this.#db.all(`SELECT * FROM thing_groups WHERE ${where.join(' AND ')} ORDER BY name LIMIT ?`, ...params).map(groupRow)
  }

  async addThingToGroup (groupName: string, thingName: string): Promise<void> {
    this.#db.run('INSERT OR IGNORE INTO thing_group_members (group_name, thing_name) VALUES (?, ?)', groupName, thingName)
  }

  async removeThingFromGroup (groupName: string, thingName: string): Promise<void> {
    this.#db.run('DELETE FROM thing_group_members WHERE group_name = ? AND thing_name = ?', groupName, thingName)
  }

  async listThingsInGroup (groupName: string, page: ListArgs): Promise<string[]> {
    return this.#db.all('SELECT thing_name FROM thing_group_members WHERE group_name = ? AND thing_name > ? ORDER BY thing_name LIMIT ?',
      groupName, page.after ?? '', page.limit).map(r => str(r.thing_name))
  }

  async listGroupsForThing (thingName: string): Promise<string[]> {
    return this.#db.all('SELECT group_name FROM thing_group_members WHERE thing_name = ? ORDER BY group_name', thingName).map(r => str(r.group_name))
  }

  async countGroupChildren (groupName: string): Promise<number> {
    return num(this.#db.get('SELECT COUNT(*) AS n FROM thing_groups WHERE parent_name = ?', groupName)?.n ?? 0)
  }

  async countGroupMembers (groupName: string): Promise<number> {
    return num(this.#db.get('SELECT COUNT(*) AS n FROM thing_group_members WHERE group_name = ?', groupName)?.n ?? 0)
  }

  async getCertificate (id: string): Promise<Certificate | undefined> {
    const r = this.#db.get('SELECT * FROM certificates WHERE id = ?', id)
    return r === undefined ? undefined : certRow(r)
  }

  async getCertificateWithCaStatus (id: string): Promise<{ certificate: Certificate, caStatus: CaStatus | undefined } | undefined> {
    const r = this.#db.get('SELECT c.*, ca.status AS ca_status FROM certificates c LEFT JOIN ca_certificates ca ON ca.id = c.ca_id WHERE c.id = ?', id)
    return r === undefined ? undefined : { certificate: certRow(r), caStatus: optStr(r.ca_status) as CaStatus | undefined }
  }

  async putCertificate (c: Certificate): Promise<void> {
    this.#db.run(`INSERT INTO certificates (id, pem, ca_id, serial, status, mode, not_before_ms, not_after_ms, revoked_ms, revocation_reason,
      created_ms, updated_ms, generation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT(id) DO UPDATE SET status = excluded.status, revoked_ms = excluded.revoked_ms,
      revocation_reason = excluded.revocation_reason, updated_ms = excluded.updated_ms, generation = excluded.generation`,
    c.id, c.pem, c.caId ?? null, c.serialHex, c.status, c.mode, c.notBeforeMs, c.notAfterMs, c.revokedMs ?? null,
    c.revocationReason ?? null, c.createdMs, c.updatedMs, c.generation)
  }

  async deleteCertificate (id: string): Promise<void> { this.#db.run('DELETE FROM certificates WHERE id = ?', id) }

  async listCertificates (f: { caId?: string, status?: CertificateStatus, ascending: boolean }, page: ListArgs): Promise<Certificate[]> {
    const where: string[] = []
    const params: SqlValue[] = []
    if (page.after !== undefined) {
      const i = page.after.indexOf(':')
      const ms = Number(page.after.slice(0, i))
      const id = page.after.slice(i + 1)
      where.push(f.ascending ? '(created_ms > ? OR (created_ms = ? AND id > ?))' : '(created_ms < ? OR (created_ms = ? AND id < ?))')
      params.push(ms, ms, id)
    }
    if (f.caId !== undefined) { where.push('ca_id = ?'); params.push(f.caId) }
    if (f.status !== undefined) { where.push('status = ?'); params.push(f.status) }
    params.push(page.limit)
    const dir = f.ascending ? 'ASC' : 'DESC'
    return this.#db.all(`SELECT * FROM certificates ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY created_ms ${dir}, id ${dir} LIMIT ?`, ...params).map(certRow)
  }

  async listRevocations (caId: string, nowMs: number): Promise<Array<{ serialHex: string, revokedMs: number, reason: number | undefined }>> {
    return this.#db.all('SELECT serial, revoked_ms, reason FROM revocations WHERE ca_id = ? AND not_after_ms > ? ORDER BY revoked_ms, serial', caId, nowMs)
      .map(r => ({ serialHex: str(r.serial), revokedMs: num(r.revoked_ms), reason: optNum(r.reason) }))
  }

  async recordRevocation (r: { caId: string, serialHex: string, certificateId: string, revokedMs: number, reason: number | undefined, notAfterMs: number }): Promise<void> {
    this.#db.run('INSERT OR IGNORE INTO revocations (ca_id, serial, certificate_id, revoked_ms, reason, not_after_ms) VALUES (?, ?, ?, ?, ?, ?)',
      r.caId, r.serialHex, r.certificateId, r.revokedMs, r.reason ?? null, r.notAfterMs)
  }

  async findCertificateBySerial (caId: string, serialHex: string): Promise<Certificate | undefined> {
    const r = this.#db.get('SELECT * FROM certificates WHERE ca_id = ? AND serial = ?', caId, serialHex)
    return r === undefined ? undefined : certRow(r)
  }

  async getCaCertificate (id: string): Promise<CaCertificate | undefined> {
    const r = this.#db.get('SELECT * FROM ca_certificates WHERE id = ?', id)
    return r === undefined ? undefined : caRow(r)
  }

  async putCaCertificate (c: CaCertificate): Promise<void> {
    this.#db.run(`INSERT INTO ca_certificates (id, pem, subject, status, auto_registration, mode, own, sealed_key, not_before_ms, not_after_ms,
      created_ms, updated_ms, generation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT(id) DO UPDATE SET status = excluded.status, auto_registration = excluded.auto_registration,
      updated_ms = excluded.updated_ms, generation = excluded.generation`,
    c.id, c.pem, c.subject, c.status, c.autoRegistration, c.mode, c.own ? 1 : 0, c.sealedKey ?? null, c.notBeforeMs, c.notAfterMs,
    c.createdMs, c.updatedMs, c.generation)
  }

  async listCaCertificates (page: ListArgs): Promise<CaCertificate[]> {
    return this.#db.all('SELECT * FROM ca_certificates WHERE id > ? ORDER BY id LIMIT ?', page.after ?? '', page.limit).map(caRow)
  }

  async countCaCertificatesWithSubject (subject: string): Promise<number> {
    return num(this.#db.get('SELECT COUNT(*) AS n FROM ca_certificates WHERE subject = ?', subject)?.n ?? 0)
  }

  async getPolicy (name: string): Promise<Policy | undefined> {
    const r = this.#db.get('SELECT * FROM policies WHERE name = ?', name)
    return r === undefined ? undefined : policyRow(r)
  }

  async putPolicy (p: Policy): Promise<void> {
    this.#db.run(`INSERT INTO policies (name, default_version, next_version, created_ms, updated_ms, generation) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT(name) DO UPDATE SET default_version = excluded.default_version, next_version = excluded.next_version,
      updated_ms = excluded.updated_ms, generation = excluded.generation`,
    p.name, p.defaultVersion, p.nextVersion, p.createdMs, p.updatedMs, p.generation)
  }

  async deletePolicy (name: string): Promise<void> {
    this.#db.run('DELETE FROM policy_versions WHERE policy_name = ?', name)
    this.#db.run('DELETE FROM policies WHERE name = ?', name)
  }

  async listPolicies (page: ListArgs): Promise<Policy[]> {
    return this.#db.all('SELECT * FROM policies WHERE name > ? ORDER BY name LIMIT ?', page.after ?? '', page.limit).map(policyRow)
  }

  async getPolicyVersion (name: string, version: number): Promise<PolicyVersion | undefined> {
    const r = this.#db.get('SELECT * FROM policy_versions WHERE policy_name = ? AND version = ?', name, version)
    return r === undefined ? undefined : policyVersionRow(r)
  }

  async putPolicyVersion (v: PolicyVersion): Promise<void> {
    this.#db.run('INSERT INTO policy_versions (policy_name, version, document, created_ms) VALUES (?, ?, ?, ?)', v.policyName, v.version, v.document, v.createdMs)
  }

  async deletePolicyVersion (name: string, version: number): Promise<void> {
    this.#db.run('DELETE FROM policy_versions WHERE policy_name = ? AND version = ?', name, version)
  }

  async listPolicyVersions (name: string): Promise<PolicyVersion[]> {
    return this.#db.all('SELECT * FROM policy_versions WHERE policy_name = ? ORDER BY version DESC', name).map(policyVersionRow)
  }

  async attachPolicy (policyName: string, target: string, createdMs: number): Promise<void> {
    this.#db.run('INSERT OR IGNORE INTO policy_targets (policy_name, target, created_ms) VALUES (?, ?, ?)', policyName, target, createdMs)
  }

  async detachPolicy (policyName: string, target: string): Promise<boolean> {
    return this.#db.run('DELETE FROM policy_targets WHERE policy_name = ? AND target = ?', policyName, target).changes > 0
  }

  async listAttachedPolicies (target: string): Promise<Policy[]> {
    return this.#db.all('SELECT p.* FROM policy_targets t JOIN policies p ON p.name = t.policy_name WHERE t.target = ? ORDER BY t.policy_name', target).map(policyRow)
  }

  async listPoliciesForTarget (target: string): Promise<string[]> {
    return this.#db.all('SELECT policy_name FROM policy_targets WHERE target = ? ORDER BY policy_name', target).map(r => str(r.policy_name))
  }

  async listTargetsForPolicy (policyName: string, page: ListArgs): Promise<string[]> {
    return this.#db.all('SELECT target FROM policy_targets WHERE policy_name = ? AND target > ? ORDER BY target LIMIT ?',
      policyName, page.after ?? '', page.limit).map(r => str(r.target))
  }

  async countTargetsForPolicy (policyName: string): Promise<number> {
    return num(this.#db.get('SELECT COUNT(*) AS n FROM policy_targets WHERE policy_name = ?', policyName)?.n ?? 0)
  }

  async attachThingPrincipal (p: ThingPrincipal): Promise<void> {
    this.#db.run(`INSERT INTO thing_principals (thing_name, principal, type, created_ms) VALUES (?, ?, ?, ?)
      ON CONFLICT(thing_name, principal) DO UPDATE SET type = excluded.type`, p.thingName, p.principal, p.type, p.createdMs)
  }

  async detachThingPrincipal (thingName: string, principal: string): Promise<boolean> {
    return this.#db.run('DELETE FROM thing_principals WHERE thing_name = ? AND principal = ?', thingName, principal).changes > 0
  }

  async listThingPrincipals (thingName: string, page: ListArgs): Promise<ThingPrincipal[]> {
    return this.#db.all('SELECT * FROM thing_principals WHERE thing_name = ? AND principal > ? ORDER BY principal LIMIT ?',
      thingName, page.after ?? '', page.limit).map(principalRow)
  }

  async listPrincipalThings (principal: string, page: ListArgs): Promise<ThingPrincipal[]> {
    return this.#db.all('SELECT * FROM thing_principals WHERE principal = ? AND thing_name > ? ORDER BY thing_name LIMIT ?',
      principal, page.after ?? '', page.limit).map(principalRow)
  }

  async getPrincipalThing (principal: string): Promise<{ thing: Thing, type: ThingPrincipalType } | undefined> {
    // The exclusive thing, else the first by name, picked by two index lookups on (principal, thing_name) rather
    // than by ORDER BY over the principal's rows, which needed a temporary B-tree on every device connection.
    const r = this.#db.get(`SELECT t.*, p.type AS principal_type FROM thing_principals p JOIN things t ON t.name = p.thing_name
      WHERE p.principal = ?1 AND p.thing_name = COALESCE(
        (SELECT thing_name FROM thing_principals WHERE principal = ?1 AND type = 'EXCLUSIVE_THING' LIMIT 1),
        (SELECT thing_name FROM thing_principals WHERE principal = ?1 ORDER BY thing_name LIMIT 1))`, principal)
    return r === undefined ? undefined : { thing: thingRow(r), type: str(r.principal_type) as ThingPrincipalType }
  }

  async putRegistrationCode (code: string, createdMs: number): Promise<void> {
    this.#db.run('INSERT OR IGNORE INTO registration_codes (code, created_ms) VALUES (?, ?)', code, createdMs)
  }

  async getRegistrationCode (): Promise<string | undefined> {
    return optStr(this.#db.get('SELECT code FROM registration_codes ORDER BY created_ms LIMIT 1')?.code ?? null)
  }

  async getMeta (key: string): Promise<string | undefined> {
    return optStr(this.#db.get('SELECT value FROM meta WHERE key = ?', key)?.value ?? null)
  }

  async putMeta (key: string, value: string): Promise<void> {
    this.#db.run('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value', key, value)
  }
}

/** {@link RegistryStorage} over one SqliteDb: units of work are SQLite transactions. */
export class SqliteRegistryStorage extends SqliteUnits<RegistryStore, RegistryUnit> implements RegistryStorage {
  constructor (db: SqliteDb, audit: SqliteAuditStore) { super(db, { store: new SqliteRegistryStore(db), audit }) }
}
