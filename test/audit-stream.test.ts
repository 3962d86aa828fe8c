/**
 * Streaming the log to a file, to syslog over TLS (RFC 5424 messages, RFC 5425 octet-counting framing) and to an
 * HTTPS webhook, with the cursor persisted in the database: a restarted streamer (or a rerun of
 * `thingward audit stream`) resumes where the last acknowledged batch ended and loses nothing.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHmac } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createServer as createTlsServer } from 'node:tls'
import { promisify } from 'node:util'
import { CreateThingCommand, DescribeThingCommand } from '@aws-sdk/client-iot'
import { startPlatform } from './helpers/platform.ts'
import type { TestPlatform } from './helpers/platform.ts'
import { AuditStreamer, ExportFormat, parseAnchors, verifyLog } from '../src/audit/index.ts'
import type { AuditRecord } from '../src/audit/index.ts'
import { FileAuditSink, SyslogTlsSink, WebhookAuditSink } from '../src/storage/audit-sinks.ts'
import { SqliteAuditReader } from '../src/storage/sqlite/audit-store.ts'

const run = promisify(execFile)
const MAIN = resolve(import.meta.dirname, '..', 'src', 'main.ts')

async function activity (p: TestPlatform, prefix: string, n: number): Promise<void> {
  const iot = p.iot()
  for (let i = 0; i < n; i++) {
    await iot.send(new CreateThingCommand({ thingName: `${prefix}-${i}` }))
    await iot.send(new DescribeThingCommand({ thingName: `${prefix}-${i}` }))
  }
  await assert.rejects(iot.send(new DescribeThingCommand({ thingName: `${prefix}-missing` })))
  await p.app.auditLog.recorder.flush()
}

const allSeqs = async (p: TestPlatform): Promise<number[]> => (await p.app.audit.rows()).map(r => r.seq)

test('file sink: JSON lines with digests interleaved; a restarted streamer resumes from the persisted cursor; the file anchors verification', async (t) => {
  const p = await startPlatform(t)
  const dir = mkdtempSync(join(tmpdir(), 'tw-audit-file-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'audit.jsonl')
  await activity(p, 'a', 3)
  await p.app.auditLog.signDigest()
  const first = new AuditStreamer({ store: p.app.audit, sink: new FileAuditSink(file), format: ExportFormat.Jsonl, batchSize: 4 })
  const sent = await first.runOnce()
  await first.stop()
  assert.equal(sent.events, (await allSeqs(p)).length)
  assert.ok(sent.digests >= 2)

  // "Restart": a new streamer, same sink and format, more records meanwhile.
  await activity(p, 'b', 2)
  const second = new AuditStreamer({ store: p.app.audit, sink: new FileAuditSink(file), format: ExportFormat.Jsonl, batchSize: 4 })
  await second.runOnce()
  assert.deepEqual(await second.runOnce(), { events: 0, digests: 0 }, 'nothing left to send')
  await second.stop()

  const lines = readFileSync(file, 'utf8').trimEnd().split('\n')
  const events = lines.filter(l => l.startsWith('{"seq":')).map(l => (JSON.parse(l) as AuditRecord).seq)
  assert.deepEqual(events, await allSeqs(p), 'every record exactly once, in order')
  // Each digest line follows the record it ends on.
  let lastEvent = 0
  for (const l of lines) {
    const v = JSON.parse(l) as { type?: string, seq?: number, digest?: { toSeq: number } }
    if (v.type === 'digest') assert.ok((v.digest?.toSeq ?? -1) <= lastEvent); else lastEvent = v.seq ?? 0
  }
  const report = await p.app.auditLog.verify({ anchors: parseAnchors(readFileSync(file, 'utf8')) })
  assert.equal(report.ok, true, report.firstBad?.message)
})

test('syslog over TLS: RFC 5424 messages with RFC 5425 octet counting, severity from the outcome', async (t) => {
  const p = await startPlatform(t)
  const tls = await p.app.certificates.tlsServerCredentials()
  const frames: string[] = []
  const server = createTlsServer({ cert: tls.certChainPem, key: tls.keyPem, minVersion: 'TLSv1.2' }, (socket) => {
    let buf = Buffer.alloc(0)
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      for (;;) {
        const sp = buf.indexOf(0x20)
        if (sp < 0) break
        const len = Number(buf.subarray(0, sp).toString('ascii'))
        if (buf.length < sp + 1 + len) break
        frames.push(buf.subarray(sp + 1, sp + 1 + len).toString('utf8'))
        buf = buf.subarray(sp + 1 + len)
      }
    })
    socket.on('error', () => {})
  })
  await new Promise<void>((done) => { server.listen(0, '127.0.0.1', done) })
  t.after(() => new Promise<void>((done) => { server.close(() => { done() }) }))
  const port = (server.address() as AddressInfo).port
  await activity(p, 's', 2)

  const sink = (): SyslogTlsSink => new SyslogTlsSink({ host: '127.0.0.1', port, ca: p.caPem, hostname: 'gw-1.example', servername: 'localhost' }, '4242')
  const a = new AuditStreamer({ store: p.app.audit, sink: sink(), format: ExportFormat.Jsonl, batchSize: 3 })
  await a.runOnce()
  await a.stop()
  await activity(p, 't', 1)
  const b = new AuditStreamer({ store: p.app.audit, sink: sink(), format: ExportFormat.Jsonl, batchSize: 3 })
  await b.runOnce()
  await b.stop()
  const expected = await allSeqs(p)
  // Delivery is acknowledged at the TLS write; wait for the collector to have read everything.
  for (let i = 0; i < 200 && frames.filter(f => f.includes('type="event"')).length < expected.length; i++) await new Promise(r => setImmediate(r))

  const re = /^<(\d{1,3})>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) gw-1\.example thingward 4242 (\S{1,32}) \[thingward@32473 type="(event|digest)" seq="(\d+)"\] \uFEFF(\{.*\})$/
  const parsed = frames.map((f) => {
    const m = re.exec(f)
    assert.ok(m !== null, `RFC 5424 shape: ${f.slice(0, 120)}`)
    return { pri: Number(m[1]), time: m[2], msgId: m[3], type: m[4], seq: Number(m[5]), json: JSON.parse(m[6]) as AuditRecord }
  })
  const events = parsed.filter(x => x.type === 'event')
  assert.deepEqual(events.map(e => e.seq), expected, 'every record once, in order, across the restart')
  for (const e of events) {
    assert.equal(e.json.seq, e.seq)
    assert.equal(e.msgId, e.json.action.slice(0, 32))
    assert.equal(e.time, new Date(e.json.timeMs).toISOString())
    // Facility 13 (log audit) × 8 + severity: 6 informational, 4 warning (denied), 3 error (failure).
    assert.equal(e.pri, 104 + ({ success: 6, denied: 4, failure: 3 } as Record<string, number>)[e.json.outcome])
  }
  assert.ok(events.some(e => e.pri === 107), 'the failed request is an error')
  assert.ok(parsed.some(x => x.type === 'digest' && x.pri === 109), 'digests are notices')
})

test('HTTPS webhook: 2xx acknowledges; a refused batch is sent again, after a restart too, and nothing is lost or repeated', async (t) => {
  const p = await startPlatform(t)
  const tls = await p.app.certificates.tlsServerCredentials()
  const secret = 'webhook-test-secret'
  const accepted: number[] = []
  let requests = 0
  let failOn = 3
  const server = createHttpsServer({ cert: tls.certChainPem, key: tls.keyPem }, (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      requests++
      const body = Buffer.concat(chunks)
      const sig = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`
      if (req.headers['x-thingward-signature'] !== sig || req.headers['content-type'] !== 'application/x-ndjson') { res.statusCode = 401; res.end(); return }
      if (requests === failOn) { res.statusCode = 503; res.end(); return }
      const seqs = body.toString('utf8').trimEnd().split('\n').map(l => JSON.parse(l) as { seq?: number, type?: string }).filter(v => v.type !== 'digest').map(v => v.seq ?? -1)
      assert.equal(req.headers['x-thingward-first-seq'], String(seqs[0]))
      accepted.push(...seqs)
      res.statusCode = 204
      res.end()
    })
  })
  await new Promise<void>((done) => { server.listen(0, '127.0.0.1', done) })
  t.after(() => new Promise<void>((done) => { server.close(() => { done() }) }))
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/audit`
  await activity(p, 'w', 4)

  const streamer = (): AuditStreamer => new AuditStreamer({ store: p.app.audit, sink: new WebhookAuditSink({ url, ca: p.caPem, secret }), format: ExportFormat.Jsonl, batchSize: 4 })
  const a = streamer()
  await assert.rejects(a.runOnce(), { code: 'ERR_AUDIT_SINK_FAILED' })
  await a.stop()
  assert.equal(accepted.length, 8, 'two batches acknowledged before the refusal')
  const cursor = JSON.parse(await p.app.audit.getCursor(a.cursorName) ?? '{}') as { seq: number }
  assert.equal(cursor.seq, accepted[accepted.length - 1], 'the cursor stops at the last acknowledged record')

  failOn = -1
  const b = streamer()
  await b.runOnce()
  await b.stop()
  assert.deepEqual(accepted, await allSeqs(p), 'after the restart: every record exactly once, in order')
  assert.throws(() => new WebhookAuditSink({ url: url.replace('https:', 'http:') }), { code: 'ERR_CONFIG_INVALID' })
})

test('`thingward audit stream --once` resumes from the cursor kept in the data directory (server stopped between runs)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-audit-cli-stream-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const data = join(dir, 'data')
  const out = join(dir, 'stream.jsonl')
  const env = { PATH: process.env.PATH ?? '' }
  const stream = async (): Promise<string> => (await run(process.execPath, [MAIN, 'audit', 'stream', '--data', data, '--sink', `file:${out}`, '--once'], { env })).stderr

  const p1 = await startPlatform(t, { dataDir: data })
  await activity(p1, 'x', 2)
  await p1.http.close()
  await p1.app.close()
  assert.match(await stream(), /delivered \d+ records/)
  const firstLines = readFileSync(out, 'utf8').trimEnd().split('\n').length

  const p2 = await startPlatform(t, { dataDir: data, masterKey: p1.masterKey })
  await activity(p2, 'y', 2)
  await p2.http.close()
  await p2.app.close()
  await stream()
  const lines = readFileSync(out, 'utf8').trimEnd().split('\n')
  assert.ok(lines.length > firstLines)
  const reader = new SqliteAuditReader(join(data, 'thingward.db'))
  t.after(() => reader.close())
  const stored = await reader.readEvents(0, Number.MAX_SAFE_INTEGER, 100_000)
  assert.deepEqual(lines.filter(l => l.startsWith('{"seq":')), stored.map(r => r[1]), 'the file holds every record verbatim, once')
  const report = await verifyLog(reader, { anchors: parseAnchors(readFileSync(out, 'utf8')), requireClosed: true })
  assert.equal(report.ok, true, report.firstBad?.message)
})
