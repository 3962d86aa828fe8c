import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SqliteDb } from './db.ts'
import { SqliteKeyringStore } from './keyring-store.ts'
import { keyringStoreContract } from '../contract/keyring-store.contract.ts'

keyringStoreContract('sqlite :memory:', async () => {
  const db = new SqliteDb({ path: ':memory:' })
  return { store: new SqliteKeyringStore(db), close: async () => db.close() }
})

keyringStoreContract('sqlite file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-keyring-store-'))
  const db = new SqliteDb({ path: join(dir, 'tw.db') })
  return { store: new SqliteKeyringStore(db), close: async () => { db.close(); rmSync(dir, { recursive: true, force: true }) } }
})

test('sqlite KeyringStore: versions and states survive closing and reopening the file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-keyring-store-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'tw.db')
  const db1 = new SqliteDb({ path })
  const s1 = new SqliteKeyringStore(db1)
  await s1.insertVersion({ keyId: 'master', version: 1, sealed: Buffer.from([3, 1, 2]), state: 'enabled', createdMs: 5 })
  await s1.updateState('master', 1, 'disabled')
  db1.close()
  const db2 = new SqliteDb({ path })
  t.after(() => db2.close())
  assert.deepEqual(await new SqliteKeyringStore(db2).listVersions('master'),
    [{ keyId: 'master', version: 1, sealed: Buffer.from([3, 1, 2]), state: 'disabled', createdMs: 5 }])
})

test('sqlite KeyringStore: a row with an unknown state is reported as corrupt, not passed on', async (t) => {
  const db = new SqliteDb({ path: ':memory:' })
  t.after(() => db.close())
  db.run("INSERT INTO kms_keys (key_id, version, sealed, state, created_ms) VALUES ('master', 1, x'00', 'bogus', 1)")
  await assert.rejects(new SqliteKeyringStore(db).listVersions('master'), { code: 'ERR_STORAGE_CORRUPT' })
})
