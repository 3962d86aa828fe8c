import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ManualClock } from '../../core/index.ts'
import { registryStorageContract } from '../contract/registry-store.contract.ts'
import { SqliteAuditStore } from './audit-store.ts'
import { SqliteDb } from './db.ts'
import { SqliteRegistryStorage } from './registry-store.ts'

registryStorageContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-reg-'))
  const db = new SqliteDb({ path: join(dir, 'x.db') })
  const audit = new SqliteAuditStore(db, new ManualClock())
  return { storage: new SqliteRegistryStorage(db, audit), audit, close: async () => { db.close(); rmSync(dir, { recursive: true, force: true }) } }
})
