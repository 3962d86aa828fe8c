import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { ManualClock } from '../../core/index.ts'
import { iamStorageContract } from '../contract/iam-store.contract.ts'
import { SqliteAuditStore } from './audit-store.ts'
import { SqliteDb } from './db.ts'
import { SqliteIamStorage } from './iam-store.ts'
import { MIGRATIONS } from './migrations.ts'

iamStorageContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-iam-'))
  const db = new SqliteDb({ path: join(dir, 'x.db') })
  const audit = new SqliteAuditStore(db, new ManualClock())
  return { storage: new SqliteIamStorage(db, audit), audit, close: async () => { db.close(); rmSync(dir, { recursive: true, force: true }) } }
})

test('sqlite IAM migration: owners of access keys that predate IAM become users with the admin role', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-iam-mig-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'x.db')
  const iamIndex = MIGRATIONS.findIndex(m => m.includes('CREATE TABLE iam_users'))
  assert.ok(iamIndex > 0)
  // A database as the previous release left it: every migration before IAM, and one admin access key.
  const old = new DatabaseSync(path)
  old.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)')
  for (let v = 1; v <= iamIndex; v++) {
    old.exec(MIGRATIONS[v - 1])
    old.prepare('INSERT INTO schema_migrations (version, applied_ms) VALUES (?, 0)').run(v)
  }
  old.prepare("INSERT INTO access_keys (id, user_name, sealed_secret, status, created_ms) VALUES ('AKIAOLD', 'admin', x'00', 'Active', 5)").run()
  old.close()
  const db = new SqliteDb({ path })
  t.after(() => db.close())
  const storage = new SqliteIamStorage(db, new SqliteAuditStore(db, new ManualClock()))
  await storage.read(async (s) => {
    const admin = await s.getUser('admin')
    assert.match(admin?.id ?? '', /^AIDA[0-9A-F]{17}$/)
    assert.equal(admin?.createdMs, 5)
    assert.deepEqual(await s.listRolesForUser('admin'), ['admin'])
    assert.deepEqual((await s.listAccessKeys('admin')).map(k => k.id), ['AKIAOLD'])
  })
})
