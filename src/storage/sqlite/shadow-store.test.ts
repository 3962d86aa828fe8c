import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AuditAppender, AuditRecord } from '../../audit/index.ts'
import { shadowStoreContract } from '../contract/shadow-store.contract.ts'
import type { ShadowStoreHarness } from '../contract/shadow-store.contract.ts'
import { SqliteDb } from './db.ts'
import { SqlitePayloadSchemaStorage, SqliteShadowStorage } from './shadow-store.ts'

/** An appender that writes into the same SQLite connection, so the contract can see rollbacks. */
function tableAppender (db: SqliteDb): AuditAppender {
  db.exec('CREATE TABLE IF NOT EXISTS contract_audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)')
  return {
    async append (e) {
      const { lastInsertRowid } = db.run('INSERT INTO contract_audit (body) VALUES (?)', JSON.stringify(e))
      return { ...e, seq: lastInsertRowid, timeMs: 0, prevHash: '' } satisfies AuditRecord
    },
  }
}

function harness (db: SqliteDb, cleanup: () => void): ShadowStoreHarness {
  const audit = tableAppender(db)
  return {
    shadows: new SqliteShadowStorage(db, audit),
    schemas: new SqlitePayloadSchemaStorage(db, audit),
    async createThing (name) {
      await db.transaction(() => { db.run('INSERT INTO things (name, id, attributes, version, created_ms, updated_ms) VALUES (?, ?, ?, 1, 0, 0)', name, `id-${name}`, '{}') })
    },
    async auditCount () { return Number(db.get<{ n: number }>('SELECT COUNT(*) AS n FROM contract_audit')?.n ?? 0) },
    async close () { db.close(); cleanup() },
  }
}

shadowStoreContract('sqlite :memory:', async () => harness(new SqliteDb({ path: ':memory:' }), () => {}))

shadowStoreContract('sqlite file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-shadow-store-'))
  return harness(new SqliteDb({ path: join(dir, 'tw.db') }), () => { rmSync(dir, { recursive: true, force: true }) })
})
