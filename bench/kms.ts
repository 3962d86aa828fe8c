/**
 * Envelope encryption throughput of the local keyring for 1 KiB payloads (one thread, in-memory SQLite for the
 * keyring store; the store is not touched on the hot path). Short run: about one second per operation.
 * Usage: node bench/kms.ts [durationMs]
 */
import { randomBytes } from 'node:crypto'
import { ManualClock } from '../src/core/index.ts'
import { LocalKeyring } from '../src/kms/index.ts'
import { SqliteDb } from '../src/storage/sqlite/db.ts'
import { SqliteKeyringStore } from '../src/storage/sqlite/keyring-store.ts'

const durationMs = Number(process.argv[2] ?? 1000)
const db = new SqliteDb({ path: ':memory:' })
const kr = await LocalKeyring.open({ store: new SqliteKeyringStore(db), kek: randomBytes(32), clock: new ManualClock() })
const context = { thing: 'sensor-0001', purpose: 'shadow' }
const payload = randomBytes(1024)
const blob = kr.encrypt(payload, context)

function measure (name: string, fn: () => void): void {
  for (let i = 0; i < 2000; i++) fn() // warm-up
  let ops = 0
  const start = process.hrtime.bigint()
  const end = start + BigInt(durationMs) * 1_000_000n
  let now = start
  while (now < end) {
    for (let i = 0; i < 256; i++) fn()
    ops += 256
    now = process.hrtime.bigint()
  }
  const sec = Number(now - start) / 1e9
  console.log(`${name.padEnd(28)} ${Math.round(ops / sec).toLocaleString('en-US').padStart(9)} ops/s  ${(sec * 1e6 / ops).toFixed(1)} µs/op`)
}

console.log(`node ${process.version}, 1 KiB payload, ${durationMs} ms per operation`)
measure('encrypt (envelope)', () => { kr.encrypt(payload, context) })
measure('decrypt (envelope)', () => { kr.decrypt(blob, context) })
measure('generateDataKey', () => { kr.generateDataKey(context) })
measure('reEncrypt (envelope)', () => { kr.reEncrypt(blob, context) })
db.close()
