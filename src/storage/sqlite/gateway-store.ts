import type {
  GrantedQoS, MessageProperties, ProtocolVersion, RetainedChange, RetainedStore, SessionStore, StoredMessage,
  StoredSession, StoredSubscription,
} from '../../gateway/ports.ts'
import { AppError } from '../../core/index.ts'
import type { SqliteDb } from './db.ts'


function corrupt (table: string): AppError {
  return new AppError('ERR_STORAGE_CORRUPT', 'gateway row is malformed', { table })
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v)

/** JSON form of MessageProperties (correlation data as base64). */
function propertiesToJson (p: MessageProperties | undefined): string | null {
  if (p === undefined) return null
  const { correlationData, ...rest } = p
  return JSON.stringify(correlationData === undefined ? rest : { ...rest, correlationData: correlationData.toString('base64') })
}

function propertiesFromJson (raw: unknown, table: string): MessageProperties | undefined {
  if (raw === null || raw === undefined) return undefined
  if (typeof raw !== 'string') throw corrupt(table)
  let v: unknown
  try { v = JSON.parse(raw) } catch { throw corrupt(table) }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw corrupt(table)
  const o = v as Record<string, unknown>
  const out: { -readonly [K in keyof MessageProperties]: MessageProperties[K] } = {}
  if (o.payloadFormatIndicator !== undefined) {
    if (typeof o.payloadFormatIndicator !== 'boolean') throw corrupt(table)
    out.payloadFormatIndicator = o.payloadFormatIndicator
  }
  for (const k of ['contentType', 'responseTopic'] as const) {
    if (o[k] !== undefined) {
      const s = o[k]
      if (typeof s !== 'string') throw corrupt(table)
      out[k] = s
    }
  }
  if (o.correlationData !== undefined) {
    if (typeof o.correlationData !== 'string') throw corrupt(table)
    out.correlationData = Buffer.from(o.correlationData, 'base64')
  }
  if (o.userProperties !== undefined) {
    const up = o.userProperties
    if (up === null || typeof up !== 'object' || Array.isArray(up)) throw corrupt(table)
    const clean: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>
    for (const [name, value] of Object.entries(up)) {
      if (typeof value === 'string') clean[name] = value
      else if (Array.isArray(value) && value.every((x) => typeof x === 'string')) clean[name] = value as string[]
      else throw corrupt(table)
    }
    out.userProperties = clean
  }
  return out
}

function toQos (v: unknown, table: string): GrantedQoS {
  if (v === 0 || v === 1) return v
  throw corrupt(table)
}

function toMessage (row: Record<string, unknown>, table: string): StoredMessage {
  const { topic, payload, qos, retain, properties, expires_ms: expiresMs } = row
  if (typeof topic !== 'string' || !(payload instanceof Uint8Array) || (retain !== 0 && retain !== 1) ||
    (expiresMs !== null && !isInt(expiresMs))) throw corrupt(table)
  const props = propertiesFromJson(properties, table)
  return {
    topic,
    payload: Buffer.from(payload),
    qos: toQos(qos, table),
    retain: retain === 1,
    ...(props === undefined ? {} : { properties: props }),
    ...(expiresMs === null ? {} : { expiresAtMs: expiresMs }),
  }
}

function toSubscriptions (raw: unknown): StoredSubscription[] {
  const table = 'gateway_sessions'
  if (typeof raw !== 'string') throw corrupt(table)
  let v: unknown
  try { v = JSON.parse(raw) } catch { throw corrupt(table) }
  if (!Array.isArray(v)) throw corrupt(table)
  return v.map((x: unknown): StoredSubscription => {
    if (x === null || typeof x !== 'object') throw corrupt(table)
    const o = x as Record<string, unknown>
    const { filter, qos, noLocal, retainAsPublished, retainHandling, subscriptionIdentifier } = o
    if (typeof filter !== 'string' || typeof noLocal !== 'boolean' || typeof retainAsPublished !== 'boolean' ||
      (retainHandling !== 0 && retainHandling !== 1 && retainHandling !== 2) ||
      (subscriptionIdentifier !== undefined && !isInt(subscriptionIdentifier))) throw corrupt(table)
    const s: StoredSubscription = { filter, qos: toQos(qos, table), noLocal, retainAsPublished, retainHandling }
    return subscriptionIdentifier === undefined ? s : { ...s, subscriptionIdentifier }
  })
}

/**
 * {@link SessionStore} and {@link RetainedStore} on SQLite. The gateway batches its writes; each call here is
 * one transaction.
 */
export class SqliteGatewayStore implements SessionStore, RetainedStore {
  readonly #db: SqliteDb
  readonly #now: () => number

  constructor (db: SqliteDb, nowMs: () => number = Date.now) {
    this.#db = db
    this.#now = nowMs
  }

  async loadSessions (): Promise<Array<{ session: StoredSession, messages: StoredMessage[] }>> {
    return this.#db.read(() => {
      const byClient = new Map<string, StoredMessage[]>()
      for (const row of this.#db.all<Record<string, unknown>>(
        'SELECT client_id, topic, payload, qos, retain, properties, expires_ms FROM gateway_session_messages ORDER BY seq')) {
        const id = row.client_id
        if (typeof id !== 'string') throw corrupt('gateway_session_messages')
        let list = byClient.get(id)
        if (list === undefined) { list = []; byClient.set(id, list) }
        list.push(toMessage(row, 'gateway_session_messages'))
      }
      return this.#db.all<Record<string, unknown>>(
        'SELECT client_id, protocol_version, expiry_interval_sec, disconnected_ms, principal_id, subscriptions FROM gateway_sessions',
      ).map((row) => {
        const { client_id: clientId, protocol_version: pv, expiry_interval_sec: expiry, disconnected_ms: disc, principal_id: principal } = row
        if (typeof clientId !== 'string' || (pv !== 4 && pv !== 5) || !isInt(expiry) || (disc !== null && !isInt(disc)) ||
          (principal !== null && typeof principal !== 'string')) throw corrupt('gateway_sessions')
        const session: StoredSession = {
          clientId,
          protocolVersion: pv as ProtocolVersion,
          expiryIntervalSec: expiry,
          subscriptions: toSubscriptions(row.subscriptions),
          ...(disc === null ? {} : { disconnectedAtMs: disc }),
          ...(principal === null ? {} : { principalId: principal }),
        }
        return { session, messages: byClient.get(clientId) ?? [] }
      })
    })
  }

  async saveSession (s: StoredSession): Promise<void> {
    // An upsert, not REPLACE: REPLACE would delete the row and cascade to the queued messages.
    await this.#db.transaction(() => {
      this.#db.run(`INSERT INTO gateway_sessions (client_id, protocol_version, expiry_interval_sec, disconnected_ms, principal_id, subscriptions, updated_ms)
        VALUES (?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (client_id) DO UPDATE SET protocol_version = excluded.protocol_version,
          expiry_interval_sec = excluded.expiry_interval_sec, disconnected_ms = excluded.disconnected_ms,
          principal_id = excluded.principal_id, subscriptions = excluded.subscriptions, updated_ms = excluded.updated_ms`,
      s.clientId, s.protocolVersion, s.expiryIntervalSec, s.disconnectedAtMs ?? null, s.principalId ?? null,
      JSON.stringify(s.subscriptions), this.#now())
    })
  }

  async deleteSession (clientId: string): Promise<void> {
    await this.#db.transaction(() => {
      this.#db.run('DELETE FROM gateway_session_messages WHERE client_id = ?', clientId)
      this.#db.run('DELETE FROM gateway_sessions WHERE client_id = ?', clientId)
    })
  }

  async appendMessages (batch: ReadonlyArray<{ readonly clientId: string, readonly message: StoredMessage }>): Promise<void> {
    if (batch.length === 0) return
    await this.#db.transaction(() => {
      for (const { clientId, message: m } of batch) this.#insertMessage(clientId, m)
    })
  }

  async replaceMessages (clientId: string, messages: readonly StoredMessage[]): Promise<void> {
    await this.#db.transaction(() => {
      this.#db.run('DELETE FROM gateway_session_messages WHERE client_id = ?', clientId)
      for (const m of messages) this.#insertMessage(clientId, m)
    })
  }

  #insertMessage (clientId: string, m: StoredMessage): void {
    // INSERT … SELECT: a message for a session that is not stored is dropped, as the port requires.
    this.#db.run(`INSERT INTO gateway_session_messages (client_id, topic, payload, qos, retain, properties, expires_ms)
      SELECT client_id, ?, ?, ?, ?, ?, ? FROM gateway_sessions WHERE client_id = ?`,
    m.topic, m.payload, m.qos, m.retain ? 1 : 0, propertiesToJson(m.properties), m.expiresAtMs ?? null, clientId)
  }

  async loadRetained (): Promise<StoredMessage[]> {
    return this.#db.read(() => this.#db.all<Record<string, unknown>>(
      'SELECT topic, payload, qos, 1 AS retain, properties, expires_ms FROM gateway_retained ORDER BY topic',
    ).map((row) => toMessage(row, 'gateway_retained')))
  }

  async applyRetained (changes: readonly RetainedChange[]): Promise<void> {
    if (changes.length === 0) return
    await this.#db.transaction(() => {
      const now = this.#now()
      for (const c of changes) {
        const m = c.message
        if (m === undefined) {
          this.#db.run('DELETE FROM gateway_retained WHERE topic = ?', c.topic)
          continue
        }
        this.#db.run(`INSERT INTO gateway_retained (topic, payload, qos, properties, expires_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?)
          ON CONFLICT (topic) DO UPDATE SET payload = excluded.payload, qos = excluded.qos, properties = excluded.properties,
            expires_ms = excluded.expires_ms, updated_ms = excluded.updated_ms`,
        c.topic, m.payload, m.qos, propertiesToJson(m.properties), m.expiresAtMs ?? null, now)
      }
    })
  }
}
