/**
 * The audit log through the running server: request events (every control-plane request, allowed or refused,
 * recorded once), query and export over the API and the CLI, and live verification, which catches records
 * removed behind the running server's back.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { DatabaseSync } from 'node:sqlite'
import { CreateThingCommand, DescribeThingCommand, ListThingsCommand } from '@aws-sdk/client-iot'
import { startPlatform } from './helpers/platform.ts'
import type { TestPlatform } from './helpers/platform.ts'
import { ApiClient, ApiError } from '../src/cli/client.ts'
import { ManualClock } from '../src/core/index.ts'
import { verifyLog } from '../src/audit/index.ts'
import type { AuditRecord, VerifyReport } from '../src/audit/index.ts'
import { SqliteAuditReader } from '../src/storage/sqlite/audit-store.ts'

const run = promisify(execFile)
const MAIN = resolve(import.meta.dirname, '..', 'src', 'main.ts')
const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex')

function api (p: TestPlatform, creds = p.creds): ApiClient {
  return new ApiClient({ endpoint: p.endpoint, region: 'local-1', accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey, ca: p.caPem })
}

/** Every stored record carrying a request id. */
async function byRequest (p: TestPlatform, requestId: string | undefined): Promise<AuditRecord[]> {
  assert.ok(requestId !== undefined)
  return (await p.app.audit.query({ limit: 10_000 })).filter(r => r.requestId === requestId)
}

/** The CLI as a child process, signed with the given credentials against the test server. */
function cliFor (p: TestPlatform, dir: string, creds = p.creds): (...args: string[]) => Promise<{ code: number, stdout: string, stderr: string }> {
  writeFileSync(join(dir, 'ca.pem'), p.caPem)
  const env = { PATH: process.env.PATH ?? '', THINGWARD_ACCESS_KEY_ID: creds.accessKeyId, THINGWARD_SECRET_ACCESS_KEY: creds.secretAccessKey, THINGWARD_ENDPOINT: p.endpoint, THINGWARD_CA_FILE: join(dir, 'ca.pem') }
  return async (...args) => {
    try {
      const r = await run(process.execPath, [MAIN, ...args], { env, maxBuffer: 64 * 1024 * 1024 })
      return { code: 0, stdout: r.stdout, stderr: r.stderr }
    } catch (err) {
      const e = err as { code?: number, stdout?: string, stderr?: string }
      return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
    }
  }
}

test('every control-plane request is recorded once: reads, refusals and failures as request events, mutations by their change event', async (t) => {
  const p = await startPlatform(t)
  const iot = p.iot()

  const created = await iot.send(new CreateThingCommand({ thingName: 'lamp-1', attributePayload: { attributes: { floor: '1' } } }))
  const change = await byRequest(p, created.$metadata.requestId)
  assert.equal(change.length, 1, 'a successful mutation: its change event only')
  assert.equal(change[0].action, 'iot.CreateThing')
  assert.equal(change[0].kind, undefined)

  const read = await iot.send(new DescribeThingCommand({ thingName: 'lamp-1' }))
  const [r] = await byRequest(p, read.$metadata.requestId)
  assert.equal(r.action, 'iot.DescribeThing')
  assert.equal(r.kind, 'request')
  assert.equal(r.outcome, 'success')
  assert.equal(r.actor, 'user/admin')
  assert.equal(r.sourceIp, '127.0.0.1')
  assert.equal(r.target, 'arn:aws:iot:local-1:000000000000:thing/lamp-1')
  assert.equal(r.thing, 'lamp-1')
  assert.deepEqual(r.details, { method: 'GET', path: '/things/:thingName', statusCode: 200 })

  const changesBefore = await p.auditCount()
  const conflict = await iot.send(new CreateThingCommand({ thingName: 'lamp-1', attributePayload: { attributes: { floor: '2' } } })).then(() => undefined, (e: Error & { $metadata: { requestId?: string } }) => e)
  assert.ok(conflict !== undefined)
  const [failed, ...more] = await byRequest(p, conflict.$metadata.requestId)
  assert.equal(more.length, 0)
  assert.equal(failed.action, 'iot.CreateThing')
  assert.equal(failed.outcome, 'failure')
  assert.equal(failed.errorCode, 'ERR_REGISTRY_ALREADY_EXISTS')
  assert.equal((failed.details as { statusCode: number }).statusCode, 409)
  assert.equal(await p.auditCount(), changesBefore, 'the refused mutation changed nothing and left no change event')

  const missing = await iot.send(new DescribeThingCommand({ thingName: 'nope' })).then(() => undefined, (e: Error & { $metadata: { requestId?: string } }) => e)
  const [notFound] = await byRequest(p, missing?.$metadata.requestId)
  assert.equal(notFound.errorCode, 'ERR_REGISTRY_NOT_FOUND')
  assert.equal(notFound.outcome, 'failure')

  // A refused signature: one http.authenticate denial (from the SigV4 hook), no second event.
  const intruder = p.iot({ accessKeyId: p.creds.accessKeyId, secretAccessKey: 'x'.repeat(40) })
  const denied = await intruder.send(new ListThingsCommand({})).then(() => undefined, (e: Error & { $metadata: { requestId?: string } }) => e)
  const deniedRecords = await byRequest(p, denied?.$metadata.requestId)
  assert.deepEqual(deniedRecords.map(x => [x.action, x.outcome, x.errorCode]), [['http.authenticate', 'denied', 'ERR_AUTH_SIGNATURE_MISMATCH']])

  // A signed call to a route that does not exist.
  await assert.rejects(api(p).call('GET', '/no-such-operation'), (e: ApiError) => e.status === 404)
  const unknown = (await p.app.auditLog.search({ action: 'http.UnknownOperation' })).records
  assert.equal(unknown.length, 1)
  assert.equal(unknown[0].outcome, 'failure')

  // Public endpoints (CA chain, CRL, OCSP) are not recorded.
  const before = (await p.app.audit.head())?.seq
  await new Promise<void>((done, reject) => {
    import('node:https').then(({ get }) => get(`${p.endpoint}/ca.pem`, { ca: p.caPem }, (resp) => { resp.resume(); resp.on('end', done) }).on('error', reject), reject)
  })
  assert.equal((await p.app.audit.head())?.seq, before)

  // Reading the audit log is itself audited.
  const page = await api(p).call<{ events: AuditRecord[] }>('GET', '/thingward/audit/events', { query: { action: 'iot.DescribeThing' } })
  assert.equal(page.events.length, 2)
  const self = (await p.app.auditLog.search({ action: 'thingward.ListAuditEvents' })).records
  assert.equal(self.length, 1)
})

test('query by time range, principal, thing, action and outcome, with pagination; export as JSON lines and OCSF (API and CLI)', async (t) => {
  const clock = new ManualClock(Date.now())
  const p = await startPlatform(t, { clock })
  const dir = mkdtempSync(join(tmpdir(), 'tw-audit-query-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const admin = p.iot()
  for (let i = 1; i <= 5; i++) await admin.send(new CreateThingCommand({ thingName: `a${i}` }))
  await admin.send(new DescribeThingCommand({ thingName: 'a2' }))
  clock.advance(60_000)
  const phaseB = clock.nowMs()
  // A second operator, through the registry service directly (its change events carry the caller's actor).
  for (let i = 1; i <= 3; i++) await p.app.things.createThing({ actor: 'user/ops', sourceIp: '10.0.0.2' }, { thingName: `b${i}` })
  await assert.rejects(admin.send(new DescribeThingCommand({ thingName: 'a9' })))
  clock.advance(60_000)
  await admin.send(new CreateThingCommand({ thingName: 'c1' }))
  const client = api(p)
  type Page = { events: AuditRecord[], nextToken?: string }
  const q = async (query: Record<string, string | number | undefined>): Promise<AuditRecord[]> => (await client.call<Page>('GET', '/thingward/audit/events', { query })).events

  assert.deepEqual((await q({ principal: 'user/ops', action: 'iot.CreateThing' })).map(e => e.target?.split('/').pop()), ['b1', 'b2', 'b3'])
  assert.deepEqual((await q({ thing: 'a2' })).map(e => e.action), ['iot.CreateThing', 'iot.DescribeThing'])
  assert.deepEqual((await q({ action: 'iot.CreateThing', from: new Date(phaseB).toISOString(), to: String(phaseB + 30_000) })).map(e => e.target?.split('/').pop()), ['b1', 'b2', 'b3'])
  const failures = await q({ outcome: 'failure' })
  assert.deepEqual(failures.map(e => [e.action, e.actor, e.errorCode]), [['iot.DescribeThing', 'user/admin', 'ERR_REGISTRY_NOT_FOUND']])
  await assert.rejects(client.call('GET', '/thingward/audit/events', { query: { outcome: 'maybe' } }), (e: ApiError) => e.status === 400)

  // Pagination: pages of 2 follow each other in sequence order, nothing repeated or skipped.
  const all = await q({ action: 'iot.CreateThing', maxResults: 100 })
  assert.equal(all.length, 9)
  const paged: AuditRecord[] = []
  let token: string | undefined
  let pages = 0
  do {
    const page = await client.call<Page>('GET', '/thingward/audit/events', { query: { action: 'iot.CreateThing', maxResults: 2, nextToken: token } })
    paged.push(...page.events)
    token = page.nextToken
    pages++
  } while (token !== undefined)
  assert.equal(pages, 5)
  assert.deepEqual(paged.map(e => e.seq), all.map(e => e.seq))

  // CLI: query and export.
  const cli = cliFor(p, dir)
  const viaCli = JSON.parse((await cli('audit', 'query', '--principal', 'user/ops', '--action', 'iot.CreateThing', '--max', '1', '--all')).stdout) as Page
  assert.deepEqual(viaCli.events.map(e => e.seq), all.filter(e => e.actor === 'user/ops').map(e => e.seq))
  const out = join(dir, 'export.jsonl')
  const exported = await cli('audit', 'export', '--out', out)
  assert.equal(exported.code, 0, exported.stderr)
  const lines = readFileSync(out, 'utf8').trimEnd().split('\n')
  const stored = await p.app.audit.rows()
  assert.ok(lines.length >= stored.length - 2, 'the whole log (a few request events may follow the export)')
  // The lines are the stored records verbatim: each hashes to the next one's prevHash.
  for (let i = 0; i + 1 < lines.length; i++) assert.equal((JSON.parse(lines[i + 1]) as AuditRecord).prevHash, sha256(lines[i]))
  assert.equal(lines[0], stored[0].body)
  const ocsf = (await cli('audit', 'export', '--format', 'ocsf', '--action', 'iot.CreateThing')).stdout.trimEnd().split('\n').map(l => JSON.parse(l) as { class_uid: number, activity_id: number, metadata: { sequence: number } })
  assert.deepEqual(ocsf.map(e => [e.class_uid, e.activity_id]), all.map(() => [3004, 1]))
  assert.deepEqual(ocsf.map(e => e.metadata.sequence), all.map(e => e.seq))
})

test('live verification: an intact log verifies; records removed behind the running server are reported, and the next digest signs the true head', async (t) => {
  const p = await startPlatform(t)
  const dir = mkdtempSync(join(tmpdir(), 'tw-audit-live-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const iot = p.iot()
  for (let i = 0; i < 4; i++) await iot.send(new CreateThingCommand({ thingName: `t${i}` }))
  const mid = await p.app.auditLog.signDigest()
  for (let i = 4; i < 8; i++) await iot.send(new CreateThingCommand({ thingName: `t${i}` }))
  const client = api(p)
  const ok = await client.call<VerifyReport>('POST', '/thingward/audit/verify', { body: {} })
  assert.equal(ok.ok, true)
  assert.ok(ok.unsignedTail !== undefined && ok.unsignedTail.fromSeq === mid.toSeq + 1, 'records after the last digest are reported as unsigned')
  const cli = cliFor(p, dir)
  assert.equal((await cli('audit', 'verify', '--endpoint', p.endpoint)).code, 0)
  const head = (await p.app.audit.head())?.seq ?? 0

  // The attacker removes the unsigned tail with a connection of their own.
  const attacker = new DatabaseSync(join(p.dataDir, 'thingward.db'))
  attacker.exec('PRAGMA busy_timeout = 5000')
  attacker.prepare('DELETE FROM audit_events WHERE seq > ?').run(mid.toSeq)
  attacker.close()

  const bad = await client.call<VerifyReport>('POST', '/thingward/audit/verify', { body: {} })
  assert.equal(bad.ok, false)
  assert.equal(bad.firstBad?.kind, 'truncated')
  assert.equal(bad.firstBad?.seq, mid.toSeq + 1)
  assert.match(bad.firstBad?.message ?? '', /committed by the running server/)
  // Records appended since chain on the head the server committed, so the hole stays a hole.
  const viaCli = await cli('audit', 'verify', '--endpoint', p.endpoint)
  assert.equal(viaCli.code, 2)
  assert.match(viaCli.stdout, new RegExp(`FAILED at record ${mid.toSeq + 1} \\(deleted\\): records ${mid.toSeq + 1} to ${head} are missing`))

  // The next digest signs what the server committed, not what the table now holds: the damage stays visible.
  const next = await p.app.auditLog.signDigest()
  assert.ok(next.toSeq >= head)
  await p.http.close()
  await p.app.close()
  const reader = new SqliteAuditReader(join(p.dataDir, 'thingward.db'))
  t.after(() => reader.close())
  const offline = await verifyLog(reader)
  assert.equal(offline.firstBad?.kind, 'deleted')
  assert.equal(offline.firstBad?.seq, mid.toSeq + 1)
})
