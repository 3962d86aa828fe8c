/**
 * Audit log throughput (issue #5 goals: >= 100,000 events/s appended and committed, >= 500,000 events/s verified).
 *
 * - durable append: events queued on the group-commit recorder, committed in batches to a SQLite file with
 *   synchronous=FULL (every commit fsync'd); the clock stops when the last commit returns. Event mix: gateway
 *   connection events, key uses, control-plane request events (the non-change events that go through this path).
 * - per-event transactions, for contrast: one transaction (one fsync) per event, the in-transaction path a
 *   state change uses.
 * - verification: `verifyLog` over the file through the offline read-only reader (what `audit verify --data`
 *   runs): every record hashed and linked, digests checked.
 *
 * Each rate is also given per CPU-second of this process, which is what the code costs when the machine is
 * shared (the wall-clock rate then also pays for other processes and for fsync waits).
 *
 * Usage: node bench/audit.ts [events=300000]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { AuditRecorder, gatewayEvent, keyUseEvent, verifyLog } from '../src/audit/index.ts'
import type { AuditEventInput } from '../src/audit/index.ts'
import { systemClock } from '../src/core/index.ts'
import { SqliteAuditReader, SqliteAuditStore } from '../src/storage/sqlite/audit-store.ts'
import { SqliteDb } from '../src/storage/sqlite/db.ts'

const total = Number(process.argv[2] ?? 300_000)
const dir = mkdtempSync(join(tmpdir(), 'tw-bench-audit-'))
const path = join(dir, 'thingward.db')

function templates (): AuditEventInput[] {
  const out: AuditEventInput[] = []
  for (let i = 0; i < 2000; i++) {
    const dev = `temp-${String(i % 2000).padStart(4, '0')}`
    const fp = Array.from({ length: 32 }, (_, j) => ((i * 7 + j * 13) % 256).toString(16).padStart(2, '0')).join(':').toUpperCase()
    switch (i % 4) {
      case 0: out.push(gatewayEvent({ action: 'mqtt.connect', outcome: 'allowed', timeMs: Date.now(), clientId: dev, principalId: `cert/${i}`, certificateFingerprint256: fp, sourceAddress: `10.0.${i % 250}.${i % 200}`, resource: dev, reason: 'connected', reasonCode: 0, statement: 'role-temperature-sensor:1:0' })); break
      case 1: out.push(gatewayEvent({ action: 'mqtt.disconnect', outcome: 'closed', timeMs: Date.now(), clientId: dev, principalId: `cert/${i}`, sourceAddress: `10.0.${i % 250}.${i % 200}`, reason: 'client-disconnect', reasonCode: 0 })); break
      case 2: out.push(keyUseEvent({ operation: 'decrypt', keyId: 'master', version: 1, context: { purpose: 'shadow', thing: dev } })); break
      default: out.push({ action: 'iot.DescribeThing', actor: 'user/admin', outcome: 'success', kind: 'request', target: `arn:aws:iot:local-1:000000000000:thing/${dev}`, thing: dev, sourceIp: '127.0.0.1', requestId: `0f8fad5b-d9cb-469f-a165-70867728${String(i).padStart(4, '0')}`, details: { method: 'GET', path: '/things/:thingName', statusCode: 200 } })
    }
  }
  return out
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')
const cpuSec = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1e6

try {
  const db = new SqliteDb({ path, synchronous: 'FULL' })
  const store = new SqliteAuditStore(db, systemClock)
  const recorder = new AuditRecorder({ store, highWaterMark: 1_000_000 }) // default batch: up to 20,000 events per commit
  const t = templates()
  // Warm-up (statement preparation, JIT).
  for (let i = 0; i < 20_000; i++) recorder.enqueue(t[i % t.length])
  await recorder.flush()

  const before = (await store.head())?.seq ?? 0
  const cpu0 = process.cpuUsage()
  const start = process.hrtime.bigint()
  for (let i = 0; i < total; i++) recorder.enqueue(t[i % t.length])
  await recorder.flush()
  const appendSec = Number(process.hrtime.bigint() - start) / 1e9
  const appendCpu = cpuSec(process.cpuUsage(cpu0))
  const appended = ((await store.head())?.seq ?? 0) - before

  const single = 2000
  const s0 = process.hrtime.bigint()
  for (let i = 0; i < single; i++) await db.transaction(() => store.append(t[i % t.length]))
  const singleSec = Number(process.hrtime.bigint() - s0) / 1e9
  db.close()

  const reader = new SqliteAuditReader(path)
  const vc0 = process.cpuUsage()
  const v0 = process.hrtime.bigint()
  const report = await verifyLog(reader)
  const verifySec = Number(process.hrtime.bigint() - v0) / 1e9
  const verifyCpu = cpuSec(process.cpuUsage(vc0))
  reader.close()
  if (!report.ok) throw new Error(`verification failed: ${report.firstBad?.message ?? ''}`)

  console.log(`node ${process.version}, SQLite file, synchronous=FULL (WAL), ${fmt(total)} events (gateway, key-use and request events); load average ${loadavg().map(l => l.toFixed(2)).join(' ')}`)
  console.log(`durable append (group commit)   ${fmt(appended / appendSec).padStart(10)} events/s  ${fmt(appended / appendCpu).padStart(10)} per CPU-s  (${appendSec.toFixed(2)} s; goal >= 100,000)`)
  console.log(`one transaction per event       ${fmt(single / singleSec).padStart(10)} events/s  ${''.padStart(10)}             (${single} events; the in-transaction path of a state change)`)
  console.log(`verification (offline reader)   ${fmt(report.checkedEvents / verifySec).padStart(10)} events/s  ${fmt(report.checkedEvents / verifyCpu).padStart(10)} per CPU-s  (${fmt(report.checkedEvents)} records in ${verifySec.toFixed(2)} s; goal >= 500,000)`)
} finally {
  rmSync(dir, { recursive: true, force: true })
}
