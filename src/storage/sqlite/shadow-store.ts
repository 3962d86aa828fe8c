import type { AuditAppender } from '../../audit/index.ts'
import type {
  PayloadSchemaStorage, PayloadSchemaStore, ShadowStorage, ShadowStore, ShadowUnit, StoredPayloadSchema, StoredShadow,
} from '../../shadow/index.ts'
import { SqliteUnits, optNum } from './db.ts'
import type { Row, SqliteDb } from './db.ts'

type R = Row

const shadowRow = (r: R): StoredShadow => {
  const deletedMs = optNum(r.deleted_ms)
  return {
    thingName: String(r.thing_name),
    shadowName: String(r.shadow_name),
    version: Number(r.version),
    // A fresh copy: callers may not alter what is stored through a returned buffer.
    ...(r.sealed === null || r.sealed === undefined ? {} : { sealed: Buffer.from(r.sealed as Uint8Array) }),
    updatedMs: Number(r.updated_ms),
    ...(deletedMs === undefined ? {} : { deletedMs }),
  }
}

const schemaRow = (r: R): StoredPayloadSchema => ({
  name: String(r.name),
  topicFilter: String(r.topic_filter),
  schemaJson: String(r.schema_json),
  ...(r.description === null || r.description === undefined ? {} : { description: String(r.description) }),
  version: Number(r.version),
  createdMs: Number(r.created_ms),
  updatedMs: Number(r.updated_ms),
})

/** SQLite implementation of {@link ShadowStore}. Documents arrive sealed; this layer never sees them in clear. */
export class SqliteShadowStore implements ShadowStore {
  readonly #db: SqliteDb
  constructor (db: SqliteDb) { this.#db = db }

  async thingExists (thingName: string): Promise<boolean> {
    return this.#db.get('SELECT 1 AS x FROM things WHERE name = ?', thingName) !== undefined
  }

  async get (thingName: string, shadowName: string): Promise<StoredShadow | undefined> {
    const r = this.#db.get('SELECT * FROM shadows WHERE thing_name = ? AND shadow_name = ?', thingName, shadowName)
    return r === undefined ? undefined : shadowRow(r)
  }

  async put (s: StoredShadow): Promise<void> {
    this.#db.run(`INSERT INTO shadows (thing_name, shadow_name, version, sealed, updated_ms, deleted_ms) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT(thing_name, shadow_name) DO UPDATE SET version = excluded.version, sealed = excluded.sealed,
      updated_ms = excluded.updated_ms, deleted_ms = excluded.deleted_ms`,
    s.thingName, s.shadowName, s.version, s.sealed ?? null, s.updatedMs, s.deletedMs ?? null)
  }

  async listNamed (thingName: string, after: string | undefined, limit: number): Promise<string[]> {
    const rows = this.#db.all<{ shadow_name: string }>(
      `SELECT shadow_name FROM shadows WHERE thing_name = ? AND shadow_name <> '' AND sealed IS NOT NULL AND shadow_name > ?
       ORDER BY shadow_name LIMIT ?`, thingName, after ?? '', limit)
    return rows.map(r => String(r.shadow_name))
  }
}

/** Units of work over {@link SqliteShadowStore}; the audit appender writes in the same SQLite transaction. */
export class SqliteShadowStorage extends SqliteUnits<ShadowStore, ShadowUnit> implements ShadowStorage {
  constructor (db: SqliteDb, audit: AuditAppender) { super(db, { store: new SqliteShadowStore(db), audit }) }
}

/** SQLite implementation of {@link PayloadSchemaStore}. */
export class SqlitePayloadSchemaStore implements PayloadSchemaStore {
  readonly #db: SqliteDb
  constructor (db: SqliteDb) { this.#db = db }

  async list (): Promise<StoredPayloadSchema[]> {
    return this.#db.all('SELECT * FROM payload_schemas ORDER BY name').map(schemaRow)
  }

  async count (): Promise<number> {
    return Number(this.#db.get<{ n: number }>('SELECT COUNT(*) AS n FROM payload_schemas')?.n ?? 0)
  }

  async get (name: string): Promise<StoredPayloadSchema | undefined> {
    const r = this.#db.get('SELECT * FROM payload_schemas WHERE name = ?', name)
    return r === undefined ? undefined : schemaRow(r)
  }

  async put (s: StoredPayloadSchema): Promise<void> {
    this.#db.run(`INSERT INTO payload_schemas (name, topic_filter, schema_json, description, version, created_ms, updated_ms)
      VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET topic_filter = excluded.topic_filter,
      schema_json = excluded.schema_json, description = excluded.description, version = excluded.version,
      updated_ms = excluded.updated_ms`,
    s.name, s.topicFilter, s.schemaJson, s.description ?? null, s.version, s.createdMs, s.updatedMs)
  }

  async delete (name: string): Promise<boolean> {
    return this.#db.run('DELETE FROM payload_schemas WHERE name = ?', name).changes > 0
  }
}

/** Units of work over {@link SqlitePayloadSchemaStore}, audited in the same transaction. */
export class SqlitePayloadSchemaStorage extends SqliteUnits<PayloadSchemaStore, { readonly store: PayloadSchemaStore, readonly audit: AuditAppender }> implements PayloadSchemaStorage {
  constructor (db: SqliteDb, audit: AuditAppender) { super(db, { store: new SqlitePayloadSchemaStore(db), audit }) }
}
