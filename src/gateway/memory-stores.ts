/**
 * In-memory SessionStore and RetainedStore: they survive a Gateway being stopped and a new one started in the
 * same process (tests, single-process dev setups), not a process restart. The durable implementations live in
 * storage/sqlite/gateway-store.ts.
 */
import type { RetainedChange, RetainedStore, SessionStore, StoredMessage, StoredSession } from './ports.ts'

function copyMessage (m: StoredMessage): StoredMessage {
  return { ...m, payload: Buffer.from(m.payload) }
}

/** SessionStore kept in process memory. */
export class MemorySessionStore implements SessionStore {
  readonly #sessions = new Map<string, StoredSession>()
  readonly #messages = new Map<string, StoredMessage[]>()

  async loadSessions (): Promise<Array<{ session: StoredSession, messages: StoredMessage[] }>> {
    return [...this.#sessions.values()].map((session) => ({
      session,
      messages: (this.#messages.get(session.clientId) ?? []).map(copyMessage),
    }))
  }

  async saveSession (session: StoredSession): Promise<void> {
    this.#sessions.set(session.clientId, structuredClone(session))
  }

  async deleteSession (clientId: string): Promise<void> {
    this.#sessions.delete(clientId)
    this.#messages.delete(clientId)
  }

  async appendMessages (batch: ReadonlyArray<{ readonly clientId: string, readonly message: StoredMessage }>): Promise<void> {
    for (const { clientId, message } of batch) {
      if (!this.#sessions.has(clientId)) continue
      let q = this.#messages.get(clientId)
      if (q === undefined) { q = []; this.#messages.set(clientId, q) }
      q.push(copyMessage(message))
    }
  }

  async replaceMessages (clientId: string, messages: readonly StoredMessage[]): Promise<void> {
    if (!this.#sessions.has(clientId)) return
    this.#messages.set(clientId, messages.map(copyMessage))
  }
}

/** RetainedStore kept in process memory. */
export class MemoryRetainedStore implements RetainedStore {
  readonly #messages = new Map<string, StoredMessage>()

  async loadRetained (): Promise<StoredMessage[]> {
    return [...this.#messages.values()].map(copyMessage)
  }

  async applyRetained (changes: readonly RetainedChange[]): Promise<void> {
    for (const c of changes) {
      if (c.message === undefined) this.#messages.delete(c.topic)
      else this.#messages.set(c.topic, copyMessage(c.message))
    }
  }
}
