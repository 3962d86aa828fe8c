import { DatabaseSync, type StatementSync, type SQLInputValue } from 'node:sqlite'
import { chmodSync, mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { AppError } from '../../core/index.ts'
import { MIGRATIONS } from './migrations.ts'

export type SqlValue = SQLInputValue
export type Row = Record<string, SqlValue>

export interface SqliteOptions {
  /** File path, or ':memory:' for tests. */
  readonly path: string
  /**
   * 'FULL' survives power loss; 'NORMAL' in WAL mode survives a process crash (kill -9) but may lose the last
   * commits on power loss (SQLite docs, "WAL mode: synchronous=NORMAL"). FULL is the default: nothing
   * acknowledged is ever lost.
   */
  readonly synchronous?: 'FULL' | 'NORMAL'
}

/**
 * One SQLite connection shared by every store. node:sqlite is synchronous, while our ports are async (so that
 * PostgreSQL fits behind them); every unit of work therefore runs through one FIFO queue, so an `await` inside a
 * transaction can never let another caller's statements interleave with it.
 */
export class SqliteDb {
  readonly #db: DatabaseSync
  readonly #stmts = new Map<string, StatementSync>()
  #queue: Promise<unknown> = Promise.resolve()
  #inTx = false

  constructor (opts: SqliteOptions) {
    if (opts.path !== ':memory:') mkdirSync(dirname(opts.path), { recursive: true, mode: 0o700 })
    this.#db = new DatabaseSync(opts.path)
    try {
      this.#db.exec('PRAGMA journal_mode = WAL')
    } catch (err) {
      this.#db.close()
      throw new AppError('ERR_STORAGE_CORRUPT', 'the database file is not a valid SQLite database', { path: opts.path }, { cause: err })
    }
    // The file holds only sealed secrets, but it is still nobody else's business (SQLite gives the WAL and shm
    // files the database file's mode).
    if (opts.path !== ':memory:') chmodSync(opts.path, 0o600)
    this.#db.exec(`PRAGMA synchronous = ${opts.synchronous ?? 'FULL'}`)
    this.#db.exec('PRAGMA foreign_keys = ON')
    this.#db.exec('PRAGMA busy_timeout = 5000')
    // Checkpoint every ~40 MB of WAL instead of ~4 MB: fewer, larger checkpoints under sustained audit appends.
    this.#db.exec('PRAGMA wal_autocheckpoint = 10000')
    this.#migrate()
  }

  #migrate (): void {
    this.#db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)')
    const row = this.#db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null }
    const current = row.v ?? 0
    if (current > MIGRATIONS.length) {
      throw new AppError('ERR_STORAGE_MIGRATION', 'database schema is newer than this version of thingward', { current, known: MIGRATIONS.length })
    }
    for (let v = current + 1; v <= MIGRATIONS.length; v++) {
      // Each migration commits with its version row, so a crash mid-migration leaves the previous version intact.
      this.#db.exec('BEGIN IMMEDIATE')
      try {
        this.#db.exec(MIGRATIONS[v - 1])
        this.#db.prepare('INSERT INTO schema_migrations (version, applied_ms) VALUES (?, ?)').run(v, Date.now())
        this.#db.exec('COMMIT')
      } catch (err) {
        this.#db.exec('ROLLBACK')
        throw new AppError('ERR_STORAGE_MIGRATION', 'database migration failed', { version: v }, { cause: err })
      }
    }
  }

  get schemaVersion (): number {
    return (this.#db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number }).v
  }

  /** A cached prepared statement. */
  stmt (sql: string): StatementSync {
    let s = this.#stmts.get(sql)
    if (s === undefined) {
      s = this.#db.prepare(sql)
      this.#stmts.set(sql, s)
    }
    return s
  }

  all<T = Row> (sql: string, ...params: SqlValue[]): T[] { return this.stmt(sql).all(...params) as T[] }
  get<T = Row> (sql: string, ...params: SqlValue[]): T | undefined { return this.stmt(sql).get(...params) as T | undefined }
  run (sql: string, ...params: SqlValue[]): { changes: number, lastInsertRowid: number } {
    const r = this.stmt(sql).run(...params)
    return { changes: Number(r.changes), lastInsertRowid: Number(r.lastInsertRowid) }
  }

  exec (sql: string): void { this.#db.exec(sql) }

  /** Runs `fn` alone on the connection (no transaction). Use for reads. */
  read<T> (fn: () => T | Promise<T>): Promise<T> {
    return this.#enqueue(fn)
  }

  /**
   * Runs `fn` inside BEGIN IMMEDIATE … COMMIT. A throw (or rejection) rolls everything back: nothing half-written
   * is ever visible, and a crash before COMMIT leaves the WAL without the transaction.
   */
  transaction<T> (fn: () => T | Promise<T>): Promise<T> {
    return this.#enqueue(async () => {
      this.#db.exec('BEGIN IMMEDIATE')
      this.#inTx = true
      try {
        const result = await fn()
        this.#db.exec('COMMIT')
        return result
      } catch (err) {
        this.#db.exec('ROLLBACK')
        throw err
      } finally {
        this.#inTx = false
      }
    })
  }

  get inTransaction (): boolean { return this.#inTx }

  #enqueue<T> (fn: () => T | Promise<T>): Promise<T> {
    const run = this.#queue.then(() => fn())
    this.#queue = run.catch(() => undefined)
    return run
  }

  close (): void {
    this.#stmts.clear()
    if (this.#db.isOpen) this.#db.close()
  }
}

/** Column readers for rows we wrote (`NULL` is absent). */
export const str = (v: SqlValue): string => String(v)
export const optStr = (v: SqlValue): string | undefined => v === null || v === undefined ? undefined : String(v)
export const num = (v: SqlValue): number => Number(v)
export const optNum = (v: SqlValue): number | undefined => v === null || v === undefined ? undefined : Number(v)

/**
 * A domain's units of work over one SqliteDb (the `…Storage` port of registry, IAM, shadows and schemas): a
 * transaction hands `fn` the store with an audit appender that writes in the same SQLite transaction, so a
 * change and its audit event commit together; a read hands it the store alone.
 */
export class SqliteUnits<S, U extends { readonly store: S }> {
  readonly #db: SqliteDb
  readonly #unit: U
  constructor (db: SqliteDb, unit: U) {
    this.#db = db
    this.#unit = unit
  }

  transaction<T> (fn: (u: U) => Promise<T>): Promise<T> { return this.#db.transaction(() => fn(this.#unit)) }
  read<T> (fn: (s: S) => Promise<T>): Promise<T> { return this.#db.read(() => fn(this.#unit.store)) }
}
