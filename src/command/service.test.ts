import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { ManualClock } from '../core/index.ts'
import { LocalKeyring } from '../kms/index.ts'
import { SqliteAuditStore } from '../storage/sqlite/audit-store.ts'
import { SqliteDb } from '../storage/sqlite/db.ts'
import { SqliteKeyringStore } from '../storage/sqlite/keyring-store.ts'
import { SqliteRegistryStorage } from '../storage/sqlite/registry-store.ts'
import { CommandService, verifyCommandToken } from './service.ts'
import { topicMatches as filterMatches } from '../core/index.ts'

async function service (): Promise<{ svc: CommandService, clock: ManualClock, db: SqliteDb, keyring: LocalKeyring }> {
  const db = new SqliteDb({ path: ':memory:' })
  const clock = new ManualClock(Date.UTC(2026, 10, 23))
  const keyring = await LocalKeyring.open({ store: new SqliteKeyringStore(db), kek: randomBytes(32), clock })
  const svc = new CommandService({ storage: new SqliteRegistryStorage(db, new SqliteAuditStore(db, clock)), keyring, clock })
  await svc.load()
  return { svc, clock, db, keyring }
}

const cases: Array<[string, string, boolean]> = [
  ['building/+/floor/+/lock/+/cmd', 'building/1/floor/2/lock/lock-7/cmd', true],
  ['building/+/floor/+/lock/+/cmd', 'building/1/floor/2/light/l-1/cmd', false],
  ['building/+/floor/+/lock/+/cmd', 'building/1/floor/2/lock/lock-7/cmd/extra', false],
  ['building/#', 'building', true],
  ['#', '$aws/things/x', false],
  ['$aws/#', '$aws/things/x', true],
  ['a/+/c', 'a//c', true],
  ['a/+', 'a', false],
  ['a/#', 'a/', true],
  ['a/b', 'a/bc', false],
  ['a/b', 'a/b/', false],
  ['+/+', '/x', true],
]
for (const [f, t, want] of cases) test(`MQTT 5 §4.7 filter ${f} ${want ? 'matches' : 'does not match'} ${t}`, () => assert.equal(filterMatches(f, t), want))

test('a command token verifies for exactly its topic and payload, and not after 60 s', async () => {
  const { svc, clock } = await service()
  const topic = 'building/1/floor/1/lock/lock-1/cmd'
  const payload = Buffer.from('{"unlock":true}')
  const token = svc.issueToken('user/alice', topic, payload)
  const jwks = svc.jwks()
  const ok = verifyCommandToken(token, jwks, topic, payload, clock.nowMs())
  assert.equal(ok.ok, true)
  assert.equal(ok.ok && ok.claims.sub, 'user/alice')
  assert.deepEqual(verifyCommandToken(token, jwks, 'building/1/floor/1/lock/lock-2/cmd', payload, clock.nowMs()), { ok: false, reason: 'topic' })
  assert.deepEqual(verifyCommandToken(token, jwks, topic, Buffer.from('{"unlock":false}'), clock.nowMs()), { ok: false, reason: 'payload' })
  const [h, c, s] = token.split('.')
  const forged = `${h}.${Buffer.from(Buffer.from(c, 'base64url').toString().replace('alice', 'mallory')).toString('base64url')}.${s}`
  assert.deepEqual(verifyCommandToken(forged, jwks, topic, payload, clock.nowMs()), { ok: false, reason: 'signature' })
  assert.deepEqual(verifyCommandToken(token, jwks, topic, payload, clock.nowMs() + 61_000), { ok: false, reason: 'expired' })
})

test('sensitive filters are validated, audited, persisted; the signing key is stored only sealed and survives a reload', async () => {
  const { svc, db, keyring, clock } = await service()
  assert.equal(svc.isSensitive('building/1/floor/1/lock/l/cmd'), false)
  await assert.rejects(svc.setSensitiveFilters({ actor: 'user/admin' }, ['a/#/b']), /invalid topic filter/)
  await svc.setSensitiveFilters({ actor: 'user/admin' }, ['building/+/floor/+/lock/+/cmd'])
  assert.equal(svc.isSensitive('building/1/floor/1/lock/l/cmd'), true)
  const again = new CommandService({ storage: new SqliteRegistryStorage(db, new SqliteAuditStore(db, clock)), keyring, clock })
  await again.load()
  assert.deepEqual(again.sensitiveFilters, ['building/+/floor/+/lock/+/cmd'])
  assert.deepEqual(again.jwks(), svc.jwks())
  const stored = db.get<{ value: string }>("SELECT value FROM meta WHERE key = 'command.signing_key'")?.value ?? ''
  assert.doesNotMatch(stored, /PRIVATE KEY/)
  const audit = db.all<{ body: string }>('SELECT body FROM audit_events').map(r => JSON.parse(r.body) as { action: string })
  assert.ok(audit.some(e => e.action === 'thingward.SetSensitiveTopics'))
})
