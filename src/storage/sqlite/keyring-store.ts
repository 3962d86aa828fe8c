import type { KeyringStore, KeyVersionRecord, KeyVersionState } from '../../kms/index.ts'
import { isKeyVersionState } from '../../kms/index.ts'
import { AppError } from '../../core/index.ts'
import type { SqliteDb } from './db.ts'

/**
 * {@link KeyringStore} on the `kms_keys` table. Each method is one statement queued on the shared connection
 * (autocommit), so it must not be awaited from inside a `SqliteDb.transaction` callback: it would wait behind
 * that transaction forever. Keyring writes are rare (first open, rotation, disable) and stand alone.
 */
export class SqliteKeyringStore implements KeyringStore {
  readonly #db: SqliteDb
  constructor (db: SqliteDb) { this.#db = db }

  async listVersions (keyId: string): Promise<KeyVersionRecord[]> {
    return this.#db.read(() => this.#db
      .all('SELECT key_id, version, sealed, state, created_ms FROM kms_keys WHERE key_id = ? ORDER BY version', keyId)
      .map(toRecord))
  }

  async insertVersion (record: KeyVersionRecord): Promise<boolean> {
    return this.#db.read(() => this.#db.run(
      'INSERT INTO kms_keys (key_id, version, sealed, state, created_ms) VALUES (?, ?, ?, ?, ?) ON CONFLICT (key_id, version) DO NOTHING',
      record.keyId, record.version, record.sealed, record.state, record.createdMs,
    ).changes === 1)
  }

  async updateState (keyId: string, version: number, state: KeyVersionState): Promise<boolean> {
    return this.#db.read(() =>
      this.#db.run('UPDATE kms_keys SET state = ? WHERE key_id = ? AND version = ?', state, keyId, version).changes === 1)
  }
}

/** Validates a row (DB rows are `unknown` at the edge, DESIGN.md §5) and copies the blob into a fresh Buffer. */
function toRecord (row: Record<string, unknown>): KeyVersionRecord {
  const { key_id: keyId, version, sealed, state, created_ms: createdMs } = row
  if (typeof keyId !== 'string' || typeof version !== 'number' || !Number.isSafeInteger(version) ||
    !(sealed instanceof Uint8Array) || !isKeyVersionState(state) ||
    typeof createdMs !== 'number' || !Number.isSafeInteger(createdMs)) {
    throw new AppError('ERR_STORAGE_CORRUPT', 'kms_keys row is malformed', { table: 'kms_keys' })
  }
  return { keyId, version, sealed: Buffer.from(sealed), state, createdMs }
}
